// Opens the state a configuration names, for `serve` and the admin commands: Redis when `state.redis` is set (with
// the MCP session backplane), else the JSON file (or MCP_AUTH_SERVER_CONFIG, read-only) where location.ts says.

import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { mcpServeConfigDir } from "../config/load.ts";
import type { Config } from "../config/types.ts";
import type { Logger } from "../log.ts";
import { canonicalResource } from "../oauth/resource.ts";
import type { RedisFactory } from "../platform/types.ts";
import { inlineStore, JsonFileStore } from "./json-file.ts";
import { stateLocation } from "./location.ts";
import type { McpServeContext } from "./mcp-serve.ts";
import { RedisConnection } from "./redis/connection.ts";
import { redisServices } from "./redis/limits.ts";
import { RedisBackplane } from "./redis/sessions.ts";
import { RedisStore } from "./redis/store.ts";
import type { SharedServices } from "./shared.ts";
import { StateOpenError, type Store } from "./types.ts";

export interface OpenedState {
  /** The authorization server's store (when the configuration runs one, or `always`). */
  store?: Store;
  redis?: RedisConnection;
  backplane?: RedisBackplane;
  /** Rate limits and caches in Redis. */
  shared?: SharedServices;
  /** Closes what was opened (the store first). */
  close(): Promise<void>;
}

/**
 * `mcp serve` keeps auth_server.json in its configuration directory ($MCP_CONFIG_DIR, else ~/.config/mcp: avelino/mcp
 * src/server_auth/oauth_as/store.rs state_path), Gatehouse beside servers.json: they differ when servers.json is at
 * $MCP_CONFIG_PATH. Starting with an empty state there would log out everyone mcp serve signed in, without a word:
 * when Gatehouse has no state yet and mcp serve's file exists, it stops and says which file to use.
 */
function refuseStateElsewhere(path: string, env: Record<string, string | undefined>, cwd: string): void {
  if (env.MCP_AUTH_SERVER_PATH?.trim() || existsSync(path) || existsSync(`${path}.journal`)) return;
  const dir = mcpServeConfigDir(env);
  const theirs = dir ? resolve(cwd, dir, "auth_server.json") : undefined;
  if (!theirs || theirs === path || !existsSync(theirs)) return;
  throw new StateOpenError(
    `there is no state at ${path} (beside servers.json, where Gatehouse keeps it), but mcp serve's state is at ` +
      `${theirs}: set MCP_AUTH_SERVER_PATH=${theirs} to take it over (its clients and refresh tokens keep working), ` +
      `or MCP_AUTH_SERVER_PATH=${path} to start with an empty state (everyone signs in again)`,
  );
}

/** What a state file of mcp serve's needs from the configuration to be converted (store/mcp-serve.ts). */
export function mcpServeContext(config: Config, now = Date.now()): McpServeContext | undefined {
  const as = config.auth.oauthAs;
  if (!as) return undefined;
  return {
    now,
    resource: canonicalResource(as.resourceUrl) ?? as.resourceUrl,
    injectedRoles: as.injectedRoles,
    scopes: as.requiredScopes,
  };
}

export async function openState(
  config: Config,
  deps: {
    log: Logger;
    env: Record<string, string | undefined>;
    cwd: string;
    /** A Redis client, for state.redis; undefined where the runtime has none (Deno). */
    redis: RedisFactory | undefined;
    /** Open the authorization server's store even if `oauth_as` is not a provider (admin commands). */
    always?: boolean;
    /** The file store without its lock, read-only (export beside a running server). */
    readOnly?: boolean;
  },
): Promise<OpenedState> {
  const wantStore = deps.always === true || config.auth.providers.includes("oauth_as");
  const r = config.state.redis;
  if (r) {
    if (!deps.redis) {
      throw new StateOpenError(
        "state.redis needs a Redis client, and the one Gatehouse uses is Bun's built-in RedisClient: it is not " +
          "available under this runtime. Run dist/gatehouse (or bun src/main.ts) for shared state.",
      );
    }
    const redis = await RedisConnection.open(r, deps.redis, deps.log);
    try {
      const store = wantStore ? await RedisStore.attach(redis) : undefined;
      const backplane = await RedisBackplane.attach(
        redis,
        config.gateway.sessionIdleTimeoutMs,
        config.gateway.eventBufferSize,
      );
      return {
        ...(store ? { store } : {}),
        redis,
        backplane,
        shared: redisServices(redis),
        async close() {
          await store?.close();
          redis.close();
        },
      };
    } catch (e) {
      redis.close();
      throw e;
    }
  }
  if (!wantStore) return { close: async () => {} };
  const where = stateLocation(config, deps.env, deps.cwd);
  if (where.kind === "file") refuseStateElsewhere(where.path, deps.env, deps.cwd);
  const mcpServe = mcpServeContext(config);
  const store =
    where.kind === "inline"
      ? inlineStore(
          where.json,
          () =>
            deps.log.warn(
              "the authorization server state is MCP_AUTH_SERVER_CONFIG (read-only): changes are kept in memory only",
            ),
          mcpServe && {
            context: mcpServe,
            converted: (report) =>
              deps.log.warn(
                `MCP_AUTH_SERVER_CONFIG is mcp serve's state, converted in memory: ${report}; put \`gatehouse state export\` in the secret to keep Gatehouse's format`,
              ),
          },
        )
      : JsonFileStore.open(where.path, {
          log: deps.log,
          ...(deps.readOnly ? { readOnly: true } : {}),
          ...(mcpServe ? { mcpServe } : {}),
        });
  return { store, close: () => store.close() };
}
