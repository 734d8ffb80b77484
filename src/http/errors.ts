// The one place errors become HTTP responses. Unknown routes get a JSON 404; anything unexpected is logged with
// its stack and answered with a generic 500 — internal detail never reaches the wire.

import { Elysia } from "elysia";
import type { Logger } from "../log.ts";
import { json } from "./responses.ts";

export const errors = (deps: { log: Logger }) =>
  new Elysia({ name: "errors" }).onError({ as: "global" }, ({ code, error, request }) => {
    if (code === "NOT_FOUND") {
      return json({ error: "not_found", error_description: `no such endpoint: ${new URL(request.url).pathname}` }, 404);
    }
    if (code === "PARSE" || code === "VALIDATION") {
      const message =
        code === "VALIDATION" ? "the request does not have the expected fields" : "the body could not be parsed";
      return json({ error: "invalid_request", error_description: message }, 400, { "cache-control": "no-store" });
    }
    const e = error as Error;
    deps.log.error("unhandled error", { path: new URL(request.url).pathname, error: e?.stack ?? String(error) });
    return json({ error: "server_error", error_description: "internal error (see the Gatehouse log)" }, 500, {
      "cache-control": "no-store",
    });
  });
