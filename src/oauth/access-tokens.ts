// JWT access tokens per RFC 9068 (typ "at+jwt"; iss, aud, sub, client_id, scope, jti, iat, exp) plus `groups`,
// `roles`, the user's `email` when known, and the grant they belong to (`gid`), and their validation (RFC 9068 §4): the
// signature with the algorithm of the key that signed it (never `none`, never an HS/ES/RS mix-up), the type, issuer,
// audience, lifetime.

import { decodeProtectedHeader, type JWTPayload, jwtVerify, SignJWT } from "jose";
import { randomId } from "../crypto.ts";
import type { KeyRing, SigningAlgorithm } from "./keys.ts";

export interface AccessTokenClaims {
  iss: string;
  sub: string;
  aud: string;
  client_id: string;
  scope: string;
  jti: string;
  iat: number;
  exp: number;
  groups: string[];
  roles: string[];
  /** The user's verified address, when the sign-in gave one (forward auth's X-Auth-Request-Email). */
  email?: string;
  /** The grant the token was issued under: revoking the grant revokes the token. */
  gid: string;
}

export interface MintInput {
  subject: string;
  clientId: string;
  audience: string;
  scopes: string[];
  groups: string[];
  roles: string[];
  email?: string;
  grantId: string;
  /** Seconds since the epoch. */
  now: number;
  ttlSeconds: number;
}

export type Verified = { ok: true; claims: AccessTokenClaims } | { ok: false; reason: string };

/** Seconds of clock skew tolerated on exp/iat (RFC 9068 §4 leaves it to the resource server). */
const CLOCK_SKEW_S = 5;

export class AccessTokens {
  constructor(
    private readonly keys: KeyRing,
    private readonly issuer: string,
  ) {}

  async mint(input: MintInput): Promise<{ token: string; claims: AccessTokenClaims }> {
    const signing = await this.keys.signingKey();
    const claims: AccessTokenClaims = {
      iss: this.issuer,
      sub: input.subject,
      aud: input.audience,
      client_id: input.clientId,
      scope: input.scopes.join(" "),
      jti: randomId(16),
      iat: input.now,
      exp: input.now + input.ttlSeconds,
      groups: input.groups,
      roles: input.roles,
      ...(input.email ? { email: input.email } : {}),
      gid: input.grantId,
    };
    const token = await new SignJWT(claims as unknown as JWTPayload)
      .setProtectedHeader({ alg: signing.alg, kid: signing.kid, typ: "at+jwt" })
      .sign(signing.key);
    return { token, claims };
  }

  /** Validates a token for `audience`; `nowMs` is the current time in milliseconds. */
  async verify(token: string, audience: string, nowMs: number): Promise<Verified> {
    if (token.split(".").length !== 3) return { ok: false, reason: "the token is not a JWT" };
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(token);
    } catch {
      return { ok: false, reason: "the token header cannot be decoded" };
    }
    // Only an algorithm one of our keys has: this refuses `none` and HS256 tokens "signed" with a public key
    // (RFC 8725 §2.1); below, the key named by `kid` must be of exactly the token's algorithm.
    const accepted = this.keys.algorithms();
    if (!accepted.includes(header.alg as SigningAlgorithm))
      return { ok: false, reason: `alg ${String(header.alg)} is not accepted` };
    const typ = String(header.typ ?? "").toLowerCase();
    if (typ !== "at+jwt" && typ !== "application/at+jwt")
      return { ok: false, reason: "typ is not at+jwt (RFC 9068 §4)" };
    const key = await this.keys.verifyKey(header.kid, header.alg, nowMs);
    if (!key) return { ok: false, reason: "signed with an unknown or expired key" };
    try {
      const { payload } = await jwtVerify(token, key, {
        algorithms: [header.alg as SigningAlgorithm],
        issuer: this.issuer,
        audience,
        currentDate: new Date(nowMs),
        clockTolerance: CLOCK_SKEW_S,
        requiredClaims: ["sub", "client_id", "jti", "iat", "exp"],
      });
      const p = payload as Partial<AccessTokenClaims>;
      if (typeof p.sub !== "string" || p.sub === "") return { ok: false, reason: "the token has no subject" };
      return {
        ok: true,
        claims: {
          iss: String(p.iss),
          sub: p.sub,
          aud: audience,
          client_id: String(p.client_id),
          scope: typeof p.scope === "string" ? p.scope : "",
          jti: String(p.jti),
          iat: Number(p.iat),
          exp: Number(p.exp),
          groups: Array.isArray(p.groups) ? p.groups.map(String) : [],
          roles: Array.isArray(p.roles) ? p.roles.map(String) : [],
          ...(typeof p.email === "string" ? { email: p.email } : {}),
          gid: String(p.gid ?? ""),
        },
      };
    } catch (e) {
      const code = (e as { code?: string }).code;
      const reason =
        code === "ERR_JWT_EXPIRED"
          ? "the token has expired"
          : code === "ERR_JWT_CLAIM_VALIDATION_FAILED"
            ? `claim check failed: ${(e as Error).message}`
            : code === "ERR_JWS_SIGNATURE_VERIFICATION_FAILED"
              ? "the signature does not verify"
              : `invalid token (${(e as Error).message})`;
      return { ok: false, reason };
    }
  }
}
