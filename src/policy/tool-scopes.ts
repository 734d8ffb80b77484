// Per-tool OAuth scopes: a scope → tool-pattern matrix from config (AuthSec's scope matrix; patterns match the
// prefixed name `server__tool` on every route), plus the scopes a backend advertises on a tool in `tools/list`
// `_meta.scopes` (mcp-oauth2-proxy's format). A tool needs every scope that names it; a token without one of them
// does not see the tool, and calling it gets 403 insufficient_scope naming all the scopes needed (MCP
// authorization, "Scope Challenge Handling"), so the client can step up.

import type { Identity } from "../auth/identity.ts";
import { hasAll } from "../oauth/scopes.ts";
import { matchesAny } from "./glob.ts";

export class ToolScopes {
  /** Scopes backends advertised so far: offered by the authorization server once seen. */
  private readonly advertised = new Set<string>();

  constructor(private readonly matrix: Record<string, string[]>) {}

  /** The scopes a tool needs, given its prefixed name and its definition as the backend sent it. */
  required(prefixedName: string, definition: Record<string, unknown>): string[] {
    const out = new Set<string>();
    for (const [scope, patterns] of Object.entries(this.matrix)) if (matchesAny(patterns, prefixedName)) out.add(scope);
    const meta = definition._meta as Record<string, unknown> | undefined;
    if (Array.isArray(meta?.scopes)) {
      for (const s of meta.scopes) {
        // RFC 6749 §3.3 scope-token: printable ASCII without space, quote or backslash.
        if (typeof s === "string" && /^[\x21\x23-\x5b\x5d-\x7e]+$/.test(s)) {
          out.add(s);
          this.advertised.add(s);
        }
      }
    }
    return [...out];
  }

  /** Words for the consent page: which tools a scope opens. */
  describe(scope: string): string | undefined {
    const patterns = this.matrix[scope];
    if (patterns) return `call the tools ${patterns.join(", ")}`;
    if (this.advertised.has(scope)) return "call the tools of a server that asks for this scope";
    return undefined;
  }

  /** Every scope a tool may need: the matrix's and those advertised so far. */
  all(): string[] {
    return [...new Set([...Object.keys(this.matrix), ...this.advertised])];
  }
}

/** Tokens without a notion of scope (bearer table, forwarded headers) are not limited by tool scopes. */
export function grants(identity: Identity, needed: readonly string[]): boolean {
  return identity.scopes === undefined || hasAll(identity.scopes, needed);
}
