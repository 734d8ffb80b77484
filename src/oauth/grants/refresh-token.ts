// The refresh_token grant (RFC 6749 §6, OAuth 2.1 §4.3) with rotation on every use: a used refresh token presented
// again after a short grace window revokes the whole grant (RFC 9700 §4.14.2); within the window a repeat of the
// same request — from this process or another sharing the store — gets the very answer of the first (sealed under a
// key derived from the token presented), as long as the grant is live; a different request with the used token is
// refused. A refresh may only narrow the scopes, and never change the resource.

import { createHmac } from "node:crypto";
import { CompactEncrypt, compactDecrypt } from "jose";
import { randomId, sha256Hex } from "../../crypto.ts";
import type { GrantRecord, RefreshTokenRecord } from "../../store/types.ts";
import type { TokenResponse } from "../authorization-server.ts";
import { OAuthError } from "../errors.ts";
import { canonicalResource } from "../resource.ts";
import { parseScope } from "../scopes.ts";
import { type GrantRequest, optional, required } from "./common.ts";

export async function refreshToken({ as, client, form, outcome: told }: GrantRequest): Promise<TokenResponse> {
  const presented = required(form, "refresh_token");
  const scopeParam = optional(form, "scope"); // RFC 6749 §3.2: never twice
  const hash = sha256Hex(presented);
  const now = as.clock.now();
  const log = (outcome: "issued" | "refused", reason?: string, subject?: string) => {
    as.log.info("token: refresh_token", { client_id: client.client_id, outcome, reason, subject });
    if (told && outcome === "refused") told.logged = true;
    as.audit.event({
      event: outcome === "issued" ? "token_issued" : "token_refused",
      success: outcome === "issued",
      grant_type: "refresh_token",
      client_id: client.client_id,
      ...(subject ? { subject } : {}),
      ...(reason ? { reason } : {}),
      ...(outcome === "issued" && scopeParam ? { scope: scopeParam } : {}),
    });
  };
  const invalid = () => new OAuthError("invalid_grant", "the refresh token is invalid, expired or revoked");

  // The same request presented again while its refresh is in flight, or within the grace window: the same answer.
  // Checked and claimed before any await, so two concurrent requests cannot both start a rotation. The key holds
  // what was asked (scope, resource) besides the token: a request that asks something else is no repeat, and is
  // answered on its own (its own errors; once the token is used, refused below, RFC 6749 §6).
  const key = [client.client_id, hash, scopeParam ?? "", ...form.getAll("resource")].join("\u0000");
  const recent = as.recentRefreshes.get(key);
  if (recent && recent.until >= now) {
    const response = await recent.response;
    // The grant may have been revoked since (revocation, a replayed code, the client deleted): then the answer is
    // dead, and so is the token presented — checked at the store as any refresh is.
    await liveGrant();
    log("issued", "repeated refresh within the grace window");
    return response;
  }
  const graceMs = as.config.refreshReuseGraceSeconds * 1000;
  const response = rotate();
  as.recentRefreshes.set(key, { response, until: now + graceMs });
  response.catch(() => as.recentRefreshes.delete(key));
  return response;

  /** The refresh token presented, if it is still known, unexpired and of a live grant of this client. */
  async function liveGrant(): Promise<{ record: RefreshTokenRecord; grant: GrantRecord }> {
    const record = await as.store.getRefreshToken(hash);
    if (!record || record.expires_at < now) {
      log("refused", record ? "expired" : "unknown refresh token");
      throw invalid();
    }
    const grant = await as.store.getGrant(record.grant_id);
    if (!grant || grant.revoked_at !== undefined || grant.expires_at < now) {
      log("refused", grant?.revoked_reason ? `grant revoked (${grant.revoked_reason})` : "grant gone");
      throw invalid();
    }
    if (grant.client_id !== client.client_id) {
      log("refused", "refresh token of another client", grant.subject);
      throw invalid();
    }
    return { record, grant };
  }

  async function rotate(): Promise<TokenResponse> {
    const { record, grant } = await liveGrant();
    const requested = parseScope(scopeParam);
    const scopes = requested.length > 0 ? requested : grant.scopes;
    if (!scopes.every((s) => grant.scopes.includes(s))) {
      throw new OAuthError("invalid_scope", `a refresh may only narrow the granted scopes (${grant.scopes.join(" ")})`);
    }
    const resources = form.getAll("resource");
    if (
      resources.length > 0 &&
      !mcpServeResource(as, grant, resources) &&
      as.resolveResource(resources) !== grant.resource
    ) {
      throw new OAuthError("invalid_target", "resource differs from the one the grant is for");
    }

    const replay = async (rotatedAt: number, answer?: string): Promise<TokenResponse> => {
      if (now - rotatedAt <= graceMs) {
        // Refreshed at the same moment through another replica: the very answer it gave.
        const same = answer ? await openAnswer(presented, answer) : undefined;
        if (same && !sameScopes(parseScope(same.scope), scopes)) {
          // Not a repeat but another request with a token already used (RFC 6749 §6: once a new refresh token is
          // issued the client MUST discard the old one; RFC 9700 §4.14.2: a rotated token is single-use). The grace
          // window only covers a lost answer, which a retry of the same request recovers: handing this one the
          // other request's tokens would give it scopes it did not ask for, and a sibling pair would open a second
          // chain that reuse detection never sees. Refused — without revoking, as it may be the client itself.
          log("refused", "refresh token already used by another request (other scope)", grant.subject);
          throw new OAuthError(
            "invalid_grant",
            "the refresh token was just used by a request for other scopes; use the refresh token issued to it",
          );
        }
        if (same) {
          log("issued", "repeated refresh within the grace window (the answer of the first)", grant.subject);
          return same;
        }
        // Used within the window but answered before a restart: a sibling token pair in the same grant.
        log("issued", "repeated refresh within the grace window (after a restart)", grant.subject);
        return as.issueTokens(grant, client, scopes);
      }
      // RFC 9700 §4.14.2: a used refresh token presented again means one copy is stolen; the grant ends.
      await as.store.revokeGrant(grant.id, now, "refresh token reused after rotation");
      as.audit.event({
        event: "refresh_reuse_detected",
        success: false,
        client_id: client.client_id,
        subject: grant.subject,
        grant_id: grant.id,
        reason: "a rotated refresh token was presented again: the grant and every token under it are revoked",
      });
      log("refused", "refresh token reused after rotation: the grant is revoked", grant.subject);
      throw new OAuthError("invalid_grant", "the refresh token was already used; the grant is revoked (sign in again)");
    };
    if (record.rotated_at !== undefined) {
      // Already rotated (by another replica, a moment ago, or long ago): its kept answer, if any, decides.
      return replay(record.rotated_at, await as.store.rotationAnswer(hash, now));
    }

    // Everything the answer holds is made before the rotation, so the rotation can store it sealed, atomically.
    const issued = await as.accessToken(grant, client, scopes);
    const successor = randomId(32);
    issued.refresh_token = successor;
    const sealed = await sealAnswer(presented, issued);
    const outcome = await as.store.rotateRefreshToken(
      hash,
      sha256Hex(successor),
      { grant_id: grant.id, created_at: now, expires_at: grant.expires_at },
      now,
      { sealed, until: now + graceMs },
    );
    if (outcome.status === "missing") throw invalid();
    if (outcome.status === "already-rotated") return replay(outcome.rotatedAt, outcome.answer);
    log("issued", undefined, grant.subject);
    return issued;
  }
}

/**
 * The answer to a refresh, encrypted (A256GCM) under a key derived from the refresh token presented, so that only
 * someone holding that token can read it back: another replica that receives the same refresh during the grace
 * window returns it unchanged, though the store keeps only token hashes.
 */
async function sealAnswer(presented: string, response: TokenResponse): Promise<string> {
  return new CompactEncrypt(new TextEncoder().encode(JSON.stringify(response)))
    .setProtectedHeader({ alg: "dir", enc: "A256GCM" })
    .encrypt(answerKey(presented));
}

async function openAnswer(presented: string, sealed: string): Promise<TokenResponse | undefined> {
  try {
    const { plaintext } = await compactDecrypt(sealed, answerKey(presented));
    return JSON.parse(new TextDecoder().decode(plaintext)) as TokenResponse;
  } catch {
    return undefined;
  }
}

/** The same scopes, in any order (the resource cannot differ: a refresh never changes it). */
function sameScopes(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((s) => b.includes(s));
}

function answerKey(presented: string): Uint8Array {
  return new Uint8Array(createHmac("sha256", presented).update("gatehouse refresh answer").digest());
}

/**
 * A grant converted from mcp serve's state, refreshed by a client that still names mcp serve's resource: its
 * protected resource metadata said `"resource": <issuerUrl>` (avelino/mcp src/server_auth/oauth_as/metadata.rs), and
 * RFC 8707 clients send that at refresh. It is the same /mcp, so the grant's own resource (that of /mcp) is used.
 */
function mcpServeResource(as: GrantRequest["as"], grant: GrantRecord, resources: string[]): boolean {
  return (
    grant.migrated_from === "mcp-serve" &&
    resources.length === 1 &&
    canonicalResource(resources[0] as string) === canonicalResource(as.config.issuerUrl)
  );
}
