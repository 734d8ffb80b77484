// A provider's requiredScopes (auth.jwt.requiredScopes, oauthAs…): every request needs them, and a token without
// them gets 403 insufficient_scope naming the scopes it must have (RFC 6750 §3.1).

import { hasAll } from "../oauth/scopes.ts";
import { type AuthFailure, type Identity, insufficientScope } from "./identity.ts";

export function missingRequiredScopes(identity: Identity): AuthFailure | undefined {
  const required = identity.requiredScopes ?? [];
  if (identity.scopes === undefined || hasAll(identity.scopes, required)) return undefined;
  const missing = required.filter((s) => !identity.scopes?.includes(s));
  return insufficientScope(identity, required, `the token lacks the scope(s) ${missing.join(" ")}`);
}

/** The 403 for a step-up: the scope parameter lists what the token has plus what the call needs (MCP §Scope Challenge). */
export function stepUp(identity: Identity, needed: string[], tool: string): AuthFailure {
  const all = [...(identity.scopes ?? []), ...(identity.requiredScopes ?? []), ...needed];
  return insufficientScope(identity, all, `${tool} needs the scope(s) ${needed.join(" ")}`);
}
