// Token revocation (RFC 7009) and introspection (RFC 7662). Revoking a refresh token revokes its grant (and so
// every access token of it); revoking an access token puts its jti on a list until it expires. Introspection is
// open to the resource servers listed in oauthAs.introspectionClients and to confidential clients for their own
// tokens.

import { constantTimeEqual, sha256Hex } from "../crypto.ts";
import type { AccessTokenClaims } from "./access-tokens.ts";
import type { AuthorizationServer } from "./authorization-server.ts";
import { presentedCredentials } from "./client-auth.ts";
import { OAuthError } from "./errors.ts";
import { looksLikeMcpServeToken, verifyMcpServeToken } from "./mcp-serve-tokens.ts";
import { requestingClient } from "./token.ts";

/** Verifies an access token for any resource this server serves; revocation state included. */
async function liveAccessToken(as: AuthorizationServer, token: string): Promise<AccessTokenClaims | undefined> {
  for (const resource of as.resources) {
    const v = await as.tokens.verify(token, resource, as.clock.now());
    if (!v.ok) continue;
    const grant = await as.store.getGrant(v.claims.gid);
    if (!grant || grant.revoked_at !== undefined) return undefined;
    if (await as.store.isAccessTokenRevoked(v.claims.jti)) return undefined;
    return v.claims;
  }
  return undefined;
}

/** An access token mcp serve issued, still accepted (mcp-serve-tokens.ts): revocable like Gatehouse's own. */
async function mcpServeAccessToken(
  as: AuthorizationServer,
  token: string,
): Promise<{ client_id: string; jti: string; exp: number } | undefined> {
  if (!as.config.jwtSecret || !looksLikeMcpServeToken(token)) return undefined;
  const v = await verifyMcpServeToken(as, token, as.clock.now());
  return v.ok ? v.claims : undefined;
}

export async function revoke(as: AuthorizationServer, headers: Headers, form: URLSearchParams): Promise<void> {
  const client = await requestingClient(as, headers, form);
  const token = form.get("token");
  if (!token) throw new OAuthError("invalid_request", "token is required");
  const hint = form.get("token_type_hint");
  const now = as.clock.now();
  const tryRefresh = async () => {
    const record = await as.store.getRefreshToken(sha256Hex(token));
    if (!record) return false;
    const grant = await as.store.getGrant(record.grant_id);
    // RFC 7009 §2.1: a client may only revoke its own tokens; others are ignored (and the answer is still 200).
    if (grant && grant.client_id === client.client_id)
      await as.store.revokeGrant(grant.id, now, "refresh token revoked");
    return true;
  };
  const tryAccess = async () => {
    const claims = (await liveAccessToken(as, token)) ?? (await mcpServeAccessToken(as, token));
    if (!claims) return false;
    if (claims.client_id === client.client_id) await as.store.revokeAccessToken(claims.jti, claims.exp * 1000);
    return true;
  };
  const found =
    hint === "access_token" ? (await tryAccess()) || (await tryRefresh()) : (await tryRefresh()) || (await tryAccess());
  as.log.info("revoke", { client_id: client.client_id, found, hint: hint ?? undefined });
  as.audit.event({
    event: "token_revoked",
    success: true,
    client_id: client.client_id,
    found,
    ...(hint ? { token_type_hint: hint } : {}),
  });
}

export async function introspect(
  as: AuthorizationServer,
  headers: Headers,
  form: URLSearchParams,
): Promise<Record<string, unknown>> {
  const creds = presentedCredentials(headers, form);
  if (!creds?.secret) {
    throw new OAuthError(
      "invalid_client",
      "introspection needs client credentials (a resource server or a confidential client)",
      401,
      {
        "www-authenticate": 'Basic realm="gatehouse"',
      },
    );
  }
  const resourceServer = as.config.introspectionClients.find((c) => c.clientId === creds.clientId);
  let callerClientId: string | undefined;
  if (resourceServer) {
    if (!constantTimeEqual(sha256Hex(creds.secret), resourceServer.secretSha256)) {
      throw new OAuthError("invalid_client", "client authentication failed", 401);
    }
  } else {
    callerClientId = (await requestingClient(as, headers, form)).client_id;
  }
  const token = form.get("token");
  if (!token) throw new OAuthError("invalid_request", "token is required");
  const inactive = { active: false };
  const visible = (clientId: string) => callerClientId === undefined || callerClientId === clientId;

  const claims = await liveAccessToken(as, token);
  if (claims) {
    if (!visible(claims.client_id)) return inactive;
    as.log.info("introspect", { caller: creds.clientId, active: true, token_type: "access_token" });
    introspected(as, creds.clientId, true, claims.sub, claims.client_id);
    return {
      active: true,
      token_type: "Bearer",
      scope: claims.scope,
      client_id: claims.client_id,
      sub: claims.sub,
      username: claims.sub,
      aud: claims.aud,
      iss: claims.iss,
      exp: claims.exp,
      iat: claims.iat,
      jti: claims.jti,
      groups: claims.groups,
      roles: claims.roles,
    };
  }
  const record = await as.store.getRefreshToken(sha256Hex(token));
  if (record && record.rotated_at === undefined && record.expires_at >= as.clock.now()) {
    const grant = await as.store.getGrant(record.grant_id);
    if (grant && grant.revoked_at === undefined && visible(grant.client_id)) {
      as.log.info("introspect", { caller: creds.clientId, active: true, token_type: "refresh_token" });
      introspected(as, creds.clientId, true, grant.subject, grant.client_id);
      return {
        active: true,
        token_type: "refresh_token",
        scope: grant.scopes.join(" "),
        client_id: grant.client_id,
        sub: grant.subject,
        aud: grant.resource,
        iss: as.config.issuerUrl,
        exp: Math.floor(record.expires_at / 1000),
        iat: Math.floor(record.created_at / 1000),
      };
    }
  }
  as.log.info("introspect", { caller: creds.clientId, active: false });
  introspected(as, creds.clientId, false);
  return inactive;
}

/** The audit record of an introspection: which resource server asked, and about whose token. */
function introspected(as: AuthorizationServer, caller: string, active: boolean, subject?: string, client?: string) {
  as.audit.event({
    event: "token_introspected",
    success: true,
    resource_server: caller,
    active,
    ...(subject ? { subject } : {}),
    ...(client ? { client_id: client } : {}),
  });
}
