// One connection to one backend, shared by every client session: the MCP initialize handshake (MCP basic/lifecycle),
// JSON-RPC id multiplexing so calls from many clients run in parallel, timeouts, crash detection with restart
// backoff, and routing of what the backend sends back to the client request it belongs to.

import { type Deadline, Deadlines } from "../../deadlines.ts";
import type { Logger } from "../../log.ts";
import type { Clock } from "../../platform/types.ts";
import type { Cancellation } from "../cancellation.ts";
import {
  ErrorCode,
  errorResponse,
  isFailure,
  type JsonRpcId,
  type JsonRpcMessage,
  type JsonRpcNotification,
  type JsonRpcRequest,
  type JsonRpcResponse,
  RpcError,
  successResponse,
} from "../jsonrpc.ts";
import { type BackendTransport, type SendOptions, TransportError } from "./transport.ts";

/** The protocol version Gatehouse asks backends for; older backends answer with their own and we follow. */
export const BACKEND_PROTOCOL_VERSION = "2025-11-25";

/** Who is waiting for a request: messages the backend sends about that request are handed to `deliver`. */
export interface RequestOwner {
  /** Identifies the client session; used to decide whether unattributed messages have a single possible owner. */
  readonly sessionId: string;
  deliver(message: JsonRpcNotification | JsonRpcRequest): void;
}

export interface BackendClientOptions {
  name: string;
  transport: BackendTransport;
  clock: Clock;
  log: Logger;
  version: string;
  /** Default deadline for one request, reset whenever the backend reports progress on it. */
  requestTimeoutMs: number;
  /** Deadline for starting the backend and completing initialize. */
  startupTimeoutMs: number;
  /** Messages the backend sends that belong to no request in particular (list_changed, resources/updated). */
  onBroadcast(backend: string, message: JsonRpcNotification): void;
  /** Called after every (re)start, so caches of lists can be dropped. */
  onReady?(backend: string): void;
}

export interface InitializeInfo {
  protocolVersion: string;
  capabilities: Record<string, unknown>;
  serverInfo: { name?: string; version?: string };
  instructions?: string;
}

export interface RequestOptions {
  owner?: RequestOwner;
  timeoutMs?: number;
  /** The client's request this one serves: cancelling it cancels this one (the backend is told). */
  cancellation?: Cancellation;
  /** Extra HTTP headers for this request (forward_identity). */
  headers?: Record<string, string>;
}

interface Pending {
  method: string;
  owner: RequestOwner | undefined;
  resolve(result: Record<string, unknown>): void;
  reject(error: RpcError): void;
  deadline: Deadline | undefined;
  timeoutMs: number;
  progressToken: string | number | undefined;
  /** Aborts what the transport still does for the request (its fetch), when the transport can. */
  abort: AbortController | undefined;
  startedAt: number;
  /** The backend took the request (the transport's send resolved): its answer is on its way, or lost with the session. */
  accepted?: boolean;
}

type State =
  | { kind: "idle" }
  | { kind: "starting"; ready: Promise<void> }
  | { kind: "ready"; since: number }
  | { kind: "stopped" };

/** Delay before the nth consecutive restart: immediately, then 1 s, 2 s, 4 s … up to 30 s. */
export function restartDelayMs(consecutiveFailures: number): number {
  if (consecutiveFailures <= 1) return 0;
  return Math.min(30_000, 1000 * 2 ** (consecutiveFailures - 2));
}

/** A backend that stayed up this long is considered healthy again: its failure count resets. */
const STABLE_AFTER_MS = 60_000;

const BROADCAST_METHODS = new Set([
  "notifications/tools/list_changed",
  "notifications/resources/list_changed",
  "notifications/prompts/list_changed",
  "notifications/resources/updated",
]);

/** Errors of requests refused because the backend no longer knew our session (retried once by request()). */
const SESSION_LOST = new WeakSet<object>();

export class BackendClient {
  readonly name: string;
  private state: State = { kind: "idle" };
  private nextId = 1;
  private pending = new Map<JsonRpcId, Pending>();
  private byProgressToken = new Map<string | number, Pending>();
  private failures = 0;
  private notBefore = 0;
  private lastError: string | undefined;
  private lastUsed = 0;
  private generation = 0;
  /** Since when requests to a ready backend fail to connect (unreachable()); undefined while they get through. */
  private unreachableSince: number | undefined;
  /** Usage since this client was created (across restarts), for the adaptive idle timeout. */
  requestCount = 0;
  readonly firstUsed: number;
  info: InitializeInfo | undefined;

  /** Every request's deadline on one timer (deadlines.ts). */
  private readonly deadlines: Deadlines;

  constructor(private readonly o: BackendClientOptions) {
    this.deadlines = new Deadlines(o.clock);
    this.name = o.name;
    this.firstUsed = o.clock.now();
  }

  get idleForMs(): number {
    return this.o.clock.now() - this.lastUsed;
  }

  get status(): "idle" | "starting" | "ready" | "backoff" | "stopped" {
    if (this.state.kind === "idle" && this.o.clock.now() < this.notBefore) return "backoff";
    return this.state.kind;
  }

  get connected(): boolean {
    return this.state.kind === "ready" && this.unreachableSince === undefined;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  get error(): string | undefined {
    return this.lastError;
  }

  describe(): string {
    return this.o.transport.describe();
  }

  /** Starts the backend if needed and waits until it has answered initialize. */
  async ensureReady(): Promise<void> {
    this.lastUsed = this.o.clock.now();
    const s = this.state;
    if (s.kind === "ready") return;
    if (s.kind === "starting") return s.ready;
    if (s.kind === "stopped") throw new RpcError(ErrorCode.ConnectionClosed, `backend "${this.name}" is stopped`);
    const wait = this.notBefore - this.o.clock.now();
    if (wait > 0) {
      throw new RpcError(
        ErrorCode.ConnectionClosed,
        `backend "${this.name}" is unavailable (${this.lastError ?? "it failed"}); next restart attempt in ${Math.ceil(wait / 1000)} s`,
      );
    }
    const ready = this.start();
    this.state = { kind: "starting", ready };
    return ready;
  }

  private async start(): Promise<void> {
    const generation = ++this.generation;
    try {
      await this.o.transport.start({
        onMessage: (m, relatedTo) => {
          if (generation === this.generation) this.onMessage(m, relatedTo);
        },
        onClose: (reason) => {
          if (generation === this.generation) this.onClosed(reason);
        },
      });
      const result = await this.rawRequest(
        "initialize",
        {
          protocolVersion: BACKEND_PROTOCOL_VERSION,
          capabilities: { sampling: {}, elicitation: {}, roots: { listChanged: true } },
          clientInfo: { name: "gatehouse", version: this.o.version },
        },
        { timeoutMs: this.o.startupTimeoutMs },
      );
      const info: InitializeInfo = {
        protocolVersion: typeof result.protocolVersion === "string" ? result.protocolVersion : BACKEND_PROTOCOL_VERSION,
        capabilities: (result.capabilities as Record<string, unknown>) ?? {},
        serverInfo: (result.serverInfo as InitializeInfo["serverInfo"]) ?? {},
      };
      if (typeof result.instructions === "string") info.instructions = result.instructions;
      this.info = info;
      this.o.transport.setProtocolVersion(info.protocolVersion);
      await this.o.transport.send({ jsonrpc: "2.0", method: "notifications/initialized" });
      if (generation !== this.generation) throw new RpcError(ErrorCode.ConnectionClosed, "restarted during start-up");
      this.state = { kind: "ready", since: this.o.clock.now() };
      this.unreachableSince = undefined;
      this.lastError = undefined;
      this.o.log.info("backend ready", {
        backend: this.name,
        transport: this.o.transport.describe(),
        protocol: info.protocolVersion,
        server: info.serverInfo.name,
      });
      this.o.onReady?.(this.name);
    } catch (e) {
      const message = e instanceof RpcError || e instanceof TransportError ? e.message : String(e);
      this.failures++;
      this.lastError = `start-up failed: ${message}`;
      this.notBefore = this.o.clock.now() + restartDelayMs(this.failures);
      this.o.log.error("backend failed to start", { backend: this.name, error: message, attempt: this.failures });
      this.generation++;
      this.state = { kind: "idle" };
      await this.o.transport.close().catch(() => {});
      throw new RpcError(ErrorCode.ConnectionClosed, `backend "${this.name}" failed to start: ${message}`);
    }
  }

  /**
   * Sends a request and resolves with its result. The owner receives the backend's notifications and requests
   * about this call (progress, logging, sampling…). Errors from the backend come back as RpcError with its code.
   */
  async request(
    method: string,
    params: Record<string, unknown> | undefined,
    options: RequestOptions = {},
  ): Promise<Record<string, unknown>> {
    await this.ensureReady();
    try {
      return await this.rawRequest(method, params, options);
    } catch (e) {
      // HTTP 404 on our session (the backend restarted): the request was not processed, so it is sent once more on a
      // new session — MCP transports, Session Management: the client MUST start a new session on 404.
      if (!SESSION_LOST.has(e as object)) throw e;
      await this.ensureReady();
      return this.rawRequest(method, params, options);
    }
  }

  private rawRequest(
    method: string,
    params: Record<string, unknown> | undefined,
    options: RequestOptions,
  ): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    this.requestCount++;
    this.lastUsed = this.o.clock.now();
    const message: JsonRpcRequest = { jsonrpc: "2.0", id, method };
    if (params) message.params = params;
    const meta = params?._meta as Record<string, unknown> | undefined;
    const progressToken = meta?.progressToken as string | number | undefined;
    const timeoutMs = options.timeoutMs ?? this.o.requestTimeoutMs;
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      const p: Pending = {
        method,
        owner: options.owner,
        resolve,
        reject,
        deadline: undefined,
        timeoutMs,
        progressToken,
        abort: this.o.transport.abortsRequests ? new AbortController() : undefined,
        startedAt: this.o.clock.now(),
      };
      this.pending.set(id, p);
      if (progressToken !== undefined) this.byProgressToken.set(progressToken, p);
      this.armTimer(id, p);
      options.cancellation?.onCancel(() => this.cancel(id, "the client cancelled the request"));
      const sendOptions: SendOptions = p.abort ? { signal: p.abort.signal } : {};
      if (options.headers) sendOptions.headers = options.headers;
      // Only what happens to the session this request went out on may change the client's state: an answer about
      // an older session (a stale 404, a failure of a connection since replaced) must not tear down a newer one.
      const generation = this.generation;
      this.o.transport.send(message, sendOptions).then(
        () => {
          p.accepted = true;
          this.reachable(generation);
        },
        (e: unknown) => {
          const err = e as TransportError;
          const error = new RpcError(ErrorCode.ConnectionClosed, `backend "${this.name}": ${err.message}`);
          if (err instanceof TransportError && err.options.sessionLost) {
            SESSION_LOST.add(error); // retried once by request(), on the session that replaces it
            if (generation === this.generation) this.restartSoon("session lost");
          } else if (err instanceof TransportError && err.options.unreachable && generation === this.generation) {
            this.unreachable(err.message);
          }
          this.settle(id, undefined, error);
        },
      );
    });
  }

  private armTimer(id: JsonRpcId, p: Pending): void {
    if (p.timeoutMs <= 0) return;
    if (p.deadline) {
      this.deadlines.postpone(p.deadline, p.timeoutMs);
      return;
    }
    p.deadline = this.deadlines.add(p.timeoutMs, () => {
      this.o.log.warn("backend request timed out", { backend: this.name, method: p.method, timeout_ms: p.timeoutMs });
      void this.notify("notifications/cancelled", { requestId: id, reason: "timed out in Gatehouse" }).catch(() => {});
      this.settle(
        id,
        undefined,
        new RpcError(
          ErrorCode.RequestTimeout,
          `backend "${this.name}" did not answer ${p.method} within ${Math.round(p.timeoutMs / 1000)} s`,
        ),
      );
    });
  }

  /** Cancels a request in flight (MCP basic/utilities/cancellation): the backend is told, the caller gets an error. */
  cancel(id: JsonRpcId, reason: string): void {
    if (!this.pending.has(id)) return;
    void this.notify("notifications/cancelled", { requestId: id, reason }).catch(() => {});
    this.settle(id, undefined, new RpcError(ErrorCode.RequestTimeout, `request cancelled: ${reason}`));
  }

  async notify(method: string, params?: Record<string, unknown>): Promise<void> {
    if (this.state.kind !== "ready") return;
    const message: JsonRpcNotification = { jsonrpc: "2.0", method };
    if (params) message.params = params;
    await this.o.transport.send(message);
  }

  /** Answers a request the backend sent (sampling, elicitation, roots/list). */
  async respond(response: JsonRpcResponse): Promise<void> {
    if (this.state.kind !== "ready") return;
    await this.o.transport.send(response);
  }

  private settle(id: JsonRpcId, result: Record<string, unknown> | undefined, error?: RpcError): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    if (p.progressToken !== undefined) this.byProgressToken.delete(p.progressToken);
    this.deadlines.cancel(p.deadline);
    if (error) {
      p.abort?.abort(); // stop whatever the transport is still doing for it
      p.reject(error);
    } else p.resolve(result ?? {});
  }

  private onMessage(m: JsonRpcMessage, relatedTo?: JsonRpcId): void {
    if (!("method" in m)) {
      const r = m as JsonRpcResponse;
      if (r.id === null) return;
      if (isFailure(r)) this.settle(r.id, undefined, new RpcError(r.error.code, r.error.message, r.error.data));
      else this.settle(r.id, r.result);
      return;
    }
    if ("id" in m) {
      this.onServerRequest(m as JsonRpcRequest, relatedTo);
      return;
    }
    const n = m as JsonRpcNotification;
    if (n.method === "notifications/progress") {
      const p = this.byProgressToken.get(n.params?.progressToken as string | number);
      if (!p) return;
      const id = [...this.pending.entries()].find(([, v]) => v === p)?.[0];
      if (id !== undefined) this.armTimer(id, p); // progress resets the deadline
      p.owner?.deliver(n);
      return;
    }
    if (BROADCAST_METHODS.has(n.method)) {
      this.o.onBroadcast(this.name, n);
      return;
    }
    if (n.method === "notifications/cancelled") return; // we never have long-running work the backend can cancel
    const owner = this.ownerFor(relatedTo);
    if (owner) owner.deliver(n);
    else
      this.o.log.debug("backend notification with no client to deliver to", { backend: this.name, method: n.method });
  }

  private onServerRequest(req: JsonRpcRequest, relatedTo?: JsonRpcId): void {
    const reply = (r: JsonRpcResponse) => this.respond(r).catch(() => {});
    if (req.method === "ping") return void reply(successResponse(req.id, {}));
    const owner = this.ownerFor(relatedTo);
    if (owner) {
      owner.deliver(req);
      return;
    }
    if (req.method === "roots/list") return void reply(successResponse(req.id, { roots: [] }));
    this.o.log.warn("backend sent a request that cannot be attributed to one client session", {
      backend: this.name,
      method: req.method,
    });
    void reply(
      errorResponse(
        req.id,
        ErrorCode.InternalError,
        "Gatehouse cannot tell which client this request is for: it must be sent while exactly one client session has a call in flight",
      ),
    );
  }

  /**
   * The owner of a message: the request whose stream carried it, or else — for transports that cannot say
   * (stdio, legacy SSE) — the latest call in flight, but only when every call in flight belongs to one session.
   * Anything ambiguous is not delivered: a message must never reach another user's session.
   */
  private ownerFor(relatedTo?: JsonRpcId): RequestOwner | undefined {
    if (relatedTo !== undefined) return this.pending.get(relatedTo)?.owner;
    let owner: RequestOwner | undefined;
    for (const p of this.pending.values()) {
      if (!p.owner) continue;
      if (owner && owner.sessionId !== p.owner.sessionId) return undefined;
      owner = p.owner;
    }
    return owner;
  }

  private onClosed(reason: string): void {
    this.generation++;
    // When stopped, or during start-up (where start() does the bookkeeping), the pending requests just fail.
    if (this.state.kind === "stopped" || this.state.kind === "starting") {
      this.failAll(`backend "${this.name}" ${reason}`);
      return;
    }
    const wasReady = this.state.kind === "ready";
    const since = this.state.kind === "ready" ? this.state.since : this.o.clock.now();
    if (this.o.clock.now() - since > STABLE_AFTER_MS) this.failures = 0;
    this.failures++;
    this.lastError = reason;
    this.notBefore = this.o.clock.now() + restartDelayMs(this.failures);
    this.state = { kind: "idle" };
    this.info = undefined;
    this.failAll(`backend "${this.name}" ${reason}`);
    if (wasReady) this.o.log.warn("backend connection lost; it restarts on next use", { backend: this.name, reason });
  }

  private failAll(message: string): void {
    for (const [id, p] of [...this.pending]) {
      this.settle(id, undefined, new RpcError(ErrorCode.ConnectionClosed, `${message} while handling ${p.method}`));
    }
  }

  /**
   * A backend that was up and could not be reached by a request: health and metrics say it is not connected, with
   * the error, until a request or message gets through again. Nothing is torn down — the other calls in flight go on,
   * and a backend that comes back as a new process answers 404 on our session, which reconnects (restartSoon).
   */
  private unreachable(message: string): void {
    if (this.state.kind !== "ready") return;
    if (this.unreachableSince === undefined) {
      this.o.log.warn("the backend cannot be reached", { backend: this.name, error: message });
      this.unreachableSince = this.o.clock.now();
    }
    this.lastError = message;
  }

  private reachable(generation: number): void {
    if (this.unreachableSince === undefined || generation !== this.generation) return;
    this.o.log.info("the backend can be reached again", {
      backend: this.name,
      after_s: Math.round((this.o.clock.now() - this.unreachableSince) / 1000),
    });
    this.unreachableSince = undefined;
    this.lastError = undefined;
  }

  private restartSoon(reason: string): void {
    if (this.state.kind !== "ready") return;
    this.o.log.info("reconnecting to backend", { backend: this.name, reason });
    this.generation++;
    this.state = { kind: "idle" };
    this.info = undefined;
    // Requests the backend had taken on the lost session will never be answered (closing aborts their streams): they
    // fail now, not at their deadline — and are not sent again, since the backend may have acted on them. Those it had
    // not taken yet get their own 404 and are retried.
    for (const [id, p] of [...this.pending]) {
      if (!p.accepted) continue;
      this.settle(
        id,
        undefined,
        new RpcError(
          ErrorCode.ConnectionClosed,
          `backend "${this.name}" lost our session (${reason}) while handling ${p.method}`,
        ),
      );
    }
    void this.o.transport.close().catch(() => {});
  }

  /** Stops a backend that had no request for `idleMs` (0 = never). Returns true when it was stopped. */
  async reapIfIdle(idleMs: number): Promise<boolean> {
    if (idleMs <= 0 || this.state.kind !== "ready" || this.pending.size > 0) return false;
    if (this.o.clock.now() - this.lastUsed < idleMs) return false;
    this.o.log.info("stopping idle backend", { backend: this.name, idle_ms: this.o.clock.now() - this.lastUsed });
    this.generation++;
    this.state = { kind: "idle" };
    this.info = undefined;
    await this.o.transport.close();
    return true;
  }

  /** Stops for good (shutdown): pending requests fail, the process is killed. */
  async stop(): Promise<void> {
    this.state = { kind: "stopped" };
    this.generation++;
    this.failAll(`backend "${this.name}" stopped because Gatehouse is shutting down`);
    await this.o.transport.close();
  }
}
