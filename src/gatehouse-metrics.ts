// Gatehouse's metric families (README "Metrics" lists them with their labels) and the points that feed them. One
// instance per process: counters survive configuration reloads; gauges read the running app when scraped.

import type { AuditRecord } from "./audit.ts";
import { bounded, type Counter, type Histogram, MetricsRegistry } from "./metrics.ts";

/** What the gauges read when scraped: the app running now. */
export interface MetricsSource {
  backends(): { name: string; connected: boolean; inFlight: number }[];
  sessions(): { count: number; streams: number };
  stateStoreOk(): boolean | undefined;
}

const MCP_METHODS = new Set([
  "initialize",
  "ping",
  "tools/list",
  "tools/call",
  "resources/list",
  "resources/templates/list",
  "resources/read",
  "resources/subscribe",
  "resources/unsubscribe",
  "prompts/list",
  "prompts/get",
  "completion/complete",
  "logging/setLevel",
  "tasks/get",
  "tasks/list",
  "tasks/cancel",
  "tasks/result",
]);

const OAUTH_ERRORS = new Set([
  "invalid_request",
  "invalid_client",
  "invalid_grant",
  "unauthorized_client",
  "unsupported_grant_type",
  "invalid_scope",
  "invalid_target",
  "temporarily_unavailable",
  "server_error",
  "access_denied",
]);

const ROUTES: [RegExp, string][] = [
  [/^\/\.well-known\//, "discovery"],
  [/^(\/servers\/[^/]+)?\/mcp\/(sse|message)$/, "mcp_sse"],
  [/^\/(sse|message)$/, "mcp_sse"],
  [/^(\/servers\/[^/]+)?\/mcp\/?$/, "mcp"],
  [/^\/token$/, "token"],
  [/^\/authorize$/, "authorize"],
  [/^\/register$/, "register"],
  [/^\/(revoke|introspect)$/, "revoke_introspect"],
  [/^\/login(\/|$)|^\/logout$/, "login"],
  [/^\/authenticate(\/|$)/, "forward_auth"],
  [/^\/(health|livez|readyz)$/, "health"],
  [/^\/metrics$/, "metrics"],
];

/** The route label of a path: a fixed set, so a scan of random paths adds no series. */
export function routeLabel(path: string): string {
  for (const [re, label] of ROUTES) if (re.test(path)) return label;
  return "other";
}

export class GatehouseMetrics {
  readonly registry = new MetricsRegistry();
  private readonly httpRequests: Counter;
  private readonly mcpRequests: Counter;
  private readonly mcpDuration: Histogram;
  private readonly backendDuration: Histogram;
  private readonly oauthEvents: Counter;
  private readonly tokensIssued: Counter;
  private readonly tokenRefusals: Counter;
  private readonly signIns: Counter;
  private readonly backendStarts: Counter;
  private readonly rateLimited: Counter;
  private readonly storeWrites: Histogram;
  private readonly storeErrors: Counter;
  private readonly reloads: Counter;
  private lastReload = 0;
  private source: MetricsSource | undefined;

  constructor(version: string, runtime: string, started = Date.now()) {
    const r = this.registry;
    r.gauge("gatehouse_build_info", "Gatehouse's version and runtime", ["version", "runtime"], () => [
      [[version, runtime], 1],
    ]);
    r.gauge("gatehouse_start_time_seconds", "When this process started (Unix time)", [], () => [[[], started / 1000]]);
    this.httpRequests = r.counter("gatehouse_http_requests_total", "HTTP requests answered, by route and status", [
      "route",
      "status",
    ]);
    this.mcpRequests = r.counter(
      "gatehouse_mcp_requests_total",
      "MCP requests handled, by method, server, tool and outcome (allowed, denied, error, timeout)",
      ["method", "server", "tool", "outcome"],
    );
    this.mcpDuration = r.histogram(
      "gatehouse_mcp_request_duration_seconds",
      "Time to answer an MCP request, from admission to the answer",
      ["method"],
    );
    this.backendDuration = r.histogram(
      "gatehouse_backend_request_duration_seconds",
      "Time a backend took to answer a forwarded request",
      ["server"],
    );
    this.oauthEvents = r.counter(
      "gatehouse_oauth_events_total",
      "Authorization server events: registrations, grants, refresh reuse, revocations, introspections",
      ["event", "outcome"],
    );
    this.tokensIssued = r.counter("gatehouse_oauth_tokens_issued_total", "Tokens issued, by grant type", [
      "grant_type",
    ]);
    this.tokenRefusals = r.counter("gatehouse_oauth_token_refusals_total", "Token requests refused, by error code", [
      "error",
    ]);
    this.signIns = r.counter("gatehouse_sign_ins_total", "Sign-ins, by method and outcome", ["method", "outcome"]);
    this.backendStarts = r.counter("gatehouse_backend_starts_total", "Backends (re)started and ready, by server", [
      "server",
    ]);
    this.rateLimited = r.counter("gatehouse_rate_limited_total", "Requests refused by a rate limit, by limit", [
      "limit",
    ]);
    this.storeWrites = r.histogram(
      "gatehouse_state_write_duration_seconds",
      "Time to make a state write durable (a journal batch and its fsync, or a Redis script)",
      [],
    );
    this.storeErrors = r.counter("gatehouse_state_write_errors_total", "State writes that failed", []);
    this.reloads = r.counter("gatehouse_config_reloads_total", "Configuration reloads, by outcome", ["outcome"]);
    r.gauge("gatehouse_config_last_reload_success_timestamp_seconds", "When the configuration last reloaded", [], () =>
      this.lastReload ? [[[], this.lastReload / 1000]] : [],
    );
    r.gauge("gatehouse_backend_up", "Whether a backend is connected and ready (1) or not (0)", ["server"], () =>
      (this.source?.backends() ?? []).map((b) => [[b.name], b.connected ? 1 : 0]),
    );
    r.gauge("gatehouse_backend_in_flight", "Requests a backend is working on", ["server"], () =>
      (this.source?.backends() ?? []).map((b) => [[b.name], b.inFlight]),
    );
    r.gauge("gatehouse_sessions", "Open MCP sessions held by this process", [], () => [
      [[], this.source?.sessions().count ?? 0],
    ]);
    r.gauge("gatehouse_open_streams", "Open SSE streams to MCP clients", [], () => [
      [[], this.source?.sessions().streams ?? 0],
    ]);
    r.gauge("gatehouse_state_store_up", "Whether the state store can write (1) or not (0)", [], () => {
      const ok = this.source?.stateStoreOk();
      return ok === undefined ? [] : [[[], ok ? 1 : 0]];
    });
  }

  /** The app the gauges read from now on. */
  attach(source: MetricsSource): void {
    this.source = source;
  }

  http(path: string, status: number): void {
    this.httpRequests.inc([routeLabel(path), String(status)]);
  }

  /** One MCP request's outcome. `server` and `tool` come from the catalog (never from the request as sent). */
  mcp(method: string, server: string, tool: string, outcome: "allowed" | "denied" | "error" | "timeout", s: number) {
    const m = bounded(method, MCP_METHODS);
    this.mcpRequests.inc([m, server, tool, outcome]);
    this.mcpDuration.observe([m], s);
  }

  backend(server: string, seconds: number): void {
    this.backendDuration.observe([server], seconds);
  }

  backendStarted(server: string): void {
    this.backendStarts.inc([server]);
  }

  rateLimit(limit: string): void {
    this.rateLimited.inc([limit]);
  }

  tokenRefused(error: string): void {
    this.tokenRefusals.inc([bounded(error, OAUTH_ERRORS)]);
  }

  storeWrite(seconds: number, ok: boolean): void {
    if (ok) this.storeWrites.observe([], seconds);
    else this.storeErrors.inc();
  }

  reload(ok: boolean): void {
    this.reloads.inc([ok ? "success" : "failure"]);
    if (ok) this.lastReload = Date.now();
  }

  /** What the audit log records, counted. */
  audit(r: AuditRecord): void {
    const outcome = r.success ? "success" : "failure";
    switch (r.event) {
      case "token_issued":
        this.tokensIssued.inc([String(r.grant_type ?? "other")]);
        break;
      case "sign_in":
      case "sign_in_failed":
        this.signIns.inc([String(r.method ?? "other"), outcome]);
        break;
      case "client_registered":
      case "client_registration_refused":
      case "authorization_granted":
      case "authorization_denied":
      case "refresh_reuse_detected":
      case "token_revoked":
      case "token_introspected":
      case "browser_session_revoked":
      case "client_revoked":
      case "signing_key_rotated":
        this.oauthEvents.inc([r.event, outcome]);
        break;
      default:
        break;
    }
  }

  render(): string {
    return this.registry.render();
  }
}
