// createApp(config, deps): composes the gateway and the HTTP surfaces into one Elysia app. Nothing here touches
// the runtime directly: processes, time and the peer address come in through `deps`, so `app.fetch` (web-standard
// Request → Response) runs under Bun, Deno or a test alike.

import { Elysia } from "elysia";
import { createAuditor } from "./audit.ts";
import { buildChain } from "./auth/chain.ts";
import type { AuthResult } from "./auth/identity.ts";
import type { BackendConfig, Config } from "./config/types.ts";
import { errors } from "./http/errors.ts";
import { health } from "./http/health.ts";
import { mcp } from "./http/mcp.ts";
import { mcpSse } from "./http/mcp-sse.ts";
import type { Logger } from "./log.ts";
import { BackendClient } from "./mcp/backends/backend-client.ts";
import { HttpTransport } from "./mcp/backends/http-transport.ts";
import { StdioTransport } from "./mcp/backends/stdio-transport.ts";
import type { BackendTransport } from "./mcp/backends/transport.ts";
import type { Backend } from "./mcp/catalog.ts";
import { Gateway } from "./mcp/gateway.ts";
import type { Clock, Spawner } from "./platform/types.ts";
import { Acl } from "./policy/acl.ts";

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

export function createApp(config: Config, deps: AppDeps) {
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

  const chain = buildChain(config.auth);
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

  const mcpDeps = { gateway, authenticate, config: config.gateway, log: log.child("http") };
  const app = new Elysia({ name: "gatehouse" })
    .use(errors({ log: log.child("http") }))
    .use(health({ gateway }))
    .use(mcp(mcpDeps))
    .use(mcpSse(mcpDeps));
  gateway.start();

  const g = gateway;
  return Object.assign(app, {
    gatehouse: {
      gateway: g,
      /** Ends every session and stops every backend. */
      shutdown: () => g.shutdown(),
    },
  });
}

export type GatehouseApp = ReturnType<typeof createApp>;
