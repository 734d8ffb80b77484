// An HTTP MCP server that Gatehouse starts itself (allardy/mcp-oauth-proxy's MCP_SPAWN_CMD + MCP_SPAWN_PORT): the
// process is spawned, Gatehouse waits until its port answers HTTP, then speaks Streamable HTTP to it like to any
// other HTTP backend. When the process exits, the connection is reported closed, so the backend client restarts it
// with backoff on next use; on close the process is stopped (SIGTERM, then SIGKILL).

import type { Logger } from "../../log.ts";
import type { ChildProcess, Spawner, SpawnOptions } from "../../platform/types.ts";
import type { JsonRpcMessage } from "../jsonrpc.ts";
import type { HttpTransport } from "./http-transport.ts";
import { forEachLine, reapDescendants, stopChild } from "./stdio-transport.ts";
import { type BackendTransport, type SendOptions, TransportError, type TransportHandlers } from "./transport.ts";

export interface SpawnedHttpOptions {
  spawn: SpawnOptions;
  /** Where the process listens (http://127.0.0.1:<port><path>). */
  url: string;
  /** How long the process may take to open its port. */
  readyTimeoutMs: number;
  fetch?: typeof fetch;
}

const POLL_MS = 150;

export class SpawnedHttpTransport implements BackendTransport {
  readonly abortsRequests = true;
  private child: ChildProcess | undefined;
  /** Children close() is stopping: their exit is no crash to report. */
  private readonly stopping = new WeakSet<ChildProcess>();
  private closing = false;

  constructor(
    private readonly name: string,
    private readonly options: SpawnedHttpOptions,
    private readonly spawner: Spawner,
    private readonly http: HttpTransport,
    private readonly log: Logger,
  ) {}

  async start(handlers: TransportHandlers): Promise<void> {
    let child: ChildProcess;
    try {
      child = this.spawner.spawn(this.options.spawn);
    } catch (e) {
      throw new TransportError(`could not start "${this.options.spawn.command}": ${(e as Error).message}`);
    }
    this.child = child;
    this.closing = false;
    this.log.info("backend process started; waiting for its port", {
      backend: this.name,
      pid: child.pid,
      url: this.options.url,
    });
    void forEachLine(child.stdout, (line) => this.log.info(line, { backend: this.name, stream: "stdout" }));
    void forEachLine(child.stderr, (line) => this.log.info(line, { backend: this.name, stream: "stderr" }));
    let exited: string | undefined;
    void child.exited.then(async (code) => {
      exited = code === null ? "was killed by a signal" : `exited with code ${code}`;
      if (this.child === child) this.child = undefined;
      // Stopped by close(): expected. (Not `this.closing`: a restart may have begun since, resetting it.)
      if (this.stopping.has(child)) return;
      this.log.warn(`backend process ${exited}`, { backend: this.name, pid: child.pid });
      // What it started must not keep the port the restarted process will need.
      await reapDescendants(child);
      await this.http.close();
      handlers.onClose(`process ${exited}`);
    });
    await this.waitForPort(() => exited);
    await this.http.start(handlers);
  }

  /** Any HTTP answer on the URL (even 404 or 405) means the server listens. */
  private async waitForPort(exited: () => string | undefined): Promise<void> {
    const fetchImpl = this.options.fetch ?? fetch;
    const deadline = Date.now() + this.options.readyTimeoutMs;
    for (;;) {
      const why = exited();
      if (why) throw new TransportError(`the process ${why} before listening on ${this.options.url}`);
      if (this.closing) throw new TransportError("closed while starting");
      try {
        const r = await fetchImpl(this.options.url, { method: "GET", signal: AbortSignal.timeout(1000) });
        await r.body?.cancel();
        return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        const child = this.child;
        if (child) {
          this.stopping.add(child);
          await stopChild(child);
        }
        throw new TransportError(
          `the process did not open ${this.options.url} within ${this.options.readyTimeoutMs} ms (check port and path)`,
        );
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }

  send(message: JsonRpcMessage, options?: SendOptions): Promise<void> {
    return this.http.send(message, options);
  }

  setProtocolVersion(version: string): void {
    this.http.setProtocolVersion(version);
  }

  async close(): Promise<void> {
    this.closing = true;
    // The child of now: by the time the session is closed a restart may have started another, which is not ours.
    const child = this.child;
    if (child) this.stopping.add(child);
    await this.http.close();
    if (child) await stopChild(child);
  }

  describe(): string {
    return this.child ? `spawned http (pid ${this.child.pid}) ${this.options.url}` : "spawned http (not running)";
  }
}
