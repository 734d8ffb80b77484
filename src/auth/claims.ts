// From the claims of a token another issuer minted (a JWT access token, or an introspection response) to an
// Identity: subject, groups (→ roles), scopes, email; the allow-lists; and the 401/403 answers, which carry the
// protected resource metadata challenge when Gatehouse serves discovery for that issuer.

import type { ExternalDiscoveryConfig } from "../config/types.ts";
import type { AllowRules, allowChecker } from "../login/allow.ts";
import { protectedResourceMetadataUrl } from "../oauth/metadata.ts";
import { bearerChallenge } from "./challenge.ts";
import type { AuthFailure, Identity, ProviderKind } from "./identity.ts";

/**
 * The token's scopes: `scope` (RFC 9068 §2.2.3, RFC 8693 §4.2: space-separated), else `scp` (Entra, Okta: a list or a
 * string), else `scopes` (a list — the format simple-rpc-ai-backend's service tokens carry).
 */
export function scopesOf(claims: Record<string, unknown>): string[] {
  const words = (s: string) => s.split(" ").filter((w) => w.length > 0);
  if (typeof claims.scope === "string") return words(claims.scope);
  for (const key of ["scp", "scopes"]) {
    const v = claims[key];
    if (Array.isArray(v)) return v.filter((x) => typeof x === "string" && x !== "").map(String);
    if (typeof v === "string") return words(v);
  }
  return [];
}

/**
 * The `iss` values a token may carry for a configured issuer: the issuer exactly, and the same with one trailing
 * slash added or removed. RFC 7519 §4.1.1 and RFC 9068 §4 want an exact match; this is a deliberate, documented
 * relaxation (README, "Migrating from mcp-oauth-proxy"), made as allardy/mcp-oauth-proxy 0.3.2 made it, because
 * providers and their settings pages disagree: Authentik issues `…/application/o/<app>/` with the slash, and users
 * copy the URL either way. Only that single trailing slash is forgiven — scheme, host, port, the rest of the path
 * and case must match exactly (`…/app//` is not `…/app/`, `…/App/` is not `…/app/`).
 */
export function acceptedIssuers(issuer: string): string[] {
  // A plain-name issuer ("your-service", RFC 7519 StringOrURI) has no path to end in a slash: exactly.
  if (!/^https?:\/\//.test(issuer)) return [issuer];
  return [issuer, issuer.endsWith("/") ? issuer.slice(0, -1) : `${issuer}/`];
}

export interface ClaimSettings {
  subjectClaim: string;
  groupsClaim: string;
  requiredScopes: string[];
  allow?: AllowRules;
  discovery: ExternalDiscoveryConfig;
}

/** Builds the identity, or the refusal when the allow-lists say no. */
export function identityFromClaims(
  kind: ProviderKind,
  claims: Record<string, unknown>,
  s: ClaimSettings,
  allows: ReturnType<typeof allowChecker>,
): { ok: true; identity: Identity } | { ok: false; failure: AuthFailure } {
  const str = (v: unknown) => (typeof v === "string" && v !== "" ? v : undefined);
  const subject = str(claims[s.subjectClaim]) ?? str(claims.sub) ?? str(claims.username);
  if (!subject)
    return { ok: false, failure: refusal(s.discovery, "the token names no subject", true, s.requiredScopes) };
  const rawGroups = claims[s.groupsClaim];
  const groups = Array.isArray(rawGroups) ? rawGroups.map(String) : typeof rawGroups === "string" ? [rawGroups] : [];
  const roles = [...new Set([...groups, ...(Array.isArray(claims.roles) ? claims.roles.map(String) : [])])];
  const email = str(claims.email);
  const user = { subject, groups, emailVerified: claims.email_verified !== false, ...(email ? { email } : {}) };
  if (!allows(user)) {
    // An address the provider says is unverified never matches an email rule (mcp-oauth-proxy's ALLOW_EMAILS took it
    // anyway): say so, so that it is not mistaken for a typo in the list.
    const unverified =
      email && !user.emailVerified && (s.allow?.emails?.length || s.allow?.emailDomains?.length)
        ? ` (its email_verified is false, and unverified addresses never match ${kind}.allow's emails: verify it at ` +
          "the provider, or allow the user's sub or a group)"
        : "";
    const description = `${email ?? subject} is not allowed by ${kind}.allow${unverified}`;
    return { ok: false, failure: { status: 403, description, challenge: bearerChallenge({}) } };
  }
  const identity: Identity = {
    subject,
    roles,
    groups,
    provider: kind,
    scopes: scopesOf(claims),
    requiredScopes: s.requiredScopes,
  };
  if (s.discovery.mode !== "none" && s.discovery.resourceUrl)
    identity.resourceMetadata = protectedResourceMetadataUrl(s.discovery.resourceUrl);
  if (email) identity.email = email;
  if (typeof claims.client_id === "string") identity.clientId = claims.client_id;
  else if (typeof claims.azp === "string") identity.clientId = claims.azp;
  return { ok: true, identity };
}

/** A 401 whose challenge lets MCP clients find the issuer (RFC 9728 §5.1) when discovery is served. */
export function refusal(
  d: ExternalDiscoveryConfig,
  description: string,
  presented: boolean,
  scopes: string[],
): AuthFailure {
  const discoverable = d.mode !== "none" && d.resourceUrl;
  const challenge = bearerChallenge({
    ...(discoverable
      ? {
          resourceMetadata: protectedResourceMetadataUrl(d.resourceUrl as string),
          scope: d.scopesSupported.length > 0 ? d.scopesSupported : scopes,
        }
      : {}),
    ...(presented ? { error: "invalid_token" as const, description } : {}),
  });
  const failure: AuthFailure = { status: 401, description, challenge };
  if (presented) failure.error = "invalid_token";
  return failure;
}
