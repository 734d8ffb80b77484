// The token endpoint (RFC 6749 §3.2, OAuth 2.1 §3.2 and §4.3): the authorization_code grant with PKCE (RFC 7636
// §4.6) and resource indicators (RFC 8707 §2.2), and the refresh_token grant with rotation on every use. A replayed
// code revokes what it issued (RFC 6749 §4.1.2); a used refresh token presented again after a short grace window
// revokes the whole grant (RFC 9700 §4.14.2), while within the window a concurrent refresh gets the same answer.

import { createHmac } from "node:crypto";
import { CompactEncrypt, compactDecrypt } from "jose";
import { randomId, sha256Hex } from "../crypto.ts";
import type { ClientRecord } from "../store/types.ts";
import type { AuthorizationServer, TokenResponse } from "./authorization-server.ts";
import { authenticateClient, presentedCredentials } from "./client-auth.ts";
import { OAuthError } from "./errors.ts";
import { verifyS256 } from "./pkce.ts";
import { parseScope } from "./scopes.ts";

function required(form: URLSearchParams, name: string): string {
  const v = form.get(name);
  if (!v) throw new OAuthError("invalid_request", `${name} is required`);
  if (form.getAll(name).length > 1) throw new OAuthError("invalid_request", `${name} was sent more than once`);
  return v;
}

/** Authenticates the client making a token, revocation or introspection request. */
export async function requestingClient(
  as: AuthorizationServer,
  headers: Headers,
  form: URLSearchParams,
): Promise<ClientRecord> {
  const creds = presentedCredentials(headers, form);
  if (!creds) throw new OAuthError("invalid_client", "client authentication is required (send client_id)", 401);
  let client: ClientRecord | undefined;
  try {
    client = await as.findClient(creds.clientId);
  } catch (e) {
    if (e instanceof OAuthError) throw new OAuthError("invalid_client", e.description, 401);
    throw e;
  }
  return authenticateClient(client, creds);
}

export async function token(as: AuthorizationServer, headers: Headers, form: URLSearchParams): Promise<TokenResponse> {
  const grantType = required(form, "grant_type");
  if (grantType !== "authorization_code" && grantType !== "refresh_token") {
    throw new OAuthError(
      "unsupported_grant_type",
      `grant_type ${grantType} is not supported (use authorization_code or refresh_token)`,
    );
  }
  const client = await requestingClient(as, headers, form);
  if (!client.grant_types.includes(grantType)) {
    throw new OAuthError("unauthorized_client", `this client did not register the ${grantType} grant`);
  }
  const response =
    grantType === "authorization_code" ? await exchangeCode(as, client, form) : await refresh(as, client, form);
  return response;
}

async function exchangeCode(
  as: AuthorizationServer,
  client: ClientRecord,
  form: URLSearchParams,
): Promise<TokenResponse> {
  const code = required(form, "code");
  const redirectUri = required(form, "redirect_uri");
  const verifier = form.get("code_verifier");
  const grantId = randomId(18);
  const codeHash = sha256Hex(code);
  const consumed = await as.store.consumeCode(codeHash, grantId);
  const log = (outcome: string, reason?: string) =>
    as.log.info("token: authorization_code", {
      client_id: client.client_id,
      outcome,
      reason,
      subject: consumed?.record.subject,
    });
  if (!consumed) {
    log("refused", "unknown or expired code");
    throw new OAuthError("invalid_grant", "the authorization code is invalid or has expired");
  }
  const c = consumed.record;
  if (consumed.replay) {
    // RFC 6749 §4.1.2: a code used twice is stolen or replayed; what it produced is revoked.
    if (c.grant_id) await as.store.revokeGrant(c.grant_id, as.clock.now(), "authorization code replayed");
    log("refused", "code replayed: its grant is revoked");
    throw new OAuthError(
      "invalid_grant",
      "the authorization code was already used; the tokens issued from it are revoked",
    );
  }
  if (c.expires_at < as.clock.now()) {
    log("refused", "expired code");
    throw new OAuthError("invalid_grant", "the authorization code has expired");
  }
  if (c.client_id !== client.client_id) {
    log("refused", "code issued to another client");
    throw new OAuthError("invalid_grant", "the authorization code was issued to another client");
  }
  if (c.redirect_uri !== redirectUri) {
    log("refused", "redirect_uri differs");
    throw new OAuthError("invalid_grant", "redirect_uri does not match the one of the authorization request");
  }
  // PKCE (RFC 7636 §4.6): a code always has a challenge here, so a missing verifier is a failure, never a downgrade.
  if (!verifier || !verifyS256(verifier, c.code_challenge)) {
    log("refused", "PKCE verification failed");
    throw new OAuthError("invalid_grant", "code_verifier does not match the code_challenge");
  }
  const resources = form.getAll("resource");
  if (resources.length > 0 && as.resolveResource(resources) !== c.resource) {
    throw new OAuthError("invalid_target", "resource differs from the one of the authorization request");
  }
  const grant = as.newGrant(c, grantId);
  const response = await as.accessToken(grant, client, c.scopes);
  const rt = as.newRefreshToken(grant, client);
  try {
    // The grant and its first refresh token are stored together: a failure leaves neither behind.
    await as.store.putGrant(grant, rt && { hash: rt.hash, record: rt.record });
  } catch (e) {
    // The code was not spent: the client may retry the exchange once the state can be written again.
    await as.store.releaseCode(codeHash, grantId).catch(() => {});
    log("refused", `the grant could not be stored: ${(e as Error).message}`);
    throw e;
  }
  if (rt) response.refresh_token = rt.token;
  log("issued");
  return response;
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

function answerKey(presented: string): Uint8Array {
  return new Uint8Array(createHmac("sha256", presented).update("gatehouse refresh answer").digest());
}

async function refresh(as: AuthorizationServer, client: ClientRecord, form: URLSearchParams): Promise<TokenResponse> {
  const presented = required(form, "refresh_token");
  const hash = sha256Hex(presented);
  const now = as.clock.now();
  const log = (outcome: string, reason?: string, subject?: string) =>
    as.log.info("token: refresh_token", { client_id: client.client_id, outcome, reason, subject });
  const invalid = () => new OAuthError("invalid_grant", "the refresh token is invalid, expired or revoked");

  // The same token presented again while its refresh is in flight, or within the grace window: the same answer.
  // Checked and claimed before any await, so two concurrent requests cannot both start a rotation.
  const key = `${client.client_id}\u0000${hash}`;
  const recent = as.recentRefreshes.get(key);
  if (recent && recent.until >= now) {
    const response = await recent.response;
    log("issued", "repeated refresh within the grace window");
    return response;
  }
  const graceMs = as.config.refreshReuseGraceSeconds * 1000;
  const response = rotate();
  as.recentRefreshes.set(key, { response, until: now + graceMs });
  response.catch(() => as.recentRefreshes.delete(key));
  return response;

  async function rotate(): Promise<TokenResponse> {
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
    const requested = parseScope(form.get("scope"));
    const scopes = requested.length > 0 ? requested : grant.scopes;
    if (!scopes.every((s) => grant.scopes.includes(s))) {
      throw new OAuthError("invalid_scope", `a refresh may only narrow the granted scopes (${grant.scopes.join(" ")})`);
    }
    const resources = form.getAll("resource");
    if (resources.length > 0 && as.resolveResource(resources) !== grant.resource) {
      throw new OAuthError("invalid_target", "resource differs from the one the grant is for");
    }

    const replay = async (rotatedAt: number, answer?: string): Promise<TokenResponse> => {
      if (now - rotatedAt <= graceMs) {
        // Refreshed at the same moment through another replica: the very answer it gave.
        const same = answer ? await openAnswer(presented, answer) : undefined;
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
