// The static identity providers of `serverAuth`: none (anonymous), bearer (a table of tokens) and forwarded (a
// trusted reverse proxy's user and groups headers). The OAuth provider lives with the authorization server.

import { BoundedMap } from "../bounded-map.ts";
import type { BearerEntry, ForwardedConfig } from "../config/types.ts";
import { sha256Hex } from "../crypto.ts";
import { inAnyCidr } from "../net/cidr.ts";
import { bearerChallenge } from "./challenge.ts";
import type { AuthFailure, AuthProvider, AuthRequest, AuthResult } from "./identity.ts";

/** RFC 6750 §2.1: `Authorization: Bearer <token>`, scheme case-insensitive. Undefined when absent or another scheme. */
export function bearerToken(headers: Headers): string | undefined {
  const h = headers.get("authorization");
  if (!h) return undefined;
  const m = /^bearer[ ]+(\S+)\s*$/i.exec(h);
  return m ? m[1] : undefined;
}

/** A 401 in RFC 6750 §3 form; without credentials the challenge carries no error (§3.1). */
export function unauthorized(description: string, error?: "invalid_request" | "invalid_token"): AuthFailure {
  const failure: AuthFailure = {
    status: 401,
    description,
    challenge: bearerChallenge(error ? { error, description } : {}),
  };
  if (error) failure.error = error;
  return failure;
}

/** The identity provider or the state store cannot be asked right now: 503, never a refusal of the token. */
export function unavailable(description: string): AuthFailure {
  return { status: 503, description, challenge: bearerChallenge({}) };
}

export const noneProvider: AuthProvider = {
  kind: "none",
  authenticate: () => ({ ok: true, identity: { subject: "anonymous", roles: [], groups: [], provider: "none" } }),
};

export function bearerProvider(tokens: BearerEntry[]): AuthProvider {
  const byHash = new Map(tokens.map((t) => [t.sha256, t]));
  // Tokens that were accepted, so a hot path does not hash on every request (bounded; refusals are never kept).
  const accepted = new BoundedMap<string, BearerEntry>(1000);
  return {
    kind: "bearer",
    authenticate(req: AuthRequest): AuthResult {
      const header = req.headers.get("authorization");
      if (!header) return { ok: false, failure: unauthorized("missing Authorization header") };
      const token = bearerToken(req.headers);
      if (!token) {
        return {
          ok: false,
          failure: unauthorized("Authorization header must use the Bearer scheme", "invalid_request"),
        };
      }
      let entry = accepted.get(token);
      if (!entry) {
        // Looked up by SHA-256, so timing depends on the hash, not on how much of a real token was guessed.
        entry = byHash.get(sha256Hex(token));
        if (!entry) return { ok: false, failure: unauthorized("invalid bearer token", "invalid_token") };
        accepted.set(token, entry);
      }
      return {
        ok: true,
        identity: { subject: entry.subject, roles: [...entry.roles], groups: [], provider: "bearer" },
      };
    },
  };
}

/** Splits a groups header: comma-separated, trimmed, empty entries dropped, case kept. */
export function splitGroups(value: string | null): string[] {
  if (!value) return [];
  return value
    .split(",")
    .map((g) => g.trim())
    .filter((g) => g.length > 0);
}

export function forwardedProvider(config: ForwardedConfig): AuthProvider {
  return {
    kind: "forwarded",
    authenticate(req: AuthRequest): AuthResult {
      // The headers are only believed from configured proxies (RFC 9700 §4.13 on spoofed proxy headers).
      if (config.trustedSourceCidrs && !inAnyCidr(config.trustedSourceCidrs, req.peerAddress)) {
        return {
          ok: false,
          failure: unauthorized(
            `${config.header} is only accepted from trustedSourceCidrs (peer ${req.peerAddress ?? "unknown"})`,
          ),
        };
      }
      const user = req.headers.get(config.header);
      if (user === null) return { ok: false, failure: unauthorized(`missing ${config.header} header`) };
      if (user.trim() === "") return { ok: false, failure: unauthorized(`${config.header} header is empty`) };
      const groups = splitGroups(req.headers.get(config.groupsHeader));
      return { ok: true, identity: { subject: user.trim(), roles: groups, groups, provider: "forwarded" } };
    },
  };
}

/**
 * Tries providers in order; the first that accepts wins. When all refuse, the answer is the first provider's
 * refusal, so that the order of providers, not the last one tried, decides what a client is told — except that
 * when a provider's challenge names protected resource metadata (oauth_as, or jwt/introspection serving discovery),
 * that challenge is the one sent: MCP clients start their OAuth discovery from `resource_metadata` in every 401
 * (MCP authorization, RFC 9728 §5.1).
 */
export function providerChain(providers: AuthProvider[]): (req: AuthRequest) => Promise<AuthResult> {
  if (providers.length === 0) return async (req) => noneProvider.authenticate(req);
  return async (req) => {
    let first: AuthFailure | undefined;
    let discoverable: AuthFailure | undefined;
    let down: AuthFailure | undefined;
    const reasons: string[] = [];
    for (const p of providers) {
      const r = await p.authenticate(req);
      if (r.ok) return r;
      first ??= r.failure;
      // The first refusal that points at protected resource metadata (oauth_as, jwt/introspection with discovery).
      if (r.failure.challenge.includes("resource_metadata=")) discoverable ??= r.failure;
      // A provider that could not check the token (its store or issuer unreachable) may have accepted it.
      if (r.failure.status === 503) down ??= r.failure;
      reasons.push(`${p.kind}: ${r.failure.description}`);
    }
    // The answer is one provider's refusal, whole — status, challenge, error and description agree (a revoked
    // Gatehouse token is "has been revoked" in the body as in WWW-Authenticate); every reason goes to the log.
    // In order: a discoverable provider's verdict on the token (expired, revoked: the client refreshes or signs in);
    // else a provider that could not check it (503: it may be valid there, so retry rather than sign in again);
    // else the discoverable refusal (no credentials), else the first.
    const verdict = discoverable?.error ? discoverable : undefined;
    const chosen = verdict ?? down ?? discoverable ?? (first as AuthFailure);
    const failure: AuthFailure = { ...chosen };
    // What could not be reached (an identity provider's URL, the store) is for the log, not for whoever asked.
    if (chosen === down) failure.description = "the token cannot be checked right now; retry shortly";
    failure.tried = reasons.join("; ");
    return { ok: false, failure };
  };
}
