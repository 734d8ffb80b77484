// The `jwt` provider: access tokens minted by another issuer, validated as RFC 9068 asks of a resource server —
// the signature (keys from the issuer's JWKS, discovered and cached, fetched again on an unknown `kid` at most once
// per interval; or a shared secret), only the listed algorithms (never `none`), `iss`, `aud`, `exp`/`nbf` with a
// clock skew, and `typ` when required. Verified tokens are cached by hash until they expire.

import {
  createRemoteJWKSet,
  customFetch,
  decodeProtectedHeader,
  errors,
  type FlattenedJWSInput,
  type JWSHeaderParameters,
  type JWTVerifyGetKey,
  jwtVerify,
} from "jose";
import { BoundedMap } from "../bounded-map.ts";
import type { JwtConfig } from "../config/types.ts";
import { sha256Hex } from "../crypto.ts";
import { allowChecker } from "../login/allow.ts";
import { fetchJson, isObject, UpstreamError } from "../net/upstream.ts";
import { acceptedIssuers, identityFromClaims, refusal } from "./claims.ts";
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

/** How often a `kid` the cached keys lack may make us fetch the JWKS again (README: "at most once every 10 s"). */
const KID_REFETCH_COOLDOWN_MS = 10_000;
/** Keys are fetched again after this long even when every token finds its key. */
const KEYS_MAX_AGE_MS = 3_600_000;

/** Errors from resolving a token's key that are the token's fault, not the issuer's: 401, not 503. */
function tokenFault(e: unknown): boolean {
  return (
    e instanceof errors.JWKSNoMatchingKey ||
    e instanceof errors.JWKSMultipleMatchingKeys ||
    // An algorithm a key set cannot serve (HS* with public keys), or a published key this alg cannot use.
    e instanceof errors.JOSENotSupported
  );
}

/**
 * The issuer's JWKS, fetched, cached and timed out by jose. jose refetches on an unknown `kid` only when its last
 * fetch, whatever caused it, is older than its cooldown, so a rotation right after the first (or an expiry) fetch
 * would be refused until then. Our rule is about unknown `kid`s only: one of them may cause a refetch when none did
 * in the last KID_REFETCH_COOLDOWN_MS; the requests arriving meanwhile wait for that fetch instead of failing.
 */
function remoteKeys(uri: string, c: JwtConfig, deps: { now(): number; fetch?: typeof fetch }): JWTVerifyGetKey {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new UpstreamError("jwt", `its jwks_uri is not a URL: ${JSON.stringify(uri.slice(0, 200))}`);
  }
  const set = createRemoteJWKSet(url, {
    timeoutDuration: Math.max(0, Math.round(c.timeoutMs)),
    cooldownDuration: KID_REFETCH_COOLDOWN_MS,
    cacheMaxAge: KEYS_MAX_AGE_MS,
    headers: { "user-agent": "Gatehouse (JWKS fetcher)" },
    ...(deps.fetch ? { [customFetch]: deps.fetch } : {}),
  });
  let lastKidRefetch = Number.NEGATIVE_INFINITY;
  const resolve = async (header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<CryptoKey> => {
    for (let attempt = 0; ; attempt++) {
      // Not cooling down: on a miss jose fetches again itself (or has just fetched), and that is our refetch too.
      const joseRefetches = !set.coolingDown;
      try {
        return await set(header, token);
      } catch (e) {
        if (!(e instanceof errors.JWKSNoMatchingKey)) throw e;
        const now = deps.now();
        if (joseRefetches) lastKidRefetch = now;
        if (joseRefetches || attempt > 0) throw e;
        if (set.reloading) {
          await set.reload(); // another request's refetch: wait for it
        } else if (now - lastKidRefetch >= KID_REFETCH_COOLDOWN_MS) {
          lastKidRefetch = now;
          await set.reload();
        }
        // …and look once more (no fetch while jose cools down): a refetch may also have ended since our lookup.
      }
    }
  };
  return async (header, token) => {
    try {
      return await resolve(header, token);
    } catch (e) {
      if (tokenFault(e)) throw e;
      // Cannot fetch or use the key set (unreachable, timeout, not 200, not a JWKS): the issuer's problem.
      throw new UpstreamError(
        "jwt",
        e instanceof errors.JWKSTimeout
          ? `${url.host} did not answer within ${c.timeoutMs} ms (its JWKS)`
          : `cannot fetch its JWKS (${uri}): ${(e as Error).message}`,
      );
    }
  };
}

/** The token's `kid`, for a refusal's description: it is the client's text, so only when short and printable. */
function kidOf(token: string): string {
  try {
    const kid = decodeProtectedHeader(token).kid;
    if (kid === undefined) return "none";
    return typeof kid === "string" && /^[\x21-\x7e]{1,100}$/.test(kid) ? kid : "unprintable";
  } catch {
    return "none";
  }
}

export function jwtProvider(c: JwtConfig, deps: { now(): number; fetch?: typeof fetch }): AuthProvider {
  const allows = allowChecker(c.allow);
  const secret = c.secret ? new TextEncoder().encode(c.secret) : undefined;
  let jwks: Promise<JWTVerifyGetKey> | undefined;
  const keys = () => {
    jwks ??= (c.jwksUri ? Promise.resolve(c.jwksUri) : discoverJwksUri(c, deps.fetch)).then((uri) =>
      remoteKeys(uri, c, deps),
    );
    jwks.catch(() => {
      jwks = undefined; // retry discovery next time
    });
    return jwks;
  };
  const cache = new BoundedMap<string, { claims: Record<string, unknown>; exp: number }>(CACHE_MAX);
  const issuers = acceptedIssuers(c.issuer);

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
            secret ?? (async (header, jws) => (await keys())(header, jws)),
            {
              issuer: issuers,
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
          if (e instanceof UpstreamError) {
            // The issuer's keys cannot be fetched: not the client's fault, so no invalid_token that would send it
            // back to sign in. (A kid the issuer does not publish is the token's fault: 401 below.)
            const description = `the token cannot be checked now: ${e.message}`;
            return { ok: false, failure: unavailable(description) };
          }
          const why =
            code === "ERR_JWT_EXPIRED"
              ? "the token has expired"
              : code === "ERR_JWT_CLAIM_VALIDATION_FAILED"
                ? `claim check failed: ${(e as Error).message}`
                : code === "ERR_JOSE_ALG_NOT_ALLOWED"
                  ? "its algorithm is not accepted"
                  : code === "ERR_JWS_SIGNATURE_VERIFICATION_FAILED"
                    ? "the signature does not verify"
                    : code === "ERR_JWKS_NO_MATCHING_KEY"
                      ? `the token is signed with a key the provider does not publish (kid ${kidOf(token)})`
                      : code === "ERR_JWKS_MULTIPLE_MATCHING_KEYS"
                        ? `several of the provider's keys match the token (kid ${kidOf(token)})`
                        : `invalid token (${(e as Error).message})`;
          return { ok: false, failure: refusal(c.discovery, why, true, c.requiredScopes) };
        }
      }
      return identityFromClaims("jwt", hit.claims, c, allows);
    },
  };
}
