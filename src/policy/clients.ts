// Which client a token belongs to, for the rules that name clients (`clients` on ACL grants and rules, and on
// toolScopes entries): a glob matches the token's client_id, or the client_name the client registered with. Callers
// without a client (static bearer tokens, forwarded headers) match no such rule.

import type { Identity } from "../auth/identity.ts";
import { matchesAny } from "./glob.ts";

export type ClientOf = Pick<Identity, "clientId" | "clientName">;

/** True when the list is empty (the rule names no client) or one of its globs matches the caller's client. */
export function clientMatches(patterns: readonly string[], who: ClientOf): boolean {
  if (patterns.length === 0) return true;
  if (who.clientId !== undefined && matchesAny(patterns, who.clientId)) return true;
  return who.clientName !== undefined && matchesAny(patterns, who.clientName);
}
