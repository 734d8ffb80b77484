// The 2024-11-05 HTTP+SSE transport for old clients (MCP 2024-11-05 basic/transports): GET /mcp/sse opens the
// stream and announces, in an `endpoint` event, where to POST messages; every answer travels on the stream.

import { admitRequest, type Caller, checkAnonymous, readMessages, refused } from "../mcp/admission.ts";
import { ErrorCode, type JsonRpcNotification, type JsonRpcRequest, type JsonRpcResponse } from "../mcp/jsonrpc.ts";
import { type ClientSession, STANDALONE_STREAM } from "../mcp/session.ts";
import type { McpRoute } from "../routing.ts";
import { preflight } from "./cors.ts";
import { type McpDeps, mcpSurface, notAllowed, storeFaultsAsRpc } from "./mcp.ts";
import { refuse } from "./refusal.ts";
import { rpcHttpError } from "./responses.ts";
import { sseStream } from "./sse-response.ts";

async function open(route: McpRoute, caller: Caller): Promise<Response> {
  const { gateway } = route;
  let session: ClientSession;
  try {
    session = gateway.open(caller.identity, "sse");
  } catch (e) {
    return rpcHttpError(503, ErrorCode.InternalError, (e as Error).message);
  }
  const sessionId = session.id;
  // With replicas the POSTs to /message may reach another one: it must know the session first.
  await gateway.sessions.share(session);
  const s = sseStream({ legacy: true, onClose: () => gateway.sessions.close(sessionId, "SSE stream closed") });
  // Relative to the stream's URL (…/sse → …/message), so it still resolves when a proxy mounts Gatehouse under a
  // path prefix; clients resolve it against the stream URL (2024-11-05 transports, "endpoint" event).
  s.write(`event: endpoint\ndata: message?session_id=${encodeURIComponent(sessionId)}\n\n`);
  await session.attach(s.sink);
  return s.response;
}

async function message(request: Request, route: McpRoute, caller: Caller, deps: McpDeps): Promise<Response> {
  const id = new URL(request.url).searchParams.get("session_id");
  if (!id) return rpcHttpError(400, ErrorCode.InvalidRequest, "Bad Request: session_id query parameter is required");
  const { gateway } = route;
  const session = await gateway.find(id, caller.identity);
  if (session?.transport !== "sse") return rpcHttpError(404, -32001, "Session not found");
  const incoming = await readMessages(request, deps.admission, "sse");
  if (refused(incoming)) return refuse(incoming.refusal);
  const anonymous = checkAnonymous(route, caller, incoming, deps.log);
  if (anonymous) return refuse(anonymous.refusal);
  const { kind, message } = incoming.messages[0] as (typeof incoming.messages)[number];
  if (kind === "notification") gateway.notify(session, message as JsonRpcNotification);
  else if (kind === "response") await gateway.answer(session, message as JsonRpcResponse);
  else {
    const rpcRequest = message as JsonRpcRequest;
    const admitted = await admitRequest(gateway, caller, rpcRequest, false, deps.log, route.policy, deps.admission);
    if (refused(admitted)) return refuse(admitted.refusal);
    const channel = gateway.standaloneChannel(session);
    void gateway
      .handle({ session, identity: caller.identity, request: rpcRequest, channel, ...admitted })
      .then((response) => session.send(STANDALONE_STREAM, response));
  }
  return new Response("Accepted", { status: 202 });
}

/** Elysia plugin: the legacy transport of a route, at `<path>/sse` and `<path>/message`. */
export const mcpSse = (path: string, deps: McpDeps) => {
  const { app, admitted, origins } = mcpSurface(`mcp-sse:${path}`, deps);
  const base = path === "/" ? "" : path;
  app
    // HEAD would otherwise run GET: open a session and an endless stream nobody reads.
    .head(`${base}/sse`, () => notAllowed("GET, OPTIONS"))
    .options(`${base}/sse`, ({ request }) => preflight(request, origins, "GET, OPTIONS"))
    .options(`${base}/message`, ({ request }) => preflight(request, origins, "POST, OPTIONS"));
  admitted()
    .get(`${base}/sse`, ({ route, admission }) => storeFaultsAsRpc(() => open(route, admission as Caller)))
    .post(
      `${base}/message`,
      ({ request, route, admission }) => storeFaultsAsRpc(() => message(request, route, admission as Caller, deps)),
      { parse: "none" },
    );
  return app;
};
