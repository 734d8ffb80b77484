// The methods a gateway route answers, as one table: for each, how its target is resolved (once, by admission or
// by the gateway), whether it is audited, and how it runs. A method not in the table is forwarded by a pass-through
// route to its one backend (extensions, newer methods) and refused by the aggregate, which cannot tell which
// backend it is for.

import type { Identity } from "../auth/identity.ts";
import type { SessionBackplane } from "./backplane.ts";
import type { Call, Target } from "./call.ts";
import type { Backend, Catalog } from "./catalog.ts";
import type { Forwarder } from "./forward.ts";
import { ErrorCode, type JsonRpcRequest, type JsonRpcSuccess, RpcError } from "./jsonrpc.ts";
import { LOG_LEVELS } from "./relay.ts";
import type { SessionRegistry } from "./sessions.ts";
import type { Subscriptions } from "./subscriptions.ts";
import type { TaskOwners } from "./tasks.ts";

/** What a method's handler may use of its route. */
export interface RouteCore {
  readonly catalog: Catalog;
  readonly forwarder: Forwarder;
  readonly tasks: TaskOwners;
  readonly subscriptions: Subscriptions;
  readonly sessions: SessionRegistry;
  readonly backplane?: SessionBackplane;
  /** The backend of a pass-through route. */
  readonly only?: Backend;
  initialize(call: Call): Promise<JsonRpcSuccess>;
}

type Params = Record<string, unknown>;

interface Method {
  /** What the request names (tools/call's tool, resources/read's resource…), for admission and dispatch. */
  resolve?(catalog: Catalog, identity: Identity, params: Params): Target | Promise<Target>;
  /** One audit record per call, refused or not (audit.ts). */
  audited?: true;
  run(route: RouteCore, call: Call, params: Params): Promise<Params>;
}

/** The target admission resolved, or the error it was refused with. */
function resolved<K extends Exclude<Target["kind"], "refused">>(call: Call, kind: K): Extract<Target, { kind: K }> {
  const t = call.target;
  if (t?.kind === "refused") throw t.error;
  if (t?.kind !== kind) throw new RpcError(ErrorCode.InternalError, `${call.request.method}: no ${kind} resolved`);
  return t as Extract<Target, { kind: K }>;
}

const refused = (message: string): Target => ({
  kind: "refused",
  error: new RpcError(ErrorCode.InvalidParams, message),
});

const byUri: Method["resolve"] = (catalog, identity, params) => catalog.resolveResource(identity, params.uri);

/** tasks/* (MCP 2025-11-25): only on a pass-through route, and only the caller's own tasks (tasks.ts). */
const task: Method = {
  async run(route, call, params) {
    const backend = route.only;
    if (!backend) throw new RpcError(ErrorCode.MethodNotFound, `Method not found: ${call.request.method}`);
    const server = backend.config.name;
    const principal = call.session.principal;
    if (call.request.method === "tasks/list") {
      const result = await route.forwarder.forward(call, backend, params);
      const all = Array.isArray(result.tasks) ? (result.tasks as { taskId?: unknown }[]) : [];
      return { ...result, tasks: all.filter((t) => route.tasks.owns(principal, server, t?.taskId)) };
    }
    // Another principal's task gets the same answer as one that does not exist, and is never forwarded.
    if (!route.tasks.owns(principal, server, params.taskId)) {
      throw new RpcError(ErrorCode.InvalidParams, `Task not found: ${String(params.taskId)}`);
    }
    return route.forwarder.forward(call, backend, params);
  },
};

export const METHODS: Readonly<Record<string, Method>> = {
  ping: { run: async () => ({}) },
  initialize: {
    async run(route, call) {
      // On /mcp initialize opens the session (the transport answers it); only an HTTP+SSE session, which exists
      // before it, is initialized through here.
      if (call.session.transport === "sse" && !call.session.initialized) return (await route.initialize(call)).result;
      throw new RpcError(
        ErrorCode.InvalidRequest,
        "the session is already initialized; start a new one without Mcp-Session-Id",
      );
    },
  },
  "tools/list": { run: async (route, call) => ({ tools: await route.catalog.listTools(call.identity) }) },
  "resources/list": { run: async (route, call) => ({ resources: await route.catalog.listResources(call.identity) }) },
  "resources/templates/list": {
    run: async (route, call) => ({ resourceTemplates: await route.catalog.listResourceTemplates(call.identity) }),
  },
  "prompts/list": { run: async (route, call) => ({ prompts: await route.catalog.listPrompts(call.identity) }) },
  "tools/call": {
    resolve: (catalog, identity, params) =>
      typeof params.name === "string"
        ? catalog.resolveTool(identity, params.name)
        : refused("tools/call needs params.name"),
    audited: true,
    async run(route, call, params) {
      const { backend, tool } = resolved(call, "tool");
      // The aggregate declares no tasks capability and cannot route tasks/* to a backend: a task-augmented call
      // there runs as a plain one. A pass-through route forwards it and remembers who owns the task.
      const { task: _task, ...plain } = params;
      const upstream = route.only ? { ...params, name: tool.name } : { ...plain, name: tool.name };
      const result = await route.forwarder.forward(call, backend, upstream);
      route.tasks.remember(call.session.principal, backend.config.name, result);
      return result;
    },
  },
  "resources/read": {
    resolve: byUri,
    audited: true,
    run(route, call, params) {
      const { backend, uri } = resolved(call, "resource");
      return route.forwarder.forward(call, backend, { ...params, uri });
    },
  },
  "prompts/get": {
    resolve: (catalog, identity, params) => catalog.resolvePrompt(identity, params.name),
    audited: true,
    run(route, call, params) {
      const { backend, name } = resolved(call, "prompt");
      return route.forwarder.forward(call, backend, { ...params, name });
    },
  },
  "completion/complete": {
    resolve(catalog, identity, params) {
      const ref = params.ref as Params | undefined;
      if (ref?.type === "ref/prompt") return catalog.resolvePrompt(identity, ref.name);
      if (ref?.type === "ref/resource") return catalog.resolveResource(identity, ref.uri);
      return refused('completion/complete needs params.ref of type "ref/prompt" or "ref/resource"');
    },
    run(route, call, params) {
      const ref = params.ref as Params;
      const t = call.target?.kind === "prompt" ? resolved(call, "prompt") : resolved(call, "resource");
      const own = t.kind === "prompt" ? { name: t.name } : { uri: t.uri };
      return route.forwarder.forward(call, t.backend, { ...params, ref: { ...ref, ...own } });
    },
  },
  "resources/subscribe": {
    resolve: byUri,
    async run(route, call, params) {
      await route.subscriptions.subscribe(call.session, params.uri as string, resolved(call, "resource"));
      return {};
    },
  },
  "resources/unsubscribe": {
    resolve: byUri,
    async run(route, call, params) {
      resolved(call, "resource");
      const { session } = call;
      const uri = params.uri as string;
      if (!session.subscriptions.has(uri) && route.backplane) {
        // Subscribed through another replica (whose backend sends the updates): that one drops it.
        await route.backplane.broadcast({ type: "unsubscribe", session: session.id, uri });
      }
      route.subscriptions.unsubscribe(session, uri);
      return {};
    },
  },
  "logging/setLevel": {
    async run(route, call, params) {
      const level = params.level;
      if (typeof level !== "string" || !LOG_LEVELS.includes(level)) {
        throw new RpcError(ErrorCode.InvalidParams, `level must be one of ${LOG_LEVELS.join(", ")}`);
      }
      // Filtered per session (relay.ts), never forwarded: the backend session is shared, and one client's level
      // must not change what other users receive.
      await route.sessions.setLevel(call.session, level);
      return {};
    },
  },
  "tasks/get": task,
  "tasks/list": task,
  "tasks/cancel": task,
  "tasks/result": task,
};

/** What a request names, resolved once; undefined for a method that names nothing. */
export function resolveTarget(
  catalog: Catalog,
  identity: Identity,
  request: JsonRpcRequest,
): Target | Promise<Target> | undefined {
  return Object.hasOwn(METHODS, request.method)
    ? METHODS[request.method]?.resolve?.(catalog, identity, request.params ?? {})
    : undefined;
}

/** Runs a method of the table, or forwards an unknown one on a pass-through route. */
export async function run(route: RouteCore, call: Call): Promise<Params> {
  const params = call.request.params ?? {};
  const method = Object.hasOwn(METHODS, call.request.method) ? METHODS[call.request.method] : undefined;
  if (method) return method.run(route, call, params);
  if (!route.only || looksLikeKnownMethod(call.request.method)) {
    throw new RpcError(ErrorCode.MethodNotFound, `Method not found: ${call.request.method}`);
  }
  return route.forwarder.forward(call, route.only, params);
}

export function isAudited(method: string): boolean {
  return Object.hasOwn(METHODS, method) && METHODS[method]?.audited === true;
}

const FOLDED = Object.keys(METHODS).map((m) => m.toLowerCase());

/**
 * A variant of a method the gateway checks (`Tools/Call`, `tools/call `, full-width letters): never forwarded to a
 * pass-through backend, where a lenient server might run it as the real one without the policy having seen it.
 * The exact methods are in the table and handled before this is asked.
 */
export function looksLikeKnownMethod(method: string): boolean {
  return FOLDED.includes(method.normalize("NFKC").trim().toLowerCase());
}
