// The token endpoint (RFC 6749 §3.2, OAuth 2.1 §3.2) as a table of grant handlers, in node-oidc-provider's shape:
// the grant type is checked against the table, the client authenticated (client-auth.ts) and held to the grants it
// registered, then the grant's handler runs (grants/).

import type { ClientRecord } from "../store/types.ts";
import type { AuthorizationServer, TokenResponse } from "./authorization-server.ts";
import { authenticateClient, presentedCredentials } from "./client-auth.ts";
import { OAuthError } from "./errors.ts";
import { GRANT_TYPES, type GrantType, isGrantType } from "./grant-types.ts";
import { authorizationCode } from "./grants/authorization-code.ts";
import { type GrantHandler, required } from "./grants/common.ts";
import { refreshToken } from "./grants/refresh-token.ts";

const GRANTS: Record<GrantType, GrantHandler> = {
  authorization_code: authorizationCode,
  refresh_token: refreshToken,
};

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
  const outcome = { logged: false };
  try {
    const grantType = required(form, "grant_type");
    if (!isGrantType(grantType)) {
      throw new OAuthError(
        "unsupported_grant_type",
        `grant_type ${grantType} is not supported (use ${GRANT_TYPES.join(" or ")})`,
      );
    }
    const client = await requestingClient(as, headers, form);
    if (!client.grant_types.includes(grantType)) {
      throw new OAuthError("unauthorized_client", `this client did not register the ${grantType} grant`);
    }
    return await GRANTS[grantType]({ as, client, form, outcome });
  } catch (e) {
    if (e instanceof OAuthError) {
      as.onTokenRefused?.(e.error);
      if (!outcome.logged) tokenRefused(as, e, form, headers);
    }
    throw e;
  }
}

/** The client id a request names (Basic credentials or the form), for refusal records; never throws. */
export function namedClientId(headers: Headers | undefined, form: URLSearchParams | undefined): string | undefined {
  try {
    // Basic credentials name the client even when the body could not be read (a wrong content type).
    if (headers) return presentedCredentials(headers, form ?? new URLSearchParams())?.clientId.slice(0, 200);
  } catch {
    // malformed Basic credentials: no id to name
  }
  return form?.get("client_id")?.slice(0, 200) ?? undefined;
}

/** Every refusal at /token gets one log line and one audit record, whatever refused it (people debug from them). */
export function tokenRefused(as: AuthorizationServer, e: OAuthError, form?: URLSearchParams, headers?: Headers): void {
  const grantType = form?.get("grant_type") ?? undefined;
  const clientId = namedClientId(headers, form);
  as.log.info("token refused", { grant_type: grantType, client_id: clientId, error: e.error, reason: e.description });
  as.audit.event({
    event: "token_refused",
    success: false,
    ...(grantType ? { grant_type: grantType } : {}),
    ...(clientId ? { client_id: clientId } : {}),
    reason: `${e.error}: ${e.description}`,
  });
}
