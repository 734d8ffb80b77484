// gateway.forward: a reverse proxy for one upstream behind the bearer check, for every request no Gatehouse endpoint
// answers (env-only mode: allardy/mcp-oauth-proxy forwarded every path that was not its discovery, /healthz or
// /oauth/register). Each request first passes what /mcp's would — Origin, credentials, required scopes, the rate
// limit (mcp/admission.ts) — then goes on as it came: method, headers, body and the answer streamed both ways (an
// SSE stream flows as it is written), except for
//   - the hop-by-hop headers (RFC 9110 §7.6.1: Connection and those it names, Keep-Alive, TE, Trailer,
//     Transfer-Encoding, Upgrade, Proxy-*), which belong to each connection, not to the message;
//   - Authorization: the client's token is for Gatehouse and is never passed on (mcp-oauth-proxy passed it);
//   - Host, which names the upstream (as mcp-oauth-proxy's changeOrigin did);
//   - the identity headers Gatehouse itself asserts (X-Auth-Request-*, the backend's forward_identity headers):
//     removed when the client sends them, so that no caller can claim to be someone else; the forward_identity ones
//     are then set to the caller's subject and roles, as on MCP calls.
// The upstream's answer (any status, redirects included) reaches the client unchanged but for hop-by-hop headers and
// CORS. A body larger than gateway.maxBodyBytes gets 413, as on /mcp.

import { Elysia } from "elysia";
import type { ForwardConfig } from "../config/types.ts";
import type { Logger } from "../log.ts";
import { type AdmissionDeps, admitCaller, refused } from "../mcp/admission.ts";
import type { Backend } from "../mcp/catalog.ts";
import { headerValue } from "../net/header-value.ts";
import type { McpRoute } from "../routing.ts";
import { preflight, withCors } from "./cors.ts";
import { refuse } from "./refusal.ts";
import { json } from "./responses.ts";

export interface ForwardDeps {
  forward: ForwardConfig;
  /** The route whose checks a request passes (/mcp's). */
  route(request: Request): McpRoute;
  admission: AdmissionDeps;
  /** forward.server: started (and waited for) before a request is sent to it. */
  backend?: Backend;
  /** Paths that are Gatehouse's whatever the method (its endpoints, the MCP paths): never forwarded. */
  own: readonly string[];
  log: Logger;
  fetch?: typeof fetch;
}

const HOP_BY_HOP = [
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
];
const METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";

/** Removes the hop-by-hop headers, those Connection names included. */
function dropHopByHop(headers: Headers): Headers {
  for (const name of (headers.get("connection") ?? "").split(",")) {
    const n = name.trim().toLowerCase();
    if (n) headers.delete(n);
  }
  for (const n of HOP_BY_HOP) headers.delete(n);
  return headers;
}

/** Where a request goes: forward.url, with the request's path appended to its own when appendPath is set. */
export function forwardTarget(forward: ForwardConfig, requestUrl: URL): string {
  const u = new URL(forward.url);
  if (forward.appendPath) u.pathname = `${u.pathname.replace(/\/$/, "")}${requestUrl.pathname}`;
  u.search = requestUrl.search;
  return u.href;
}

/** The body, cut off (the upstream sees an aborted request) once it passes `limit` bytes. */
function limited(body: ReadableStream<Uint8Array>, limit: number, onTooLarge: () => void): ReadableStream<Uint8Array> {
  let size = 0;
  return body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        size += chunk.byteLength;
        if (size > limit) {
          onTooLarge();
          controller.error(new Error(`request body is larger than ${limit} bytes`));
          return;
        }
        controller.enqueue(chunk);
      },
    }),
  );
}

export const forward = (deps: ForwardDeps) => {
  const { admission, log } = deps;
  const origins = admission.allowedOrigins;
  const fetchImpl = deps.fetch ?? fetch;
  const fi = deps.backend?.config.forwardIdentity;
  const own = new Set([
    "/health",
    "/healthz",
    "/livez",
    "/readyz",
    "/metrics",
    "/register",
    "/oauth/register",
    "/authenticate",
    ...deps.own,
  ]);
  const tooLarge = () =>
    json(
      {
        error: "payload_too_large",
        error_description: `request body is larger than ${admission.maxBodyBytes} bytes (gateway.maxBodyBytes)`,
      },
      413,
    );

  const answer = async (request: Request): Promise<Response> => {
    const url = new URL(request.url);
    // Gatehouse's own names are never the upstream's, with another method either; nor is discovery: a well-known
    // document Gatehouse does not serve is not the upstream's to answer (mcp-oauth-proxy forwarded those unchecked).
    const path = url.pathname;
    if (path.startsWith("/.well-known/") || path.startsWith("/authenticate/") || own.has(path)) {
      return json({ error: "not_found", error_description: `no such endpoint: ${request.method} ${path}` }, 404);
    }
    if (request.method === "OPTIONS" && request.headers.has("access-control-request-method")) {
      return preflight(request, origins, METHODS);
    }
    const route = deps.route(request);
    const caller = await admitCaller(request, route, admission);
    if (refused(caller)) return refuse(caller.refusal);
    // A route that lets anonymous callers list tools does not open the rest of the upstream to them.
    if (caller.challenge) return refuse({ kind: "auth", failure: caller.challenge });
    const declared = request.headers.get("content-length");
    if (declared !== null && Number(declared) > admission.maxBodyBytes) {
      await request.body?.cancel().catch(() => {});
      return tooLarge();
    }
    if (deps.backend) {
      try {
        await deps.backend.client.ensureReady();
      } catch (e) {
        log.warn("cannot forward: the upstream is not running", {
          server: deps.backend.config.name,
          error: (e as Error).message,
        });
        return json({ error: "bad_gateway", error_description: (e as Error).message }, 502);
      }
    }

    const headers = dropHopByHop(new Headers(request.headers));
    headers.delete("authorization");
    headers.delete("host");
    for (const name of [...headers.keys()]) if (name.startsWith("x-auth-request-")) headers.delete(name);
    if (fi) {
      headers.set(fi.header, headerValue(caller.identity.subject));
      if (fi.rolesHeader) headers.set(fi.rolesHeader, headerValue(caller.identity.roles.join(",")));
    }
    let overLimit = false;
    const hasBody = request.body !== null && request.method !== "GET" && request.method !== "HEAD";
    const target = forwardTarget(deps.forward, url);
    let upstream: Response;
    try {
      upstream = await fetchImpl(target, {
        method: request.method,
        headers,
        redirect: "manual",
        signal: request.signal,
        // Bun: pass the answer on as it was encoded, Content-Encoding and all.
        decompress: false,
        ...(hasBody
          ? {
              body: limited(request.body as ReadableStream<Uint8Array>, admission.maxBodyBytes, () => {
                overLimit = true;
              }),
              duplex: "half",
            }
          : {}),
      } as RequestInit);
    } catch (e) {
      if (overLimit) return tooLarge();
      if (request.signal.aborted) return new Response(null, { status: 499 });
      log.warn("cannot forward: the upstream did not answer", { target: new URL(target).origin, error: String(e) });
      return json({ error: "bad_gateway", error_description: "the upstream did not answer" }, 502);
    }
    const out = dropHopByHop(new Headers(upstream.headers));
    return new Response(upstream.body, { status: upstream.status, statusText: upstream.statusText, headers: out });
  };

  return new Elysia({ name: "forward" }).all(
    "/*",
    async ({ request }) => withCors(await answer(request), request, origins),
    { parse: "none" },
  );
};
