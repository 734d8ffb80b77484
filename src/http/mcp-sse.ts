// The 2024-11-05 HTTP+SSE transport for old clients (MCP 2024-11-05 basic/transports): GET /mcp/sse opens the
// stream and announces, in an `endpoint` event, where to POST messages; every answer travels on the stream.

import { Elysia } from "elysia";
import {
  classify,
  ErrorCode,
  type JsonRpcNotification,
  type JsonRpcRequest,
  type JsonRpcResponse,
} from "../mcp/jsonrpc.ts";
import { type ClientSession, STANDALONE_STREAM } from "../mcp/session.ts";
import type { McpRoute } from "../routing.ts";
import { readLimited } from "./body.ts";
import { preflight, withCors } from "./cors.ts";
import { admit, gate, type McpDeps, notAllowed, stepUp, storeFaultsAsRpc } from "./mcp.ts";
import { refusalResponse } from "./refusal.ts";
import { rpcHttpError } from "./responses.ts";
import { sseStream } from "./sse-response.ts";

async function open(request: Request, route: McpRoute, deps: McpDeps): Promise<Response> {
  const admitted = await admit(request, route, deps);
  if ("response" in admitted) return admitted.response;
  let sessionId = "";
  let session: ClientSession;
  try {
    session = route.gateway.openSession(admitted.identity, "sse");
  } catch (e) {
    return rpcHttpError(503, ErrorCode.InternalError, (e as Error).message);
  }
  sessionId = session.id;
  // With replicas the POSTs to /message may reach another one: it must know the session first.
  await route.gateway.share(session);
  const s = sseStream({ legacy: true, onClose: () => route.gateway.closeSession(sessionId, "SSE stream closed") });
  // Relative to the stream's URL (…/sse → …/message), so it still resolves when a proxy mounts Gatehouse under a
  // path prefix; clients resolve it against the stream URL (2024-11-05 transports, "endpoint" event).
  s.write(`event: endpoint\ndata: message?session_id=${encodeURIComponent(sessionId)}\n\n`);
  await session.attach(s.sink);
  return s.response;
}

async function message(request: Request, route: McpRoute, deps: McpDeps): Promise<Response> {
  const admitted = await admit(request, route, deps);
  if ("response" in admitted) return admitted.response;
  const id = new URL(request.url).searchParams.get("session_id");
  if (!id) return rpcHttpError(400, ErrorCode.InvalidRequest, "Bad Request: session_id query parameter is required");
  const session = await route.gateway.findSession(id, admitted.identity);
  if (session?.transport !== "sse") return rpcHttpError(404, -32001, "Session not found");
  const body = await readLimited(request, deps.config.maxBodyBytes);
  if (!body.ok)
    return rpcHttpError(413, ErrorCode.InvalidRequest, `request body is larger than ${deps.config.maxBodyBytes} bytes`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.text);
  } catch (e) {
    return rpcHttpError(400, ErrorCode.ParseError, `Parse error: ${(e as Error).message}`);
  }
  const kind = classify(parsed);
  if (kind === null) return rpcHttpError(400, ErrorCode.InvalidRequest, "Invalid Request: not a JSON-RPC 2.0 message");
  const { gateway } = route;
  if (kind === "request") {
    const req = parsed as JsonRpcRequest;
    const refused = await gate(route, admitted, req);
    if (refused && "auth" in refused) return refusalResponse(refused.auth, "jsonrpc");
    if (refused) return refusalResponse(stepUp(admitted.identity, refused.scope, refused.tool), "jsonrpc");
  }
  if (kind === "notification") gateway.handleNotification(session, parsed as JsonRpcNotification);
  else if (kind === "response") await gateway.handleResponse(session, parsed as JsonRpcResponse);
  else {
    const channel = gateway.standaloneChannel(session);
    void gateway
      .handleRequest(session, admitted.identity, parsed as JsonRpcRequest, channel)
      .then((response) => session.send(STANDALONE_STREAM, response));
  }
  return new Response("Accepted", { status: 202 });
}

/** Elysia plugin: the legacy transport of a route, at `<path>/sse` and `<path>/message`. */
export const mcpSse = (path: string, deps: McpDeps) => {
  const origins = deps.config.allowedOrigins;
  const base = path === "/" ? "" : path;
  const on =
    (h: (request: Request, route: McpRoute, deps: McpDeps) => Promise<Response>) =>
    async ({ request }: { request: Request }) =>
      withCors(await storeFaultsAsRpc(() => h(request, deps.route(request), deps)), request, origins);
  return (
    new Elysia({ name: `mcp-sse:${path}` })
      .get(`${base}/sse`, on(open))
      // HEAD would otherwise run GET: open a session and an endless stream nobody reads.
      .head(`${base}/sse`, ({ request }) => withCors(notAllowed("GET, OPTIONS"), request, origins))
      .post(`${base}/message`, on(message), { parse: "none" })
      .options(`${base}/sse`, ({ request }) => preflight(request, origins, "GET, OPTIONS"))
      .options(`${base}/message`, ({ request }) => preflight(request, origins, "POST, OPTIONS"))
  );
};
