// One route's MCP server side, independent of HTTP: the initialize handshake (MCP basic/lifecycle), a request run
// through the method table (dispatch.ts) with its audit record, notifications and the client's answers, and what
// backends broadcast (list_changed, resource updates). Sessions live in the registry every route shares
// (sessions.ts); forwarding, the way back, tasks and subscriptions each have their own module.

import type { AuditEntry, Auditor } from "../audit.ts";
import type { Identity } from "../auth/identity.ts";
import type { GatehouseMetrics } from "../gatehouse-metrics.ts";
import type { Logger } from "../log.ts";
import { AGGREGATE_INSTRUCTIONS, passthroughNaming, prefixedNaming } from "../naming.ts";
import type { Clock } from "../platform/types.ts";
import type { Acl } from "../policy/acl.ts";
import type { ToolScopes } from "../policy/tool-scopes.ts";
import type { SessionBackplane } from "./backplane.ts";
import type { Call, CallRequest, Channel, Target } from "./call.ts";
import { Cancellation } from "./cancellation.ts";
import { type Backend, Catalog } from "./catalog.ts";
import { isAudited, type RouteCore, resolveTarget, run } from "./dispatch.ts";
import { Forwarder } from "./forward.ts";
import {
  ErrorCode,
  errorResponse,
  isFailure,
  type JsonRpcNotification,
  type JsonRpcRequest,
  type JsonRpcResponse,
  type JsonRpcSuccess,
  RpcError,
  successResponse,
} from "./jsonrpc.ts";
import { type ClientSession, STANDALONE_STREAM } from "./session.ts";
import { LATEST_PROTOCOL_VERSION, type SessionRegistry, SUPPORTED_PROTOCOL_VERSIONS } from "./sessions.ts";
import { Subscriptions } from "./subscriptions.ts";
import { TaskOwners } from "./tasks.ts";

export interface GatewayDeps {
  /** Which route this gateway serves ("/mcp", "server:<name>"): each session belongs to one. */
  id: string;
  backends: Backend[];
  sessions: SessionRegistry;
  acl: Acl;
  log: Logger;
  clock: Clock;
  version: string;
  audit: Auditor;
  toolScopes: ToolScopes;
  /** Pass one backend through unchanged (no prefixes; its own capabilities, server info and instructions). */
  passthrough?: string;
  /** Sessions shared with other replicas (state.redis). */
  backplane?: SessionBackplane;
  /** What the route's previous gateway held, when the configuration was reloaded: its subscriptions and tasks. */
  carried?: RouteState;
  metrics?: GatehouseMetrics;
}

/** What a route keeps across a reload besides its sessions (which live in the registry). */
export interface RouteState {
  subscriptions: Subscriptions;
  tasks: TaskOwners;
}

export class Gateway implements RouteCore {
  readonly id: string;
  readonly catalog: Catalog;
  readonly backends = new Map<string, Backend>();
  readonly sessions: SessionRegistry;
  readonly forwarder: Forwarder;
  readonly tasks: TaskOwners;
  readonly subscriptions: Subscriptions;
  readonly backplane?: SessionBackplane;
  readonly only?: Backend;
  private readonly log: Logger;

  constructor(private readonly deps: GatewayDeps) {
    for (const b of deps.backends) this.backends.set(b.config.name, b);
    this.id = deps.id;
    this.log = deps.log;
    this.sessions = deps.sessions;
    if (deps.backplane) this.backplane = deps.backplane;
    if (deps.passthrough) this.only = this.backends.get(deps.passthrough);
    const naming = deps.passthrough ? passthroughNaming(deps.passthrough) : prefixedNaming(() => this.backends.keys());
    this.catalog = new Catalog(this.backends, deps.acl, deps.log, naming, deps.toolScopes);
    const metrics = deps.metrics;
    this.forwarder = new Forwarder(naming, metrics && ((server, s) => metrics.backend(server, s)));
    const split = (uri: string) => this.catalog.splitUri(uri);
    this.tasks = deps.carried?.tasks ?? new TaskOwners(() => deps.clock.now());
    this.subscriptions = deps.carried?.subscriptions ?? new Subscriptions(split);
    this.subscriptions.rebind(split);
    this.sessions.register(this.id, {
      answer: (s, r) => this.answer(s, r),
      unsubscribe: (s, uri) => this.subscriptions.unsubscribe(s, uri),
      ended: (s) => {
        for (const uri of [...s.subscriptions]) this.subscriptions.unsubscribe(s, uri);
      },
    });
  }

  // --- sessions of this route ----------------------------------------------------------------------------------

  /** Opens a session for a principal; initialize completes it. */
  open(identity: Identity, transport: "streamable-http" | "sse"): ClientSession {
    return this.sessions.open(this.id, identity, transport);
  }

  /** The session a request names, when it is this route's and the caller's (else unknown: 404). */
  find(id: string, identity: Identity): Promise<ClientSession | undefined> {
    return this.sessions.find(this.id, id, identity);
  }

  /**
   * Answers initialize: the client's version when supported, else our newest ("If the server supports the requested
   * protocol version, it MUST respond with the same version", MCP lifecycle §Version Negotiation). A pass-through
   * gateway presents the backend's own capabilities, server info and instructions.
   */
  async initialize({ session, identity, request }: Pick<Call, "session" | "identity" | "request">) {
    const params = request.params ?? {};
    const requested = typeof params.protocolVersion === "string" ? params.protocolVersion : "";
    const offered: readonly string[] = SUPPORTED_PROTOCOL_VERSIONS;
    const version = offered.includes(requested) ? requested : LATEST_PROTOCOL_VERSION;
    session.protocolVersion = version;
    session.clientCapabilities = (params.capabilities as Record<string, unknown>) ?? {};
    session.clientInfo = (params.clientInfo as ClientSession["clientInfo"]) ?? {};
    session.initialized = true;
    await this.sessions.share(session);
    this.log.info("session opened", {
      session: session.id.slice(0, 8),
      subject: identity.subject,
      provider: identity.provider,
      client: session.clientInfo.name,
      protocol: version,
      transport: session.transport,
    });
    const own = this.only ? await this.passthroughInfo(this.only) : undefined;
    if (own) return successResponse(request.id, { protocolVersion: version, ...own });
    return successResponse(request.id, {
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
    }) as JsonRpcSuccess;
  }

  /** The pass-through backend's capabilities, server info and instructions; undefined when it cannot start. */
  private async passthroughInfo(backend: Backend): Promise<Record<string, unknown> | undefined> {
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

  // --- client → gateway ----------------------------------------------------------------------------------------

  /** What a request names (its tool with the ACL's and the scopes' decision…); undefined when it names nothing. */
  resolve(identity: Identity, request: JsonRpcRequest): Target | Promise<Target> | undefined {
    return resolveTarget(this.catalog, identity, request);
  }

  /** Runs one client request; never throws: failures become JSON-RPC error responses. */
  async handle(req: CallRequest): Promise<JsonRpcResponse> {
    const { session, request } = req;
    const cancellation = new Cancellation();
    const call: Call = { ...req, cancellation, started: this.deps.clock.now() };
    session.inFlight.set(request.id, cancellation);
    try {
      if (!call.target) {
        const target = await this.resolve(call.identity, request);
        if (target) call.target = target;
      }
      // A refused target is answered with its error, whatever the method (a method scope refuses lists too).
      if (call.target?.kind === "refused") throw call.target.error;
      const result = await run(this, call);
      if (isAudited(request.method)) this.audit(call);
      this.count(call, "allowed");
      return successResponse(request.id, result);
    } catch (e) {
      if (isAudited(request.method)) this.audit(call, e as Error);
      const timeout = e instanceof RpcError && e.rpcCode === ErrorCode.RequestTimeout;
      const denied = call.target?.kind === "refused" && !call.target.failed;
      this.count(call, denied ? "denied" : timeout ? "timeout" : "error");
      if (e instanceof RpcError) return e.toJsonRpc(request.id);
      this.log.error("unexpected error while handling a request", {
        method: request.method,
        error: (e as Error).stack ?? String(e),
      });
      return errorResponse(request.id, ErrorCode.InternalError, "internal error in Gatehouse (see its log)");
    } finally {
      session.inFlight.delete(request.id);
    }
  }

  /** The call in the metrics: server and tool as the catalog named them, never as the request did. */
  private count(call: Call, outcome: "allowed" | "denied" | "error" | "timeout"): void {
    const m = this.deps.metrics;
    if (!m) return;
    const t = call.target;
    const server = t ? (t.kind === "refused" ? (t.backend ?? "") : t.backend.config.name) : "";
    const tool = t?.kind === "tool" ? t.tool.name : "";
    m.mcp(call.request.method, server, tool, outcome, (this.deps.clock.now() - call.started) / 1000);
  }

  /** A call admission refused (insufficient scope, answered with a 403 step-up): its audit record. */
  refused(identity: Identity, request: JsonRpcRequest, target: Target): void {
    const m = this.deps.metrics;
    if (m && target.kind === "refused") m.mcp(request.method, target.backend ?? "", "", "denied", 0);
    const name = request.params?.name;
    const entry: AuditEntry = {
      method: request.method,
      name: typeof name === "string" ? name : "(none)",
      subject: identity.subject,
      provider: identity.provider,
      success: false,
      duration_ms: 0,
    };
    if (target.kind === "refused") {
      if (target.backend) entry.server = target.backend;
      if (target.rule) entry.acl_rule = target.rule;
      if (target.scopes) entry.scope = target.scopes.join(" ");
      entry.error = target.error.message;
    }
    if (identity.clientId) entry.client_id = identity.clientId;
    this.deps.audit.record(entry);
  }

  /** One audit record for a call, answered or refused (audit.ts). */
  private audit(call: Call, error?: Error): void {
    const { identity, session, request, target } = call;
    const params = request.params ?? {};
    const name = request.method === "resources/read" ? params.uri : params.name;
    const entry: AuditEntry = {
      method: request.method,
      name: typeof name === "string" ? name : "(none)",
      subject: identity.subject,
      provider: identity.provider,
      session: session.id.slice(0, 8),
      success: error === undefined,
      duration_ms: this.deps.clock.now() - call.started,
    };
    const server = target?.kind === "refused" ? target.backend : target?.backend.config.name;
    if (server) entry.server = server;
    if (target?.rule) entry.acl_rule = target.rule;
    if (target?.kind === "refused" && target.scopes) entry.scope = target.scopes.join(" ");
    if (identity.clientId) entry.client_id = identity.clientId;
    if (error) entry.error = error.message;
    if (this.deps.audit.logArguments && request.method === "tools/call" && params.arguments !== undefined) {
      entry.arguments = params.arguments;
    }
    this.deps.audit.record(entry);
  }

  /** A client notification: a cancellation is acted on; initialized, roots/list_changed and others need nothing. */
  notify(session: ClientSession, n: JsonRpcNotification): void {
    if (n.method !== "notifications/cancelled") return;
    const id = n.params?.requestId;
    if (typeof id === "string" || typeof id === "number") this.sessions.cancel(session, id);
  }

  /** A client's answer to a request a backend sent it (sampling, elicitation, roots). */
  async answer(session: ClientSession, r: JsonRpcResponse): Promise<void> {
    if (r.id === null) return;
    const key = String(r.id);
    const target = session.outgoing.get(key);
    if (!target) return this.sessions.passOn(session, r);
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

  /** The channel for a session's own stream (the GET stream, or the only stream of an HTTP+SSE session). */
  standaloneChannel(session: ClientSession): Channel {
    return { deliver: (m) => session.send(STANDALONE_STREAM, m) };
  }

  // --- backend → clients ---------------------------------------------------------------------------------------

  /** Called by backends for messages that belong to no request: list changes and resource updates. */
  onBackendBroadcast(backend: string, n: JsonRpcNotification): void {
    if (!this.backends.has(backend)) return;
    if (n.method.endsWith("/list_changed")) {
      const kind = n.method.split("/")[1];
      if (kind === "tools") this.catalog.invalidate(backend, "tools");
      if (kind === "prompts") this.catalog.invalidate(backend, "prompts");
      if (kind === "resources") {
        this.catalog.invalidate(backend, "resources");
        this.catalog.invalidate(backend, "resourceTemplates");
      }
      for (const s of this.sessions.of(this.id)) s.send(STANDALONE_STREAM, { jsonrpc: "2.0", method: n.method });
      return;
    }
    if (n.method === "notifications/resources/updated" && typeof n.params?.uri === "string") {
      const uri = this.catalog.naming.outwardUri(backend, n.params.uri);
      for (const id of this.subscriptions.of(uri)) {
        this.sessions.get(id)?.send(STANDALONE_STREAM, { ...n, params: { ...n.params, uri } });
      }
    }
  }

  /** What a reloaded configuration's gateway for this route takes over. */
  get state(): RouteState {
    return { subscriptions: this.subscriptions, tasks: this.tasks };
  }

  /** Whether a client of this route is subscribed to a resource of the backend (it must not be reaped then). */
  hasSubscriptions(backend: string): boolean {
    return this.subscriptions.touches(backend);
  }
}
