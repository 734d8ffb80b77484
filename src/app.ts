// createApp(config, deps): composes the gateway, the authorization server and the HTTP surfaces into one Elysia
// app. Nothing here touches the runtime directly: processes, time, storage and the peer address come in through
// `deps`, so `app.fetch` (web-standard Request → Response) runs under Bun, Deno or a test alike.

import { Elysia } from "elysia";
import { createAuditor } from "./audit.ts";
import { buildChain } from "./auth/chain.ts";
import { type AuthFailure, type AuthResult, type Identity, insufficientScope } from "./auth/identity.ts";
import type { BackendConfig, Config } from "./config/types.ts";
import { errors } from "./http/errors.ts";
import { health } from "./http/health.ts";
import { mcp } from "./http/mcp.ts";
import { mcpSse } from "./http/mcp-sse.ts";
import { authorization } from "./http/oauth/authorization.ts";
import type { OAuthHttpDeps } from "./http/oauth/common.ts";
import { discovery } from "./http/oauth/discovery.ts";
import { registration } from "./http/oauth/registration.ts";
import { tokenEndpoints } from "./http/oauth/token.ts";
import type { Logger } from "./log.ts";
import { BackendClient } from "./mcp/backends/backend-client.ts";
import { HttpTransport } from "./mcp/backends/http-transport.ts";
import { StdioTransport } from "./mcp/backends/stdio-transport.ts";
import type { BackendTransport } from "./mcp/backends/transport.ts";
import type { Backend } from "./mcp/catalog.ts";
import { Gateway } from "./mcp/gateway.ts";
import { AuthorizationServer } from "./oauth/authorization-server.ts";
import { PendingAuthorizations } from "./oauth/authorize.ts";
import { oauthProvider } from "./oauth/bearer-verifier.ts";
import { hasAll } from "./oauth/scopes.ts";
import type { Clock, PasswordHasher, Spawner } from "./platform/types.ts";
import { Acl } from "./policy/acl.ts";
import { MemoryStore } from "./store/memory.ts";
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
}

function transportFor(b: BackendConfig, deps: AppDeps): BackendTransport {
  const log = deps.log.child("backend");
  const t = b.transport;
  if (t.kind === "stdio") {
    const options = {
      command: t.command,
      args: t.args,
      env: { ...deps.childEnv, ...t.env },
      ...(t.cwd ? { cwd: t.cwd } : {}),
    };
    return new StdioTransport(b.name, options, deps.spawner, log);
  }
  return new HttpTransport(
    b.name,
    {
      url: t.url,
      headers: t.headers,
      connectTimeoutMs: b.startupTimeoutMs,
      ...(deps.fetch ? { fetch: deps.fetch } : {}),
    },
    log,
  );
}

export async function createApp(config: Config, deps: AppDeps) {
  const log = deps.log;
  let gateway: Gateway | undefined;
  const backends: Backend[] = config.backends.map((b) => ({
    config: b,
    client: new BackendClient({
      name: b.name,
      transport: transportFor(b, deps),
      clock: deps.clock,
      log: log.child("backend"),
      version: deps.version,
      requestTimeoutMs: b.requestTimeoutMs,
      startupTimeoutMs: b.startupTimeoutMs,
      onBroadcast: (name, n) => gateway?.onBackendBroadcast(name, n),
      onReady: (name) => gateway?.catalog.invalidate(name),
    }),
  }));
  gateway = new Gateway({
    backends,
    acl: new Acl(config.auth.acl),
    log: log.child("gateway"),
    clock: deps.clock,
    version: deps.version,
    config: config.gateway,
    audit: createAuditor(config.audit, log, deps.appendAudit),
  });

  // The authorization server runs when `oauth_as` is among the providers (an `oauthAs` block alone is only validated).
  let as: AuthorizationServer | undefined;
  if (config.auth.oauthAs && config.auth.providers.includes("oauth_as")) {
    as = new AuthorizationServer({
      config: config.auth.oauthAs,
      store: deps.store ?? new MemoryStore(),
      clock: deps.clock,
      log: log.child("oauth"),
      ...(deps.resolve ? { resolve: deps.resolve } : {}),
      ...(deps.passwords ? { passwords: deps.passwords } : {}),
      ...(deps.fetch ? { fetch: deps.fetch } : {}),
    });
    await as.init();
    if (config.auth.oauthAs.issuerUrl.startsWith("http://")) {
      log.warn(
        "oauthAs.issuerUrl uses plain http: hosted clients (Claude, ChatGPT) need https, and tokens travel in clear",
        {
          issuer: config.auth.oauthAs.issuerUrl,
        },
      );
    }
  }
  const chain = buildChain(config.auth, as ? { oauth_as: oauthProvider(as) } : {}, {
    now: () => deps.clock.now(),
    ...(deps.fetch ? { fetch: deps.fetch } : {}),
  });
  /** A token without its provider's requiredScopes gets 403 insufficient_scope (RFC 6750 §3.1). */
  const checkScopes = (identity: Identity): AuthFailure | undefined => {
    const required = identity.requiredScopes ?? [];
    if (identity.scopes === undefined || hasAll(identity.scopes, required)) return undefined;
    const missing = required.filter((s) => !identity.scopes?.includes(s));
    return insufficientScope(identity, required, `the token lacks the scope(s) ${missing.join(" ")}`);
  };
  const authLog = log.child("auth");
  const authenticate = async (request: Request): Promise<AuthResult> => {
    const peer = deps.peerAddress(request);
    const result = await chain({ headers: request.headers, peerAddress: peer });
    if (!result.ok) {
      authLog.info("request refused", {
        status: result.failure.status,
        reason: result.failure.tried ?? result.failure.description,
        path: new URL(request.url).pathname,
        peer,
      });
    }
    return result;
  };

  const mcpDeps = { gateway, authenticate, checkScopes, config: config.gateway, log: log.child("http") };
  const app = new Elysia({ name: "gatehouse" })
    .use(errors({ log: log.child("http"), origins: config.gateway.allowedOrigins }))
    .use(health({ gateway }))
    .use(mcp(mcpDeps))
    .use(mcpSse(mcpDeps));
  if (as) {
    const oauthDeps: OAuthHttpDeps = {
      as,
      pendings: new PendingAuthorizations(),
      log: log.child("oauth"),
      origins: config.gateway.allowedOrigins,
      peerAddress: deps.peerAddress,
    };
    app
      .use(discovery(oauthDeps))
      .use(registration(oauthDeps))
      .use(authorization(oauthDeps))
      .use(tokenEndpoints(oauthDeps));
  }
  gateway.start();
  const maintenance = as ? deps.clock.setInterval(() => void as.maintain().catch(() => {}), 60_000) : undefined;

  const g = gateway;
  return Object.assign(app, {
    gatehouse: {
      gateway: g,
      authorizationServer: as,
      /** Ends every session, stops every backend and closes the store. */
      shutdown: async () => {
        if (maintenance !== undefined) deps.clock.clearInterval(maintenance);
        await g.shutdown();
        await deps.store?.close();
      },
    },
  });
}

export type GatehouseApp = Awaited<ReturnType<typeof createApp>>;
