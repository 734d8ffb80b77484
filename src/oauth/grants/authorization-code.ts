// The authorization_code grant (RFC 6749 §4.1.3, OAuth 2.1 §4.1.3): the code is redeemed once, for the client
// and redirect URI it was issued to, with its PKCE verifier (RFC 7636 §4.6) and resource (RFC 8707 §2.2); a replayed
// code revokes what it issued (RFC 6749 §4.1.2) — even while its first redemption is still running: the replay marks
// the code, and the grant of a replayed code is never stored. The grant and its first refresh token are stored
// together, and a failure to store them gives the code back, so the client may retry.

import { randomId, sha256Hex } from "../../crypto.ts";
import type { TokenResponse } from "../authorization-server.ts";
import { OAuthError } from "../errors.ts";
import { verifyS256 } from "../pkce.ts";
import { type GrantRequest, optional, required } from "./common.ts";

export async function authorizationCode({ as, client, form, outcome: told }: GrantRequest): Promise<TokenResponse> {
  const code = required(form, "code");
  // Required below unless the authorization request omitted it (RFC 6749 §4.1.3); never twice (RFC 6749 §3.2).
  const redirectUri = optional(form, "redirect_uri");
  const verifier = optional(form, "code_verifier");
  const grantId = randomId(18);
  const codeHash = sha256Hex(code);
  const consumed = await as.store.consumeCode(codeHash, grantId);
  const log = (outcome: "issued" | "refused", reason?: string) => {
    const subject = consumed?.record.subject;
    as.log.info("token: authorization_code", { client_id: client.client_id, outcome, reason, subject });
    const record = consumed?.record;
    if (told && outcome === "refused") told.logged = true;
    as.audit.event({
      event: outcome === "issued" ? "token_issued" : "token_refused",
      success: outcome === "issued",
      grant_type: "authorization_code",
      client_id: client.client_id,
      ...(subject ? { subject } : {}),
      ...(reason ? { reason } : {}),
      ...(outcome === "issued" && record ? { scope: record.scopes.join(" "), resource: record.resource } : {}),
    });
  };
  if (!consumed) {
    log("refused", "unknown or expired code");
    throw new OAuthError("invalid_grant", "the authorization code is invalid or has expired");
  }
  const c = consumed.record;
  if (consumed.replay) {
    // RFC 6749 §4.1.2: a code used twice is stolen or replayed; what it produced is revoked.
    // What is said depends on whether anything had been issued: a first exchange that failed (a wrong verifier)
    // spent the code without issuing tokens, and then nothing is "revoked".
    const issued = c.grant_id ? await as.store.getGrant(c.grant_id) : undefined;
    if (c.grant_id) await as.store.revokeGrant(c.grant_id, as.clock.now(), "authorization code replayed");
    if (issued && issued.revoked_at === undefined) {
      log("refused", "code replayed: the grant issued from it is revoked");
      throw new OAuthError(
        "invalid_grant",
        "the authorization code was already used; the tokens issued from it are revoked",
      );
    }
    log("refused", "code already used (no tokens had been issued from it)");
    throw new OAuthError(
      "invalid_grant",
      "the authorization code was already used (an earlier exchange with it failed); start the authorization again",
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
  // RFC 6749 §4.1.3: redirect_uri is REQUIRED "if the redirect_uri parameter was included in the authorization
  // request", and then the values MUST be identical (OAuth 2.1 §4.1.3 keeps the rule). A code issued before codes
  // said whether it was sent (no redirect_uri_omitted) requires it, as it always did.
  if (!redirectUri && c.redirect_uri_omitted !== true) {
    // A malformed request, not a failed attempt: the code is given back, as before it was read (unless replayed).
    await as.store.releaseCode(codeHash, grantId).catch(() => {});
    log("refused", "no redirect_uri");
    throw new OAuthError("invalid_request", "redirect_uri is required (the authorization request sent one)");
  }
  if (redirectUri && c.redirect_uri !== redirectUri) {
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
  let stored: boolean;
  try {
    // The grant and its first refresh token are stored together: a failure leaves neither behind. Only while the
    // code is still bound to this grant and was not replayed, checked atomically with the write.
    stored = await as.store.putGrant(grant, rt && { hash: rt.hash, record: rt.record }, codeHash);
  } catch (e) {
    // The code was not spent: the client may retry the exchange once the state can be written again.
    await as.store.releaseCode(codeHash, grantId).catch(() => {});
    log("refused", `the grant could not be stored: ${(e as Error).message}`);
    throw e;
  }
  if (!stored) {
    // RFC 6749 §4.1.2: the code was replayed while this exchange ran (or it expired and is gone): the replay
    // revoked this grant before it existed, so nothing is issued — the access token just signed is never sent.
    log("refused", "code replayed during the exchange: nothing issued");
    throw new OAuthError(
      "invalid_grant",
      "the authorization code was used more than once; no tokens are issued from it",
    );
  }
  if (rt) response.refresh_token = rt.token;
  log("issued");
  return response;
}
