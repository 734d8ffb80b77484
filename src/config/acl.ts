// The `serverAuth.acl` section, in either of `mcp serve`'s two shapes: legacy rules (first match wins) or roles with
// grants (policy/acl.ts decides with what this produces).

import { DEFAULTS } from "./defaults.ts";
import { found, joinPath, type Problems } from "./problems.ts";
import { type GrantInput, LegacyAcl, type LegacyAclInput, RoleAcl, type RoleAclInput } from "./schema.ts";
import type { AclConfig, Grant } from "./types.ts";

function grants(list: GrantInput[], path: string, p: Problems): Grant[] {
  return list.map((g, i) => {
    const servers = typeof g.server === "string" ? [g.server] : g.server;
    if (servers.length === 0) p.add(`${path}[${i}].server`, "must name at least one server");
    return {
      server: servers,
      access: g.access,
      tools: g.tools ?? [],
      resources: g.resources ?? [],
      prompts: g.prompts ?? [],
      deny: g.deny ?? false,
      clients: g.clients ?? [],
    };
  });
}

export function aclSection(raw: unknown, p: Problems): AclConfig | undefined {
  const path = "serverAuth.acl";
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) {
    p.add(path, `found ${found(raw)}, expected an object`);
    return undefined;
  }
  const a = raw as Record<string, unknown>;
  const roleShape = "roles" in a || "subjects" in a;
  if ("rules" in a && roleShape) {
    p.add(
      path,
      'cannot have both "rules" (legacy shape) and "roles"/"subjects" (role-based shape): keep one of the two',
    );
    return undefined;
  }
  if (!roleShape) {
    if (!p.check(LegacyAcl, a, path)) return undefined;
    const l = a as LegacyAclInput;
    return {
      kind: "legacy",
      default: l.default ?? DEFAULTS.acl.default,
      rules: (l.rules ?? []).map((r) => ({
        subjects: r.subjects ?? [],
        roles: r.roles ?? [],
        clients: r.clients ?? [],
        tools: r.tools,
        policy: r.policy,
      })),
    };
  }
  if (!p.check(RoleAcl, a, path)) return undefined;
  const r = a as RoleAclInput;
  const roles: Record<string, Grant[]> = {};
  for (const [name, list] of Object.entries(r.roles ?? {}))
    roles[name] = grants(list, joinPath(`${path}.roles`, name), p);
  const subjects: Record<string, { roles: string[]; extra: Grant[] }> = {};
  for (const [name, s] of Object.entries(r.subjects ?? {})) {
    const sp = joinPath(`${path}.subjects`, name);
    for (const [i, role] of (s.roles ?? []).entries()) {
      if (!Object.hasOwn(roles, role))
        p.add(`${sp}.roles[${i}]`, `subject '${name}' references unknown role '${role}'`);
    }
    subjects[name] = { roles: s.roles ?? [], extra: grants(s.extra ?? [], `${sp}.extra`, p) };
  }
  return {
    kind: "roles",
    default: r.default ?? DEFAULTS.acl.default,
    strict: r.strictClassification ?? false,
    roles,
    subjects,
  };
}
