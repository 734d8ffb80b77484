// Loads servers.json: comments stripped, `${VAR}` substituted, every part validated against schema.ts, then the
// rules a schema cannot express. All problems are collected and reported together, each with its JSON path, what
// was found and what was expected; nothing starts unless the list is empty.

import { dirname, resolve } from "node:path";
import type { TSchema } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import type { ProviderKind } from "../auth/identity.ts";
import { sha256Hex } from "../crypto.ts";
import { type Cidr, parseCidr } from "../net/cidr.ts";
import { DEFAULT_REDIRECT_ALLOWLIST } from "../oauth/redirect-uri.ts";
import type { AclConfig, Grant } from "../policy/acl.ts";
import { parseDuration } from "./duration.ts";
import { joinPath, substituteEnv } from "./env.ts";
import { ENV_MODE_SOURCE, envModeConfig, envModeRequested } from "./env-mode.ts";
import { introspectionConfig, jwtConfig } from "./external.ts";
import { describeJsonError, stripJsonComments } from "./jsonc.ts";
import { allowRulesProblems, loadLogins } from "./logins.ts";
import { publicUrlProblems, routePolicy, routeProblems, trustedProxies } from "./routes.ts";
import {
  BearerToken,
  Forwarded,
  type ForwardedInput,
  type GrantInput,
  HttpServer,
  type HttpServerInput,
  Introspection,
  type IntrospectionInput,
  Jwt,
  type JwtInput,
  LegacyAcl,
  type LegacyAclInput,
  OAuthAs,
  type OAuthAsInput,
  RoleAcl,
  type RoleAclInput,
  type RoutePolicyInput,
  ServerAuth,
  type ServerAuthInput,
  ServersFile,
  SpawnedHttpServer,
  type SpawnedHttpServerInput,
  State,
  StdioServer,
  type StdioServerInput,
} from "./schema.ts";
import { type StateInput, stateSection } from "./state.ts";
import {
  type AuditConfig,
  type AuthConfig,
  type BackendConfig,
  type BearerEntry,
  type Config,
  DEFAULT_ALLOWED_ORIGINS,
  DEFAULTS,
  type GatewayConfig,
  type IdlePolicy,
  type OAuthAsConfig,
} from "./types.ts";

export interface ConfigProblem {
  path: string;
  message: string;
}

export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly problems: ConfigProblem[],
  ) {
    super(`${source}: ${problems.length} problem${problems.length === 1 ? "" : "s"}`);
    this.name = "ConfigError";
  }

  /** One line per problem, as `gatehouse check` prints them. */
  format(): string {
    return this.problems.map((p) => `${this.source}: ${p.path || "(root)"}: ${p.message}`).join("\n");
  }
}

const PROVIDERS: readonly ProviderKind[] = ["none", "bearer", "forwarded", "oauth_as", "jwt", "introspection"];

/** A short rendering of a bad value for error messages (never the whole object). */
function found(value: unknown): string {
  if (value === undefined) return "nothing";
  const s = JSON.stringify(value);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function pointerToPath(base: string, pointer: string): string {
  let path = base;
  for (const raw of pointer.split("/").slice(1)) {
    const key = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    path = /^\d+$/.test(key) ? `${path}[${key}]` : joinPath(path, key);
  }
  return path;
}

function expected(schema: TSchema, fallback: string): string {
  if (typeof schema.description === "string") return schema.description;
  if (schema.const !== undefined) return JSON.stringify(schema.const);
  return fallback.replace(/^Expected /, "").replace(/^Unexpected property$/, "");
}

/** Runs a TypeBox schema and turns its errors into problems; returns true when the value is valid. */
function check(schema: TSchema, value: unknown, base: string, problems: ConfigProblem[]): boolean {
  let ok = true;
  const seen = new Set<string>();
  for (const e of Value.Errors(schema, value)) {
    ok = false;
    const path = pointerToPath(base, e.path);
    if (seen.has(path)) continue; // one problem per location is enough
    seen.add(path);
    if (e.message === "Unexpected property") {
      problems.push({ path, message: "unknown key (check its spelling; unknown keys are not ignored)" });
    } else if (e.message.startsWith("Expected required property")) {
      problems.push({ path, message: "is required but missing" });
    } else {
      problems.push({ path, message: `found ${found(e.value)}, expected ${expected(e.schema, e.message)}` });
    }
  }
  return ok;
}

function duration(value: string | number | undefined, path: string, fallback: number, problems: ConfigProblem[]) {
  if (value === undefined) return fallback;
  const ms = parseDuration(value);
  if (ms === null) {
    problems.push({ path, message: `found ${found(value)}, expected a duration such as "30s", "5m" or "1h"` });
    return fallback;
  }
  return ms;
}

function cidrs(list: string[] | undefined, path: string, problems: ConfigProblem[]): Cidr[] | undefined {
  if (!list) return undefined;
  const out: Cidr[] = [];
  for (const [i, text] of list.entries()) {
    const c = parseCidr(text.trim());
    if (c) out.push(c);
    else
      problems.push({ path: `${path}[${i}]`, message: `found ${found(text)}, expected a CIDR such as "10.0.0.0/8"` });
  }
  return out;
}

// --- mcpServers --------------------------------------------------------------------------------------------------

function idlePolicy(
  s: StdioServerInput | HttpServerInput | SpawnedHttpServerInput,
  path: string,
  problems: ConfigProblem[],
): IdlePolicy {
  const minMs = duration(s.min_idle_timeout, `${path}.min_idle_timeout`, DEFAULTS.minIdleMs, problems);
  const maxMs = duration(s.max_idle_timeout, `${path}.max_idle_timeout`, DEFAULTS.maxIdleMs, problems);
  if (minMs > maxMs) {
    problems.push({ path: `${path}.min_idle_timeout`, message: "must not be larger than max_idle_timeout" });
  }
  const idle = s.idle_timeout ?? "adaptive";
  if (idle === "adaptive") return { kind: "adaptive", minMs, maxMs };
  if (idle === "never") return { kind: "never" };
  const ms = parseDuration(idle);
  if (ms === null || ms === 0) {
    problems.push({
      path: `${path}.idle_timeout`,
      message: `found ${found(idle)}, expected "adaptive", "never" or a duration such as "2m"`,
    });
    return { kind: "adaptive", minMs, maxMs };
  }
  return { kind: "fixed", ms };
}

function toolAcl(
  s: StdioServerInput | HttpServerInput | SpawnedHttpServerInput,
  path: string,
  problems: ConfigProblem[],
) {
  const read = s.tool_acl?.read ?? [];
  const write = s.tool_acl?.write ?? [];
  for (const p of read) {
    if (write.includes(p)) {
      problems.push({ path: `${path}.tool_acl`, message: `pattern ${found(p)} appears in both "read" and "write"` });
    }
  }
  return { read, write };
}

function backend(
  name: string,
  raw: unknown,
  dir: string,
  env: Record<string, string | undefined>,
  problems: ConfigProblem[],
): BackendConfig | undefined {
  const path = joinPath("mcpServers", name);
  if (name.includes("__")) {
    problems.push({ path, message: 'server names must not contain "__": it separates server and tool names' });
  } else if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) {
    problems.push({
      path,
      message: "server names may use letters, digits, '.', '_' and '-' (starting with a letter or digit)",
    });
  }
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) {
    problems.push({ path, message: `found ${found(raw)}, expected an object with "command" (stdio) or "url" (HTTP)` });
    return undefined;
  }
  const entry = raw as Record<string, unknown>;
  if ("cli" in entry) {
    problems.push({
      path: `${path}.cli`,
      message:
        "CLI-wrapping servers of `mcp serve` are not supported by Gatehouse; run the tool as an MCP server instead",
    });
    return undefined;
  }
  if ("command" in entry && "url" in entry) {
    problems.push({ path, message: 'has both "command" and "url": a server is either stdio (command) or HTTP (url)' });
    return undefined;
  }
  const common = (s: StdioServerInput | HttpServerInput | SpawnedHttpServerInput) => ({
    name,
    route: routePolicy(s.route),
    toolAcl: toolAcl(s, path, problems),
    idle: idlePolicy(s, path, problems),
    requestTimeoutMs: duration(s.timeout, `${path}.timeout`, requestTimeoutDefault(env), problems),
    startupTimeoutMs: duration(s.startup_timeout, `${path}.startup_timeout`, startupTimeoutDefault(env), problems),
  });
  if ("command" in entry && "port" in entry) {
    if (!check(SpawnedHttpServer, entry, path, problems)) return undefined;
    const s = entry as SpawnedHttpServerInput;
    const transport: BackendConfig["transport"] = {
      kind: "spawned-http",
      command: s.command,
      args: s.args ?? [],
      env: s.env ?? {},
      port: s.port,
      path: s.path ?? "/mcp",
      headers: s.headers ?? {},
    };
    if (s.cwd !== undefined) transport.cwd = resolve(dir, s.cwd);
    return { ...common(s), transport };
  }
  if ("command" in entry) {
    if (!check(StdioServer, entry, path, problems)) return undefined;
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
    if (!check(HttpServer, entry, path, problems)) return undefined;
    const s = entry as HttpServerInput;
    let url: URL | undefined;
    try {
      url = new URL(s.url);
    } catch {
      // reported below
    }
    if (!url || (url.protocol !== "http:" && url.protocol !== "https:")) {
      problems.push({ path: `${path}.url`, message: `found ${found(s.url)}, expected an http:// or https:// URL` });
      return undefined;
    }
    const b: BackendConfig = {
      ...common(s),
      transport: { kind: "http", url: url.href, headers: s.headers ?? {}, mode: s.type === "sse" ? "sse" : "auto" },
    };
    if (s.forward_identity) {
      const header = s.forward_identity.header ?? "X-MCP-Subject";
      const rolesHeader = s.forward_identity.roles_header;
      const token = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
      for (const [k, v] of [
        ["header", header],
        ["roles_header", rolesHeader],
      ] as const) {
        if (v !== undefined && !token.test(v)) {
          problems.push({
            path: `${path}.forward_identity.${k}`,
            message: `found ${found(v)}, expected an HTTP header name`,
          });
        }
      }
      const lower = Object.keys(s.headers ?? {}).map((h) => h.toLowerCase());
      if (rolesHeader && rolesHeader.toLowerCase() === header.toLowerCase()) {
        problems.push({
          path: `${path}.forward_identity.roles_header`,
          message: "must differ from forward_identity.header",
        });
      }
      for (const h of [header, rolesHeader]) {
        if (h && lower.includes(h.toLowerCase())) {
          problems.push({ path: `${path}.forward_identity`, message: `header ${found(h)} is also set in "headers"` });
        }
      }
      b.forwardIdentity = rolesHeader ? { header, rolesHeader } : { header };
    }
    return b;
  }
  problems.push({ path, message: 'needs "command" (a stdio server) or "url" (an HTTP server)' });
  return undefined;
}

function requestTimeoutDefault(env: Record<string, string | undefined>): number {
  const v = env.MCP_PROXY_REQUEST_TIMEOUT;
  const n = v ? Number(v) : Number.NaN;
  return Number.isFinite(n) && n > 0 ? n * 1000 : DEFAULTS.requestTimeoutMs;
}

function startupTimeoutDefault(env: Record<string, string | undefined>): number {
  const v = env.MCP_TIMEOUT;
  const n = v ? Number(v) : Number.NaN;
  return Number.isFinite(n) && n > 0 ? n * 1000 : DEFAULTS.startupTimeoutMs;
}

// --- serverAuth ----------------------------------------------------------------------------------------------------

const SHA256_KEY = /^sha256:([0-9a-fA-F]{64})$/;

function grants(list: GrantInput[], path: string, problems: ConfigProblem[]): Grant[] {
  return list.map((g, i) => {
    const servers = typeof g.server === "string" ? [g.server] : g.server;
    if (servers.length === 0) problems.push({ path: `${path}[${i}].server`, message: "must name at least one server" });
    return {
      server: servers,
      access: g.access,
      tools: g.tools ?? [],
      resources: g.resources ?? [],
      prompts: g.prompts ?? [],
      deny: g.deny ?? false,
    };
  });
}

function acl(raw: unknown, problems: ConfigProblem[]): AclConfig | undefined {
  const path = "serverAuth.acl";
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) {
    problems.push({ path, message: `found ${found(raw)}, expected an object` });
    return undefined;
  }
  const a = raw as Record<string, unknown>;
  const roleShape = "roles" in a || "subjects" in a;
  if ("rules" in a && roleShape) {
    problems.push({
      path,
      message: 'cannot have both "rules" (legacy shape) and "roles"/"subjects" (role-based shape): keep one of the two',
    });
    return undefined;
  }
  if (!roleShape) {
    if (!check(LegacyAcl, a, path, problems)) return undefined;
    const l = a as LegacyAclInput;
    return {
      kind: "legacy",
      default: l.default ?? "allow",
      rules: (l.rules ?? []).map((r) => ({
        subjects: r.subjects ?? [],
        roles: r.roles ?? [],
        tools: r.tools,
        policy: r.policy,
      })),
    };
  }
  if (!check(RoleAcl, a, path, problems)) return undefined;
  const r = a as RoleAclInput;
  const roles: Record<string, Grant[]> = {};
  for (const [name, list] of Object.entries(r.roles ?? {}))
    roles[name] = grants(list, joinPath(`${path}.roles`, name), problems);
  const subjects: Record<string, { roles: string[]; extra: Grant[] }> = {};
  for (const [name, s] of Object.entries(r.subjects ?? {})) {
    const sp = joinPath(`${path}.subjects`, name);
    for (const [i, role] of (s.roles ?? []).entries()) {
      if (!Object.hasOwn(roles, role)) {
        problems.push({ path: `${sp}.roles[${i}]`, message: `subject '${name}' references unknown role '${role}'` });
      }
    }
    subjects[name] = { roles: s.roles ?? [], extra: grants(s.extra ?? [], `${sp}.extra`, problems) };
  }
  return { kind: "roles", default: r.default ?? "allow", strict: r.strictClassification ?? false, roles, subjects };
}

function redirectPatterns(list: string[], path: string, problems: ConfigProblem[]): string[] {
  for (const [i, p] of list.entries()) {
    const star = p.indexOf("*");
    if (star >= 0 && star !== p.length - 1) {
      problems.push({
        path: `${path}[${i}]`,
        message: `found ${found(p)}: only a trailing "*" is allowed (it matches any suffix)`,
      });
      continue;
    }
    const prefix = star >= 0 ? p.slice(0, -1) : p;
    if (!/^[A-Za-z][A-Za-z0-9+.-]*:/.test(prefix)) {
      problems.push({
        path: `${path}[${i}]`,
        message: `found ${found(p)}, expected a URL (https://…, http://127.0.0.1…, or app-scheme://…)`,
      });
    }
  }
  return list;
}

function oauthAs(o: OAuthAsInput, problems: ConfigProblem[]): OAuthAsConfig {
  const path = "serverAuth.oauthAs";
  let issuer: URL | undefined;
  try {
    issuer = new URL(o.issuerUrl);
  } catch {
    // reported below
  }
  if (!issuer || (issuer.protocol !== "https:" && issuer.protocol !== "http:")) {
    problems.push({ path: `${path}.issuerUrl`, message: `found ${found(o.issuerUrl)}, expected an https:// URL` });
  } else if (issuer.search || issuer.hash) {
    problems.push({ path: `${path}.issuerUrl`, message: "must not have a query or fragment (RFC 8414 §2)" });
  }
  if (o.jwtSecret !== undefined && new TextEncoder().encode(o.jwtSecret).length < 32) {
    problems.push({
      path: `${path}.jwtSecret`,
      message: `must be at least 32 bytes (got ${new TextEncoder().encode(o.jwtSecret).length}); or remove it to sign with generated ES256 keys`,
    });
  }
  const trusted = cidrs(o.trustedSourceCidrs, `${path}.trustedSourceCidrs`, problems) ?? [];
  const logins = loadLogins(o.logins, `${path}.logins`, problems, check);
  if ((o.trustedSourceCidrs ?? []).length === 0 && logins.length === 0) {
    problems.push({
      path: `${path}.trustedSourceCidrs`,
      message:
        "must list at least one CIDR (the reverse proxy /authorize trusts for the user header), or configure oauthAs.logins",
    });
  }
  if (o.allow) allowRulesProblems(o.allow, `${path}.allow`, problems);
  for (const key of ["sessionSecret", "upstreamTokenKey"] as const) {
    const v = o[key];
    if (v !== undefined && new TextEncoder().encode(v).length < 32) {
      problems.push({
        path: `${path}.${key}`,
        message: `must be at least 32 bytes (got ${new TextEncoder().encode(v).length})`,
      });
    }
  }
  for (const [i, l] of logins.entries()) {
    if (l.keepUpstreamTokens && !o.upstreamTokenKey) {
      problems.push({
        path: `${path}.logins[${i}].keepUpstreamTokens`,
        message: "needs oauthAs.upstreamTokenKey to encrypt the tokens it keeps",
      });
    }
  }
  for (const key of ["scopesSupported", "injectedRoles"] as const) {
    for (const [i, v] of (o[key] ?? []).entries()) {
      if (v.trim() === "") problems.push({ path: `${path}.${key}[${i}]`, message: "must not be empty" });
    }
  }
  const issuerUrl = issuer ? o.issuerUrl.replace(/\/+$/, "") : o.issuerUrl;
  const scopesSupported = o.scopesSupported && o.scopesSupported.length > 0 ? o.scopesSupported : ["mcp"];
  const requiredScopes = o.requiredScopes ?? scopesSupported.filter((x) => x !== "offline_access");
  for (const [i, sc] of requiredScopes.entries()) {
    if (!scopesSupported.includes(sc)) {
      problems.push({ path: `${path}.requiredScopes[${i}]`, message: `${found(sc)} is not in scopesSupported` });
    }
  }
  const resourceUrl = o.resourceUrl ?? `${issuerUrl}/mcp`;
  try {
    const r = new URL(resourceUrl);
    if (r.hash || (r.protocol !== "https:" && r.protocol !== "http:")) throw new Error();
  } catch {
    problems.push({
      path: `${path}.resourceUrl`,
      message: `found ${found(resourceUrl)}, expected the https:// URL of /mcp`,
    });
  }
  const introspectionClients: OAuthAsConfig["introspectionClients"] = [];
  for (const [id, secret] of Object.entries(o.introspectionClients ?? {})) {
    const hashed = SHA256_KEY.exec(secret);
    if (!hashed && secret.length < 16) {
      problems.push({
        path: joinPath(`${path}.introspectionClients`, id),
        message: "the secret must have at least 16 characters (or be sha256:<hex>)",
      });
    }
    introspectionClients.push({
      clientId: id,
      secretSha256: hashed ? (hashed[1] as string).toLowerCase() : sha256Hex(secret),
    });
  }
  const result: OAuthAsConfig = {
    issuerUrl,
    trustedUserHeader: (o.trustedUserHeader ?? "x-forwarded-user").toLowerCase(),
    trustedGroupsHeader: (o.trustedGroupsHeader ?? "x-forwarded-groups").toLowerCase(),
    trustedEmailHeader: (o.trustedEmailHeader ?? "x-forwarded-email").toLowerCase(),
    trustedSourceCidrs: trusted,
    accessTokenTtlSeconds: o.accessTokenTtlSeconds ?? 3600,
    refreshTokenTtlSeconds: o.refreshTokenTtlSeconds ?? 2_592_000,
    authorizationCodeTtlSeconds: o.authorizationCodeTtlSeconds ?? 60,
    scopesSupported,
    redirectUriAllowlist: redirectPatterns(
      o.redirectUriAllowlist ?? DEFAULT_REDIRECT_ALLOWLIST,
      `${path}.redirectUriAllowlist`,
      problems,
    ),
    injectedRoles: o.injectedRoles ?? [],
    resourceUrl: resourceUrl.replace(/\/+$/, ""),
    requiredScopes,
    consentSkipClients: o.consentSkipClients ?? [],
    refreshReuseGraceSeconds: o.refreshReuseGraceSeconds ?? 30,
    signingKeyRotationDays: o.signingKeyRotationDays ?? 30,
    introspectionClients,
    registrationEnabled: o.registrationEnabled ?? true,
    cimd: {
      enabled: o.clientIdMetadataDocuments?.enabled ?? true,
      allowPrivateNetwork: o.clientIdMetadataDocuments?.allowPrivateNetwork ?? false,
      timeoutMs: o.clientIdMetadataDocuments?.timeoutMs ?? 3000,
    },
    logins,
    trustedHeaderLogin: trusted.length > 0,
    sessionLifetimeMs: duration(o.sessionLifetime, `${path}.sessionLifetime`, 12 * 3_600_000, problems),
  };
  if (o.allow) result.allow = o.allow;
  if (o.sessionSecret) result.sessionSecret = o.sessionSecret;
  if (o.upstreamTokenKey) result.upstreamTokenKey = o.upstreamTokenKey;
  if (o.jwtSecret !== undefined) result.jwtSecret = o.jwtSecret;
  return result;
}

/**
 * Bearer tokens are keys of `tokens`; problem paths never show a clear-text token (only its position), since
 * `gatehouse check` output ends up in CI logs and tickets.
 */
function bearerTokens(raw: unknown, path: string, problems: ConfigProblem[]): BearerEntry[] {
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) {
    problems.push({ path, message: `found ${found(raw)}, expected an object with "tokens"` });
    return [];
  }
  const { tokens, ...rest } = raw as Record<string, unknown>;
  for (const key of Object.keys(rest))
    problems.push({
      path: joinPath(path, key),
      message: "unknown key (check its spelling; unknown keys are not ignored)",
    });
  if (!tokens || typeof tokens !== "object" || Array.isArray(tokens)) {
    problems.push({ path: `${path}.tokens`, message: `found ${found(tokens)}, expected an object of token → subject` });
    return [];
  }
  const out: BearerEntry[] = [];
  for (const [i, [key, value]] of Object.entries(tokens).entries()) {
    const tp = key.startsWith("sha256:") ? joinPath(`${path}.tokens`, key) : `${path}.tokens[token #${i + 1}]`;
    if (!check(BearerToken, value, tp, problems)) continue;
    if (key.trim() === "") {
      problems.push({ path: tp, message: "a token must not be empty" });
      continue;
    }
    const hashed = SHA256_KEY.exec(key);
    if (key.startsWith("sha256:") && !hashed) {
      problems.push({ path: tp, message: 'expected "sha256:" followed by 64 hex digits (see `gatehouse hash-token`)' });
      continue;
    }
    const v = value as string | { subject: string; roles?: string[] };
    const subject = typeof v === "string" ? v : v.subject;
    if (subject.trim() === "") problems.push({ path: tp, message: "the subject must not be empty" });
    out.push({
      sha256: hashed ? (hashed[1] as string).toLowerCase() : sha256Hex(key),
      subject,
      roles: typeof v === "string" ? [] : (v.roles ?? []),
    });
  }
  return out;
}

function serverAuth(raw: unknown, problems: ConfigProblem[]): AuthConfig {
  const auth: AuthConfig = { providers: [], toolScopes: {} };
  if (raw === undefined) return auth;
  const path = "serverAuth";
  if (raw && typeof raw === "object" && !Array.isArray(raw) && "provider" in raw) {
    const legacy = (raw as Record<string, unknown>).provider;
    const hint = typeof legacy === "string" ? `"providers": [${JSON.stringify(legacy)}]` : '"providers": ["bearer"]';
    problems.push({
      path: `${path}.provider`,
      message: `the single "provider" string is no longer supported (it would boot without authentication); write ${hint} instead`,
    });
    const { provider: _ignored, ...rest } = raw as Record<string, unknown>;
    raw = rest;
  }
  if (!check(ServerAuth, raw, path, problems)) return auth;
  const s = raw as ServerAuthInput;

  for (const [i, p] of (s.providers ?? []).entries()) {
    if (!PROVIDERS.includes(p as ProviderKind)) {
      problems.push({
        path: `${path}.providers[${i}]`,
        message: `unknown auth provider ${found(p)}, expected one of ${PROVIDERS.map((x) => `"${x}"`).join(", ")}`,
      });
      continue;
    }
    auth.providers.push(p as ProviderKind);
  }
  const blockFor: Record<
    Exclude<ProviderKind, "none">,
    "bearer" | "forwarded" | "oauthAs" | "jwt" | "introspection"
  > = {
    bearer: "bearer",
    forwarded: "forwarded",
    oauth_as: "oauthAs",
    jwt: "jwt",
    introspection: "introspection",
  };
  for (const p of new Set(auth.providers)) {
    if (p === "none") continue;
    const block = blockFor[p];
    if (s[block] === undefined) {
      problems.push({ path: `${path}.${block}`, message: `is required because "providers" lists "${p}"` });
    }
  }

  if (s.bearer !== undefined) auth.bearer = { tokens: bearerTokens(s.bearer, `${path}.bearer`, problems) };

  if (s.forwarded !== undefined && check(Forwarded, s.forwarded, `${path}.forwarded`, problems)) {
    const f = s.forwarded as ForwardedInput;
    auth.forwarded = {
      header: (f.header ?? "x-forwarded-user").toLowerCase(),
      groupsHeader: (f.groups_header ?? "x-forwarded-groups").toLowerCase(),
    };
    const trusted = cidrs(f.trustedSourceCidrs, `${path}.forwarded.trustedSourceCidrs`, problems);
    if (trusted) auth.forwarded.trustedSourceCidrs = trusted;
  }

  if (s.oauthAs !== undefined && check(OAuthAs, s.oauthAs, `${path}.oauthAs`, problems)) {
    auth.oauthAs = oauthAs(s.oauthAs as OAuthAsInput, problems);
  }
  if (s.jwt !== undefined && check(Jwt, s.jwt, `${path}.jwt`, problems)) {
    auth.jwt = jwtConfig(s.jwt as JwtInput, `${path}.jwt`, problems, check);
  }
  if (s.introspection !== undefined && check(Introspection, s.introspection, `${path}.introspection`, problems)) {
    auth.introspection = introspectionConfig(
      s.introspection as IntrospectionInput,
      `${path}.introspection`,
      problems,
      check,
    );
  }
  auth.toolScopes = s.toolScopes ?? {};
  if (s.acl !== undefined) {
    const a = acl(s.acl, problems);
    if (a) auth.acl = a;
  }
  return auth;
}

// --- top level -----------------------------------------------------------------------------------------------------

function audit(
  input: Record<string, unknown> | undefined,
  dir: string,
  env: Record<string, string | undefined>,
): AuditConfig {
  const a = (input ?? {}) as { enabled?: boolean; log_arguments?: boolean; output?: string; path?: string };
  let enabled = a.enabled ?? true;
  const envEnabled = env.MCP_AUDIT_ENABLED?.trim().toLowerCase();
  if (envEnabled === "false" || envEnabled === "0") enabled = false;
  if (envEnabled === "true" || envEnabled === "1") enabled = true;
  const output = env.MCP_AUDIT_OUTPUT?.trim() || a.output || "stderr";
  const path = env.MCP_AUDIT_PATH?.trim() || a.path;
  const result: AuditConfig = {
    enabled: enabled && output !== "none",
    logArguments: a.log_arguments ?? false,
    toLog: output === "stderr" || output === "stdout" || output.endsWith("+stdout") || output.endsWith("+stderr"),
  };
  if (output.startsWith("file") && path) result.file = resolve(dir, path);
  if (output.startsWith("file") && !path) result.toLog = true; // no file configured: keep the records visible
  return result;
}

function gateway(g: Record<string, unknown> | undefined, problems: ConfigProblem[]): GatewayConfig {
  const x = (g ?? {}) as {
    maxBodyBytes?: number;
    allowedOrigins?: string[];
    sessionIdleTimeout?: string | number;
    maxSessions?: number;
    eventBufferSize?: number;
    sseKeepalive?: string | number;
    shutdownGrace?: string | number;
    passthrough?: string;
    route?: RoutePolicyInput;
    serverRoutes?: boolean;
    publicUrl?: string;
    hosts?: Record<string, string>;
    trustedProxies?: string[];
    paths?: string[];
    rateLimitPerMinute?: number;
    allowedHosts?: string[];
  };
  const origins = x.allowedOrigins ?? DEFAULT_ALLOWED_ORIGINS;
  for (const [i, o] of origins.entries()) {
    let ok = false;
    try {
      ok = o === "*" || new URL(o).origin === o;
    } catch {
      ok = false;
    }
    if (!ok) {
      problems.push({
        path: `gateway.allowedOrigins[${i}]`,
        message: `found ${found(o)}, expected an origin such as "https://claude.ai" (scheme, host and port, no path)`,
      });
    }
  }
  const out: GatewayConfig = {
    maxBodyBytes: x.maxBodyBytes ?? DEFAULTS.maxBodyBytes,
    allowedOrigins: origins,
    sessionIdleTimeoutMs: duration(
      x.sessionIdleTimeout,
      "gateway.sessionIdleTimeout",
      DEFAULTS.sessionIdleTimeoutMs,
      problems,
    ),
    maxSessions: x.maxSessions ?? DEFAULTS.maxSessions,
    eventBufferSize: x.eventBufferSize ?? DEFAULTS.eventBufferSize,
    sseKeepaliveMs: duration(x.sseKeepalive, "gateway.sseKeepalive", DEFAULTS.sseKeepaliveMs, problems),
    shutdownGraceMs: duration(x.shutdownGrace, "gateway.shutdownGrace", DEFAULTS.shutdownGraceMs, problems),
    route: routePolicy(x.route),
    serverRoutes: x.serverRoutes ?? true,
    hosts: x.hosts ?? {},
    paths: x.paths ?? ["/mcp"],
    rateLimitPerMinute: x.rateLimitPerMinute ?? 0,
  };
  if (x.passthrough !== undefined) out.passthrough = x.passthrough;
  if (x.allowedHosts !== undefined) out.allowedHosts = x.allowedHosts.map((h) => h.toLowerCase());
  const publicUrl = publicUrlProblems(x.publicUrl, problems);
  if (publicUrl) out.publicUrl = publicUrl;
  const proxies = trustedProxies(x.trustedProxies, problems);
  if (proxies) out.trustedProxies = proxies;
  return out;
}

/** Parses and validates config text. Throws ConfigError listing every problem. */
export function parseConfig(
  text: string,
  options: { source: string; dir: string; env: Record<string, string | undefined> },
): Config {
  const { source, dir, env } = options;
  const problems: ConfigProblem[] = [];
  const stripped = stripJsonComments(text);
  let parsed: unknown;
  try {
    parsed = JSON.parse(stripped);
  } catch (e) {
    throw new ConfigError(source, [
      { path: "", message: `not valid JSON: ${describeJsonError(stripped, e as Error)}` },
    ]);
  }
  const envProblems: ConfigProblem[] = [];
  const value = substituteEnv(parsed, env, envProblems);
  problems.push(...envProblems);
  if (!check(ServersFile, value, "", problems)) {
    // Keep going with what is usable so that every problem is reported in one run.
    if (!value || typeof value !== "object" || Array.isArray(value)) throw new ConfigError(source, problems);
  }
  const root = value as Record<string, unknown>;
  const servers = root.mcpServers;
  const backends: BackendConfig[] = [];
  if (servers && typeof servers === "object" && !Array.isArray(servers)) {
    for (const [name, entry] of Object.entries(servers)) {
      const b = backend(name, entry, dir, env, problems);
      if (b) backends.push(b);
    }
    if (Object.keys(servers).length === 0) {
      problems.push({ path: "mcpServers", message: "is empty: configure at least one server" });
    }
  }
  const auth = serverAuth(root.serverAuth, problems);
  const config: Config = {
    source,
    dir,
    backends,
    auth,
    audit: audit(root.audit as Record<string, unknown> | undefined, dir, env),
    gateway: gateway(root.gateway as Record<string, unknown> | undefined, problems),
    state: check(State, root.state ?? {}, "state", [])
      ? stateSection(root.state as StateInput | undefined, problems)
      : {},
  };
  routeProblems(config.gateway, backends, auth, problems);
  if (problems.length > 0) throw new ConfigError(source, problems);
  return config;
}

export interface ConfigLocation {
  /** Read from this file, or inline text when `inline` is set. */
  path: string;
  inline?: string;
  /** Env-only quick mode: built from allardy/mcp-oauth-proxy's variables (env-mode.ts). */
  fromEnv?: boolean;
}

/**
 * Where the config comes from: --config, then MCP_SERVERS_CONFIG (inline JSON), MCP_CONFIG_PATH, then env-only mode
 * when OIDC_ISSUER_URL is set, then ./servers.json.
 */
export function locateConfig(
  flag: string | undefined,
  env: Record<string, string | undefined>,
  cwd: string,
): ConfigLocation {
  if (flag) return { path: resolve(cwd, flag) };
  const inline = env.MCP_SERVERS_CONFIG;
  if (inline !== undefined && inline.trim() !== "") return { path: "MCP_SERVERS_CONFIG", inline };
  if (env.MCP_CONFIG_PATH?.trim()) return { path: resolve(cwd, env.MCP_CONFIG_PATH.trim()) };
  if (envModeRequested(env)) return { path: ENV_MODE_SOURCE, fromEnv: true };
  return { path: resolve(cwd, "servers.json") };
}

export async function loadConfig(
  location: ConfigLocation,
  env: Record<string, string | undefined>,
  readText: (path: string) => Promise<string>,
  cwd: string,
): Promise<Config> {
  if (location.inline !== undefined) {
    return parseConfig(location.inline, { source: location.path, dir: cwd, env });
  }
  if (location.fromEnv) {
    const problems: ConfigProblem[] = [];
    const built = envModeConfig(env, problems);
    if (problems.length > 0) throw new ConfigError(location.path, problems);
    return parseConfig(JSON.stringify(built), { source: location.path, dir: cwd, env });
  }
  let text: string;
  try {
    text = await readText(location.path);
  } catch (e) {
    const code = (e as { code?: string }).code;
    const why = code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : (e as Error).message;
    throw new ConfigError(location.path, [
      { path: "", message: `cannot read the configuration (${why}); pass --config PATH or set MCP_CONFIG_PATH` },
    ]);
  }
  return parseConfig(text, { source: location.path, dir: dirname(location.path), env });
}
