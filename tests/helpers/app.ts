// Builds Gatehouse in-process from a config object, for tests through app.handle(Request): real backends, real
// auth and ACL, no listening socket. `peer` sets the address a request appears to come from.

import { type AppDeps, createApp, type GatehouseApp } from "../../src/app.ts";
import { parseConfig } from "../../src/config/load.ts";
import { memoryLogger } from "../../src/log.ts";
import { bunPasswords, bunSpawner } from "../../src/platform/bun.ts";
import { systemClock } from "../../src/platform/types.ts";
import { ROOT } from "./paths.ts";

export interface TestApp {
  app: GatehouseApp;
  lines: string[];
  request(path: string, init?: RequestInit & { peer?: string }): Promise<Response>;
  /** POSTs one JSON-RPC message (object or raw text) to /mcp. */
  rpc(body: unknown, headers?: Record<string, string>): Promise<Response>;
  /** initialize + notifications/initialized; returns the session id. */
  session(headers?: Record<string, string>, protocolVersion?: string): Promise<string>;
  close(): Promise<void>;
}

export interface TestAppOptions {
  env?: Record<string, string>;
  deps?: Partial<AppDeps>;
}

export async function testApp(config: unknown, options: TestAppOptions = {}): Promise<TestApp> {
  const fullEnv = { ...(process.env as Record<string, string>), ...options.env };
  const parsed = parseConfig(JSON.stringify(config), { source: "test", dir: ROOT, env: fullEnv });
  const log = memoryLogger();
  const peers = new WeakMap<Request, string>();
  const app = await createApp(parsed, {
    log,
    clock: systemClock,
    spawner: bunSpawner,
    passwords: bunPasswords,
    version: "0.0.0-test",
    peerAddress: (r) => peers.get(r),
    childEnv: fullEnv,
    ...options.deps,
  });
  const request = (path: string, init: RequestInit & { peer?: string } = {}) => {
    const { peer, ...rest } = init;
    const req = new Request(`http://127.0.0.1:8080${path}`, rest);
    peers.set(req, peer ?? "127.0.0.1");
    return app.gatehouse.handle(req);
  };
  const rpc = (body: unknown, headers: Record<string, string> = {}) =>
    request("/mcp", {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...headers },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });
  return {
    app,
    lines: log.lines,
    request,
    rpc,
    async session(headers = {}, protocolVersion = "2025-11-25") {
      const res = await rpc(
        {
          jsonrpc: "2.0",
          id: 0,
          method: "initialize",
          params: { protocolVersion, capabilities: {}, clientInfo: { name: "test", version: "1" } },
        },
        headers,
      );
      if (res.status !== 200) throw new Error(`initialize failed: ${res.status} ${await res.text()}`);
      const id = res.headers.get("mcp-session-id") as string;
      await rpc({ jsonrpc: "2.0", method: "notifications/initialized" }, { ...headers, "mcp-session-id": id });
      return id;
    },
    close: () => app.gatehouse.shutdown(),
  };
}
