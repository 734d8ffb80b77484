// `gatehouse state export` and `gatehouse state import`: every durable record between the stores a configuration
// names (the JSON file, Redis), in the state file's format.

import { existsSync } from "node:fs";
import type { Config } from "../config/types.ts";
import { createLogger } from "../log.ts";
import type { RedisFactory } from "../platform/types.ts";
import { stateLocation } from "../store/location.ts";
import { describeReport, parseState } from "../store/mcp-serve.ts";
import { mcpServeContext, openState } from "../store/open.ts";
import type { parseSnapshot } from "../store/snapshot.ts";
import type { Store } from "../store/types.ts";
import { CommandError, noStateFile, UsageError } from "./args.ts";

export async function stateTransfer(
  sub: string | undefined,
  options: {
    config: Config;
    /** A Redis client, for state.redis (undefined where the runtime has none). */
    redis: RedisFactory | undefined;
    input: () => Promise<string>;
    out: (s: string) => void;
    err: (s: string) => void;
  },
): Promise<number> {
  if (sub !== "export" && sub !== "import") throw new UsageError("usage: gatehouse state export | import");
  const { config } = options;
  if (!config.auth.oauthAs) {
    throw new CommandError(
      "this configuration has no serverAuth.oauthAs block: there is no authorization server state",
    );
  }
  const where = stateLocation(config, process.env as Record<string, string | undefined>, process.cwd());
  const exists = (p: string) => existsSync(p) || existsSync(`${p}.journal`);
  if (sub === "export" && !config.state.redis && where.kind === "file" && !exists(where.path)) {
    throw noStateFile(where.path, config.source, process.env as Record<string, string | undefined>);
  }
  let snapshot: ReturnType<typeof parseSnapshot> | undefined;
  if (sub === "import") {
    const text = await options.input();
    try {
      const read = parseState(JSON.parse(text), mcpServeContext(config));
      snapshot = read.snapshot;
      if (read.mcpServe)
        options.err(`standard input is mcp serve's state: converted ${describeReport(read.mcpServe)}\n`);
    } catch (e) {
      throw new CommandError(`standard input is not a Gatehouse state (${(e as Error).message})`);
    }
  }
  const state = await openState(config, {
    log: createLogger({ level: "warn" }),
    env: process.env as Record<string, string | undefined>,
    cwd: process.cwd(),
    redis: options.redis,
    always: true,
    readOnly: sub === "export",
  });
  const store = state.store as Store;
  try {
    if (sub === "export") {
      const s = await store.exportSnapshot();
      options.out(`${JSON.stringify(s, null, 2)}\n`);
      options.err(`exported ${count(s)} from ${store.description}\n`);
      return 0;
    }
    const s = snapshot as NonNullable<typeof snapshot>;
    try {
      await store.importSnapshot(s);
    } catch (e) {
      throw new CommandError((e as Error).message);
    }
    options.err(`imported ${count(s)} into ${store.description}\n`);
    return 0;
  } finally {
    await state.close();
  }
}

function count(s: ReturnType<typeof parseSnapshot>): string {
  const n = (o: Record<string, unknown>) => Object.keys(o).length;
  return (
    `${n(s.clients)} clients, ${n(s.consents)} consents, ${n(s.grants)} grants, ${n(s.refresh_tokens)} refresh tokens, ` +
    `${s.keys.length} keys, ${n(s.sessions)} browser sessions`
  );
}
