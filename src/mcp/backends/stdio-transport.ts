// MCP stdio transport (MCP basic/transports "stdio"): newline-delimited JSON-RPC on a child's stdin/stdout;
// stderr is the backend's log, forwarded line by line with its name.

import type { Logger } from "../../log.ts";
import type { ChildProcess, Spawner, SpawnOptions } from "../../platform/types.ts";
import { classify, type JsonRpcMessage } from "../jsonrpc.ts";
import { type BackendTransport, TransportError, type TransportHandlers } from "./transport.ts";

/** How long a child gets between SIGTERM and SIGKILL. */
const KILL_GRACE_MS = 2000;

export async function forEachLine(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void): Promise<void> {
  const decoder = new TextDecoder();
  let pending = "";
  const reader = stream.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      pending += decoder.decode(value, { stream: true });
      let nl = pending.indexOf("\n");
      while (nl >= 0) {
        const line = pending.slice(0, nl).replace(/\r$/, "");
        pending = pending.slice(nl + 1);
        if (line.length > 0) onLine(line);
        nl = pending.indexOf("\n");
      }
    }
    if (pending.trim().length > 0) onLine(pending);
  } catch {
    // The pipe closes when the process dies; the exit handler reports that.
  } finally {
    reader.releaseLock();
  }
}

/**
 * SIGTERM to the child and what it started, then SIGKILL after a grace period to whatever is left of them; resolves
 * once the child is gone and its descendants are gone or killed.
 */
export async function stopChild(child: ChildProcess): Promise<void> {
  child.kill("SIGTERM");
  const deadline = Date.now() + KILL_GRACE_MS;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const killed = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      child.kill("SIGKILL");
      resolve();
    }, KILL_GRACE_MS);
  });
  await Promise.race([child.exited.then(() => {}), killed]);
  clearTimeout(timer);
  await child.exited;
  // A wrapper (sh, npx) often exits at SIGTERM before the server under it has: give those the rest of the grace.
  await reapDescendants(child, deadline);
}

/**
 * After the child itself exited (stopped, or on its own): what it started and left running gets SIGTERM, then
 * SIGKILL at `deadline` — an orphaned server would hold the port its restarted child needs, and outlive Gatehouse.
 */
export async function reapDescendants(child: ChildProcess, deadline = Date.now() + KILL_GRACE_MS): Promise<void> {
  if (!child.descendantsAlive?.()) return;
  child.kill("SIGTERM");
  while (child.descendantsAlive()) {
    if (Date.now() >= deadline) {
      child.kill("SIGKILL");
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

export class StdioTransport implements BackendTransport {
  private child: ChildProcess | undefined;
  private closing = false;

  constructor(
    private readonly name: string,
    private readonly options: SpawnOptions,
    private readonly spawner: Spawner,
    private readonly log: Logger,
  ) {}

  async start(handlers: TransportHandlers): Promise<void> {
    let child: ChildProcess;
    try {
      child = this.spawner.spawn(this.options);
    } catch (e) {
      throw new TransportError(`could not start "${this.options.command}": ${(e as Error).message}`);
    }
    this.child = child;
    this.closing = false;
    this.log.info("backend process started", { backend: this.name, pid: child.pid, command: this.options.command });

    void forEachLine(child.stdout, (line) => {
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        this.log.warn("backend wrote a line that is not JSON to stdout (ignored)", {
          backend: this.name,
          line: line.slice(0, 200),
        });
        return;
      }
      if (classify(value) === null) {
        this.log.warn("backend wrote JSON that is not JSON-RPC to stdout (ignored)", { backend: this.name });
        return;
      }
      handlers.onMessage(value as JsonRpcMessage);
    });
    void forEachLine(child.stderr, (line) => this.log.info(line, { backend: this.name, stream: "stderr" }));
    void child.exited.then((code) => {
      if (this.child === child) this.child = undefined;
      const reason = code === null ? "was killed by a signal" : `exited with code ${code}`;
      if (!this.closing) {
        this.log.warn(`backend process ${reason}`, { backend: this.name, pid: child.pid });
        void reapDescendants(child);
      }
      handlers.onClose(`process ${reason}`);
    });
  }

  async send(message: JsonRpcMessage): Promise<void> {
    const child = this.child;
    if (!child) throw new TransportError("process is not running");
    try {
      await child.write(`${JSON.stringify(message)}\n`);
    } catch (e) {
      throw new TransportError(`could not write to the process: ${(e as Error).message}`);
    }
  }

  setProtocolVersion(): void {}

  async close(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.closing = true;
    await stopChild(child);
  }

  describe(): string {
    return this.child ? `stdio (pid ${this.child.pid})` : "stdio (not running)";
  }
}
