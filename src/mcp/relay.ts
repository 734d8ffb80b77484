// The way back: what a backend sends about a call in flight — progress (under the client's own token), log messages
// (filtered by the session's level), and its requests to the client (sampling, elicitation, roots), which go only to
// a client that declared the capability (MCP client/ features) under an id that names this replica, so that the
// client's answer, posted anywhere, comes back here.

import type { Channel } from "./call.ts";
import type { Backend } from "./catalog.ts";
import { ErrorCode, errorResponse, type JsonRpcNotification, type JsonRpcRequest, successResponse } from "./jsonrpc.ts";
import type { ClientSession } from "./session.ts";

/** The capability a client must have declared for each server→client request. */
const REQUIRED_CAPABILITY: Record<string, string> = {
  "sampling/createMessage": "sampling",
  "elicitation/create": "elicitation",
  "roots/list": "roots",
};

export const LOG_LEVELS = ["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"];

export function relayToClient(
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
