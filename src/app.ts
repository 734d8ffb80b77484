// createApp(config, deps): composes the gateway, the authorization server and the HTTP surfaces into one Elysia
// app. Nothing here touches the runtime directly: processes, time, storage and the peer address come in through
// `deps`, so `app.fetch` (web-standard Request → Response) runs under Bun, Deno or a test alike.

import { Elysia } from "elysia";
import { createAuditor } from "./audit.ts";
import { ENV_MODE_SOURCE } from "./config/env-mode.ts";
import type { Config } from "./config/types.ts";
import { type Deadline, Deadlines } from "./deadlines.ts";
import type { GatehouseMetrics } from "./gatehouse-metrics.ts";
import { errors } from "./http/errors.ts";
import { externalDiscovery } from "./http/external-discovery.ts";
import { forward } from "./http/forward.ts";
import { forwardAuth } from "./http/forward-auth.ts";
import { health } from "./http/health.ts";
import { defaultAllowedHosts, hostCheck } from "./http/host-check.ts";
import { type McpDeps, mcp } from "./http/mcp.ts";
import { mcpSse } from "./http/mcp-sse.ts";
import { metricsEndpoint } from "./http/metrics.ts";
import { authorization } from "./http/oauth/authorization.ts";
import type { OAuthHttpDeps } from "./http/oauth/common.ts";
import { discovery } from "./http/oauth/discovery.ts";
import { AuthLimits } from "./http/oauth/limits.ts";
import { REGISTRATIONS_PER_MINUTE, registration } from "./http/oauth/registration.ts";
import { tokenEndpoints } from "./http/oauth/token.ts";
import { resourceMetadata } from "./http/resource-metadata.ts";
import type { Logger } from "./log.ts";
import { idleTimeoutMs } from "./mcp/backends/idle.ts";
import { BackendPool } from "./mcp/backends/pool.ts";
import type { SessionBackplane } from "./mcp/backplane.ts";
import type { Backend } from "./mcp/catalog.ts";
import { Gateway, type RouteState } from "./mcp/gateway.ts";
import { SessionRegistry } from "./mcp/sessions.ts";
import { clientAddress } from "./net/forwarded.ts";
import { AuthorizationServer } from "./oauth/authorization-server.ts";
import { PendingAuthorizations } from "./oauth/authorize.ts";
import type { Clock, PasswordHasher, Spawner } from "./platform/types.ts";
import { Acl } from "./policy/acl.ts";
import { ToolScopes } from "./policy/tool-scopes.ts";
import { inRequest } from "./request-context.ts";
import { buildRoutes, type McpRoute, reapIdleBackends } from "./routing.ts";
import { MemoryStore } from "./store/memory.ts";
import { localServices, type SharedServices } from "./store/shared.ts";
import type { Store } from "./store/types.ts";

export interface AppDeps {
  log: Logger;
  clock: Clock;
  spawner: Spawner;
  version: string;
  /** The address of the peer that sent a request (from the server that accepted it), for source-CIDR rules. */
  peerAddress(request: Request): string | undefined;
  /** Environment given to stdio backends, under their configured `env`. */
  childEnv?: Record<string, string>;
  /** fetch used to reach HTTP backends. */
  fetch?: typeof fetch;
  /** Receives audit records as JSON lines when `audit.output` includes a file. */
  appendAudit?: (line: string) => void;
  /** The authorization server's state (default: in memory, lost at exit). */
  store?: Store;
  /** DNS resolution for client metadata documents (tests inject one). */
  resolve?: (host: string) => Promise<{ address: string; family: number }[]>;
  /** argon2id hashing, for local accounts (Bun's built-in; none under other runtimes). */
  passwords?: PasswordHasher;
  /** MCP sessions shared with other replicas (state.redis). */
  backplane?: SessionBackplane;
  /** Rate limits and caches shared with other replicas (state.redis); default: this process only. */
  shared?: SharedServices;
  /** What the app of the previous configuration hands on when the configuration is reloaded. */
  carry?: Carry;
  /** The process's metrics (GET /metrics); none: nothing is counted. */
  metrics?: GatehouseMetrics;
}

/**
 * What lives on across a reload: the sessions (and their streams), the backends whose connection did not change,
 * each route's subscriptions and tasks, and the authorization server when its settings did not change. The state
 * store, its keys and the listening server are the caller's and are never touched.
 */
export interface Carry {
  sessions: SessionRegistry;
  pool: BackendPool;
  routes: Map<string, RouteState>;
  as?: { key: string; server: AuthorizationServer };
}

export async function createApp(config: Config, deps: AppDeps) {
  const log = deps.log;
  const shared = deps.shared ?? localServices(() => deps.clock.now());
  const gateways: Gateway[] = [];
  // Backends are shared by every route: each gateway keeps what concerns its own backends.
  const pool =
    deps.carry?.pool ??
    new BackendPool({
      log: log.child("backend"),
      clock: deps.clock,
      spawner: deps.spawner,
      version: deps.version,
      ...(deps.childEnv ? { childEnv: deps.childEnv } : {}),
      ...(deps.fetch ? { fetch: deps.fetch } : {}),
    });
  pool.setChildEnv(deps.childEnv && withoutSecrets(deps.childEnv, config.secretEnv));
  const change = pool.update(config.backends);
  const backends = change.backends;
  pool.listener = {
    onBroadcast: (name, n) => {
      for (const g of gateways) g.onBackendBroadcast(name, n);
    },
    onReady: (name) => {
      deps.metrics?.backendStarted(name);
      for (const g of gateways) g.catalog.invalidate(name);
    },
  };
  const sessions =
    deps.carry?.sessions ??
    new SessionRegistry({
      clock: deps.clock,
      log: log.child("gateway"),
      config: config.gateway,
      ...(deps.backplane ? { backplane: deps.backplane } : {}),
    });
  if (deps.carry) sessions.configure(config.gateway);
  const toolScopes = new ToolScopes(config.auth.toolScopes);
  const acl = new Acl(config.auth.acl);
  const metrics = deps.metrics;
  const audit = createAuditor(config.audit, log, deps.appendAudit, metrics && ((r) => metrics.audit(r)));
  const newGateway = (members: Backend[], id: string, passthrough?: string): Gateway => {
    const g = new Gateway({
      id,
      sessions,
      ...(deps.backplane ? { backplane: deps.backplane } : {}),
      backends: members,
      acl,
      log: log.child("gateway"),
      clock: deps.clock,
      version: deps.version,
      audit,
      toolScopes,
      ...(passthrough ? { passthrough } : {}),
      ...(deps.carry?.routes.has(id) ? { carried: deps.carry.routes.get(id) as RouteState } : {}),
      ...(metrics ? { metrics } : {}),
    });
    gateways.push(g);
    return g;
  };

  // The authorization server runs when `oauth_as` is among the providers (an `oauthAs` block alone is only validated).
  let as: AuthorizationServer | undefined;
  const asKey = JSON.stringify(config.auth.oauthAs ?? null);
  if (config.auth.oauthAs && config.auth.providers.includes("oauth_as") && deps.carry?.as?.key === asKey) {
    as = deps.carry.as.server;
  } else if (config.auth.oauthAs && config.auth.providers.includes("oauth_as")) {
    as = new AuthorizationServer({
      config: config.auth.oauthAs,
      store: deps.store ?? new MemoryStore(),
      clock: deps.clock,
      log: log.child("oauth"),
      ...(deps.resolve ? { resolve: deps.resolve } : {}),
      ...(deps.passwords ? { passwords: deps.passwords } : {}),
      ...(deps.fetch ? { fetch: deps.fetch } : {}),
      shared,
    });
    await as.init();
  }
  if (as) {
    const server = as;
    server.audit = audit;
    if (metrics) server.onTokenRefused = (error) => metrics.tokenRefused(error);
    server.extraScopes = () => toolScopes.all();
    server.describeScope = (scope) => toolScopes.describe(scope);
    server.clientMayHold = (scope, client) =>
      toolScopes.mayHold(scope, {
        clientId: client.client_id,
        ...(client.client_name ? { clientName: client.client_name } : {}),
      });
  }
  const routes = buildRoutes(config, {
    backends,
    newGateway,
    as,
    chainDeps: { now: () => deps.clock.now(), shared, ...(deps.fetch ? { fetch: deps.fetch } : {}) },
    peerAddress: deps.peerAddress,
    log: log.child("auth"),
    audit,
  });
  const deadlines = new Deadlines(deps.clock);
  if (as) {
    // The consent page asks the backends behind the resource for their scopes, waiting oauthAs.offerBackendScopes.
    const waitMs = as.config.offerBackendScopesMs;
    as.backendScopes = (resource) => {
      let due: Deadline | undefined;
      const deadline = new Promise<void>((fire) => {
        due = deadlines.add(waitMs, fire);
      });
      return routes.advertisedScopes(resource, deadline, waitMs).finally(() => deadlines.cancel(due));
    };
  }
  for (const r of routes.all) {
    if (r.policy.authType === "none") {
      log.warn('route has authType "none": anyone who can reach it may use it, with no authentication at all', {
        route: r.path,
        server: r.name,
      });
    }
  }

  const rl = config.gateway.rateLimit;
  // Messages name the setting the operator wrote: in env-only mode, mcp-oauth-proxy's variable.
  const envMode = config.source === ENV_MODE_SOURCE;
  const limiter = rl?.maxRequests
    ? { limit: shared.rateLimit("mcp", rl.maxRequests, rl.windowMs), setting: "gateway.rateLimit.maxRequests" }
    : config.gateway.rateLimitPerMinute > 0
      ? {
          limit: shared.rateLimit("mcp", config.gateway.rateLimitPerMinute),
          setting: envMode ? "RATE_LIMIT_RPM" : "gateway.rateLimitPerMinute",
        }
      : undefined;
  const toolCalls = rl?.maxToolCalls ? shared.rateLimit("mcp-tool-calls", rl.maxToolCalls, rl.windowMs) : undefined;
  const admission = {
    allowedOrigins: config.gateway.allowedOrigins,
    originsSetting: envMode ? "CORS_ALLOW_ORIGINS" : "gateway.allowedOrigins",
    maxBodyBytes: config.gateway.maxBodyBytes,
    ...(limiter ? { limiter: limiter.limit, limiterSetting: limiter.setting } : {}),
    ...(toolCalls ? { toolCallLimiter: toolCalls } : {}),
    log: log.child("http"),
    ...(metrics ? { onRateLimited: (which: string) => metrics.rateLimit(which) } : {}),
    accessLog: config.gateway.accessLog,
  };
  const mcpDeps = (route: (request: Request) => McpRoute): McpDeps => ({
    route,
    admission,
    deadlines,
    config: config.gateway,
    log: log.child("http"),
  });
  const defaultHosts = defaultAllowedHosts(
    [
      config.gateway.publicUrl,
      as?.config.issuerUrl,
      ...routes.all.map((r) => r.resourceUrl),
      config.auth.jwt?.discovery.publicUrl,
      config.auth.introspection?.discovery.publicUrl,
    ],
    Object.keys(config.gateway.hosts),
  );
  const hostPolicy = config.gateway.allowedHosts
    ? { allowed: config.gateway.allowedHosts, nonDomains: false }
    : defaultHosts && { allowed: defaultHosts, nonDomains: true };
  if (!hostPolicy) {
    log.info("Host headers are not checked (no public URL configured): set gateway.allowedHosts against DNS rebinding");
  }
  const app = new Elysia({ name: "gatehouse" })
    .use(errors({ log: log.child("http"), origins: config.gateway.allowedOrigins }))
    .use(hostCheck({ policy: hostPolicy, log: log.child("http") }))
    .use(
      health({
        health: async () => {
          const summary: Record<string, unknown> = await routes.health(deps.version, sessions.count);
          // Still 200: the process serves; "degraded" says what it depends on is failing (the log says why; this
          // endpoint is public, so it names no file or host: the backend by its name, the store by its role).
          const failing = backends.filter((b) => !b.client.connected && b.client.error).map((b) => b.config.name);
          if (failing.length > 0) Object.assign(summary, { status: "degraded", backends_failing: failing });
          const state = as?.store.health() ?? deps.backplane?.health();
          if (state && !state.ok) Object.assign(summary, { status: "degraded", state_store: "unavailable" });
          return summary;
        },
        notReady: () => {
          const state = as?.store.health() ?? deps.backplane?.health();
          return state && !state.ok ? "the state store cannot be written" : undefined;
        },
      }),
    );
  if (metrics) {
    app.use(
      metricsEndpoint({
        config: config.metrics,
        render: () => metrics.render(),
        peerAddress: deps.peerAddress,
        log: log.child("http"),
      }),
    );
    metrics.attach({
      backends: () =>
        backends.map((b) => ({ name: b.config.name, connected: b.client.connected, inFlight: b.client.inFlight })),
      sessions: () => ({ count: sessions.count, streams: sessions.streams }),
      stateStoreOk: () => (as?.store.health() ?? deps.backplane?.health())?.ok,
    });
  }
  for (const path of config.gateway.paths) {
    app.use(mcp(path, mcpDeps(routes.mcpRoute))).use(mcpSse(path, mcpDeps(routes.mcpRoute)));
  }
  for (const r of routes.servers.values()) {
    app
      .use(
        mcp(
          r.path,
          mcpDeps(() => r),
        ),
      )
      .use(
        mcpSse(
          r.path,
          mcpDeps(() => r),
        ),
      );
  }
  app
    .use(
      resourceMetadata({
        routes: routes.all,
        mcpRoute: routes.mcpRoute,
        hostOf: routes.hostOf,
        log: log.child("oauth"),
      }),
    )
    .use(
      forwardAuth({
        mcpRoute: routes.mcpRoute,
        serverRoutes: routes.servers,
        log: log.child("auth"),
      }),
    );
  if (as) {
    const oauthDeps: OAuthHttpDeps = {
      as,
      pendings: new PendingAuthorizations(as.store),
      registrations: shared.rateLimit("register", REGISTRATIONS_PER_MINUTE),
      limits: new AuthLimits(
        as.config.rateLimits,
        shared,
        () => deps.clock.now(),
        log.child("oauth"),
        (l) => metrics?.rateLimit(l),
      ),
      log: log.child("oauth"),
      origins: config.gateway.allowedOrigins,
      peerAddress: deps.peerAddress,
    };
    app
      .use(discovery(oauthDeps))
      .use(registration(oauthDeps))
      .use(authorization(oauthDeps))
      .use(tokenEndpoints(oauthDeps));
  } else {
    // Tokens from another issuer: its metadata republished under Gatehouse's name, when asked to (proxy mode).
    const external = config.auth.jwt ?? config.auth.introspection;
    const issuer = config.auth.jwt?.issuer ?? config.auth.introspection?.issuer;
    if (external && issuer) {
      app.use(
        externalDiscovery({
          issuer,
          discovery: external.discovery,
          log: log.child("oauth"),
          origins: config.gateway.allowedOrigins,
          now: () => deps.clock.now(),
          ...(deps.fetch ? { fetch: deps.fetch } : {}),
        }),
      );
    }
  }
  // Last: the catch-all that sends every request no endpoint above answers on to the upstream.
  const fwd = config.gateway.forward;
  if (fwd) {
    const backend = fwd.server === undefined ? undefined : backends.find((b) => b.config.name === fwd.server);
    app.use(
      forward({
        forward: fwd,
        route: routes.mcpRoute,
        admission,
        ...(backend ? { backend } : {}),
        // The MCP paths and their legacy transport, whatever the method.
        own: config.gateway.paths.flatMap((p) => {
          const b = p === "/" ? "" : p;
          return [p, `${b}/`, `${b}/sse`, `${b}/message`];
        }),
        log: log.child("forward"),
        ...(deps.fetch ? { fetch: deps.fetch } : {}),
      }),
    );
  }
  if (!deps.carry) sessions.start();
  const timers = [
    deps.clock.setInterval(
      () =>
        void reapIdleBackends(backends, gateways, deps.clock.now(), (b, now) =>
          idleTimeoutMs(b.config.idle, b.client, now),
        ),
      30_000,
    ),
  ];
  if (as) timers.push(deps.clock.setInterval(() => void as.maintain().catch(() => {}), 60_000));

  const main = routes.main;
  /** One request, as the listener hands it over: its id and peer in the request context, counted in the metrics. */
  const handle = async (request: Request): Promise<Response> => {
    const response = await inRequest(
      request,
      () => clientAddress(request.headers, deps.peerAddress(request), config.gateway.trustedProxies),
      () => app.fetch(request),
    );
    metrics?.http(pathOf(request.url), response.status);
    return response;
  };
  return Object.assign(app, {
    gatehouse: {
      handle,
      /** The gateway of /mcp. */
      gateway: main.gateway,
      /** The MCP sessions of every route (what a graceful shutdown drains). */
      sessions,
      routes,
      authorizationServer: as,
      /** The audit log of this configuration. */
      audit,
      /** Which backends this configuration added, changed and removed (against the one it was reloaded from). */
      change,
      /** What the app of a reloaded configuration takes over (createApp's deps.carry). */
      carry: (): Carry => ({
        sessions,
        pool,
        routes: new Map(gateways.map((g) => [g.id, g.state])),
        ...(as ? { as: { key: asKey, server: as } } : {}),
      }),
      /** Tells every session something changed for all (after a reload). */
      announce: (method: string) => sessions.announce(method),
      /** Stops this app's own timers once a reloaded one has taken over (its sessions and backends live on). */
      retire: () => {
        for (const t of timers) deps.clock.clearInterval(t);
      },
      /** Ends every session, stops every backend and closes the store. */
      shutdown: async () => {
        for (const t of timers) deps.clock.clearInterval(t);
        sessions.shutdown();
        await pool.stopAll();
        await deps.store?.close();
      },
    },
  });
}

/** Gatehouse's environment as a backend process inherits it: without the variables that hold its own secrets. */
function withoutSecrets(env: Record<string, string>, secret: readonly string[]): Record<string, string> {
  const out = { ...env };
  for (const name of secret) delete out[name];
  return out;
}

/** The path of a request URL, without parsing all of it. */
function pathOf(url: string): string {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start < 0) return "/";
  const q = url.indexOf("?", start);
  return q < 0 ? url.slice(start) : url.slice(start, q);
}

export type GatehouseApp = Awaited<ReturnType<typeof createApp>>;
