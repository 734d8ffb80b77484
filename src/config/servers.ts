// The `mcpServers` section: each server is stdio (`command`), HTTP (`url`), or a process Gatehouse starts and then
// reaches over HTTP (`command` + `port`); its idle policy, tool classification, timeouts, identity forwarding and
// route policy. The transport is named by the keys present, as in `mcp serve`, so an entry with none of them is
// first checked for a misspelled key.

import { resolve } from "node:path";
import { serverNameProblem } from "../naming.ts";
import { DEFAULTS } from "./defaults.ts";
import { parseDuration } from "./duration.ts";
import { found, foundUrl, joinPath, type Problems, unknownKeyMessage } from "./problems.ts";
import { routePolicy } from "./routes.ts";
import {
  HttpServer,
  type HttpServerInput,
  SpawnedHttpServer,
  type SpawnedHttpServerInput,
  StdioServer,
  type StdioServerInput,
} from "./schema.ts";
import type { BackendConfig, IdlePolicy } from "./types.ts";

type ServerInput = StdioServerInput | HttpServerInput | SpawnedHttpServerInput;

/** Every key any kind of server may have, for "did you mean". */
const ALL_KEYS = [
  ...new Set([
    ...Object.keys(StdioServer.properties),
    ...Object.keys(HttpServer.properties),
    ...Object.keys(SpawnedHttpServer.properties),
  ]),
];

function idlePolicy(s: ServerInput, path: string, p: Problems): IdlePolicy {
  const minMs = p.duration(s.min_idle_timeout, `${path}.min_idle_timeout`, DEFAULTS.server.minIdleMs);
  const maxMs = p.duration(s.max_idle_timeout, `${path}.max_idle_timeout`, DEFAULTS.server.maxIdleMs);
  if (minMs > maxMs) p.add(`${path}.min_idle_timeout`, "must not be larger than max_idle_timeout");
  const idle = s.idle_timeout ?? "adaptive";
  if (idle === "adaptive") return { kind: "adaptive", minMs, maxMs };
  if (idle === "never") return { kind: "never" };
  const ms = parseDuration(idle);
  if (ms === null || ms === 0) {
    p.add(`${path}.idle_timeout`, `found ${found(idle)}, expected "adaptive", "never" or a duration such as "2m"`);
    return { kind: "adaptive", minMs, maxMs };
  }
  return { kind: "fixed", ms };
}

function toolAcl(s: ServerInput, path: string, p: Problems) {
  const read = s.tool_acl?.read ?? [];
  const write = s.tool_acl?.write ?? [];
  for (const pattern of read) {
    if (write.includes(pattern))
      p.add(`${path}.tool_acl`, `pattern ${found(pattern)} appears in both "read" and "write"`);
  }
  return { read, write };
}

function seconds(env: Record<string, string | undefined>, name: string, fallback: number): number {
  const n = env[name] ? Number(env[name]) : Number.NaN;
  return Number.isFinite(n) && n > 0 ? n * 1000 : fallback;
}

function forwardIdentity(s: HttpServerInput, path: string, p: Problems): BackendConfig["forwardIdentity"] {
  const fi = s.forward_identity;
  if (!fi) return undefined;
  const header = fi.header ?? DEFAULTS.server.forwardIdentityHeader;
  const rolesHeader = fi.roles_header;
  const token = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
  for (const [k, v] of [
    ["header", header],
    ["roles_header", rolesHeader],
  ] as const) {
    if (v !== undefined && !token.test(v))
      p.add(`${path}.forward_identity.${k}`, `found ${found(v)}, expected an HTTP header name`);
  }
  if (rolesHeader && rolesHeader.toLowerCase() === header.toLowerCase()) {
    p.add(`${path}.forward_identity.roles_header`, "must differ from forward_identity.header");
  }
  const configured = Object.keys(s.headers ?? {}).map((h) => h.toLowerCase());
  for (const h of [header, rolesHeader]) {
    if (h && configured.includes(h.toLowerCase()))
      p.add(`${path}.forward_identity`, `header ${found(h)} is also set in "headers"`);
  }
  return rolesHeader ? { header, rolesHeader } : { header };
}

function server(
  name: string,
  raw: unknown,
  dir: string,
  env: Record<string, string | undefined>,
  p: Problems,
): BackendConfig | undefined {
  const path = joinPath("mcpServers", name);
  const nameProblem = serverNameProblem(name);
  if (nameProblem) p.add(path, nameProblem);
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) {
    p.add(path, `found ${found(raw)}, expected an object with "command" (stdio) or "url" (HTTP)`);
    return undefined;
  }
  const entry = raw as Record<string, unknown>;
  if ("cli" in entry) {
    p.add(
      `${path}.cli`,
      "CLI-wrapping servers of `mcp serve` are not supported by Gatehouse; run the tool as an MCP server instead",
    );
    return undefined;
  }
  if ("command" in entry && "url" in entry) {
    p.add(path, 'has both "command" and "url": a server is either stdio (command) or HTTP (url)');
    return undefined;
  }
  const common = (s: ServerInput) => ({
    name,
    route: routePolicy(s.route),
    toolAcl: toolAcl(s, path, p),
    idle: idlePolicy(s, path, p),
    requestTimeoutMs: p.duration(
      s.timeout,
      `${path}.timeout`,
      seconds(env, "MCP_PROXY_REQUEST_TIMEOUT", DEFAULTS.server.requestTimeoutMs),
    ),
    startupTimeoutMs: p.duration(
      s.startup_timeout,
      `${path}.startup_timeout`,
      seconds(env, "MCP_TIMEOUT", DEFAULTS.server.startupTimeoutMs),
    ),
  });
  if ("command" in entry && "port" in entry) {
    if (!p.check(SpawnedHttpServer, entry, path)) return undefined;
    const s = entry as SpawnedHttpServerInput;
    const transport: BackendConfig["transport"] = {
      kind: "spawned-http",
      command: s.command,
      args: s.args ?? [],
      env: s.env ?? {},
      port: s.port,
      path: s.path ?? DEFAULTS.server.spawnedPath,
      headers: s.headers ?? {},
    };
    if (s.cwd !== undefined) transport.cwd = resolve(dir, s.cwd);
    return { ...common(s), transport };
  }
  if ("command" in entry) {
    if (!p.check(StdioServer, entry, path)) return undefined;
    const s = entry as StdioServerInput;
    const transport: BackendConfig["transport"] = {
      kind: "stdio",
      command: s.command,
      args: s.args ?? [],
      env: s.env ?? {},
    };
    if (s.cwd !== undefined) transport.cwd = resolve(dir, s.cwd);
    return { ...common(s), transport };
  }
  if ("url" in entry) {
    if (!p.check(HttpServer, entry, path)) return undefined;
    const s = entry as HttpServerInput;
    let url: URL | undefined;
    try {
      url = new URL(s.url);
    } catch {
      // reported below
    }
    if (!url || (url.protocol !== "http:" && url.protocol !== "https:")) {
      p.add(`${path}.url`, `found ${foundUrl(s.url)}, expected an http:// or https:// URL`);
      return undefined;
    }
    const b: BackendConfig = {
      ...common(s),
      transport: { kind: "http", url: url.href, headers: s.headers ?? {}, mode: s.type === "sse" ? "sse" : "auto" },
    };
    const fi = forwardIdentity(s, path, p);
    if (fi) b.forwardIdentity = fi;
    return b;
  }
  // Neither command nor url: most often a misspelling of one of them, which is named.
  for (const key of Object.keys(entry)) {
    if (!ALL_KEYS.includes(key)) p.add(joinPath(path, key), unknownKeyMessage(key, ALL_KEYS));
  }
  p.add(path, 'needs "command" (a stdio server) or "url" (an HTTP server)');
  return undefined;
}

export function serversSection(
  raw: unknown,
  dir: string,
  env: Record<string, string | undefined>,
  p: Problems,
): BackendConfig[] {
  const out: BackendConfig[] = [];
  // mcp serve boots with no servers (avelino/mcp src/config.rs: an absent mcpServers is an empty map): so does
  // Gatehouse, saying so.
  if (raw === undefined || (raw && typeof raw === "object" && !Array.isArray(raw) && Object.keys(raw).length === 0)) {
    p.warn("mcpServers", `${raw === undefined ? "is absent" : "is empty"}: no server is served (tools/list is empty)`);
    return out;
  }
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) return out;
  for (const [name, entry] of Object.entries(raw)) {
    const b = server(name, entry, dir, env, p);
    if (b) out.push(b);
  }
  return out;
}
