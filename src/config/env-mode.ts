// Env-only quick mode: one backend behind tokens from your own identity provider, configured with the variables of
// allardy/mcp-oauth-proxy, so a container that ran it switches to Gatehouse without rewriting anything. The
// variables become an ordinary servers.json (shown by `gatehouse check`), so everything downstream is the same code.
//
//   OIDC_ISSUER_URL, OIDC_AUDIENCE, RESOURCE_URL       the issuer, the `aud` tokens carry, this proxy's public URL
//   ALLOW_SUBS, ALLOW_EMAILS, ALLOW_GROUPS              who may in (comma-separated; at least one must be set)
//   MCP_UPSTREAM_URL  |  MCP_SPAWN_CMD + MCP_SPAWN_PORT the backend: an HTTP MCP server, or one Gatehouse starts
//   MCP_UPSTREAM_PATH                                   every request goes to this path of the upstream (below)
//   PORT, LOG_LEVEL, RATE_LIMIT_RPM, CORS_ALLOW_ORIGINS listen port (all interfaces), log level, per-user limit
//                                                       (default 60), browser origins (default claude.ai, claude.com)
//   STATIC_CLIENT_ID, STATIC_CLIENT_SECRET              registration shim for issuers without open registration
//   SCOPES_SUPPORTED                                    scopes advertised in both discovery documents (default
//                                                       openid,profile,email,offline_access)

import type { ConfigProblem } from "./problems.ts";

export const ENV_MODE_SOURCE = "environment (OIDC_ISSUER_URL …)";

/** The variable that switches env-only mode on. */
export function envModeRequested(env: Record<string, string | undefined>): boolean {
  return !!env.OIDC_ISSUER_URL?.trim();
}

const csv = (v: string | undefined) =>
  (v ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);

function url(
  env: Record<string, string | undefined>,
  name: string,
  problems: { push(p: ConfigProblem): void },
): string | undefined {
  const v = env[name]?.trim();
  if (!v) return undefined;
  try {
    const u = new URL(v);
    if (u.protocol === "http:" || u.protocol === "https:") return v;
  } catch {
    // reported below
  }
  problems.push({ path: name, message: `found ${JSON.stringify(v)}, expected an http:// or https:// URL` });
  return undefined;
}

const LOOPBACK_HTTP = /^http:\/\/(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?(\/|$)/;

/**
 * The issuer and the public URL must be https (http only on loopback), as serverAuth.jwt's: mcp-oauth-proxy took
 * http:// too, but over plain http anyone on the way could swap the issuer's keys or the sign-in it points clients
 * to. Said here, naming the variable, rather than as the servers.json key it becomes.
 */
function httpsOnly(
  value: string | undefined,
  name: string,
  problems: { push(p: ConfigProblem): void },
): string | undefined {
  if (value === undefined || value.startsWith("https:") || LOOPBACK_HTTP.test(value)) return value;
  problems.push({
    path: name,
    message:
      `found ${JSON.stringify(value)}: Gatehouse needs an https:// URL here (http only on loopback, for tests) — ` +
      "mcp-oauth-proxy accepted http://, but over plain http the issuer's keys and the sign-in it points clients to " +
      "can be swapped on the way",
  });
  return undefined;
}

/** servers.json built from the variables; problems name the variable at fault. */
export function envModeConfig(
  env: Record<string, string | undefined>,
  problems: { push(p: ConfigProblem): void },
): Record<string, unknown> {
  const issuer = httpsOnly(url(env, "OIDC_ISSUER_URL", problems), "OIDC_ISSUER_URL", problems);
  const resource = httpsOnly(url(env, "RESOURCE_URL", problems), "RESOURCE_URL", problems);
  const audience = env.OIDC_AUDIENCE?.trim();
  if (!audience)
    problems.push({ path: "OIDC_AUDIENCE", message: "is required: the `aud` your provider's tokens carry" });
  if (!env.RESOURCE_URL?.trim()) {
    problems.push({
      path: "RESOURCE_URL",
      message: "is required: this proxy's public URL, e.g. https://mcp.example.com",
    });
  }
  const allow = { subjects: csv(env.ALLOW_SUBS), emails: csv(env.ALLOW_EMAILS), groups: csv(env.ALLOW_GROUPS) };
  if (allow.subjects.length + allow.emails.length + allow.groups.length === 0) {
    problems.push({
      path: "ALLOW_SUBS",
      message: "at least one of ALLOW_SUBS, ALLOW_EMAILS, ALLOW_GROUPS must be set (who may use the server)",
    });
  }
  // mcp-oauth-proxy compared each value exactly; Gatehouse's allow-lists are globs, where `*` matches anything. A
  // value with `*` would let in more than it did there: refused, rather than widened without a word.
  for (const [name, list] of [
    ["ALLOW_SUBS", allow.subjects],
    ["ALLOW_EMAILS", allow.emails],
    ["ALLOW_GROUPS", allow.groups],
  ] as const) {
    const wild = list.find((v) => v.includes("*"));
    if (wild !== undefined) {
      problems.push({
        path: name,
        message:
          `${JSON.stringify(wild)} contains "*", which mcp-oauth-proxy matched literally but Gatehouse matches as a ` +
          "wildcard (anything): list exact values, or write the pattern in a servers.json (serverAuth.jwt.allow)",
      });
    }
  }

  const upstreamUrl = url(env, "MCP_UPSTREAM_URL", problems);
  const spawn = env.MCP_SPAWN_CMD?.trim();
  const path = env.MCP_UPSTREAM_PATH?.trim();
  if (path && !path.startsWith("/")) problems.push({ path: "MCP_UPSTREAM_PATH", message: 'must start with "/"' });
  let backend: Record<string, unknown> | undefined;
  /** Where mcp-oauth-proxy sent requests: MCP_UPSTREAM_URL, or the spawned command's port. */
  let upstream: string | undefined;
  if (!!env.MCP_UPSTREAM_URL?.trim() === !!spawn) {
    problems.push({ path: "MCP_UPSTREAM_URL", message: "set exactly one of MCP_UPSTREAM_URL or MCP_SPAWN_CMD" });
  } else if (spawn) {
    const port = Number(env.MCP_SPAWN_PORT);
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      problems.push({
        path: "MCP_SPAWN_PORT",
        message: `found ${JSON.stringify(env.MCP_SPAWN_PORT ?? "")}, expected the port MCP_SPAWN_CMD listens on`,
      });
    }
    // Through the shell, as a container's command line would be. It lives as long as Gatehouse (never reaped when
    // idle): mcp-oauth-proxy kept its child up, and requests forwarded raw must find it.
    backend = { command: "/bin/sh", args: ["-c", spawn], port, path: path || "/mcp", idle_timeout: "never" };
    if (Number.isInteger(port) && port >= 1 && port <= 65535) upstream = `http://127.0.0.1:${port}`;
  } else if (upstreamUrl) {
    upstream = upstreamUrl;
  }
  // mcp-oauth-proxy sent request path P to ${MCP_UPSTREAM_URL}${MCP_UPSTREAM_PATH} when MCP_UPSTREAM_PATH was set,
  // else to ${MCP_UPSTREAM_URL}${P}. Gatehouse's MCP gateway takes the paths whose target is the upstream's MCP
  // endpoint, and forwards every other path raw, to where mcp-oauth-proxy sent it:
  //   MCP_UPSTREAM_PATH set        every path goes to URL+PATH: the gateway at /mcp and /, the rest raw to URL+PATH
  //   URL with a path X, no PATH   / goes to X/: the gateway at / (MCP at X), the rest raw to X+P
  //   URL without a path, no PATH  /mcp goes to /mcp: the gateway at /mcp (MCP at /mcp), the rest raw to P
  // (a spawned command is the last case, or the first, with URL http://127.0.0.1:$MCP_SPAWN_PORT).
  let paths = ["/mcp", "/"];
  let forward: Record<string, unknown> | undefined;
  if (upstream) {
    const u = new URL(upstream);
    const own = u.pathname.replace(/\/$/, "");
    if (path) {
      u.pathname = `${own}${path}`;
      forward = { url: u.href };
    } else {
      forward = { url: u.href, appendPath: true };
      if (own === "") {
        paths = ["/mcp"];
        u.pathname = "/mcp";
      } else paths = ["/"];
    }
    if (!spawn) backend = { url: u.href };
    if (spawn) forward.server = "upstream";
  }
  const id = env.STATIC_CLIENT_ID?.trim();
  const secret = env.STATIC_CLIENT_SECRET?.trim();
  if (!!id !== !!secret) {
    problems.push({ path: "STATIC_CLIENT_ID", message: "set STATIC_CLIENT_ID and STATIC_CLIENT_SECRET together" });
  }
  const rpm = env.RATE_LIMIT_RPM?.trim() ? Number(env.RATE_LIMIT_RPM) : 60;
  if (!Number.isInteger(rpm) || rpm < 1) {
    problems.push({
      path: "RATE_LIMIT_RPM",
      message: `found ${JSON.stringify(env.RATE_LIMIT_RPM)}, expected a positive integer`,
    });
  }
  const base = resource?.replace(/\/$/, "");
  // mcp-oauth-proxy's defaults: claude.ai and claude.com only (Gatehouse's own default adds the MCP Inspector), and
  // the OpenID scopes a provider like Authentik hands out.
  const origins = env.CORS_ALLOW_ORIGINS?.trim()
    ? csv(env.CORS_ALLOW_ORIGINS)
    : ["https://claude.ai", "https://claude.com"];
  const scopes = env.SCOPES_SUPPORTED?.trim()
    ? csv(env.SCOPES_SUPPORTED)
    : ["openid", "profile", "email", "offline_access"];

  return {
    mcpServers: { upstream: backend ?? { url: "http://127.0.0.1:1/mcp" } },
    serverAuth: {
      providers: ["jwt"],
      jwt: {
        issuer: issuer ?? "https://invalid.example",
        audience: audience || "unset",
        allow: Object.fromEntries(Object.entries(allow).filter(([, v]) => v.length > 0)),
        discovery: {
          // As mcp-oauth-proxy, whatever the client: Gatehouse names itself as the authorization server and
          // republishes the issuer's metadata under its own name (issuer rewritten), with the registration shim
          // in it when STATIC_CLIENT_ID is set.
          mode: "proxy",
          resourceUrl: base ?? "https://invalid.example",
          ...(base ? { publicUrl: new URL(base).origin } : {}),
          scopesSupported: scopes,
          ...(id ? { staticClient: { clientId: id, ...(secret ? { clientSecret: secret } : {}) } } : {}),
        },
      },
    },
    gateway: {
      passthrough: "upstream",
      serverRoutes: false,
      paths,
      ...(forward ? { forward } : {}),
      accessLog: true,
      rateLimitPerMinute: Number.isInteger(rpm) && rpm > 0 ? rpm : 60,
      allowedOrigins: origins,
      ...(base ? { publicUrl: base } : {}),
    },
  };
}
