// The gateway endpoint `/mcp`: MCP Streamable HTTP (2025-03-26, 2025-06-18, 2025-11-25 basic/transports) — POST
// for client messages (answered with JSON, or SSE once the backend streams), GET for the session's own stream
// (resumable with Last-Event-ID), DELETE to end a session.

import { Elysia } from "elysia";
import { type AuthFailure, type Identity, insufficientScope, principalKey } from "../auth/identity.ts";
import type { GatewayConfig } from "../config/types.ts";
import type { Logger } from "../log.ts";
import { type Channel, type Gateway, insufficientScopeError, SUPPORTED_PROTOCOL_VERSIONS } from "../mcp/gateway.ts";
import {
  classify,
  ErrorCode,
  errorResponse,
  type JsonRpcMessage,
  type JsonRpcNotification,
  type JsonRpcRequest,
  type JsonRpcResponse,
} from "../mcp/jsonrpc.ts";
import type { ClientSession } from "../mcp/session.ts";
import type { RateLimit } from "../policy/rate-limit.ts";
import { admitsAnonymous, anonymousMayCall } from "../policy/route.ts";
import { grants } from "../policy/tool-scopes.ts";
import type { McpRoute } from "../routing.ts";
import { StoreUnavailableError } from "../store/types.ts";
import { readLimited } from "./body.ts";
import { originAllowed, preflight, selfOrigins, withCors } from "./cors.ts";
import { refusalResponse } from "./refusal.ts";
import { json, rpcHttpError, rpcStoreUnavailable } from "./responses.ts";
import { sseStream } from "./sse-response.ts";

export interface McpDeps {
  /** The route a request is for: fixed per path, except /mcp with host-based routing. */
  route(request: Request): McpRoute;
  /** Requests per minute per caller (gateway.rateLimitPerMinute). */
  limiter?: RateLimit;
  /** A 403 when the caller's token lacks scopes the endpoint requires (RFC 6750 §3.1 insufficient_scope). */
  checkScopes?(identity: Identity): AuthFailure | undefined;
  config: GatewayConfig;
  log: Logger;
}

/** Who is calling. `challenge` is set for a caller without credentials let in by the route's policy. */
export interface Admitted {
  identity: Identity;
  challenge?: AuthFailure;
}

const ANONYMOUS: Identity = { subject: "anonymous", roles: [], groups: [], provider: "none" };

const METHODS = "GET, POST, DELETE, OPTIONS";

/** Origin, then credentials: what every /mcp request passes before anything else is looked at. */
export async function admit(
  request: Request,
  route: McpRoute,
  deps: Pick<McpDeps, "checkScopes" | "config" | "log">,
): Promise<Admitted | { response: Response }> {
  const origin = request.headers.get("origin");
  if (!originAllowed(origin, deps.config.allowedOrigins, () => selfOrigins([route.resourceUrl], request))) {
    deps.log.warn("request refused: Origin not allowed (add it to gateway.allowedOrigins if it is yours)", { origin });
    return { response: rpcHttpError(403, ErrorCode.InvalidRequest, `Origin ${origin} is not allowed`) };
  }
  const result = await route.authenticate(request);
  if (!result.ok) {
    // No credentials at all (not bad ones) on a route that lets anonymous callers do some things: each message is
    // then checked against the policy, and the ones that need a user get this 401.
    if (result.failure.status === 401 && !result.failure.error && admitsAnonymous(route.policy)) {
      return { identity: ANONYMOUS, challenge: result.failure };
    }
    return { response: refusalResponse(result.failure, "jsonrpc") };
  }
  const scopeFailure = deps.checkScopes?.(result.identity);
  if (scopeFailure) {
    deps.log.info("request refused: insufficient scope", {
      subject: result.identity.subject,
      reason: scopeFailure.description,
    });
    return { response: refusalResponse(scopeFailure, "jsonrpc") };
  }
  return { identity: result.identity };
}

function acceptsSse(request: Request): boolean {
  return (request.headers.get("accept") ?? "").includes("text/event-stream");
}

/**
 * Runs one request and answers it. The answer is JSON unless the backend sends something about the request
 * before its result (progress, logging, a sampling request) and the client accepts SSE: then the response becomes an
 * SSE stream that carries those messages as they happen and ends with the result. A request still unanswered after
 * gateway.sseKeepalive also switches to SSE, so keep-alive comments stop proxies from cutting a long, silent call.
 */
function respond(
  deps: McpDeps,
  gateway: Gateway,
  session: ClientSession,
  identity: Identity,
  req: JsonRpcRequest,
  sse: boolean,
): Promise<Response> {
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
    const slow = sse && deps.config.sseKeepaliveMs > 0 ? setTimeout(open, deps.config.sseKeepaliveMs) : undefined;
    const channel: Channel = {
      deliver(m: JsonRpcMessage) {
        if (done || !sse) return gateway.standaloneChannel(session).deliver(m);
        session.send(open(), m);
      },
    };
    void gateway.handleRequest(session, identity, req, channel).then((response) => {
      done = true;
      clearTimeout(slow);
      if (stream === undefined) return resolve(json(response));
      session.send(stream, response);
      session.endStream(stream);
    });
  });
}

/**
 * The route policy and tool scopes, applied to one request before it is handled. `auth`: an anonymous caller sent
 * something that needs a user (answered with the 401 that starts authorization). `scope`: a tools/call the token's
 * scopes do not cover (403 insufficient_scope). Undefined: go ahead.
 */
export async function gate(
  route: McpRoute,
  admitted: Admitted,
  req: JsonRpcRequest,
): Promise<{ auth: AuthFailure } | { scope: string[]; tool: string } | undefined> {
  if (admitted.challenge && !anonymousMayCall(route.policy, req.method, req.params)) {
    return { auth: admitted.challenge };
  }
  const { identity } = admitted;
  if (req.method !== "tools/call" || identity.scopes === undefined) return undefined;
  const needed = await route.gateway.scopesForTool(identity, req.params?.name);
  if (!needed || grants(identity, needed)) return undefined;
  return { scope: needed, tool: String(req.params?.name) };
}

/** The 403 for a step-up: the scope parameter lists what the token has plus what the call needs (MCP §Scope Challenge). */
export function stepUp(identity: Identity, needed: string[], tool: string): AuthFailure {
  const all = [...(identity.scopes ?? []), ...(identity.requiredScopes ?? []), ...needed];
  return insufficientScope(identity, all, `${tool} needs the scope(s) ${needed.join(" ")}`);
}

async function post(request: Request, route: McpRoute, deps: McpDeps): Promise<Response> {
  const { log } = deps;
  const { gateway } = route;
  const admitted = await admit(request, route, deps);
  if ("response" in admitted) return admitted.response;
  const { identity } = admitted;
  const allowance = await deps.limiter?.take(principalKey(identity));
  if (allowance && !allowance.ok) {
    log.warn("request refused: rate limit", { subject: identity.subject, per_minute: deps.limiter?.perMinute });
    const res = rpcHttpError(
      429,
      ErrorCode.InvalidRequest,
      `rate limit exceeded: ${deps.limiter?.perMinute} requests per minute (gateway.rateLimitPerMinute)`,
    );
    res.headers.set("retry-after", String(allowance.retryAfterSeconds));
    return res;
  }

  const type = request.headers.get("content-type");
  if (type !== null && !type.toLowerCase().includes("application/json")) {
    return rpcHttpError(415, ErrorCode.InvalidRequest, `Content-Type must be application/json (got ${type})`);
  }
  const body = await readLimited(request, deps.config.maxBodyBytes);
  if (!body.ok) {
    return rpcHttpError(
      413,
      ErrorCode.InvalidRequest,
      `request body is larger than ${deps.config.maxBodyBytes} bytes (gateway.maxBodyBytes)`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.text);
  } catch (e) {
    return rpcHttpError(400, ErrorCode.ParseError, `Parse error: ${(e as Error).message}`);
  }
  const header = request.headers.get("mcp-protocol-version");
  if (header !== null && !(SUPPORTED_PROTOCOL_VERSIONS as readonly string[]).includes(header)) {
    return rpcHttpError(
      400,
      ErrorCode.InvalidRequest,
      `Unsupported MCP-Protocol-Version: ${header} (supported: ${SUPPORTED_PROTOCOL_VERSIONS.join(", ")})`,
    );
  }
  const batch = Array.isArray(parsed);
  const items: unknown[] = batch ? (parsed as unknown[]) : [parsed];
  if (batch && items.length === 0) return rpcHttpError(400, ErrorCode.InvalidRequest, "Invalid Request: empty batch");
  const kinds = items.map(classify);

  // An anonymous caller whose batch holds anything that needs a user is sent to authorize, as a whole.
  if (admitted.challenge) {
    for (const [i, item] of items.entries()) {
      if (kinds[i] !== "request") continue;
      const r = item as JsonRpcRequest;
      if (!anonymousMayCall(route.policy, r.method, r.params)) {
        log.info("anonymous request needs authentication", { route: route.name, method: r.method });
        return refusalResponse(admitted.challenge, "jsonrpc");
      }
    }
  }

  // initialize opens a session; it must come alone (MCP lifecycle; batches may not carry it).
  const initIndex = items.findIndex((m, i) => kinds[i] === "request" && (m as JsonRpcRequest).method === "initialize");
  if (initIndex >= 0) {
    if (batch)
      return rpcHttpError(400, ErrorCode.InvalidRequest, "Invalid Request: initialize cannot be part of a batch");
    const init = items[0] as JsonRpcRequest;
    let session: ClientSession;
    try {
      session = gateway.openSession(identity, "streamable-http");
    } catch (e) {
      return rpcHttpError(503, ErrorCode.InternalError, (e as Error).message, init.id);
    }
    return json(await gateway.initialize(session, identity, init), 200, { "mcp-session-id": session.id });
  }

  const sessionId = request.headers.get("mcp-session-id");
  if (!sessionId) {
    return rpcHttpError(
      400,
      ErrorCode.InvalidRequest,
      "Bad Request: Mcp-Session-Id header is required (send initialize first)",
    );
  }
  const session = await gateway.findSession(sessionId, identity);
  if (session?.transport !== "streamable-http") {
    return rpcHttpError(404, -32001, "Session not found: initialize a new session");
  }
  // JSON-RPC batches were part of 2025-03-26 only (removed in 2025-06-18).
  if (batch && session.protocolVersion !== "2025-03-26") {
    return rpcHttpError(
      400,
      ErrorCode.InvalidRequest,
      `Invalid Request: batches are not allowed in protocol version ${session.protocolVersion}`,
    );
  }

  if (!batch) {
    const kind = kinds[0];
    if (kind === null)
      return rpcHttpError(400, ErrorCode.InvalidRequest, "Invalid Request: not a JSON-RPC 2.0 message");
    if (kind === "notification") {
      gateway.handleNotification(session, parsed as JsonRpcNotification);
      return new Response(null, { status: 202 });
    }
    if (kind === "response") {
      await gateway.handleResponse(session, parsed as JsonRpcResponse);
      return new Response(null, { status: 202 });
    }
    const req = parsed as JsonRpcRequest;
    const refused = await gate(route, admitted, req);
    if (refused && "auth" in refused) return refusalResponse(refused.auth, "jsonrpc");
    if (refused) {
      const failure = stepUp(identity, refused.scope, refused.tool);
      log.info("tool call refused: insufficient scope", { subject: identity.subject, tool: refused.tool });
      return refusalResponse(failure, "jsonrpc");
    }
    return respond(deps, gateway, session, identity, req, acceptsSse(request));
  }

  // A 2025-03-26 batch: every item is checked and handled on its own, so no item can ride on another.
  const answers: Promise<JsonRpcResponse>[] = [];
  for (const [i, item] of items.entries()) {
    const kind = kinds[i];
    if (kind === null) answers.push(Promise.resolve(errorResponse(null, ErrorCode.InvalidRequest, "Invalid Request")));
    else if (kind === "notification") gateway.handleNotification(session, item as JsonRpcNotification);
    else if (kind === "response") await gateway.handleResponse(session, item as JsonRpcResponse);
    else {
      const req = item as JsonRpcRequest;
      const refused = await gate(route, admitted, req);
      if (refused && "scope" in refused) {
        log.info("batch item refused: insufficient scope", { subject: identity.subject, tool: refused.tool });
        answers.push(Promise.resolve(insufficientScopeError(refused.tool, refused.scope).toJsonRpc(req.id)));
      } else answers.push(gateway.handleRequest(session, identity, req, gateway.standaloneChannel(session)));
    }
  }
  if (answers.length === 0) return new Response(null, { status: 202 });
  const responses = await Promise.all(answers);
  log.debug("batch answered", { session: session.id.slice(0, 8), items: items.length });
  return json(responses);
}

async function get(request: Request, route: McpRoute, deps: McpDeps): Promise<Response> {
  const admitted = await admit(request, route, deps);
  if ("response" in admitted) return admitted.response;
  if (!acceptsSse(request)) {
    return rpcHttpError(406, ErrorCode.InvalidRequest, "Not Acceptable: GET needs Accept: text/event-stream");
  }
  const sessionId = request.headers.get("mcp-session-id");
  if (!sessionId) return rpcHttpError(400, ErrorCode.InvalidRequest, "Bad Request: Mcp-Session-Id header is required");
  const session = await route.gateway.findSession(sessionId, admitted.identity);
  if (session?.transport !== "streamable-http") {
    return rpcHttpError(404, -32001, "Session not found: initialize a new session");
  }
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

async function del(request: Request, route: McpRoute, deps: McpDeps): Promise<Response> {
  const admitted = await admit(request, route, deps);
  if ("response" in admitted) return admitted.response;
  const sessionId = request.headers.get("mcp-session-id");
  if (!sessionId) return rpcHttpError(400, ErrorCode.InvalidRequest, "Bad Request: Mcp-Session-Id header is required");
  const session = await route.gateway.findSession(sessionId, admitted.identity);
  if (!session) return rpcHttpError(404, -32001, "Session not found");
  route.gateway.closeSession(session.id, "client ended it (DELETE)");
  return new Response(null, { status: 200 });
}

/** A state store that cannot be read or written (Redis down) answers 503 with a JSON-RPC body, like every /mcp error. */
export async function storeFaultsAsRpc(handle: () => Promise<Response>): Promise<Response> {
  try {
    return await handle();
  } catch (e) {
    if (e instanceof StoreUnavailableError) return rpcStoreUnavailable(e.retryAfterSeconds);
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
 * Elysia plugin: one MCP endpoint at `path` (and `path/`, which clients sometimes use; never a redirect). Named per
 * path, so several routes can be mounted (Elysia deduplicates plugins by name).
 */
export const mcp = (path: string, deps: McpDeps) => {
  const origins = deps.config.allowedOrigins;
  const app = new Elysia({ name: `mcp:${path}` });
  const on =
    (h: (request: Request, route: McpRoute, deps: McpDeps) => Promise<Response>) =>
    async ({ request }: { request: Request }) =>
      withCors(await storeFaultsAsRpc(() => h(request, deps.route(request), deps)), request, origins);
  for (const p of path === "/" ? ["/"] : [path, `${path}/`]) {
    app
      .post(p, on(post), { parse: "none" })
      .get(p, on(get))
      .delete(p, on(del), { parse: "none" })
      // HEAD would otherwise run GET, and hold a session's stream open with no body to carry it.
      .head(p, ({ request }) => withCors(notAllowed(), request, origins))
      .put(p, ({ request }) => withCors(notAllowed(), request, origins), { parse: "none" })
      .patch(p, ({ request }) => withCors(notAllowed(), request, origins), { parse: "none" })
      .options(p, ({ request }) => preflight(request, origins, METHODS));
  }
  return app;
};
