// The `jwt` provider: access tokens minted by another issuer, validated as RFC 9068 asks of a resource server —
// the signature (keys from the issuer's JWKS, discovered and cached, fetched again on an unknown `kid` at most once
// per interval; or a shared secret), only the listed algorithms (never `none`), `iss`, `aud`, `exp`/`nbf` with a
// clock skew, and `typ` when required. Verified tokens are cached by hash until they expire.

import { jwtVerify } from "jose";
import { BoundedMap } from "../bounded-map.ts";
import type { JwtConfig } from "../config/types.ts";
import { sha256Hex } from "../crypto.ts";
import { allowChecker } from "../login/allow.ts";
import { RemoteJwks, UnknownKeyError } from "../net/jwks.ts";
import { fetchJson, isObject, UpstreamError } from "../net/upstream.ts";
import { identityFromClaims, refusal } from "./claims.ts";
import type { AuthProvider, AuthRequest, AuthResult } from "./identity.ts";
import { bearerToken, unavailable } from "./providers.ts";

const CACHE_MAX = 10_000;

/** The issuer's jwks_uri from its OIDC discovery document, else its RFC 8414 metadata (path-inserted). */
async function discoverJwksUri(c: JwtConfig, fetchImpl?: typeof fetch): Promise<string> {
  const issuer = c.issuer.replace(/\/$/, "");
  const u = new URL(issuer);
  const path = u.pathname === "/" ? "" : u.pathname;
  const candidates = [
    `${issuer}/.well-known/openid-configuration`,
    `${u.origin}/.well-known/oauth-authorization-server${path}`,
  ];
  for (const url of candidates) {
    try {
      const { status, body } = await fetchJson(
        url,
        { headers: { accept: "application/json" } },
        {
          provider: "jwt",
          timeoutMs: c.timeoutMs,
          ...(fetchImpl ? { fetch: fetchImpl } : {}),
        },
      );
      if (status === 200 && isObject(body) && typeof body.jwks_uri === "string") return body.jwks_uri;
    } catch {
      // try the next document
    }
  }
  throw new UpstreamError("jwt", `cannot find the jwks_uri of ${c.issuer} (set serverAuth.jwt.jwksUri)`);
}

export function jwtProvider(c: JwtConfig, deps: { now(): number; fetch?: typeof fetch }): AuthProvider {
  const allows = allowChecker(c.allow);
  const secret = c.secret ? new TextEncoder().encode(c.secret) : undefined;
  let jwks: Promise<RemoteJwks> | undefined;
  const keys = () => {
    jwks ??= (c.jwksUri ? Promise.resolve(c.jwksUri) : discoverJwksUri(c, deps.fetch)).then(
      (uri) =>
        new RemoteJwks(uri, {
          provider: "jwt",
          timeoutMs: c.timeoutMs,
          now: deps.now,
          ...(deps.fetch ? { fetch: deps.fetch } : {}),
        }),
    );
    jwks.catch(() => {
      jwks = undefined; // retry discovery next time
    });
    return jwks;
  };
  const cache = new BoundedMap<string, { claims: Record<string, unknown>; exp: number }>(CACHE_MAX);

  return {
    kind: "jwt",
    async authenticate(req: AuthRequest): Promise<AuthResult> {
      const token = bearerToken(req.headers);
      if (!token)
        return { ok: false, failure: refusal(c.discovery, "missing Authorization header", false, c.requiredScopes) };
      const now = deps.now();
      const key = sha256Hex(token);
      let hit = cache.get(key);
      if (hit && hit.exp * 1000 <= now - c.clockSkewSeconds * 1000) {
        cache.delete(key);
        hit = undefined;
      }
      if (!hit) {
        if (token.split(".").length !== 3)
          return { ok: false, failure: refusal(c.discovery, "the token is not a JWT", true, c.requiredScopes) };
        try {
          const { payload, protectedHeader } = await jwtVerify(
            token,
            secret ?? (async (header) => (await keys()).key(header)),
            {
              issuer: c.issuer,
              audience: c.audience,
              algorithms: c.algorithms,
              clockTolerance: c.clockSkewSeconds,
              currentDate: new Date(now),
              requiredClaims: ["exp"],
            },
          );
          const typ = String(protectedHeader.typ ?? "").toLowerCase();
          if (c.requireTyp && typ !== c.requireTyp && typ !== `application/${c.requireTyp}`) {
            return { ok: false, failure: refusal(c.discovery, `typ is not ${c.requireTyp}`, true, c.requiredScopes) };
          }
          hit = { claims: payload as Record<string, unknown>, exp: Number(payload.exp) };
          cache.set(key, hit);
        } catch (e) {
          const code = (e as { code?: string }).code;
          if (e instanceof UpstreamError && !(e instanceof UnknownKeyError)) {
            // The issuer's keys cannot be fetched: not the client's fault, so no invalid_token that would send it
            // back to sign in. (A kid the issuer does not publish is the token's fault: 401 below.)
            const description = `the token cannot be checked now: ${e.message}`;
            return { ok: false, failure: unavailable(description) };
          }
          const why =
            e instanceof UnknownKeyError
              ? e.message
              : code === "ERR_JWT_EXPIRED"
                ? "the token has expired"
                : code === "ERR_JWT_CLAIM_VALIDATION_FAILED"
                  ? `claim check failed: ${(e as Error).message}`
                  : code === "ERR_JOSE_ALG_NOT_ALLOWED"
                    ? "its algorithm is not accepted"
                    : code === "ERR_JWS_SIGNATURE_VERIFICATION_FAILED"
                      ? "the signature does not verify"
                      : `invalid token (${(e as Error).message})`;
          return { ok: false, failure: refusal(c.discovery, why, true, c.requiredScopes) };
        }
      }
      return identityFromClaims("jwt", hit.claims, c, allows);
    },
  };
}
