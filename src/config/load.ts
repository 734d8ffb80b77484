// Loads servers.json, as a short sequence: locate → read → strip comments → substitute ${VAR} → check the whole
// file against schema.ts → run each section on what the schema accepted → checks across sections. Every problem is
// collected (problems.ts) and reported together, each with its JSON path, what was found and what was expected;
// nothing starts unless the list is empty.

import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { secretEnvNames, substituteEnv } from "./env.ts";
import { ENV_MODE_SOURCE, envModeConfig, envModeRequested } from "./env-mode.ts";
import { auditSection, gatewaySection } from "./gateway.ts";
import { describeJsonError, stripJsonComments } from "./jsonc.ts";
import { type MetricsInput, metricsSection } from "./metrics.ts";
import { ConfigError, Problems } from "./problems.ts";
import { routeProblems } from "./routes.ts";
import { type AuditInput, type GatewayInput, ServersFile } from "./schema.ts";
import { serverAuthSection } from "./server-auth.ts";
import { serversSection } from "./servers.ts";
import { type StateInput, stateSection } from "./state.ts";
import type { Config } from "./types.ts";

export { ConfigError, type ConfigProblem } from "./problems.ts";

/** Parses and validates config text. Throws ConfigError listing every problem. */
export function parseConfig(
  text: string,
  options: { source: string; dir: string; env: Record<string, string | undefined> },
): Config {
  const { source, dir, env } = options;
  const p = new Problems();
  const stripped = stripJsonComments(text);
  let parsed: unknown;
  try {
    parsed = JSON.parse(stripped);
  } catch (e) {
    throw new ConfigError(source, [
      { path: "", message: `not valid JSON: ${describeJsonError(stripped, e as Error)}` },
    ]);
  }
  const referenced: [string, string][] = [];
  const value = substituteEnv(parsed, env, p, "", (name, path) => referenced.push([name, path]));
  p.check(ServersFile, value, "");
  if (!value || typeof value !== "object" || Array.isArray(value)) p.throwIfAny(source);
  const root = p.prune(value as Record<string, unknown>, "");
  const backends = serversSection(root.mcpServers, dir, env, p);
  const auth = serverAuthSection(root.serverAuth, p, dir);
  const config: Config = {
    source,
    dir,
    backends,
    auth,
    audit: auditSection(root.audit as AuditInput | undefined, dir, env),
    gateway: gatewaySection(root.gateway as GatewayInput | undefined, p),
    state: stateSection(root.state as StateInput | undefined, p),
    metrics: metricsSection(root.metrics as MetricsInput | undefined, p),
    secretEnv: secretEnvNames(referenced),
    warnings: p.warnings,
  };
  // /mcp's resource follows gateway.publicUrl, as every other route's does, unless oauthAs.resourceUrl says otherwise.
  const asInput = (root.serverAuth as { oauthAs?: { resourceUrl?: unknown } } | undefined)?.oauthAs;
  if (auth.oauthAs && config.gateway.publicUrl && asInput?.resourceUrl === undefined) {
    auth.oauthAs.resourceUrl = `${config.gateway.publicUrl.replace(/\/+$/, "")}/mcp`;
  }
  routeProblems(config.gateway, backends, auth, p);
  p.throwIfAny(source);
  return config;
}

export interface ConfigLocation {
  /** Read from this file, or inline text when `inline` is set. */
  path: string;
  inline?: string;
  /** Env-only quick mode: built from allardy/mcp-oauth-proxy's variables (env-mode.ts). */
  fromEnv?: boolean;
  /** How it was found, for the log and `gatehouse check` ("--config", "MCP_CONFIG_PATH", …). */
  via: string;
  /** The other places looked at, when it does not exist (the error names them). */
  lookedAt?: string[];
}

/** mcp serve's configuration directory: $MCP_CONFIG_DIR, else ~/.config/mcp (avelino/mcp src/config.rs config_dir). */
export function mcpServeConfigDir(env: Record<string, string | undefined>): string | undefined {
  const dir = env.MCP_CONFIG_DIR?.trim();
  if (dir) return dir;
  // mcp serve falls back to /tmp/mcp without a home directory: a world-writable place anyone could plant a
  // servers.json in, so Gatehouse does not look there.
  const home = env.HOME?.trim();
  return home ? join(home, ".config", "mcp") : undefined;
}

/**
 * Where the config comes from: --config, then MCP_SERVERS_CONFIG (inline JSON), MCP_CONFIG_PATH,
 * MCP_CONFIG_DIR/servers.json, then env-only mode when OIDC_ISSUER_URL is set, then ~/.config/mcp/servers.json (where
 * `mcp serve` looks by default: avelino/mcp docs/reference/config-file.md "Location"), then ./servers.json. When both
 * of the last two exist, it is refused: which one was meant cannot be guessed.
 */
export function locateConfig(
  flag: string | undefined,
  env: Record<string, string | undefined>,
  cwd: string,
  exists: (path: string) => boolean = existsSync,
): ConfigLocation {
  if (flag) return { path: resolve(cwd, flag), via: "--config" };
  const inline = env.MCP_SERVERS_CONFIG;
  if (inline !== undefined && inline.trim() !== "")
    return { path: "MCP_SERVERS_CONFIG", inline, via: "MCP_SERVERS_CONFIG" };
  if (env.MCP_CONFIG_PATH?.trim()) return { path: resolve(cwd, env.MCP_CONFIG_PATH.trim()), via: "MCP_CONFIG_PATH" };
  if (env.MCP_CONFIG_DIR?.trim()) {
    return { path: resolve(cwd, env.MCP_CONFIG_DIR.trim(), "servers.json"), via: "MCP_CONFIG_DIR" };
  }
  if (envModeRequested(env)) return { path: ENV_MODE_SOURCE, fromEnv: true, via: "OIDC_ISSUER_URL (env-only mode)" };
  const local = resolve(cwd, "servers.json");
  const dir = mcpServeConfigDir(env);
  const home = dir ? resolve(cwd, dir, "servers.json") : undefined;
  if (home && home !== local && exists(home)) {
    if (exists(local)) {
      throw new ConfigError(home, [
        {
          path: "",
          message:
            `two configurations found: ${home} (where mcp serve looks) and ${local} (the working directory); ` +
            "say which one with --config PATH or MCP_CONFIG_PATH",
        },
      ]);
    }
    return { path: home, via: "~/.config/mcp/servers.json (mcp serve's default)" };
  }
  return { path: local, via: "./servers.json", ...(home && home !== local ? { lookedAt: [home] } : {}) };
}

export async function loadConfig(
  location: ConfigLocation,
  env: Record<string, string | undefined>,
  readText: (path: string) => Promise<string>,
  cwd: string,
): Promise<Config> {
  const found = (config: Config): Config => Object.assign(config, { via: location.via });
  if (location.inline !== undefined) {
    return found(parseConfig(location.inline, { source: location.path, dir: cwd, env }));
  }
  if (location.fromEnv) {
    const p = new Problems();
    // Without OIDC_ISSUER_URL, ~/.config/mcp/servers.json or ./servers.json would have been read (the container
    // image's working directory is /etc/gatehouse): with one of them there, which was meant cannot be told.
    const dir = mcpServeConfigDir(env);
    for (const file of new Set([...(dir ? [resolve(cwd, dir, "servers.json")] : []), resolve(cwd, "servers.json")])) {
      const there = await readText(file).then(
        () => true,
        () => false,
      );
      if (!there) continue;
      p.push({
        path: "OIDC_ISSUER_URL",
        message:
          `is set, which starts env-only mode (mcp-oauth-proxy's variables), but ${file} exists too: to use the ` +
          `file set MCP_CONFIG_PATH=${file} (or pass --config), to use the variables remove or move the file`,
      });
    }
    const built = envModeConfig(env, p);
    p.throwIfAny(location.path);
    return found(parseConfig(JSON.stringify(built), { source: location.path, dir: cwd, env }));
  }
  let text: string;
  try {
    text = await readText(location.path);
  } catch (e) {
    const code = (e as { code?: string }).code;
    const why = code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : (e as Error).message;
    const also = location.lookedAt?.length ? `, nor at ${location.lookedAt.join(", ")}` : "";
    throw new ConfigError(location.path, [
      {
        path: "",
        message: `cannot read the configuration (${why})${also} — looked for it through ${location.via}; pass --config PATH or set MCP_CONFIG_PATH`,
      },
    ]);
  }
  return found(parseConfig(text, { source: location.path, dir: dirname(location.path), env }));
}
