// The `gateway` section (Gatehouse's own settings: origins, limits, timeouts, routes, hosts, proxies) and the
// `audit` section (the keys of `mcp serve`, and the MCP_AUDIT_* variables over them).

import { resolve } from "node:path";
import { DEFAULTS } from "./defaults.ts";
import { found, foundUrl, type Problems } from "./problems.ts";
import { publicUrlProblems, routePolicy } from "./routes.ts";
import type { AuditInput, GatewayInput } from "./schema.ts";
import type { AuditConfig, GatewayConfig } from "./types.ts";

export function gatewaySection(x: GatewayInput | undefined, p: Problems): GatewayConfig {
  const g = x ?? {};
  const d = DEFAULTS.gateway;
  const origins = g.allowedOrigins ?? [...d.allowedOrigins];
  for (const [i, o] of origins.entries()) {
    let ok = false;
    try {
      ok = o === "*" || new URL(o).origin === o;
    } catch {
      ok = false;
    }
    if (!ok) {
      p.add(
        `gateway.allowedOrigins[${i}]`,
        `found ${found(o)}, expected an origin such as "https://claude.ai" (scheme, host and port, no path)`,
      );
    }
  }
  const out: GatewayConfig = {
    maxBodyBytes: g.maxBodyBytes ?? d.maxBodyBytes,
    allowedOrigins: origins,
    sessionIdleTimeoutMs: p.duration(g.sessionIdleTimeout, "gateway.sessionIdleTimeout", d.sessionIdleTimeoutMs),
    maxSessions: g.maxSessions ?? d.maxSessions,
    eventBufferSize: g.eventBufferSize ?? d.eventBufferSize,
    sseKeepaliveMs: p.duration(g.sseKeepalive, "gateway.sseKeepalive", d.sseKeepaliveMs),
    shutdownGraceMs: p.duration(g.shutdownGrace, "gateway.shutdownGrace", d.shutdownGraceMs),
    watchConfig: g.watchConfig ?? d.watchConfig,
    route: routePolicy(g.route),
    serverRoutes: g.serverRoutes ?? d.serverRoutes,
    hosts: g.hosts ?? {},
    paths: g.paths ?? [...d.paths],
    rateLimitPerMinute: g.rateLimitPerMinute ?? d.rateLimitPerMinute,
    accessLog: g.accessLog ?? d.accessLog,
  };
  if (g.forward) {
    let ok = false;
    try {
      const u = new URL(g.forward.url);
      ok = u.protocol === "http:" || u.protocol === "https:";
    } catch {
      ok = false;
    }
    if (!ok) p.add("gateway.forward.url", `found ${foundUrl(g.forward.url)}, expected an http:// or https:// URL`);
    out.forward = { url: g.forward.url, appendPath: g.forward.appendPath ?? false };
    if (g.forward.server !== undefined) out.forward.server = g.forward.server;
  }
  if (g.passthrough !== undefined) out.passthrough = g.passthrough;
  if (g.allowedHosts !== undefined) out.allowedHosts = g.allowedHosts.map((h) => h.toLowerCase());
  const publicUrl = publicUrlProblems(g.publicUrl, p);
  if (publicUrl) out.publicUrl = publicUrl;
  if (g.rateLimit) {
    const r = g.rateLimit;
    if (g.rateLimitPerMinute !== undefined && r.maxRequests !== undefined) {
      p.add("gateway.rateLimit.maxRequests", "gateway.rateLimitPerMinute says the same: keep one of the two");
    }
    out.rateLimit = { windowMs: p.duration(r.window, "gateway.rateLimit.window", 60_000) };
    if (r.maxRequests !== undefined) out.rateLimit.maxRequests = r.maxRequests;
    if (r.maxToolCalls !== undefined) out.rateLimit.maxToolCalls = r.maxToolCalls;
  }
  const proxies = p.cidrs(g.trustedProxies, "gateway.trustedProxies");
  if (proxies) out.trustedProxies = proxies;
  return out;
}

export function auditSection(
  input: AuditInput | undefined,
  dir: string,
  env: Record<string, string | undefined>,
): AuditConfig {
  const a = input ?? {};
  let enabled = a.enabled ?? DEFAULTS.audit.enabled;
  const envEnabled = env.MCP_AUDIT_ENABLED?.trim().toLowerCase();
  if (envEnabled === "false" || envEnabled === "0") enabled = false;
  if (envEnabled === "true" || envEnabled === "1") enabled = true;
  const output = env.MCP_AUDIT_OUTPUT?.trim() || a.output || DEFAULTS.audit.output;
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
