// The backends of servers.json as clients: a transport per kind (stdio; HTTP; a spawned process that serves HTTP),
// each wrapped in a BackendClient. The composition root hands in the runtime's pieces (spawner, fetch, clock) and
// where the backends' broadcasts go; nothing else here knows about the app.

import type { BackendConfig } from "../../config/types.ts";
import type { Logger } from "../../log.ts";
import type { Clock, Spawner } from "../../platform/types.ts";
import type { Backend } from "../catalog.ts";
import type { JsonRpcNotification } from "../jsonrpc.ts";
import { BackendClient } from "./backend-client.ts";
import { HttpTransport } from "./http-transport.ts";
import { SpawnedHttpTransport } from "./spawned-http-transport.ts";
import { StdioTransport } from "./stdio-transport.ts";
import type { BackendTransport } from "./transport.ts";

export interface BackendDeps {
  log: Logger;
  clock: Clock;
  spawner: Spawner;
  version: string;
  /** Environment given to spawned backends, under their configured `env`. */
  childEnv?: Record<string, string>;
  /** fetch used to reach HTTP backends. */
  fetch?: typeof fetch;
  /** Messages that belong to no request (list_changed, resources/updated). */
  onBroadcast(backend: string, message: JsonRpcNotification): void;
  /** A backend (re)started: what was cached about it is stale. */
  onReady(backend: string): void;
}

export function transportFor(b: BackendConfig, deps: BackendDeps): BackendTransport {
  const log = deps.log;
  const t = b.transport;
  const spawn = (s: { command: string; args: string[]; env: Record<string, string>; cwd?: string }) => ({
    command: s.command,
    args: s.args,
    env: { ...deps.childEnv, ...s.env },
    ...(s.cwd ? { cwd: s.cwd } : {}),
  });
  if (t.kind === "stdio") return new StdioTransport(b.name, spawn(t), deps.spawner, log);
  const fetchOption = deps.fetch ? { fetch: deps.fetch } : {};
  const url = t.kind === "http" ? t.url : `http://127.0.0.1:${t.port}${t.path}`;
  const http = new HttpTransport(
    b.name,
    { url, headers: t.headers, connectTimeoutMs: b.startupTimeoutMs, ...fetchOption },
    log,
  );
  if (t.kind === "http") return http;
  const options = { spawn: spawn(t), url, readyTimeoutMs: b.startupTimeoutMs, ...fetchOption };
  return new SpawnedHttpTransport(b.name, options, deps.spawner, http, log);
}

export function createBackends(configs: BackendConfig[], deps: BackendDeps): Backend[] {
  return configs.map((b) => ({
    config: b,
    client: new BackendClient({
      name: b.name,
      transport: transportFor(b, deps),
      clock: deps.clock,
      log: deps.log,
      version: deps.version,
      requestTimeoutMs: b.requestTimeoutMs,
      startupTimeoutMs: b.startupTimeoutMs,
      onBroadcast: deps.onBroadcast,
      onReady: deps.onReady,
    }),
  }));
}
