// The one builder of `WWW-Authenticate: Bearer …` challenges (RFC 6750 §3, RFC 9728 §5.1): every 401 and 403 of
// every provider, route and surface goes through it, so the parameters come in one order (resource_metadata first:
// MCP clients start discovery from it) and every value is escaped the same way.

export interface BearerChallenge {
  /** Shown when no protected resource metadata is advertised. */
  realm?: string;
  /** The protected resource metadata URL (RFC 9728 §5.1). */
  resourceMetadata?: string;
  /** Scopes to ask for (RFC 6750 §3: space-delimited). */
  scope?: readonly string[];
  /** RFC 6750 §3.1 error code; absent when no credentials were presented. */
  error?: "invalid_request" | "invalid_token" | "insufficient_scope";
  description?: string;
}

/**
 * A quoted-string value (RFC 9110 §5.6.4) that naive client parsers also read right: quotes and backslashes become
 * `'` and `=` becomes `:` (some clients split challenges on `=` and `"`).
 */
export function challengeValue(value: string): string {
  return value.replace(/["\\]/g, "'").replace(/=/g, ":");
}

/**
 * Parameters in the order of the MCP authorization spec's examples: a 401 leads with `resource_metadata` (or a
 * realm), then `scope` and the error; a 403 step-up leads with `error="insufficient_scope"` and the scope needed
 * (MCP authorization, "Scope Challenge Handling").
 */
export function bearerChallenge(c: BearerChallenge): string {
  const where = c.resourceMetadata ? `resource_metadata="${c.resourceMetadata}"` : `realm="${c.realm ?? "gatehouse"}"`;
  const scope = c.scope && c.scope.length > 0 ? `scope="${challengeValue(c.scope.join(" "))}"` : undefined;
  const error = c.error ? `error="${c.error}"` : undefined;
  const description = c.error && c.description ? `error_description="${challengeValue(c.description)}"` : undefined;
  const params =
    c.error === "insufficient_scope"
      ? [error, scope, c.resourceMetadata ? where : undefined, description]
      : [where, scope, error, description];
  return `Bearer ${params.filter((x) => x !== undefined).join(", ")}`;
}
