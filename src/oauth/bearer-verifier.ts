// The resource side of the authorization server: the `oauth_as` identity provider for /mcp. It accepts only access
// tokens issued here for this resource (RFC 8707 audience, RFC 9068 validation), whose client, grant and jti are
// still live; verified tokens are cached by hash until they expire so each request costs a lookup, not a signature.
// Its 401 carries the challenge MCP clients start discovery from: `Bearer resource_metadata="…", scope="…"`
// (RFC 9728 §5.1, RFC 6750 §3).

import { bearerChallenge } from "../auth/challenge.ts";
import type { AuthFailure, AuthProvider, AuthRequest, AuthResult } from "../auth/identity.ts";
import { bearerToken } from "../auth/providers.ts";
import { BoundedMap } from "../bounded-map.ts";
import { sha256Hex } from "../crypto.ts";
import type { AccessTokenClaims } from "./access-tokens.ts";
import type { AuthorizationServer } from "./authorization-server.ts";
import { looksLikeMcpServeToken, type McpServeClaims, verifyMcpServeToken } from "./mcp-serve-tokens.ts";
import { protectedResourceMetadataUrl } from "./metadata.ts";
import { canonicalResource } from "./resource.ts";

const CACHE_MAX = 10_000;

export function challenge(
  as: AuthorizationServer,
  extra: { error?: "invalid_token"; description?: string; scope?: string[]; resource?: string } = {},
): string {
  return bearerChallenge({
    resourceMetadata: protectedResourceMetadataUrl(extra.resource ?? as.config.resourceUrl),
    scope: extra.scope ?? as.config.requiredScopes,
    ...(extra.error ? { error: extra.error } : {}),
    ...(extra.description ? { description: extra.description } : {}),
  });
}

/** The oauth_as provider of one route: tokens issued here for that route's URL (its audience), and no other. */
export function oauthProvider(as: AuthorizationServer, resourceUrl = as.config.resourceUrl): AuthProvider {
  const cache = new BoundedMap<string, AccessTokenClaims>(CACHE_MAX);
  as.serveResource(resourceUrl);
  const resource = canonicalResource(resourceUrl) as string;
  const refuse = (description: string, presented: boolean): AuthResult => {
    const failure: AuthFailure = {
      status: 401,
      description,
      challenge: presented
        ? challenge(as, { error: "invalid_token", description, resource: resourceUrl })
        : challenge(as, { resource: resourceUrl }),
    };
    if (presented) failure.error = "invalid_token";
    return { ok: false, failure };
  };
  // mcp serve's tokens were for its one /mcp: they are accepted there only (mcp-serve-tokens.ts says when).
  const main = resource === canonicalResource(as.config.resourceUrl);
  const legacy = new BoundedMap<string, McpServeClaims>(CACHE_MAX);
  const mcpServeToken = async (token: string, key: string, now: number, why: string): Promise<AuthResult> => {
    let claims = legacy.get(key);
    if (!claims || claims.exp * 1000 <= now) {
      legacy.delete(key);
      const v = await verifyMcpServeToken(as, token, now);
      // The reason Gatehouse's own check gave comes first: that is what a token of Gatehouse's failed.
      if (!v.ok)
        return refuse(v.reason.startsWith("typ is not") ? v.reason : `${why}; as mcp serve's: ${v.reason}`, true);
      claims = v.claims;
      legacy.set(key, claims);
      as.log.info("accepted an access token mcp serve issued (until it expires)", {
        client_id: claims.client_id,
        subject: claims.sub,
        expires: new Date(claims.exp * 1000).toISOString(),
      });
    } else if (!(await as.store.getClient(claims.client_id)) || (await as.store.isAccessTokenRevoked(claims.jti))) {
      return refuse("the token has been revoked", true);
    }
    return {
      ok: true,
      identity: {
        subject: claims.sub,
        // mcp serve made its groups claim the caller's roles (provider.rs: AuthIdentity::new(sub, groups)).
        roles: claims.groups,
        groups: claims.groups,
        provider: "oauth_as",
        scopes: [],
        requiredScopes: as.config.requiredScopes,
        resourceMetadata: protectedResourceMetadataUrl(resourceUrl),
        clientId: claims.client_id,
      },
    };
  };
  return {
    kind: "oauth_as",
    async authenticate(req: AuthRequest): Promise<AuthResult> {
      const token = bearerToken(req.headers);
      if (!token)
        return refuse(
          req.headers.has("authorization")
            ? "Authorization header must use the Bearer scheme"
            : "missing Authorization header",
          false,
        );
      const now = as.clock.now();
      const key = sha256Hex(token);
      let claims = cache.get(key);
      if (claims && claims.exp * 1000 <= now) {
        cache.delete(key);
        claims = undefined;
      }
      if (!claims) {
        const v = await as.tokens.verify(token, resource, now);
        if (!v.ok) {
          if (main && as.config.jwtSecret && looksLikeMcpServeToken(token))
            return mcpServeToken(token, key, now, v.reason);
          return refuse(v.reason, true);
        }
        claims = v.claims;
        cache.set(key, claims);
      }
      // Revocation is checked on every request, cached or not.
      const grant = await as.store.getGrant(claims.gid);
      if (!grant || grant.revoked_at !== undefined) return refuse("the token has been revoked", true);
      if (await as.store.isAccessTokenRevoked(claims.jti)) return refuse("the token has been revoked", true);
      // The client record is read anyway (a deleted client's tokens stop working); its name serves rules on clients.
      const client = as.cimd.isMetadataUrl(claims.client_id)
        ? as.cimd.cached(claims.client_id)
        : await as.store.getClient(claims.client_id);
      if (!client && !as.cimd.isMetadataUrl(claims.client_id)) {
        return refuse("the client of this token was deleted", true);
      }
      return {
        ok: true,
        identity: {
          subject: claims.sub,
          roles: claims.roles,
          groups: claims.groups,
          provider: "oauth_as",
          scopes: claims.scope.split(" ").filter((s) => s.length > 0),
          requiredScopes: as.config.requiredScopes,
          resourceMetadata: protectedResourceMetadataUrl(resourceUrl),
          clientId: claims.client_id,
          ...(client?.client_name ? { clientName: client.client_name } : {}),
          ...(claims.email ? { email: claims.email } : {}),
        },
      };
    },
  };
}
