// The one place errors become HTTP responses. OAuth errors are serialized as {error, error_description} with
// Cache-Control: no-store (RFC 6749 §5.2); a state store that cannot write (or be reached) answers 503
// temporarily_unavailable with Retry-After (the error code of RFC 6749 §4.1.2.1, used as §5.2 bodies are) — the store
// logged the cause once for the whole outage; unknown routes get a JSON 404; anything unexpected is logged with its
// stack and answered with a generic 500 — internal detail never reaches the wire.

import { Elysia } from "elysia";
import type { Logger } from "../log.ts";
import { OAuthError } from "../oauth/errors.ts";
import { StoreUnavailableError } from "../store/types.ts";
import { corsHeaders } from "./cors.ts";
import { json } from "./responses.ts";

export const errors = (deps: { log: Logger; origins: readonly string[] }) =>
  new Elysia({ name: "errors" }).onError({ as: "global" }, ({ code, error, request }) => {
    const cors = corsHeaders(request.headers.get("origin"), deps.origins);
    if (error instanceof OAuthError) {
      return json({ error: error.error, error_description: error.description }, error.status, {
        "cache-control": "no-store",
        pragma: "no-cache",
        ...error.headers,
        ...cors,
      });
    }
    if (error instanceof StoreUnavailableError) {
      return storeUnavailable(error, cors);
    }
    if (code === "NOT_FOUND") {
      return json(
        { error: "not_found", error_description: `no such endpoint: ${new URL(request.url).pathname}` },
        404,
        cors,
      );
    }
    if (code === "PARSE" || code === "VALIDATION") {
      const message =
        code === "VALIDATION" ? "the request does not have the expected fields" : "the body could not be parsed";
      return json({ error: "invalid_request", error_description: message }, 400, {
        "cache-control": "no-store",
        ...cors,
      });
    }
    const e = error as Error;
    deps.log.error("unhandled error", { path: new URL(request.url).pathname, error: e?.stack ?? String(error) });
    return json({ error: "server_error", error_description: "internal error (see the Gatehouse log)" }, 500, {
      "cache-control": "no-store",
      ...cors,
    });
  });

/** What a client is told while the state store is failing: retry soon; nothing was changed. */
export const STORE_UNAVAILABLE_MESSAGE =
  "Gatehouse cannot save changes right now (its state store is unavailable); nothing was changed, try again shortly";

export function storeUnavailable(error: StoreUnavailableError, headers: Record<string, string> = {}): Response {
  return json({ error: "temporarily_unavailable", error_description: STORE_UNAVAILABLE_MESSAGE }, 503, {
    "cache-control": "no-store",
    pragma: "no-cache",
    "retry-after": String(error.retryAfterSeconds),
    ...headers,
  });
}
