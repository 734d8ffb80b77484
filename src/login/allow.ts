// Who may in: allow rules, global and per login method (the user must pass both). A rule set lets a user in when any
// of its lists matches: subjects, emails, email domains (globs, or regular expressions as mcp-oauth2-proxy's
// allowedEmailDomains), groups, GitHub orgs and `org/team`. An empty rule set lets every signed-in user in.
// Emails count only when the provider says they are verified.

import type { AllowRules } from "../config/types.ts";
import { matchesAny } from "../policy/glob.ts";
import type { UpstreamUser } from "./types.ts";

export type { AllowRules };

export function hasRules(r: AllowRules | undefined): boolean {
  return !!r && Object.values(r).some((v) => Array.isArray(v) && v.length > 0);
}

/** Compiles once; invalid regular expressions are reported by the configuration loader. */
export function allowChecker(rules: AllowRules | undefined): (u: UpstreamUser) => boolean {
  if (!rules || !hasRules(rules)) return () => true;
  const patterns = (rules.emailDomainPatterns ?? []).map((p) => new RegExp(`^(?:${p})$`, "i"));
  const lower = (list?: string[]) => (list ?? []).map((x) => x.toLowerCase());
  const emails = lower(rules.emails);
  const domains = lower(rules.emailDomains);
  return (u) => {
    if (matchesAny(rules.subjects, u.subject)) return true;
    if (u.email && u.emailVerified) {
      const email = u.email.toLowerCase();
      const domain = email.slice(email.lastIndexOf("@") + 1);
      if (matchesAny(emails, email)) return true;
      if (matchesAny(domains, domain)) return true;
      if (patterns.some((p) => p.test(domain))) return true;
    }
    if (u.groups.some((g) => matchesAny(rules.groups, g))) return true;
    if ((u.githubOrgs ?? []).some((o) => matchesAny(rules.githubOrgs, o))) return true;
    if ((u.githubTeams ?? []).some((t) => matchesAny(rules.githubTeams, t))) return true;
    return false;
  };
}

/** Roles for a user: upstream groups, the groups' mapped roles, and the roles injected by the method and globally. */
export function rolesFor(u: UpstreamUser, groupRoles: Record<string, string[]>, injected: string[]): string[] {
  const roles = new Set(u.groups);
  for (const g of u.groups) for (const r of Object.hasOwn(groupRoles, g) ? (groupRoles[g] ?? []) : []) roles.add(r);
  for (const r of injected) roles.add(r);
  return [...roles];
}
