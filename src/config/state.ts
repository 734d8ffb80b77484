// The `state` block: where the shared state lives. Absent, the authorization server keeps its state in the JSON
// file (auth_server.json, see store/location.ts). `state.redis` shares it — and MCP sessions, caches and rate
// limits — between replicas through one Redis.

import { DEFAULTS } from "./defaults.ts";
import { parseDuration } from "./duration.ts";
import type { Problems } from "./problems.ts";
import type { StateConfig } from "./types.ts";

export interface StateInput {
  redis?: { url: string; keyPrefix?: string; timeout?: string | number };
}

export function stateSection(input: StateInput | undefined, problems: Problems): StateConfig {
  const r = input?.redis;
  if (!r) return {};
  let url: URL | undefined;
  try {
    url = new URL(r.url);
  } catch {
    problems.push({ path: "state.redis.url", message: 'expected a URL such as "redis://127.0.0.1:6379/0"' });
  }
  if (url && url.protocol !== "redis:" && url.protocol !== "rediss:") {
    problems.push({
      path: "state.redis.url",
      message: `found the scheme ${url.protocol.replace(/:$/, "")}, expected redis:// or rediss:// (TLS)`,
    });
  }
  if (url && url.pathname.length > 1 && !/^\/\d+$/.test(url.pathname)) {
    problems.push({ path: "state.redis.url", message: `the path must be a database number (found ${url.pathname})` });
  }
  const keyPrefix = r.keyPrefix ?? DEFAULTS.state.keyPrefix;
  if (keyPrefix === "" || /\s/.test(keyPrefix)) {
    problems.push({
      path: "state.redis.keyPrefix",
      message: 'expected a non-empty prefix without spaces, such as "gatehouse:"',
    });
  }
  let timeoutMs: number = DEFAULTS.state.redisTimeoutMs;
  if (r.timeout !== undefined) {
    const ms = parseDuration(r.timeout);
    if (ms === null || ms < 100 || ms > 60_000) {
      problems.push({ path: "state.redis.timeout", message: 'expected a duration between "100ms" and "60s"' });
    } else timeoutMs = ms;
  }
  return { redis: { url: r.url, keyPrefix, timeoutMs } };
}
