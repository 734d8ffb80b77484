// The MCP sessions of every route (MCP basic/transports, "Session Management"), in one registry: opened for a
// principal, found only by that principal (another one's session is unknown: MCP security best practices, "Session
// Hijacking"), kept alive with SSE comments, reaped when idle, counted for /health and drained at shutdown. With
// replicas (backplane.ts) a session opened elsewhere — even by a replica that has died — is continued from the
// shared state, and what another replica says about a session this one holds (it ended, a request was cancelled,
// its stream moved, its log level changed) is acted on here.

import { type Identity, principalKey } from "../auth/identity.ts";
import type { GatewayConfig } from "../config/types.ts";
import { randomId } from "../crypto.ts";
import type { Logger } from "../log.ts";
import type { Clock, TimerHandle } from "../platform/types.ts";
import type { BackplaneMessage, SessionBackplane, SharedSessionMeta } from "./backplane.ts";
import { ErrorCode, type JsonRpcId, type JsonRpcResponse, RpcError } from "./jsonrpc.ts";
import { ClientSession, STANDALONE_STREAM } from "./session.ts";

/** Newest first. 2024-11-05 is only spoken on the HTTP+SSE transport at /mcp/sse. */
export const SUPPORTED_PROTOCOL_VERSIONS = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"] as const;
export const LATEST_PROTOCOL_VERSION = SUPPORTED_PROTOCOL_VERSIONS[0];

/** What the route a session belongs to must do for it. */
export interface RouteHooks {
  /** A client's answer, posted through another replica, to a request this one forwarded from a backend. */
  answer(session: ClientSession, response: JsonRpcResponse): Promise<void>;
  /** Another replica passed on an unsubscription made through it. */
  unsubscribe(session: ClientSession, uri: string): void;
  /** The session ends here: what the route holds for it (subscriptions upstream) goes too. */
  ended(session: ClientSession): void;
}

export interface SessionRegistryDeps {
  clock: Clock;
  log: Logger;
  /** Replaced by `configure` on reload. */
  config: GatewayConfig;
  backplane?: SessionBackplane;
}

export class SessionRegistry {
  private readonly sessions = new Map<string, ClientSession>();
  private readonly routeOf = new Map<string, string>();
  private readonly routes = new Map<string, RouteHooks>();
  /** Shared sessions being loaded, so concurrent requests get the same local copy. */
  private readonly loading = new Map<string, Promise<ClientSession | undefined>>();
  private timers: TimerHandle[] = [];

  constructor(private readonly deps: SessionRegistryDeps) {
    deps.backplane?.onMessage((m) => this.onBackplane(m));
  }

  /** A reloaded configuration's limits and timings (sessions stay open). */
  configure(config: GatewayConfig): void {
    const keepaliveChanged = config.sseKeepaliveMs !== this.deps.config.sseKeepaliveMs;
    this.deps.config = config;
    if (keepaliveChanged && this.timers.length > 0) {
      this.stopTimers();
      this.start();
    }
  }

  /** Tells every session something changed for all (a reload: `notifications/tools/list_changed` and the like). */
  announce(method: string): void {
    for (const s of this.sessions.values()) s.send(STANDALONE_STREAM, { jsonrpc: "2.0", method });
  }

  /** A route's gateway registers what it does for its sessions. */
  register(route: string, hooks: RouteHooks): void {
    this.routes.set(route, hooks);
  }

  get count(): number {
    return this.sessions.size;
  }

  /** SSE streams open to clients, every session's (metrics). */
  get streams(): number {
    let n = 0;
    for (const s of this.sessions.values()) for (const _ of s.openSinks()) n++;
    return n;
  }

  /** Requests in flight in every session (what a graceful shutdown waits for). */
  get inFlight(): number {
    let n = 0;
    for (const s of this.sessions.values()) n += s.inFlight.size;
    return n;
  }

  /** The sessions of one route that this replica holds. */
  *of(route: string): Generator<ClientSession> {
    for (const [id, s] of this.sessions) if (this.routeOf.get(id) === route) yield s;
  }

  get(id: string): ClientSession | undefined {
    return this.sessions.get(id);
  }

  /** Starts the periodic work: idle sessions reaped, SSE keep-alives sent. */
  start(): void {
    const { clock, config } = this.deps;
    this.timers.push(clock.setInterval(() => this.reap(), 30_000));
    if (config.sseKeepaliveMs > 0) {
      this.timers.push(
        clock.setInterval(() => {
          for (const s of this.sessions.values()) for (const sink of s.openSinks()) sink.ping?.();
        }, config.sseKeepaliveMs),
      );
    }
  }

  /** Opens a session for a principal; initialize completes it (and shares it). */
  open(route: string, identity: Identity, transport: "streamable-http" | "sse"): ClientSession {
    if (this.sessions.size >= this.deps.config.maxSessions) {
      throw new RpcError(ErrorCode.InternalError, "too many open sessions; try again later");
    }
    const session = new ClientSession({
      id: randomId(24),
      principal: principalKey(identity),
      protocolVersion: transport === "sse" ? "2024-11-05" : LATEST_PROTOCOL_VERSION,
      clientCapabilities: {},
      clientInfo: {},
      transport,
      now: this.deps.clock.now(),
      bufferSize: this.deps.config.eventBufferSize,
      ...(this.deps.backplane ? { backplane: this.deps.backplane } : {}),
    });
    this.sessions.set(session.id, session);
    this.routeOf.set(session.id, route);
    return session;
  }

  /** The shared copy of a session: what another replica needs to continue it. */
  private meta(s: ClientSession): SharedSessionMeta {
    const m: SharedSessionMeta = {
      id: s.id,
      route: this.routeOf.get(s.id) ?? "/mcp",
      principal: s.principal,
      protocolVersion: s.protocolVersion,
      clientCapabilities: s.clientCapabilities,
      clientInfo: s.clientInfo,
      transport: s.transport,
      initialized: s.initialized,
      createdAt: s.createdAt,
    };
    if (s.logLevel) m.logLevel = s.logLevel;
    return m;
  }

  /**
   * Publishes a session (and its changes) to the other replicas — before its id is given to the client, so that the
   * client's next request may land anywhere. When the shared state cannot be written (StoreUnavailableError) a new
   * session is dropped here too.
   */
  async share(session: ClientSession, isNew = true): Promise<void> {
    if (!this.deps.backplane) return;
    try {
      await this.deps.backplane.save(this.meta(session));
    } catch (e) {
      if (isNew) this.drop(session.id);
      throw e;
    }
  }

  /**
   * The session a request names, if it exists on this route and belongs to the caller; another principal's session
   * is unknown, exactly like one that never existed. With replicas, when the shared state cannot be reached the
   * session is unknown too, so the client starts a new one (MCP transports: 404).
   */
  async find(route: string, id: string, identity: Identity): Promise<ClientSession | undefined> {
    let s = this.sessions.get(id);
    if (s && this.routeOf.get(id) !== route) return undefined;
    if (!s && this.deps.backplane) s = await this.loadShared(route, id);
    if (!s || s.principal !== principalKey(identity)) return undefined;
    const now = this.deps.clock.now();
    s.lastSeen = now;
    if (this.deps.backplane && now - s.lastTouched > 30_000) {
      s.lastTouched = now;
      this.deps.backplane.touch(s.id);
    }
    return s;
  }

  private loadShared(route: string, id: string): Promise<ClientSession | undefined> {
    let p = this.loading.get(id);
    if (!p) {
      p = (async () => {
        let meta: SharedSessionMeta | undefined;
        try {
          meta = await (this.deps.backplane as SessionBackplane).load(id);
        } catch {
          return undefined;
        }
        if (!meta) return undefined;
        const existing = this.sessions.get(id);
        if (existing) return existing;
        const s = new ClientSession({
          id,
          principal: meta.principal,
          protocolVersion: meta.protocolVersion,
          clientCapabilities: meta.clientCapabilities,
          clientInfo: meta.clientInfo,
          transport: meta.transport,
          now: this.deps.clock.now(),
          bufferSize: this.deps.config.eventBufferSize,
          backplane: this.deps.backplane as SessionBackplane,
        });
        s.initialized = meta.initialized;
        s.logLevel = meta.logLevel;
        this.sessions.set(id, s);
        this.routeOf.set(id, meta.route);
        this.deps.log.debug("session continued from the shared state", { session: id.slice(0, 8) });
        return s;
      })().finally(() => this.loading.delete(id));
      this.loading.set(id, p);
    }
    return p.then((s) => (s && this.routeOf.get(id) === route ? s : undefined));
  }

  /** A client's log level (logging/setLevel): kept with the session, so every replica filters the same way. */
  async setLevel(session: ClientSession, level: string): Promise<void> {
    session.logLevel = level;
    const bp = this.deps.backplane;
    if (!bp) return;
    await this.share(session, false);
    await bp.broadcast({ type: "level", session: session.id, level });
  }

  /** notifications/cancelled: the request is aborted here, or on the replica that runs it. */
  cancel(session: ClientSession, requestId: JsonRpcId): void {
    const local = session.inFlight.get(requestId);
    if (local) local.cancel();
    else void this.deps.backplane?.broadcast({ type: "cancel", session: session.id, requestId }).catch(() => {});
  }

  /**
   * A client's answer to a request this replica did not forward: when its id names another replica
   * (`gatehouse-<replica>-<n>`, session.ts), the answer is passed there.
   */
  async passOn(session: ClientSession, response: JsonRpcResponse): Promise<void> {
    const owner = /^gatehouse-([a-z0-9]+)-\d+$/.exec(String(response.id))?.[1];
    const bp = this.deps.backplane;
    if (!owner || !bp || owner === bp.replica) return;
    await bp.send(owner, { type: "response", session: session.id, message: response });
    this.deps.log.debug("client's answer passed to replica", { replica: owner, session: session.id.slice(0, 8) });
  }

  /** Ends a session for good: here and, with replicas, everywhere (the client ended it, its stream closed). */
  close(id: string, reason: string): void {
    const bp = this.deps.backplane;
    if (bp && this.sessions.has(id)) {
      void bp.remove(id).catch((e: Error) => {
        this.deps.log.warn("could not end the session in the shared state", {
          session: id.slice(0, 8),
          error: e.message,
        });
      });
    }
    if (this.drop(id)) this.deps.log.info("session closed", { session: id.slice(0, 8), reason });
  }

  /** Forgets this replica's copy of a session (its streams and subscriptions here); a shared one stays. */
  drop(id: string): boolean {
    const s = this.sessions.get(id);
    if (!s) return false;
    const route = this.routeOf.get(id);
    this.sessions.delete(id);
    this.routeOf.delete(id);
    if (route) this.routes.get(route)?.ended(s);
    s.close();
    return true;
  }

  /** What another replica says about a session this one also holds. */
  private onBackplane(m: BackplaneMessage): void {
    const s = this.sessions.get(m.session);
    if (!s) return;
    const hooks = this.routes.get(this.routeOf.get(m.session) ?? "");
    switch (m.type) {
      case "response":
        void hooks?.answer(s, m.message);
        break;
      case "cancel":
        s.inFlight.get(m.requestId)?.cancel();
        break;
      case "closed":
        if (this.drop(s.id)) {
          this.deps.log.info("session closed", { session: s.id.slice(0, 8), reason: "ended through another replica" });
        }
        break;
      case "unsubscribe":
        hooks?.unsubscribe(s, m.uri);
        break;
      case "level":
        s.logLevel = m.level;
        break;
      case "stream":
        if (m.replica !== this.deps.backplane?.replica) s.releaseStandalone();
        break;
    }
  }

  /** Closes sessions idle for longer than gateway.sessionIdleTimeout (backends are reaped by the app). */
  reap(): void {
    const now = this.deps.clock.now();
    for (const s of [...this.sessions.values()]) {
      const streaming = !s.openSinks().next().done;
      if (!streaming && s.inFlight.size === 0 && now - s.lastSeen > this.deps.config.sessionIdleTimeoutMs) {
        // With replicas, another one may still serve it: only this copy goes (the shared one expires by itself).
        if (this.deps.backplane) this.drop(s.id);
        else this.close(s.id, "idle");
      }
    }
  }

  /** Waits until no request is in flight on any route, or `deadline` (a clock time) passes. */
  async drain(deadline: number, sleep: (ms: number) => Promise<void>): Promise<void> {
    while (this.inFlight > 0 && this.deps.clock.now() < deadline) await sleep(50);
  }

  /** Ends every session this replica holds (with replicas, only this copy: the sessions go on elsewhere). */
  private stopTimers(): void {
    for (const t of this.timers) this.deps.clock.clearInterval(t);
    this.timers = [];
  }

  shutdown(): void {
    this.stopTimers();
    for (const id of [...this.sessions.keys()]) {
      if (this.deps.backplane) this.drop(id);
      else this.close(id, "shutdown");
    }
  }
}
