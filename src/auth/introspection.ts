// The `introspection` provider: opaque tokens checked at the issuer's introspection endpoint (RFC 7662 §2), with
// Gatehouse authenticated as a client. Active results are cached (by the token's hash) until the token expires —
// at most cacheMaxTtl — in a bounded cache; inactive ones are not cached. An endpoint that cannot be reached gives
// 503, not a refusal that would send clients back to sign in. The same check can follow another provider
// (`alsoFor: "jwt"`): a JWT that verifies locally must then be active at the issuer too.

import { BoundedMap } from "../bounded-map.ts";
import type { IntrospectionConfig, JwtConfig } from "../config/types.ts";
import { sha256Hex } from "../crypto.ts";
import { allowChecker } from "../login/allow.ts";
import { fetchJson, isObject, UpstreamError } from "../net/upstream.ts";
import type { SharedServices } from "../store/shared.ts";
import { acceptedIssuers, identityFromClaims, refusal } from "./claims.ts";
import type { AuthFailure, AuthProvider, AuthRequest, AuthResult } from "./identity.ts";
import { bearerToken, unavailable } from "./providers.ts";

/** What the issuer said about a token: active (its claims), or a refusal (401, or 503 when it cannot be asked). */
export type Introspected = { ok: true; claims: Record<string, unknown> } | { ok: false; failure: AuthFailure };

/**
 * Asks the issuer's introspection endpoint about a token, with the checks every answer gets (active, `iss`, `aud`,
 * `exp`). Active answers are cached by the token's hash until it expires, at most cacheMaxTtl (and shared with other
 * replicas); inactive ones are not cached, so a token revoked at the issuer stops working within cacheMaxTtl.
 */
export function introspector(
  c: IntrospectionConfig,
  deps: { now(): number; fetch?: typeof fetch; shared?: SharedServices },
): (token: string) => Promise<Introspected> {
  const cache = new BoundedMap<string, { claims: Record<string, unknown>; until: number }>(
    Math.max(1, c.cacheMaxEntries),
  );
  // With replicas, a token introspected by one is not introspected again by the others.
  const shared = c.cacheMaxEntries > 0 ? deps.shared?.cache("introspection", c.cacheMaxEntries) : undefined;
  const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, "+");
  const refuse = (description: string): Introspected => ({
    ok: false,
    failure: refusal(c.discovery, description, true, c.requiredScopes),
  });

  return async (token) => {
    const now = deps.now();
    const key = sha256Hex(token);
    const hit = cache.get(key);
    if (hit && hit.until > now) return { ok: true, claims: hit.claims };
    if (hit) cache.delete(key);
    const fromPeer = await shared?.get(key);
    if (fromPeer) {
      const peer = JSON.parse(fromPeer) as { claims: Record<string, unknown>; until: number };
      if (peer.until > now) {
        cache.set(key, peer);
        return { ok: true, claims: peer.claims };
      }
    }

    const form = new URLSearchParams({ token, token_type_hint: "access_token" });
    const headers: Record<string, string> = {
      "content-type": "application/x-www-form-urlencoded",
      accept: "application/json",
    };
    if (c.authMethod === "client_secret_basic")
      headers.authorization = `Basic ${btoa(`${enc(c.clientId)}:${enc(c.clientSecret)}`)}`;
    else {
      form.set("client_id", c.clientId);
      form.set("client_secret", c.clientSecret);
    }
    let r: { status: number; body: unknown };
    try {
      r = await fetchJson(
        c.endpoint,
        { method: "POST", headers, body: form.toString() },
        {
          provider: "introspection",
          timeoutMs: c.timeoutMs,
          ...(deps.fetch ? { fetch: deps.fetch } : {}),
        },
      );
    } catch (e) {
      const message = e instanceof UpstreamError ? e.message : String(e);
      return { ok: false, failure: unavailable(`the token cannot be checked now: ${message}`) };
    }
    // Some servers answer a token they cannot read (a JWT at an opaque-token endpoint) with 400
    // unsupported_token_type (RFC 7009 §2.2.1's code): the token's fault, not an outage.
    if (r.status === 400 && isObject(r.body) && r.body.error === "unsupported_token_type") {
      return refuse("the issuer does not know this kind of token");
    }
    if (r.status !== 200 || !isObject(r.body)) {
      return { ok: false, failure: unavailable(`the introspection endpoint answered HTTP ${r.status}`) };
    }
    const claims = r.body;
    if (claims.active !== true) return refuse("the token is not active");
    if (c.issuer && claims.iss !== undefined && !acceptedIssuers(c.issuer).includes(claims.iss as string)) {
      return refuse(`the token was issued by ${String(claims.iss)}`);
    }
    // The configured audiences must be named. Without any, a token may carry no `aud` (no resource indicator),
    // but one that names audiences must name this route's own URL (RFC 8707): a token minted for another API, or
    // for one backend's route, does not open /mcp.
    const aud = Array.isArray(claims.aud)
      ? claims.aud.map(String)
      : claims.aud !== undefined
        ? [String(claims.aud)]
        : [];
    const expected = c.audience ?? (c.discovery.resourceUrl ? [c.discovery.resourceUrl] : undefined);
    if (expected && (c.audience !== undefined || aud.length > 0) && !aud.some((a) => expected.includes(a))) {
      return refuse("the token is for another audience");
    }
    const exp = typeof claims.exp === "number" ? claims.exp * 1000 : now + c.cacheMaxTtlMs;
    if (exp <= now) return refuse("the token has expired");
    if (c.cacheMaxEntries > 0) {
      const entry = { claims, until: Math.min(exp, now + c.cacheMaxTtlMs) };
      cache.set(key, entry);
      await shared?.set(key, JSON.stringify(entry), entry.until - now);
    }
    return { ok: true, claims };
  };
}

export function introspectionProvider(
  c: IntrospectionConfig,
  deps: { now(): number; fetch?: typeof fetch; shared?: SharedServices },
): AuthProvider {
  const allows = allowChecker(c.allow);
  const introspect = introspector(c, deps);
  return {
    kind: "introspection",
    async authenticate(req: AuthRequest): Promise<AuthResult> {
      const token = bearerToken(req.headers);
      if (!token)
        return { ok: false, failure: refusal(c.discovery, "missing Authorization header", false, c.requiredScopes) };
      const answer = await introspect(token);
      if (!answer.ok) return answer;
      return identityFromClaims("introspection", answer.claims, c, allows);
    },
  };
}

/**
 * A provider whose accepted tokens must also be active at the issuer's introspection endpoint
 * (`introspection.alsoFor: "jwt"`): a JWT revoked at the identity provider stops working before it expires — within
 * cacheMaxTtl, the longest an active answer is remembered. The identity stays the one the provider found.
 *
 * The answer describes the JWT, so it is held to the jwt block's issuer and audiences (besides any the introspection
 * block names for its own opaque tokens), and a refusal points clients at the jwt block's discovery: an Authentik
 * or Auth0 audience ("my-mcp") need not be written twice.
 */
export function alsoIntrospected(
  provider: AuthProvider,
  c: IntrospectionConfig,
  jwt: JwtConfig,
  deps: { now(): number; fetch?: typeof fetch; shared?: SharedServices },
): AuthProvider {
  const audience = [...new Set([...(c.audience ?? []), ...jwt.audience])];
  const held: IntrospectionConfig = {
    ...c,
    issuer: c.issuer ?? jwt.issuer,
    discovery: jwt.discovery,
    requiredScopes: jwt.requiredScopes,
  };
  if (audience.length > 0) held.audience = audience;
  const introspect = introspector(held, deps);
  return {
    kind: provider.kind,
    async authenticate(req: AuthRequest): Promise<AuthResult> {
      const result = await provider.authenticate(req);
      if (!result.ok) return result;
      const answer = await introspect(bearerToken(req.headers) as string);
      if (!answer.ok) {
        const failure = { ...answer.failure, description: `${answer.failure.description} (introspection)` };
        return { ok: false, failure };
      }
      return result;
    },
  };
}
