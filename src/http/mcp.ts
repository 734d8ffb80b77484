// The gateway endpoint `/mcp`: MCP Streamable HTTP (2025-03-26, 2025-06-18, 2025-11-25 basic/transports) — POST
// for client messages (answered with JSON, or SSE once the backend streams), GET for the session's own stream
// (resumable with Last-Event-ID), DELETE to end a session.

import { Elysia } from "elysia";
import type { GatewayConfig } from "../config/types.ts";
import type { Deadlines } from "../deadlines.ts";
import type { Logger } from "../log.ts";
import {
  type AdmissionDeps,
  admitCaller,
  admitRequest,
  type Caller,
  checkAnonymous,
  type Incoming,
  readMessages,
  refused,
  storeRefusal,
} from "../mcp/admission.ts";
import type { CallRequest, Channel } from "../mcp/call.ts";
import type { Gateway } from "../mcp/gateway.ts";
import {
  ErrorCode,
  errorResponse,
  type JsonRpcMessage,
  type JsonRpcNotification,
  type JsonRpcRequest,
  type JsonRpcResponse,
} from "../mcp/jsonrpc.ts";
import type { ClientSession } from "../mcp/session.ts";
import type { McpRoute } from "../routing.ts";
import { StoreUnavailableError } from "../store/types.ts";
import { preflight, withCors } from "./cors.ts";
import { refuse } from "./refusal.ts";
import { json, rpcHttpError } from "./responses.ts";
import { sseStream } from "./sse-response.ts";

export interface McpDeps {
  /** The route a request is for: fixed per path, except /mcp with host-based routing. */
  route(request: Request): McpRoute;
  admission: AdmissionDeps;
  /** Where a slow answer's switch to SSE is timed. */
  deadlines: Deadlines;
  config: GatewayConfig;
  log: Logger;
}

const METHODS = "GET, POST, DELETE, OPTIONS";

function acceptsSse(request: Request): boolean {
  return (request.headers.get("accept") ?? "").includes("text/event-stream");
}

const sessionNotFound = () => rpcHttpError(404, -32001, "Session not found: initialize a new session");

/**
 * Runs one request and answers it. The answer is JSON unless the backend sends something about the request
 * before its result (progress, logging, a sampling request) and the client accepts SSE: then the response becomes an
 * SSE stream that carries those messages as they happen and ends with the result. A request still unanswered after
 * gateway.sseKeepalive also switches to SSE, so keep-alive comments stop proxies from cutting a long, silent call.
 */
function respond(deps: McpDeps, gateway: Gateway, call: Omit<CallRequest, "channel">, sse: boolean): Promise<Response> {
  const { session } = call;
  return new Promise<Response>((resolve) => {
    let stream: string | undefined;
    let done = false;
    const open = (): string => {
      if (stream !== undefined) return stream;
      const n = session.newStream();
      stream = n;
      const s = sseStream({ onClose: () => session.detach(s.sink) });
      session.attachNew(n, s.sink);
      if (session.protocolVersion >= "2025-11-25") s.write(`id: ${session.primingId(n)}\ndata: \n\n`);
      else s.write(": waiting for the backend\n\n");
      resolve(s.response);
      return n;
    };
    const slow =
      sse && deps.config.sseKeepaliveMs > 0 ? deps.deadlines.add(deps.config.sseKeepaliveMs, open) : undefined;
    const channel: Channel = {
      deliver(m: JsonRpcMessage) {
        if (done || !sse) return gateway.standaloneChannel(session).deliver(m);
        session.send(open(), m);
      },
    };
    void gateway.handle({ ...call, channel }).then((response) => {
      done = true;
      deps.deadlines.cancel(slow);
      if (stream === undefined) return resolve(json(response));
      session.send(stream, response);
      session.endStream(stream);
    });
  });
}

/** initialize opens a session and is answered with its id (MCP lifecycle; transports §Session Management). */
async function initialize(gateway: Gateway, caller: Caller, request: JsonRpcRequest): Promise<Response> {
  let session: ClientSession;
  try {
    session = gateway.open(caller.identity, "streamable-http");
  } catch (e) {
    return rpcHttpError(503, ErrorCode.InternalError, (e as Error).message, request.id);
  }
  const answer = await gateway.initialize({ session, identity: caller.identity, request });
  return json(answer, 200, { "mcp-session-id": session.id });
}

/** A 2025-03-26 batch: every item is admitted and handled on its own, so no item can ride on another. */
async function batch(
  deps: McpDeps,
  route: McpRoute,
  session: ClientSession,
  caller: Caller,
  incoming: Incoming,
): Promise<Response> {
  const { gateway } = route;
  const answers: Promise<JsonRpcResponse>[] = [];
  for (const { kind, message } of incoming.messages) {
    if (kind === null) answers.push(Promise.resolve(errorResponse(null, ErrorCode.InvalidRequest, "Invalid Request")));
    else if (kind === "notification") gateway.notify(session, message as JsonRpcNotification);
    else if (kind === "response") await gateway.answer(session, message as JsonRpcResponse);
    else {
      const request = message as JsonRpcRequest;
      const admitted = await admitRequest(gateway, caller, request, true, deps.log, route.policy, deps.admission);
      if (refused(admitted)) return refuse(admitted.refusal);
      const channel = gateway.standaloneChannel(session);
      answers.push(gateway.handle({ session, identity: caller.identity, request, channel, ...admitted }));
    }
  }
  if (answers.length === 0) return new Response(null, { status: 202 });
  const responses = await Promise.all(answers);
  deps.log.debug("batch answered", { session: session.id.slice(0, 8), items: incoming.messages.length });
  return json(responses);
}

async function post(request: Request, route: McpRoute, caller: Caller, deps: McpDeps): Promise<Response> {
  const incoming = await readMessages(request, deps.admission, "streamable-http");
  if (refused(incoming)) return refuse(incoming.refusal);
  const anonymous = checkAnonymous(route, caller, incoming, deps.log);
  if (anonymous) return refuse(anonymous.refusal);
  const { gateway } = route;

  // initialize opens a session; it must come alone (MCP lifecycle; batches may not carry it).
  const isInit = (m: Incoming["messages"][number]) =>
    m.kind === "request" && (m.message as JsonRpcRequest).method === "initialize";
  if (incoming.messages.some(isInit)) {
    if (incoming.batch) {
      return rpcHttpError(400, ErrorCode.InvalidRequest, "Invalid Request: initialize cannot be part of a batch");
    }
    return initialize(gateway, caller, incoming.messages[0]?.message as JsonRpcRequest);
  }

  const sessionId = request.headers.get("mcp-session-id");
  if (!sessionId) {
    return rpcHttpError(
      400,
      ErrorCode.InvalidRequest,
      "Bad Request: Mcp-Session-Id header is required (send initialize first)",
    );
  }
  const session = await gateway.find(sessionId, caller.identity);
  if (session?.transport !== "streamable-http") return sessionNotFound();
  if (incoming.batch) {
    // JSON-RPC batches were part of 2025-03-26 only (removed in 2025-06-18).
    if (session.protocolVersion !== "2025-03-26") {
      return rpcHttpError(
        400,
        ErrorCode.InvalidRequest,
        `Invalid Request: batches are not allowed in protocol version ${session.protocolVersion}`,
      );
    }
    return batch(deps, route, session, caller, incoming);
  }

  const { kind, message } = incoming.messages[0] as Incoming["messages"][number];
  if (kind === null) return rpcHttpError(400, ErrorCode.InvalidRequest, "Invalid Request: not a JSON-RPC 2.0 message");
  if (kind === "notification") {
    gateway.notify(session, message as JsonRpcNotification);
    return new Response(null, { status: 202 });
  }
  if (kind === "response") {
    await gateway.answer(session, message as JsonRpcResponse);
    return new Response(null, { status: 202 });
  }
  const rpcRequest = message as JsonRpcRequest;
  const admitted = await admitRequest(gateway, caller, rpcRequest, false, deps.log, route.policy, deps.admission);
  if (refused(admitted)) return refuse(admitted.refusal);
  const call = { session, identity: caller.identity, request: rpcRequest, ...admitted };
  return respond(deps, gateway, call, acceptsSse(request));
}

async function get(request: Request, route: McpRoute, caller: Caller): Promise<Response> {
  if (!acceptsSse(request)) {
    return rpcHttpError(406, ErrorCode.InvalidRequest, "Not Acceptable: GET needs Accept: text/event-stream");
  }
  const sessionId = request.headers.get("mcp-session-id");
  if (!sessionId) return rpcHttpError(400, ErrorCode.InvalidRequest, "Bad Request: Mcp-Session-Id header is required");
  const session = await route.gateway.find(sessionId, caller.identity);
  if (session?.transport !== "streamable-http") return sessionNotFound();
  const s = sseStream({ onClose: () => session.detach(s.sink) });
  const lastEventId = request.headers.get("last-event-id") ?? undefined;
  // Something at once, so the response headers go out now rather than with the first event or keep-alive. A new
  // stream on 2025-11-25 starts with an event that has an id and empty data (transports, SEP-1699), so the client
  // can resume it even before anything happened; a resumed one replays first.
  const prime = session.protocolVersion >= "2025-11-25";
  if (!prime || lastEventId !== undefined) s.write(": stream open\n\n");
  // A stale or foreign Last-Event-ID cannot be replayed: the client still gets a live stream.
  if (!(await session.attach(s.sink, lastEventId, prime))) await session.attach(s.sink, undefined, prime);
  return s.response;
}

async function del(request: Request, route: McpRoute, caller: Caller): Promise<Response> {
  const sessionId = request.headers.get("mcp-session-id");
  if (!sessionId) return rpcHttpError(400, ErrorCode.InvalidRequest, "Bad Request: Mcp-Session-Id header is required");
  const session = await route.gateway.find(sessionId, caller.identity);
  if (!session) return rpcHttpError(404, -32001, "Session not found");
  route.gateway.sessions.close(session.id, "client ended it (DELETE)");
  return new Response(null, { status: 200 });
}

/** A state store that cannot be read or written (Redis down) answers 503 with a JSON-RPC body, like every /mcp error. */
export async function storeFaultsAsRpc(handle: () => Promise<Response>): Promise<Response> {
  try {
    return await handle();
  } catch (e) {
    if (e instanceof StoreUnavailableError) return refuse(storeRefusal(e));
    throw e;
  }
}

export function notAllowed(allow = METHODS): Response {
  return new Response(
    JSON.stringify({
      jsonrpc: "2.0",
      id: null,
      error: { code: ErrorCode.InvalidRequest, message: "Method Not Allowed" },
    }),
    { status: 405, headers: { "content-type": "application/json", allow } },
  );
}

/**
 * What every MCP surface (this endpoint, the legacy SSE transport) shares, as Elysia hooks: CORS on every answer
 * (mapResponse, for the routes registered after it), and — through `admitted()` — the caller's admission as a
 * resolve step (origin, credentials, required scopes, rate limit: mcp/admission.ts) whose refusal is answered
 * before any handler runs.
 */
export function mcpSurface(name: string, deps: McpDeps) {
  const origins = deps.config.allowedOrigins;
  const app = new Elysia({ name }).mapResponse(({ response, request }) =>
    response instanceof Response ? withCors(response, request, origins) : undefined,
  );
  const admitted = () =>
    app
      .resolve(async ({ request }) => {
        const route = deps.route(request);
        return { route, admission: await admitCaller(request, route, deps.admission) };
      })
      .onBeforeHandle(({ admission }) => (refused(admission) ? refuse(admission.refusal) : undefined));
  return { app, admitted, origins };
}

/**
 * Elysia plugin: one MCP endpoint at `path` (and `path/`, which clients sometimes use; never a redirect). Named per
 * path, so several routes can be mounted (Elysia deduplicates plugins by name).
 */
export const mcp = (path: string, deps: McpDeps) => {
  const { app, admitted, origins } = mcpSurface(`mcp:${path}`, deps);
  const paths = path === "/" ? ["/"] : [path, `${path}/`];
  for (const p of paths) {
    app
      // HEAD would otherwise run GET, and hold a session's stream open with no body to carry it.
      .head(p, () => notAllowed())
      .put(p, () => notAllowed(), { parse: "none" })
      .patch(p, () => notAllowed(), { parse: "none" })
      .options(p, ({ request }) => preflight(request, origins, METHODS));
  }
  const withCaller = admitted();
  for (const p of paths) {
    withCaller
      .post(
        p,
        ({ request, route, admission }) => storeFaultsAsRpc(() => post(request, route, admission as Caller, deps)),
        { parse: "none" },
      )
      .get(p, ({ request, route, admission }) => storeFaultsAsRpc(() => get(request, route, admission as Caller)))
      .delete(p, ({ request, route, admission }) => storeFaultsAsRpc(() => del(request, route, admission as Caller)), {
        parse: "none",
      });
  }
  return app;
};
