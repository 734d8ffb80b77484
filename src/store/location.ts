// Where the authorization server keeps its state: MCP_AUTH_SERVER_CONFIG (inline JSON, read-only), else
// MCP_AUTH_SERVER_PATH, else auth_server.json beside the configuration — as `mcp serve` does.

import { join, resolve } from "node:path";
import type { Config } from "../config/types.ts";

export type StateLocation = { kind: "inline"; json: string } | { kind: "file"; path: string };

export function stateLocation(config: Config, env: Record<string, string | undefined>, cwd: string): StateLocation {
  return stateLocationIn(config.dir, env, cwd);
}

/** The same from the configuration's directory alone (`gatehouse reload` works even when the file is broken). */
export function stateLocationIn(
  configDir: string,
  env: Record<string, string | undefined>,
  cwd: string,
): StateLocation {
  const inline = env.MCP_AUTH_SERVER_CONFIG;
  if (inline !== undefined && inline.trim() !== "") return { kind: "inline", json: inline };
  const path = env.MCP_AUTH_SERVER_PATH?.trim();
  if (path) return { kind: "file", path: resolve(cwd, path) };
  return { kind: "file", path: join(configDir, "auth_server.json") };
}
