// Access tokens `mcp serve` issued, accepted on /mcp until they expire once its state has been taken over, so that a
// switch to Gatehouse logs nobody out. What mcp serve mints (avelino/mcp src/server_auth/oauth_as/token.rs issue_jwt,
// jwt.rs sign, types.rs JwtClaims): HS256 with oauthAs.jwtSecret, header {"alg":"HS256","typ":"JWT"}, claims
// `iss` (issuerUrl without its trailing "/"), `aud` (the client_id — not the resource), `sub`, `groups` (the proxy's
// groups plus injectedRoles), `iat`, `nbf`, `exp`, `jti`. mcp serve verified them (provider.rs, jwt.rs verify) for
// that issuer, with the audience a registered client; so does Gatehouse, and bounds them further:
//
// - only when the same jwtSecret is configured (nothing else can verify them) and mcp serve's state was converted
//   (store/mcp-serve.ts records when);
// - only tokens minted before that moment (`iat`), living no longer than accessTokenTtlSeconds: once the conversion
//   is one token lifetime old, none is accepted any more, whatever someone holding the secret mints;
// - the client still registered, the `jti` not revoked.
//
// They carry no scope (mcp serve had none): with oauthAs.requiredScopes set they get 403 insufficient_scope, and the
// client signs in again.

import { decodeProtectedHeader, jwtVerify } from "jose";
import { MCP_SERVE_MIGRATED_AT } from "../store/mcp-serve.ts";
import type { AuthorizationServer } from "./authorization-server.ts";

export interface McpServeClaims {
  sub: string;
  /** The client the token was issued to (mcp serve's `aud`). */
  client_id: string;
  groups: string[];
  jti: string;
  exp: number;
}

export type McpServeVerified = { ok: true; claims: McpServeClaims } | { ok: false; reason: string };

/** Seconds of clock skew tolerated, as for Gatehouse's own tokens (access-tokens.ts). */
const CLOCK_SKEW_S = 5;

/** Whether a token looks like one of mcp serve's (HS256, typ JWT): only those are tried here. */
export function looksLikeMcpServeToken(token: string): boolean {
  try {
    const h = decodeProtectedHeader(token);
    return h.alg === "HS256" && String(h.typ ?? "").toUpperCase() === "JWT";
  } catch {
    return false;
  }
}

export async function verifyMcpServeToken(
  as: AuthorizationServer,
  token: string,
  nowMs: number,
): Promise<McpServeVerified> {
  const secret = as.config.jwtSecret;
  if (!secret) return { ok: false, reason: "tokens of mcp serve need its oauthAs.jwtSecret to be verified" };
  const migratedAt = Number(await as.store.getSecret(MCP_SERVE_MIGRATED_AT));
  if (!Number.isFinite(migratedAt) || migratedAt <= 0) {
    return { ok: false, reason: "typ is not at+jwt (RFC 9068 §4), and no state of mcp serve was taken over" };
  }
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(token, new TextEncoder().encode(secret), {
      algorithms: ["HS256"],
      issuer: as.config.issuerUrl,
      currentDate: new Date(nowMs),
      clockTolerance: CLOCK_SKEW_S,
      requiredClaims: ["sub", "aud", "iat", "nbf", "exp", "jti"],
    }));
  } catch (e) {
    const code = (e as { code?: string }).code;
    return {
      ok: false,
      reason: code === "ERR_JWT_EXPIRED" ? "the token has expired" : `invalid token (${(e as Error).message})`,
    };
  }
  const { sub, aud, iat, exp, jti, groups } = payload;
  if (typeof sub !== "string" || sub === "") return { ok: false, reason: "the token has no subject" };
  if (typeof aud !== "string" || typeof jti !== "string" || typeof iat !== "number" || typeof exp !== "number") {
    return { ok: false, reason: "not a token of mcp serve (aud, jti, iat, exp)" };
  }
  if (iat * 1000 > migratedAt + CLOCK_SKEW_S * 1000) {
    return { ok: false, reason: "a token in mcp serve's format minted after its state was taken over" };
  }
  if (exp - iat > as.config.accessTokenTtlSeconds) {
    return { ok: false, reason: "a token in mcp serve's format living longer than accessTokenTtlSeconds" };
  }
  if (!(await as.store.getClient(aud))) return { ok: false, reason: "the client of this token was deleted" };
  if (await as.store.isAccessTokenRevoked(jti)) return { ok: false, reason: "the token has been revoked" };
  return {
    ok: true,
    claims: {
      sub,
      client_id: aud,
      groups: Array.isArray(groups) ? groups.map(String) : [],
      jti,
      exp,
    },
  };
}
