// Discovery documents: authorization server metadata (RFC 8414 §2), its OpenID Connect Discovery twin, and
// protected resource metadata (RFC 9728 §2). Every URL comes from configuration, never from a request's Host.

import type { ExternalDiscoveryConfig, OAuthAsConfig } from "../config/types.ts";
import { GRANT_TYPES } from "./grant-types.ts";

export interface Endpoints {
  issuer: string;
  authorization: string;
  token: string;
  registration: string;
  revocation: string;
  introspection: string;
  jwks: string;
}

export function endpoints(issuer: string): Endpoints {
  return {
    issuer,
    authorization: `${issuer}/authorize`,
    token: `${issuer}/token`,
    registration: `${issuer}/register`,
    revocation: `${issuer}/revoke`,
    introspection: `${issuer}/introspect`,
    jwks: `${issuer}/jwks`,
  };
}

/** `algs`: the algorithms access tokens are signed with (the signing key's first, then keys still verifying). */
export function authorizationServerMetadata(
  c: OAuthAsConfig,
  algs: readonly string[],
  scopes: string[] = c.scopesSupported,
): Record<string, unknown> {
  const e = endpoints(c.issuerUrl);
  const authMethods = ["none", "client_secret_post", "client_secret_basic"];
  const m: Record<string, unknown> = {
    issuer: e.issuer,
    authorization_endpoint: e.authorization,
    token_endpoint: e.token,
    jwks_uri: e.jwks,
    revocation_endpoint: e.revocation,
    introspection_endpoint: e.introspection,
    scopes_supported: scopes,
    response_types_supported: ["code"],
    response_modes_supported: ["query"],
    grant_types_supported: [...GRANT_TYPES],
    token_endpoint_auth_methods_supported: authMethods,
    revocation_endpoint_auth_methods_supported: authMethods,
    introspection_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post"],
    // MCP: S256 only, and clients refuse an AS that does not say so (MCP 2025-11-25 "Authorization Code Protection").
    code_challenge_methods_supported: ["S256"],
    // RFC 9207: `iss` in every authorization response.
    authorization_response_iss_parameter_supported: true,
    // Claude uses CIMD only when this is true and "none" is among the auth methods.
    client_id_metadata_document_supported: c.cimd.enabled,
    access_token_signing_alg_values_supported: [...algs],
    resource_indicators_supported: true,
  };
  if (c.registrationEnabled) m.registration_endpoint = e.registration;
  return m;
}

/** OIDC Discovery 1.0 §3 fields some clients require of an "openid-configuration" document (no id_tokens are issued). */
export function openidConfiguration(
  c: OAuthAsConfig,
  algs: readonly string[],
  scopes: string[] = c.scopesSupported,
): Record<string, unknown> {
  return {
    ...authorizationServerMetadata(c, algs, scopes),
    subject_types_supported: ["public"],
    id_token_signing_alg_values_supported: [...algs],
    claims_supported: ["sub", "groups", "roles"],
  };
}

export function protectedResourceMetadata(
  c: OAuthAsConfig,
  resource: string,
  name = "Gatehouse MCP gateway",
): Record<string, unknown> {
  // RFC 9728 §2: the scopes used to request access to this resource — what /mcp requires (oauthAs.requiredScopes,
  // also the 401 challenge's scope) when it requires any, else what is advertised (oauthAs.scopesSupported), without
  // offline_access, which is the authorization server's business (MCP 2026-07-28, as gatehouse doctor checks).
  // Nothing to list: the field is left out (mcp serve's metadata has none).
  const scopes = (c.requiredScopes.length > 0 ? c.requiredScopes : c.scopesSupported).filter(
    (s) => s !== "offline_access",
  );
  return {
    resource,
    // Byte-identical to the metadata `issuer` (the TypeScript SDK compares them exactly).
    authorization_servers: [c.issuerUrl],
    ...(scopes.length > 0 ? { scopes_supported: scopes } : {}),
    bearer_methods_supported: ["header"],
    resource_name: name,
  };
}

/** The well-known URL of a resource's metadata: the suffix inserted between host and path (RFC 9728 §3.1). */
/** A route's protected resource metadata when its tokens come from another issuer. */
export function externalResourceMetadata(
  d: ExternalDiscoveryConfig,
  issuer: string,
  resource: string,
  name: string,
): Record<string, unknown> {
  return {
    resource,
    authorization_servers: [d.mode === "proxy" ? (d.publicUrl as string) : issuer],
    ...(d.scopesSupported.length > 0 ? { scopes_supported: d.scopesSupported } : {}),
    bearer_methods_supported: ["header"],
    resource_name: name,
  };
}

export function protectedResourceMetadataUrl(resource: string): string {
  const u = new URL(resource);
  const path = u.pathname === "/" ? "" : u.pathname.replace(/\/$/, "");
  return `${u.origin}/.well-known/oauth-protected-resource${path}`;
}
