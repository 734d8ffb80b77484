// Small constructors for the JSON responses the HTTP surfaces send.

import { errorResponse, type JsonRpcId } from "../mcp/jsonrpc.ts";

export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

/** An HTTP-level failure of the MCP endpoint, with a JSON-RPC error body (MCP transports allow a body without id). */
export function rpcHttpError(status: number, code: number, message: string, id: JsonRpcId | null = null): Response {
  return json(errorResponse(id, code, message), status);
}
