// What the authorization server's HTTP plugins share: their dependencies, the paths they answer on (the
// issuer's path as published, and the same without it for proxies that strip a prefix), and body parsing.

import type { Logger } from "../../log.ts";
import { readLimited } from "../../net/body.ts";
import { originAllowed, selfOrigins } from "../../net/origin.ts";
import type { AuthorizationServer } from "../../oauth/authorization-server.ts";
import type { PendingAuthorizations } from "../../oauth/authorize.ts";
import { OAuthError } from "../../oauth/errors.ts";
import type { RateLimit } from "../../policy/rate-limit.ts";
import type { AuthLimits } from "./limits.ts";

export interface OAuthHttpDeps {
  as: AuthorizationServer;
  pendings: PendingAuthorizations;
  /** Registrations per minute, all clients together (shared by replicas). */
  registrations: RateLimit;
  log: Logger;
  /** Browser origins allowed to call registration, token and /mcp (gateway.allowedOrigins). */
  origins: readonly string[];
  peerAddress(request: Request): string | undefined;
  /** Per source and per client (oauthAs.rateLimits). */
  limits: AuthLimits;
}

const FORM_LIMIT = 64 * 1024;

/**
 * Browsers may send a form or text/plain POST to another origin without a preflight ("simple" requests): refuse
 * those from origins not listed in gateway.allowedOrigins before anything happens, so a page elsewhere cannot
 * register clients or spend codes through a user's browser. Requests without Origin (native clients) pass.
 */
export function refuseForeignOrigin(request: Request, deps: Pick<OAuthHttpDeps, "as" | "origins">): void {
  const origin = request.headers.get("origin");
  const c = deps.as.config;
  if (!originAllowed(origin, deps.origins, () => selfOrigins([c.issuerUrl, c.resourceUrl], request))) {
    throw new OAuthError("invalid_request", `Origin ${origin} is not allowed (add it to gateway.allowedOrigins)`, 403);
  }
}

/** `/token` and, when the issuer has a path such as `/gh`, `/gh/token` too. */
export function routes(issuer: string, path: string): string[] {
  const prefix = new URL(issuer).pathname.replace(/\/$/, "");
  return prefix ? [`${prefix}${path}`, path] : [path];
}

/** Reads an application/x-www-form-urlencoded body (RFC 6749 §3.2). */
export async function readForm(request: Request): Promise<URLSearchParams> {
  const type = (request.headers.get("content-type") ?? "").toLowerCase();
  if (!type.startsWith("application/x-www-form-urlencoded")) {
    throw new OAuthError("invalid_request", "the body must be application/x-www-form-urlencoded");
  }
  const body = await readLimited(request, FORM_LIMIT);
  if (!body.ok) throw new OAuthError("invalid_request", `the body is larger than ${FORM_LIMIT} bytes`, 413);
  return new URLSearchParams(body.text);
}

export function noStoreJson(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", "cache-control": "no-store", pragma: "no-cache", ...headers },
  });
}
