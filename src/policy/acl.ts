// Access control decisions, as pure functions of (identity, item). Two configuration shapes, as in `mcp serve`:
//  - legacy `{default, rules:[{subjects, roles, tools, policy}]}`: first matching rule wins; `tools` globs match the
//    prefixed name (`server__tool`); resources and prompts follow `default`.
//  - role-based `{default, strictClassification, roles:{role:[grant]}, subjects:{name:{roles, extra}}}`: the grants
//    of every role the caller has are united and a matching deny wins; `tools`/`resources`/`prompts` globs match the
//    backend's own names and `server` globs the backend name. `access` compares with the tool's classification.
// A rule or grant with `clients` applies only to tokens of those clients (policy/clients.ts): "Alice with Claude
// Desktop may read but not write" is a grant for Alice's role with `clients`. Without an ACL everything is allowed.
// Decisions carry the rule that decided, for logs and audit.

import type { Identity } from "../auth/identity.ts";
import type { Access, AclConfig, Grant, LegacyRule, Policy } from "../config/types.ts";
import { prefixed } from "../naming.ts";
import { clientMatches } from "./clients.ts";
import { globMatcher, matchesAny } from "./glob.ts";

export type { Access, AclConfig, Grant, LegacyRule, Policy };

/** How a tool is classified for `access`: from the server's tool_acl, its MCP annotations, or by default. */
export interface ToolClass {
  kind: "read" | "write";
  source: "override" | "annotation" | "fallback";
}

export interface Decision {
  allow: boolean;
  rule: string;
}

export interface ToolAnnotations {
  readOnlyHint?: unknown;
  destructiveHint?: unknown;
}

/**
 * tool_acl globs first (a tool matched by both lists counts as write), then `readOnlyHint: true` → read and
 * `destructiveHint: true` → write; anything else is write: when in doubt, the safer classification.
 */
export function classifyTool(
  toolAcl: { read: string[]; write: string[] },
  tool: string,
  annotations?: ToolAnnotations,
): ToolClass {
  const read = matchesAny(toolAcl.read, tool);
  const write = matchesAny(toolAcl.write, tool);
  if (write) return { kind: "write", source: "override" };
  if (read) return { kind: "read", source: "override" };
  if (annotations?.readOnlyHint === true) return { kind: "read", source: "annotation" };
  if (annotations?.destructiveHint === true) return { kind: "write", source: "annotation" };
  return { kind: "write", source: "fallback" };
}

const ALLOW_ALL: Decision = { allow: true, rule: "no-acl" };

function literalOrGlob(patterns: string[], values: readonly string[]): boolean {
  return patterns.some((p) => values.some((v) => globMatcher(p)(v)));
}

interface Ruled {
  grant: Grant;
  rule: string;
}

export class Acl {
  /** Role-based shape: each role's and each subject's extra grants with their rule names, worked out once. */
  private readonly byRole = new Map<string, Ruled[]>();
  private readonly extraOf = new Map<string, Ruled[]>();

  constructor(private readonly config: AclConfig | undefined) {
    if (config?.kind !== "roles") return;
    for (const [role, list] of Object.entries(config.roles)) {
      this.byRole.set(
        role,
        list.map((grant, i) => ({ grant, rule: `roles.${role}[${i}]` })),
      );
    }
    for (const [subject, s] of Object.entries(config.subjects)) {
      this.extraOf.set(
        subject,
        s.extra.map((grant, i) => ({ grant, rule: `subjects.${subject}.extra[${i}]` })),
      );
    }
  }

  get configured(): boolean {
    return this.config !== undefined;
  }

  tool(identity: Identity, server: string, tool: string, cls: ToolClass): Decision {
    const c = this.config;
    if (!c) return ALLOW_ALL;
    if (c.kind === "legacy") {
      const name = prefixed(server, tool);
      for (const [i, rule] of c.rules.entries()) {
        if (rule.subjects.length > 0 && !literalOrGlob(rule.subjects, [identity.subject])) continue;
        if (rule.roles.length > 0 && !literalOrGlob(rule.roles, identity.roles)) continue;
        if (!clientMatches(rule.clients, identity)) continue;
        if (!matchesAny(rule.tools, name)) continue;
        return { allow: rule.policy === "allow", rule: `rules[${i}]` };
      }
      return { allow: c.default === "allow", rule: "default" };
    }
    const ambiguous = c.strict && cls.source === "fallback";
    const covers = (g: Grant) => {
      if (ambiguous) return g.deny; // strictClassification: only deny grants reach unclassified tools
      return g.access === "*" || g.access === cls.kind;
    };
    return this.decideRoles(identity, server, (g) => (g.tools.length === 0 || matchesAny(g.tools, tool)) && covers(g));
  }

  resource(identity: Identity, server: string, uri: string): Decision {
    return this.item(identity, server, (g) => g.resources.length === 0 || matchesAny(g.resources, uri));
  }

  prompt(identity: Identity, server: string, name: string): Decision {
    return this.item(identity, server, (g) => g.prompts.length === 0 || matchesAny(g.prompts, name));
  }

  /** Resources and prompts: legacy rules do not speak of them (default decides); role grants need read access. */
  private item(identity: Identity, server: string, matches: (g: Grant) => boolean): Decision {
    const c = this.config;
    if (!c) return ALLOW_ALL;
    if (c.kind === "legacy") return { allow: c.default === "allow", rule: "default" };
    return this.decideRoles(identity, server, (g) => g.access !== "write" && matches(g));
  }

  private decideRoles(identity: Identity, server: string, applies: (g: Grant) => boolean): Decision {
    const c = this.config;
    if (c?.kind !== "roles") return ALLOW_ALL;
    let allowRule: string | undefined;
    for (const list of this.grantsFor(identity, c)) {
      for (const { grant, rule } of list) {
        if (!matchesAny(grant.server, server) || !clientMatches(grant.clients, identity) || !applies(grant)) continue;
        if (grant.deny) return { allow: false, rule };
        allowRule ??= rule;
      }
    }
    if (allowRule) return { allow: true, rule: allowRule };
    return { allow: c.default === "allow", rule: "default" };
  }

  /** The caller's roles (its own plus those the ACL assigns to its subject), then the subject's extra grants. */
  private grantsFor(identity: Identity, c: Extract<AclConfig, { kind: "roles" }>): Ruled[][] {
    const out: Ruled[][] = [];
    const subject = Object.hasOwn(c.subjects, identity.subject) ? c.subjects[identity.subject] : undefined;
    const roles = subject ? [...new Set([...identity.roles, ...subject.roles])] : identity.roles;
    for (const role of roles) {
      const list = this.byRole.get(role);
      if (list) out.push(list);
    }
    const extra = subject && this.extraOf.get(identity.subject);
    if (extra) out.push(extra);
    return out;
  }
}
