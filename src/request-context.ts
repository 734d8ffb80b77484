// The request being served, wherever the code is: its id (the caller's X-Request-Id when it is a sane token — nginx's
// $request_id, a load balancer's — else a fresh one) and its peer address. Log lines and audit records carry them, so
// one failed connection can be followed through every step it took. AsyncLocalStorage exists under Bun and Deno.

import { AsyncLocalStorage } from "node:async_hooks";
import { randomId } from "./crypto.ts";

export interface RequestContext {
  readonly id: string;
  /** The address of the peer, worked out when first asked. */
  peer(): string | undefined;
}

const storage = new AsyncLocalStorage<RequestContext>();

export function currentRequest(): RequestContext | undefined {
  return storage.getStore();
}

const SANE_ID = /^[A-Za-z0-9._:-]{1,64}$/;

/** Runs `fn` as the handling of `request`; the answer carries the id in X-Request-Id. */
export async function inRequest(
  request: Request,
  peer: () => string | undefined,
  fn: () => Response | Promise<Response>,
): Promise<Response> {
  const given = request.headers.get("x-request-id");
  const id = given && SANE_ID.test(given) ? given : randomId(9);
  let address: string | undefined | null = null;
  const context: RequestContext = {
    id,
    peer: () => {
      if (address === null) address = peer();
      return address;
    },
  };
  const response = await storage.run(context, fn);
  try {
    response.headers.set("x-request-id", id);
  } catch {
    // an immutable response (a redirect made by Response.redirect): it goes without
  }
  return response;
}
