// The one serializer of refusals: authentication refusals (401, 403 insufficient_scope, 503 when the issuer cannot be
// asked) always with the provider's WWW-Authenticate challenge and no-store, the body in the form of the surface —
// a JSON-RPC error on MCP endpoints (MCP transports allow one without id), `{error, error_description}` for forward
// auth (RFC 6750 §3 names the codes); and the admission's HTTP-level refusals (403 Origin, 413, 415, 429…) as
// JSON-RPC errors.

import type { AuthFailure } from "../auth/identity.ts";
import type { Refusal } from "../mcp/admission.ts";
import { ErrorCode, errorResponse } from "../mcp/jsonrpc.ts";
import { json, rpcHttpError } from "./responses.ts";

export function refusalResponse(failure: AuthFailure, form: "jsonrpc" | "oauth"): Response {
  const body =
    form === "jsonrpc"
      ? errorResponse(null, ErrorCode.ConnectionClosed, `authentication failed: ${failure.description}`)
      : { error: failure.error ?? "unauthorized", error_description: failure.description };
  return json(body, failure.status, { "www-authenticate": failure.challenge, "cache-control": "no-store" });
}

/** An admission refusal on an MCP endpoint. */
export function refuse(r: Refusal): Response {
  if (r.kind === "auth") return refusalResponse(r.failure, "jsonrpc");
  const res = rpcHttpError(r.status, r.code, r.message);
  if (r.retryAfter !== undefined) res.headers.set("retry-after", String(r.retryAfter));
  return res;
}
