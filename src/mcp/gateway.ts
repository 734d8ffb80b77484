// The gateway's MCP server side, independent of HTTP: sessions, the initialize handshake (MCP basic/lifecycle),
// dispatch of client requests to the aggregated catalog and the backends, and the way back for what backends send
// (progress, logging, sampling/elicitation/roots requests, list_changed, resource updates).

import type { Auditor } from "../audit.ts";
import { type Identity, principalKey } from "../auth/identity.ts";
import type { GatewayConfig } from "../config/types.ts";
import { randomId } from "../crypto.ts";
import type { Logger } from "../log.ts";
import { AGGREGATE_INSTRUCTIONS, outwardResourceUris, passthroughNaming, prefixedNaming } from "../naming.ts";
import { headerValue } from "../net/header-value.ts";
import type { Clock, TimerHandle } from "../platform/types.ts";
import type { Acl } from "../policy/acl.ts";
import { grants, type ToolScopes } from "../policy/tool-scopes.ts";
import type { RequestOwner } from "./backends/backend-client.ts";
import type { BackplaneMessage, SessionBackplane, SharedSessionMeta } from "./backplane.ts";
import { type Backend, Catalog } from "./catalog.ts";
import {
  ErrorCode,
  errorResponse,
  isFailure,
  type JsonRpcId,
  type JsonRpcMessage,
  type JsonRpcNotification,
  type JsonRpcRequest,
  type JsonRpcResponse,
  type JsonRpcSuccess,
  RpcError,
  successResponse,
} from "./jsonrpc.ts";
import { ClientSession, STANDALONE_STREAM } from "./session.ts";

/** Newest first. 2024-11-05 is only spoken on the HTTP+SSE transport at /mcp/sse. */
export const SUPPORTED_PROTOCOL_VERSIONS = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"] as const;
export const LATEST_PROTOCOL_VERSION = SUPPORTED_PROTOCOL_VERSIONS[0];

/** Where messages about one client request go while it runs (its SSE response, or the session's stream). */
export interface Channel {
  deliver(message: JsonRpcMessage): void;
}

export interface GatewayDeps {
  backends: Backend[];
  acl: Acl;
  log: Logger;
  clock: Clock;
  version: string;
  config: GatewayConfig;
  audit: Auditor;
  toolScopes: ToolScopes;
  /** Pass one backend through unchanged (no prefixes; its own capabilities, server info and instructions). */
  passthrough?: string;
  /** Which route this gateway serves ("/mcp", "server:<name>"): a shared session belongs to one. */
  id?: string;
  /** Sessions shared with other replicas (state.redis); without it they live in this process only. */
  backplane?: SessionBackplane;
}

/** The capability a client must have declared for each server→client request (MCP client/ features). */
const REQUIRED_CAPABILITY: Record<string, string> = {
  "sampling/createMessage": "sampling",
  "elicitation/create": "elicitation",
  "roots/list": "roots",
};

/** How long a task is remembered when its backend gives it no ttl. */
const DEFAULT_TASK_TTL_MS = 3_600_000;

const LOG_LEVELS = ["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"];

export class Gateway {
  readonly sessions = new Map<string, ClientSession>();
  readonly catalog: Catalog;
  readonly backends = new Map<string, Backend>();
  /** Prefixed resource URI → ids of sessions subscribed to it. */
  private readonly subscribers = new Map<string, Set<string>>();
  /**
   * Tasks (MCP 2025-11-25) created through this gateway, by backend and task id: the principal that created each,
   * and until when. A backend holds one session for every client, so it cannot keep one user's tasks from another.
   */
  private readonly tasks = new Map<string, { principal: string; expires: number }>();
  private nextProgressToken = 1;
  private timers: TimerHandle[] = [];
  private readonly log: Logger;

  /** Shared sessions being loaded from the backplane, so concurrent requests get the same local copy. */
  private readonly loading = new Map<string, Promise<ClientSession | undefined>>();

  constructor(private readonly deps: GatewayDeps) {
    for (const b of deps.backends) this.backends.set(b.config.name, b);
    this.log = deps.log;
    const naming = deps.passthrough ? passthroughNaming(deps.passthrough) : prefixedNaming(() => this.backends.keys());
    this.catalog = new Catalog(this.backends, deps.acl, deps.log, naming, deps.toolScopes);
    deps.backplane?.onMessage((m) => this.onBackplane(m));
  }

  private get routeId(): string {
    return this.deps.id ?? "/mcp";
  }

  /** Starts the periodic work: idle sessions and backends reaped, SSE keep-alives sent. */
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

  /** Called by backends for messages that belong to no request: list changes and resource updates. */
  onBackendBroadcast(backend: string, n: JsonRpcNotification): void {
    if (!this.backends.has(backend)) return;
    const kind = n.method.split("/")[1];
    if (n.method.endsWith("/list_changed")) {
      if (kind === "tools") this.catalog.invalidate(backend, "tools");
      if (kind === "prompts") this.catalog.invalidate(backend, "prompts");
      if (kind === "resources") {
        this.catalog.invalidate(backend, "resources");
        this.catalog.invalidate(backend, "resourceTemplates");
      }
      for (const s of this.sessions.values()) s.send(STANDALONE_STREAM, { jsonrpc: "2.0", method: n.method });
      return;
    }
    if (n.method === "notifications/resources/updated" && typeof n.params?.uri === "string") {
      const uri = this.catalog.naming.outwardUri(backend, n.params.uri);
      for (const id of this.subscribers.get(uri) ?? []) {
        this.sessions.get(id)?.send(STANDALONE_STREAM, { ...n, params: { ...n.params, uri } });
      }
    }
  }

  // --- sessions ------------------------------------------------------------------------------------------------

  /** Opens a session for a principal; initialize() completes it. */
  openSession(identity: Identity, transport: "streamable-http" | "sse"): ClientSession {
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
    return session;
  }

  /** The shared copy of a session: what another replica needs to continue it. */
  private meta(s: ClientSession): SharedSessionMeta {
    const m: SharedSessionMeta = {
      id: s.id,
      route: this.routeId,
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
   * Publishes a new session to the other replicas (before its id is given to the client, so that the client's next
   * request may land anywhere). Fails with StoreUnavailableError when the shared state cannot be written: the
   * session is then dropped here too.
   */
  async share(session: ClientSession): Promise<void> {
    if (!this.deps.backplane) return;
    try {
      await this.deps.backplane.save(this.meta(session));
    } catch (e) {
      this.dropLocal(session.id);
      throw e;
    }
  }

  /**
   * Answers initialize: the client's version when supported, else our newest ("If the server supports the requested
   * protocol version, it MUST respond with the same version", MCP lifecycle §Version Negotiation). A pass-through
   * gateway presents the backend's own capabilities, server info and instructions.
   */
  async initialize(session: ClientSession, identity: Identity, request: JsonRpcRequest): Promise<JsonRpcSuccess> {
    const params = request.params ?? {};
    const requested = typeof params.protocolVersion === "string" ? params.protocolVersion : "";
    const offered: readonly string[] = SUPPORTED_PROTOCOL_VERSIONS;
    const version = offered.includes(requested) ? requested : LATEST_PROTOCOL_VERSION;
    session.protocolVersion = version;
    session.clientCapabilities = (params.capabilities as Record<string, unknown>) ?? {};
    session.clientInfo = (params.clientInfo as ClientSession["clientInfo"]) ?? {};
    session.initialized = true;
    await this.share(session);
    this.log.info("session opened", {
      session: session.id.slice(0, 8),
      subject: identity.subject,
      provider: identity.provider,
      client: session.clientInfo.name,
      protocol: version,
      transport: session.transport,
    });
    const own = this.deps.passthrough ? await this.passthroughInfo() : undefined;
    if (own) return successResponse(request.id, { protocolVersion: version, ...own });
    const result = {
      protocolVersion: version,
      capabilities: {
        tools: { listChanged: true },
        resources: { subscribe: true, listChanged: true },
        prompts: { listChanged: true },
        logging: {},
        completions: {},
      },
      serverInfo: { name: "gatehouse", title: "Gatehouse MCP gateway", version: this.deps.version },
      // Backend names are not listed here: a caller may not be allowed to know some of them.
      instructions: AGGREGATE_INSTRUCTIONS,
    };
    return successResponse(request.id, result);
  }

  /** The pass-through backend's capabilities, server info and instructions; undefined when it cannot start. */
  private async passthroughInfo(): Promise<Record<string, unknown> | undefined> {
    const backend = this.backends.get(this.deps.passthrough as string) as Backend;
    try {
      await backend.client.ensureReady();
    } catch (e) {
      this.log.warn("pass-through backend is not ready; answering initialize with Gatehouse's own capabilities", {
        backend: backend.config.name,
        error: (e as Error).message,
      });
      return undefined;
    }
    const info = backend.client.info;
    if (!info) return undefined;
    const out: Record<string, unknown> = { capabilities: info.capabilities, serverInfo: info.serverInfo };
    if (info.instructions !== undefined) out.instructions = info.instructions;
    return out;
  }

  /**
   * The session a request names, if it exists and belongs to the caller. Another principal's session is reported
   * as unknown (404), exactly like one that never existed (MCP security best practices, "Session Hijacking"). With
   * replicas, a session opened by another one (even one that has died since) is loaded from the shared state; when
   * that cannot be reached the session is unknown too, so the client starts a new one (MCP transports: 404).
   */
  async findSession(id: string, identity: Identity): Promise<ClientSession | undefined> {
    let s = this.sessions.get(id);
    if (!s && this.deps.backplane) s = await this.loadShared(id);
    if (!s || s.principal !== principalKey(identity)) return undefined;
    const now = this.deps.clock.now();
    s.lastSeen = now;
    if (this.deps.backplane && now - s.lastTouched > 30_000) {
      s.lastTouched = now;
      this.deps.backplane.touch(s.id);
    }
    return s;
  }

  private loadShared(id: string): Promise<ClientSession | undefined> {
    let p = this.loading.get(id);
    if (!p) {
      p = (async () => {
        let meta: SharedSessionMeta | undefined;
        try {
          meta = await (this.deps.backplane as SessionBackplane).load(id);
        } catch {
          return undefined;
        }
        if (!meta || meta.route !== this.routeId) return undefined;
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
        this.log.debug("session continued from the shared state", { session: id.slice(0, 8) });
        return s;
      })().finally(() => this.loading.delete(id));
      this.loading.set(id, p);
    }
    return p;
  }

  /** Ends a session for good: here and, with replicas, everywhere (the client ended it, its stream closed). */
  closeSession(id: string, reason: string): void {
    const s = this.sessions.get(id);
    const bp = this.deps.backplane;
    if (bp && (s || reason !== "idle")) {
      void bp.remove(id).catch((e: Error) => {
        this.log.warn("could not end the session in the shared state", { session: id.slice(0, 8), error: e.message });
      });
    }
    if (this.dropLocal(id)) this.log.info("session closed", { session: id.slice(0, 8), reason });
  }

  /** Forgets this replica's copy of a session (its streams and subscriptions here); the shared one stays. */
  private dropLocal(id: string): boolean {
    const s = this.sessions.get(id);
    if (!s) return false;
    this.sessions.delete(id);
    for (const uri of s.subscriptions) this.unsubscribe(s, uri);
    s.close();
    return true;
  }

  /** What another replica says about a session this one also knows. */
  private onBackplane(m: BackplaneMessage): void {
    const s = this.sessions.get(m.session);
    if (!s) return;
    switch (m.type) {
      case "response":
        void this.handleResponse(s, m.message);
        break;
      case "cancel":
        s.inFlight.get(m.requestId)?.abort();
        break;
      case "closed":
        if (this.dropLocal(s.id))
          this.log.info("session closed", { session: s.id.slice(0, 8), reason: "ended through another replica" });
        break;
      case "unsubscribe":
        this.unsubscribe(s, m.uri);
        break;
      case "level":
        s.logLevel = m.level;
        break;
      case "stream":
        if (m.replica !== this.deps.backplane?.replica) s.releaseStandalone();
        break;
    }
  }

  /** Closes sessions idle for longer than gateway.sessionIdleTimeout (backends are reaped by the app, see routing.ts). */
  reap(): void {
    const now = this.deps.clock.now();
    for (const s of [...this.sessions.values()]) {
      const streaming = [...s.openSinks()].length > 0;
      if (!streaming && s.inFlight.size === 0 && now - s.lastSeen > this.deps.config.sessionIdleTimeoutMs) {
        // With replicas, another one may still serve it: only this copy goes (the shared one expires by itself).
        if (this.deps.backplane) this.dropLocal(s.id);
        else this.closeSession(s.id, "idle");
      }
    }
  }

  /** Whether a client of this gateway is subscribed to a resource of the backend (it must not be reaped then). */
  hasSubscriptions(backend: string): boolean {
    for (const uri of this.subscribers.keys())
      if (this.catalog.splitUri(uri)?.backend.config.name === backend) return true;
    return false;
  }

  // --- client → gateway ----------------------------------------------------------------------------------------

  /** Handles one client request; never throws: failures become JSON-RPC error responses. */
  async handleRequest(
    session: ClientSession,
    identity: Identity,
    req: JsonRpcRequest,
    channel: Channel,
  ): Promise<JsonRpcResponse> {
    const abort = new AbortController();
    session.inFlight.set(req.id, abort);
    try {
      const result = await this.dispatch(session, identity, req, channel, abort.signal);
      return successResponse(req.id, result);
    } catch (e) {
      if (e instanceof RpcError) return e.toJsonRpc(req.id);
      this.log.error("unexpected error while handling a request", {
        method: req.method,
        error: (e as Error).stack ?? String(e),
      });
      return errorResponse(req.id, ErrorCode.InternalError, "internal error in Gatehouse (see its log)");
    } finally {
      session.inFlight.delete(req.id);
    }
  }

  private async dispatch(
    session: ClientSession,
    identity: Identity,
    req: JsonRpcRequest,
    channel: Channel,
    signal: AbortSignal,
  ): Promise<Record<string, unknown>> {
    const params = req.params ?? {};
    switch (req.method) {
      case "ping":
        return {};
      case "initialize":
        if (session.transport === "sse" && !session.initialized)
          return (await this.initialize(session, identity, req)).result;
        throw new RpcError(
          ErrorCode.InvalidRequest,
          "the session is already initialized; start a new one without Mcp-Session-Id",
        );
      case "tools/list":
        return { tools: await this.catalog.listTools(identity) };
      case "resources/list":
        return { resources: await this.catalog.listResources(identity) };
      case "resources/templates/list":
        return { resourceTemplates: await this.catalog.listResourceTemplates(identity) };
      case "prompts/list":
        return { prompts: await this.catalog.listPrompts(identity) };
      case "tools/call":
        return this.callTool(session, identity, req, channel, signal);
      case "resources/read": {
        const target = this.catalog.resolveResource(identity, params.uri);
        return this.forward(
          session,
          identity,
          req,
          channel,
          signal,
          target.backend,
          { ...params, uri: target.uri },
          target.uri,
        );
      }
      case "prompts/get": {
        const target = this.catalog.resolvePrompt(identity, params.name);
        return this.forward(
          session,
          identity,
          req,
          channel,
          signal,
          target.backend,
          { ...params, name: target.name },
          target.name,
        );
      }
      case "completion/complete":
        return this.complete(session, identity, req, channel, signal);
      case "resources/subscribe":
      case "resources/unsubscribe":
        return this.subscription(session, identity, req);
      case "logging/setLevel": {
        const level = params.level;
        if (typeof level !== "string" || !LOG_LEVELS.includes(level)) {
          throw new RpcError(ErrorCode.InvalidParams, `level must be one of ${LOG_LEVELS.join(", ")}`);
        }
        // Filtered per session, never forwarded: the backend session is shared, and one client's level must not
        // change what other users receive.
        session.logLevel = level;
        const bp = this.deps.backplane;
        if (bp) {
          await bp.save(this.meta(session));
          await bp.broadcast({ type: "level", session: session.id, level });
        }
        return {};
      }
      default: {
        // A pass-through route forwards what it does not know (extensions, newer methods) to its one backend; the
        // aggregate cannot tell which backend such a method is for.
        const only = this.passthroughBackend();
        if (!only || looksLikeKnownMethod(req.method)) {
          throw new RpcError(ErrorCode.MethodNotFound, `Method not found: ${req.method}`);
        }
        // Tasks (MCP 2025-11-25) live in the backend session every client shares: bound to who created them.
        if (TASK_METHODS.includes(req.method)) return this.task(session, identity, req, channel, signal, only);
        return this.forward(session, identity, req, channel, signal, only, params);
      }
    }
  }

  /**
   * The scopes a tools/call needs, when the caller may otherwise use the tool; undefined for a tool it cannot see
   * (unknown, or hidden by the ACL: that answer must stay the same as for a tool that does not exist).
   */
  async scopesForTool(identity: Identity, name: unknown): Promise<string[] | undefined> {
    try {
      return (await this.catalog.resolveTool(identity, name)).scopes;
    } catch {
      return undefined;
    }
  }

  private passthroughBackend(): Backend | undefined {
    return this.deps.passthrough ? this.backends.get(this.deps.passthrough) : undefined;
  }

  private async callTool(
    session: ClientSession,
    identity: Identity,
    req: JsonRpcRequest,
    channel: Channel,
    signal: AbortSignal,
  ): Promise<Record<string, unknown>> {
    const params = req.params ?? {};
    if (typeof params.name !== "string") throw new RpcError(ErrorCode.InvalidParams, "tools/call needs params.name");
    const started = this.deps.clock.now();
    let tool: Awaited<ReturnType<Catalog["resolveTool"]>>;
    try {
      tool = await this.catalog.resolveTool(identity, params.name);
    } catch (e) {
      this.auditCall("tools/call", identity, session, started, params.name, undefined, e as Error, params.arguments);
      throw e;
    }
    if (!grants(identity, tool.scopes)) {
      // The HTTP layer answers this with 403 before it gets here; this holds for every other way in.
      const e = insufficientScopeError(params.name, tool.scopes);
      this.auditCall("tools/call", identity, session, started, params.name, tool.backend, e, params.arguments);
      throw e;
    }
    const backend = this.backends.get(tool.backend) as Backend;
    try {
      // The aggregate declares no tasks capability and cannot route tasks/* to a backend: a task request there runs
      // as a plain call. A pass-through route forwards it and remembers who owns the task.
      const { task: _task, ...plain } = params;
      const upstream = this.deps.passthrough ? { ...params, name: tool.name } : { ...plain, name: tool.name };
      const result = await this.forward(session, identity, req, channel, signal, backend, upstream);
      this.rememberTask(session, tool.backend, result);
      this.auditCall("tools/call", identity, session, started, params.name, tool.backend, undefined, params.arguments);
      return result;
    } catch (e) {
      this.auditCall("tools/call", identity, session, started, params.name, tool.backend, e as Error, params.arguments);
      throw e;
    }
  }

  /** Remembers who created a task: a task-augmented request answered with a CreateTaskResult. */
  private rememberTask(session: ClientSession, backend: string, result: Record<string, unknown>): void {
    const task = result.task as { taskId?: unknown; ttl?: unknown } | undefined;
    if (typeof task?.taskId !== "string") return;
    const now = this.deps.clock.now();
    for (const [key, t] of this.tasks) if (t.expires <= now) this.tasks.delete(key);
    const ttl = typeof task.ttl === "number" && task.ttl > 0 ? task.ttl : DEFAULT_TASK_TTL_MS;
    this.tasks.set(`${backend}\u0000${task.taskId}`, { principal: session.principal, expires: now + ttl });
  }

  private ownsTask(session: ClientSession, backend: string, taskId: unknown): boolean {
    const t = typeof taskId === "string" ? this.tasks.get(`${backend}\u0000${taskId}`) : undefined;
    return t !== undefined && t.principal === session.principal && t.expires > this.deps.clock.now();
  }

  /**
   * tasks/* on a pass-through route: the caller's own tasks only (MCP 2025-11-25 tasks, Security: "receivers MUST
   * bind tasks to the authorization context"). Another principal's task gets the same answer as one that does not
   * exist, and is never forwarded.
   */
  private async task(
    session: ClientSession,
    identity: Identity,
    req: JsonRpcRequest,
    channel: Channel,
    signal: AbortSignal,
    backend: Backend,
  ): Promise<Record<string, unknown>> {
    const params = req.params ?? {};
    const server = backend.config.name;
    if (req.method === "tasks/list") {
      const result = await this.forward(session, identity, req, channel, signal, backend, params);
      const all = Array.isArray(result.tasks) ? (result.tasks as { taskId?: unknown }[]) : [];
      return { ...result, tasks: all.filter((t) => this.ownsTask(session, server, t?.taskId)) };
    }
    if (!this.ownsTask(session, server, params.taskId)) {
      throw new RpcError(ErrorCode.InvalidParams, `Task not found: ${String(params.taskId)}`);
    }
    return this.forward(session, identity, req, channel, signal, backend, params);
  }

  private auditCall(
    method: string,
    identity: Identity,
    session: ClientSession,
    started: number,
    name: string,
    server: string | undefined,
    error: Error | undefined,
    args: unknown,
  ): void {
    const entry: Parameters<Auditor["record"]>[0] = {
      method,
      name,
      subject: identity.subject,
      provider: identity.provider,
      session: session.id.slice(0, 8),
      success: error === undefined,
      duration_ms: this.deps.clock.now() - started,
    };
    if (server) entry.server = server;
    if (identity.clientId) entry.client_id = identity.clientId;
    if (error) entry.error = error.message;
    if (this.deps.audit.logArguments && args !== undefined) entry.arguments = args;
    this.deps.audit.record(entry);
  }

  /**
   * Sends a request to a backend on behalf of a client request, relaying whatever the backend sends about it
   * back to the client. The client's progress token is swapped for one unique across sessions and back again.
   */
  private async forward(
    session: ClientSession,
    identity: Identity,
    req: JsonRpcRequest,
    channel: Channel,
    signal: AbortSignal,
    backend: Backend,
    params: Record<string, unknown>,
    auditName?: string,
  ): Promise<Record<string, unknown>> {
    const started = this.deps.clock.now();
    const server = backend.config.name;
    const naming = this.catalog.naming;
    const outwardName = (n: string) =>
      req.method === "resources/read" ? naming.outwardUri(server, n) : naming.outward(server, n);
    const upstream: Record<string, unknown> = { ...params };
    const meta = params._meta as Record<string, unknown> | undefined;
    const clientToken = meta?.progressToken;
    if (clientToken !== undefined) upstream._meta = { ...meta, progressToken: `gatehouse-${this.nextProgressToken++}` };
    const owner: RequestOwner = {
      sessionId: session.id,
      deliver: (m) => this.fromBackend(session, backend, m, channel, clientToken),
    };
    const options: Parameters<Backend["client"]["request"]>[2] = { owner, signal };
    const fi = backend.config.forwardIdentity;
    if (fi) {
      if (identity.provider === "none") {
        throw new RpcError(
          ErrorCode.InvalidRequest,
          `backend "${server}" needs the caller's identity, but the caller is anonymous`,
        );
      }
      const headers: Record<string, string> = { [fi.header]: headerValue(identity.subject) };
      if (fi.rolesHeader) headers[fi.rolesHeader] = headerValue(identity.roles.join(","));
      options.headers = headers;
    }
    try {
      const result = await backend.client.request(req.method, upstream, options);
      if (auditName !== undefined)
        this.auditCall(req.method, identity, session, started, outwardName(auditName), server, undefined, undefined);
      return req.method === "tools/call" || req.method === "resources/read"
        ? outwardResourceUris(this.catalog.naming, server, result)
        : result;
    } catch (e) {
      if (auditName !== undefined)
        this.auditCall(req.method, identity, session, started, outwardName(auditName), server, e as Error, undefined);
      throw e;
    }
  }

  private async complete(
    session: ClientSession,
    identity: Identity,
    req: JsonRpcRequest,
    channel: Channel,
    signal: AbortSignal,
  ): Promise<Record<string, unknown>> {
    const params = req.params ?? {};
    const ref = params.ref as Record<string, unknown> | undefined;
    if (ref?.type === "ref/prompt") {
      const t = this.catalog.resolvePrompt(identity, ref.name);
      return this.forward(session, identity, req, channel, signal, t.backend, {
        ...params,
        ref: { ...ref, name: t.name },
      });
    }
    if (ref?.type === "ref/resource") {
      const t = this.catalog.resolveResource(identity, ref.uri);
      return this.forward(session, identity, req, channel, signal, t.backend, {
        ...params,
        ref: { ...ref, uri: t.uri },
      });
    }
    throw new RpcError(
      ErrorCode.InvalidParams,
      'completion/complete needs params.ref of type "ref/prompt" or "ref/resource"',
    );
  }

  private async subscription(
    session: ClientSession,
    identity: Identity,
    req: JsonRpcRequest,
  ): Promise<Record<string, unknown>> {
    const uri = req.params?.uri;
    const target = this.catalog.resolveResource(identity, uri);
    const key = uri as string;
    if (req.method === "resources/subscribe") {
      if (session.subscriptions.has(key)) return {};
      let set = this.subscribers.get(key);
      if (!set) {
        await target.backend.client.request("resources/subscribe", { uri: target.uri });
        set = new Set();
        this.subscribers.set(key, set);
      }
      set.add(session.id);
      session.subscriptions.add(key);
      return {};
    }
    if (!session.subscriptions.has(key) && this.deps.backplane) {
      // Subscribed through another replica (whose backend sends the updates): that one drops it.
      await this.deps.backplane.broadcast({ type: "unsubscribe", session: session.id, uri: key });
    }
    this.unsubscribe(session, key);
    return {};
  }

  /** Drops a session's subscription; the backend is told when the last subscriber leaves. */
  private unsubscribe(session: ClientSession, uri: string): void {
    session.subscriptions.delete(uri);
    const set = this.subscribers.get(uri);
    if (!set) return;
    set.delete(session.id);
    if (set.size > 0) return;
    this.subscribers.delete(uri);
    const target = this.catalog.splitUri(uri);
    if (target?.backend.client.connected) {
      void target.backend.client.request("resources/unsubscribe", { uri: target.rest }).catch(() => {});
    }
  }

  handleNotification(session: ClientSession, n: JsonRpcNotification): void {
    if (n.method === "notifications/cancelled") {
      const id = n.params?.requestId as JsonRpcId | undefined;
      const local = id === undefined ? undefined : session.inFlight.get(id);
      if (local) local.abort();
      else if (id !== undefined && this.deps.backplane) {
        // The request may be running on another replica.
        void this.deps.backplane.broadcast({ type: "cancel", session: session.id, requestId: id }).catch(() => {});
      }
    }
    // notifications/initialized, roots/list_changed and others need nothing from the gateway.
  }

  /** A client's answer to a request a backend sent it (sampling, elicitation, roots). */
  async handleResponse(session: ClientSession, r: JsonRpcResponse): Promise<void> {
    if (r.id === null) return;
    const key = String(r.id);
    const target = session.outgoing.get(key);
    if (!target) {
      // A request another replica forwarded (its tag is in the id): the answer goes there.
      const owner = /^gatehouse-([a-z0-9]+)-\d+$/.exec(key)?.[1];
      const bp = this.deps.backplane;
      if (owner && bp && owner !== bp.replica) {
        await bp.send(owner, { type: "response", session: session.id, message: r });
        this.log.debug("client's answer passed to replica", { replica: owner, session: session.id.slice(0, 8) });
      }
      return;
    }
    session.outgoing.delete(key);
    const backend = this.backends.get(target.backend);
    if (!backend) return;
    const answer: JsonRpcResponse = isFailure(r)
      ? { jsonrpc: "2.0", id: target.upstreamId, error: r.error }
      : { jsonrpc: "2.0", id: target.upstreamId, result: r.result };
    await backend.client.respond(answer).catch((e: Error) => {
      this.log.warn("could not pass a client's answer to the backend", { backend: target.backend, error: e.message });
    });
  }

  // --- backend → client ------------------------------------------------------------------------------------------

  private fromBackend(
    session: ClientSession,
    backend: Backend,
    m: JsonRpcNotification | JsonRpcRequest,
    channel: Channel,
    clientToken: unknown,
  ): void {
    if (session.closed) return;
    if ("id" in m) {
      const capability = REQUIRED_CAPABILITY[m.method];
      if (capability && !session.clientCapabilities[capability]) {
        // Gatehouse declared roots upstream for its clients; one that has none simply has no roots.
        if (m.method === "roots/list") return void backend.client.respond(successResponse(m.id, { roots: [] }));
        void backend.client.respond(
          errorResponse(m.id, ErrorCode.MethodNotFound, `the client did not declare the "${capability}" capability`),
        );
        return;
      }
      const id = session.newOutgoingId();
      session.outgoing.set(id, { backend: backend.config.name, upstreamId: m.id });
      channel.deliver({ ...m, id });
      return;
    }
    if (m.method === "notifications/progress") {
      if (clientToken === undefined) return;
      channel.deliver({ ...m, params: { ...m.params, progressToken: clientToken } });
      return;
    }
    if (m.method === "notifications/message" && session.logLevel) {
      const level = LOG_LEVELS.indexOf(String(m.params?.level));
      if (level >= 0 && level < LOG_LEVELS.indexOf(session.logLevel)) return;
    }
    channel.deliver(m);
  }

  /** The channel for a session's own stream (the GET stream, or the only stream of an HTTP+SSE session). */
  standaloneChannel(session: ClientSession): Channel {
    return { deliver: (m) => session.send(STANDALONE_STREAM, m) };
  }

  // --- lifecycle -----------------------------------------------------------------------------------------------

  /** Closes every session. Backends are shared between routes: the app stops them. */
  shutdown(): void {
    for (const t of this.timers) this.deps.clock.clearInterval(t);
    this.timers = [];
    // With replicas the sessions live on elsewhere: only this replica's copies end.
    for (const id of [...this.sessions.keys()]) {
      if (this.deps.backplane) this.dropLocal(id);
      else this.closeSession(id, "shutdown");
    }
  }
}

const TASK_METHODS = ["tasks/get", "tasks/list", "tasks/cancel", "tasks/result"];

/** Methods the gateway handles itself or checks (ACL, scopes, route policy, task ownership). */
const KNOWN_METHODS = [
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
  ...TASK_METHODS,
];

/**
 * A variant of a method the gateway checks (`Tools/Call`, `tools/call `, full-width letters): never forwarded to a
 * pass-through backend, where a lenient server might run it as the real one without the policy having seen it.
 * The exact methods are handled before this is asked.
 */
export function looksLikeKnownMethod(method: string): boolean {
  if (TASK_METHODS.includes(method)) return false;
  const folded = method.normalize("NFKC").trim().toLowerCase();
  return KNOWN_METHODS.some((m) => m.toLowerCase() === folded);
}

/** JSON-RPC error for a call the token's scopes do not cover (code -32003; data says which scopes are needed). */
export const INSUFFICIENT_SCOPE = -32003;

export function insufficientScopeError(tool: string, needed: string[]): RpcError {
  return new RpcError(INSUFFICIENT_SCOPE, `insufficient_scope: ${tool} needs the scope(s) ${needed.join(" ")}`, {
    error: "insufficient_scope",
    scope: needed.join(" "),
  });
}
