// Per-tool OAuth scopes, decided here and nowhere else. A tool's need is a conjunction of clauses, each held by any
// one of its scopes; three sources add clauses:
//  - the scope → tool-pattern matrix of `serverAuth.toolScopes` (AuthSec's scope matrix; patterns match the prefixed
//    name `server__tool` on every route): each scope naming the tool is required (AND);
//  - a tool's own `_meta.scopes` in tools/list (Gatehouse's per-tool form): each listed scope is required (AND);
//  - the tools/list result's `_meta.scopes`, a list of `{name, description, tools}` (mcp-oauth2-proxy's format): a tool
//    it names is open to a token holding ANY scope whose `tools` include it (OR) — one clause. A tool it does not name
//    needs nothing from it.
// A matrix entry with `clients` makes its scope one only tokens of those clients can hold: for any other client the
// scope counts as absent, wherever it is needed (so "Claude Desktop may not write" is a write scope for the others).
// A token without a clause does not see the tool, and calling it gets 403 insufficient_scope naming, for each clause
// it lacks, the narrowest scope that would let the call through (MCP authorization, "Scope Challenge Handling") —
// unless no scope it could be granted would: then the tool is hidden from it, as the ACL hides tools.

import type { Identity } from "../auth/identity.ts";
import { isScopeToken } from "../config/server-auth.ts";
import type { ToolScopeEntry } from "../config/types.ts";
import { type ClientOf, clientMatches } from "./clients.ts";
import { matchesAny } from "./glob.ts";

/** What a tool needs: every clause must be held; a clause is held by any one of its scopes (narrowest first). */
export type ScopeNeed = readonly (readonly string[])[];

/** One scope of a backend's tools/list `_meta.scopes` list (mcp-oauth2-proxy's format). */
export interface ListedScope {
  name: string;
  description?: string;
  /** The backend's own tool names this scope opens. */
  tools: string[];
}

/** Bounds on what a backend may advertise: the consent page shows it all. */
const MAX_LISTED_SCOPES = 100;
const MAX_TOOLS_PER_SCOPE = 1000;
const MAX_DESCRIPTION = 300;

/** Why a call is refused for its scopes: what to step up to, or nothing (no scope this client can hold opens it). */
export type ScopeShortfall = { kind: "step-up"; scopes: string[] } | { kind: "closed"; scope: string };

export class ToolScopes {
  /** Scopes backends advertised so far (either form), with the description a list gave: offered once seen. */
  private readonly advertised = new Map<string, string | undefined>();
  private readonly matrix: Record<string, ToolScopeEntry>;
  /** Scopes only some clients can hold (entries with `clients`). */
  private readonly restricted = new Map<string, string[]>();

  constructor(matrix: Record<string, ToolScopeEntry | string[]>) {
    this.matrix = {};
    for (const [scope, e] of Object.entries(matrix)) {
      this.matrix[scope] = Array.isArray(e) ? { tools: e, clients: [] } : e;
      if (!Array.isArray(e) && e.clients.length > 0) this.restricted.set(scope, e.clients);
    }
  }

  /** Whether a token of this client may hold `scope` at all (the authorization server grants it no other). */
  mayHold(scope: string, client: ClientOf): boolean {
    const clients = this.restricted.get(scope);
    return clients === undefined || clientMatches(clients, client);
  }

  /** The scope is granted to the token, and its client may hold it. */
  private holds(identity: Identity, scope: string): boolean {
    return identity.scopes?.includes(scope) === true && this.mayHold(scope, identity);
  }

  /** Tokens without a notion of scope (bearer table, forwarded headers) are not limited by tool scopes. */
  grants(identity: Identity, need: ScopeNeed): boolean {
    if (identity.scopes === undefined) return true;
    return need.every((clause) => clause.some((s) => this.holds(identity, s)));
  }

  /**
   * What would let a refused call through: for each clause the token lacks, its narrowest scope this client may
   * hold; or, when a clause has none, that the tool is closed to the client.
   */
  shortfall(identity: Identity, need: ScopeNeed): ScopeShortfall {
    const out = new Set<string>();
    for (const clause of need) {
      if (clause.some((s) => this.holds(identity, s))) continue;
      const usable = clause.find((s) => this.mayHold(s, identity));
      if (usable === undefined) return { kind: "closed", scope: clause[0] as string };
      out.add(usable);
    }
    return { kind: "step-up", scopes: [...out] };
  }

  /**
   * A backend's tools/list `_meta.scopes` (the result's, not a tool's), checked: entries that are not
   * `{name: scope-token, description?: string, tools: [string]}` are left out, and said why.
   */
  listed(raw: unknown): { scopes: ListedScope[]; problems: string[] } {
    const scopes: ListedScope[] = [];
    const problems: string[] = [];
    if (raw === undefined) return { scopes, problems };
    if (!Array.isArray(raw)) return { scopes, problems: ["_meta.scopes is not a list"] };
    for (const [i, entry] of raw.entries()) {
      if (i >= MAX_LISTED_SCOPES) {
        problems.push(`only the first ${MAX_LISTED_SCOPES} scopes are used`);
        break;
      }
      const e = entry as Record<string, unknown> | null;
      if (!e || typeof e !== "object" || !isScopeToken(e.name)) {
        problems.push(`_meta.scopes[${i}] has no valid name (an RFC 6749 scope token)`);
        continue;
      }
      if (!Array.isArray(e.tools) || !e.tools.every((t) => typeof t === "string")) {
        problems.push(`_meta.scopes[${i}] (${e.name}) has no list of tool names`);
        continue;
      }
      const scope: ListedScope = { name: e.name, tools: (e.tools as string[]).slice(0, MAX_TOOLS_PER_SCOPE) };
      if (typeof e.description === "string" && e.description.trim() !== "") {
        scope.description = e.description.trim().slice(0, MAX_DESCRIPTION);
      }
      scopes.push(scope);
      if (!this.advertised.get(scope.name)) this.advertised.set(scope.name, scope.description);
    }
    return { scopes, problems };
  }

  /**
   * The need of a tool, given its prefixed name, its definition as the backend sent it (`name` is the backend's own),
   * and the scope list its backend's tools/list carried.
   */
  required(prefixedName: string, definition: Record<string, unknown>, listed: readonly ListedScope[] = []): ScopeNeed {
    const clauses: string[][] = [];
    const all = new Set<string>();
    const add = (scope: string) => {
      if (all.has(scope)) return;
      all.add(scope);
      clauses.push([scope]);
    };
    for (const [scope, e] of Object.entries(this.matrix)) if (matchesAny(e.tools, prefixedName)) add(scope);
    const meta = definition._meta as Record<string, unknown> | undefined;
    if (Array.isArray(meta?.scopes)) {
      for (const s of meta.scopes) {
        if (!isScopeToken(s)) continue;
        add(s);
        if (!this.advertised.has(s)) this.advertised.set(s, undefined);
      }
    }
    const own = String(definition.name);
    // Any of these opens the tool; the narrowest (fewest tools) first: that is the one a step-up asks for.
    const granting = listed.filter((l) => l.tools.includes(own)).sort((a, b) => a.tools.length - b.tools.length);
    // A scope already required on its own makes the clause redundant.
    if (granting.length > 0 && !granting.some((l) => all.has(l.name))) clauses.push(granting.map((l) => l.name));
    return clauses;
  }

  /** Words for the consent page: the configured or the backend's own description, else which tools a scope opens. */
  describe(scope: string): string | undefined {
    const entry = Object.hasOwn(this.matrix, scope) ? this.matrix[scope] : undefined;
    if (entry?.description) return entry.description;
    const listed = this.advertised.get(scope);
    if (listed) return listed;
    if (entry) return `call the tools ${entry.tools.join(", ")}`;
    if (this.advertised.has(scope)) return "call the tools of a server that asks for this scope";
    return undefined;
  }

  /** A scope some backend advertised (in either form), not only the matrix. */
  isAdvertised(scope: string): boolean {
    return this.advertised.has(scope);
  }

  /** Every scope a tool may need: the matrix's and those advertised so far. */
  all(): string[] {
    return [...new Set([...Object.keys(this.matrix), ...this.advertised.keys()])];
  }
}

/** Every scope a need names, for the advertisement of a backend's scopes at consent. */
export function scopesNamed(need: ScopeNeed): string[] {
  return [...new Set(need.flat())];
}
