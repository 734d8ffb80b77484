// The `oauthAs.logins` part of servers.json: each login method checked against its schema, presets (Google,
// Microsoft Entra ID, Keycloak, Authentik, Okta) expanded to their OpenID Connect settings, ids made unique.

import type { Static } from "@sinclair/typebox";
import type { AllowRules } from "../login/allow.ts";
import type { OidcSettings } from "../login/oidc.ts";
import { parseDuration } from "./duration.ts";
import { joinPath } from "./env.ts";
import { AllowRules as AllowRulesSchema, LoginSchemas } from "./schema.ts";
import type { LoginCommon, LoginConfig } from "./types.ts";

export interface Problem {
  path: string;
  message: string;
}

type Check = (
  schema: Parameters<typeof import("@sinclair/typebox/value").Value.Errors>[0],
  value: unknown,
  path: string,
  problems: Problem[],
) => boolean;

const LOOPBACK = /^http:\/\/(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?(\/|$)/;

function urlProblem(value: string, path: string, problems: Problem[]): void {
  let ok = false;
  try {
    const u = new URL(value);
    ok = u.protocol === "https:" || LOOPBACK.test(value);
  } catch {
    ok = false;
  }
  if (!ok)
    problems.push({
      path,
      message: `found ${JSON.stringify(value)}, expected an https:// URL (http only on loopback, for tests)`,
    });
}

export function allowRulesProblems(allow: AllowRules | undefined, path: string, problems: Problem[]): void {
  for (const [i, p] of (allow?.emailDomainPatterns ?? []).entries()) {
    try {
      new RegExp(p);
    } catch (e) {
      problems.push({
        path: `${path}.emailDomainPatterns[${i}]`,
        message: `not a valid regular expression: ${(e as Error).message}`,
      });
    }
  }
}

const DEFAULT_SCOPES = ["openid", "email", "profile"];

/** Turns one entry of `logins` into its normalised form, or undefined when it has problems (recorded). */
function login(
  raw: unknown,
  path: string,
  problems: Problem[],
  check: Check,
  seen: Set<string>,
): LoginConfig | undefined {
  const type = raw && typeof raw === "object" && !Array.isArray(raw) ? (raw as { type?: unknown }).type : undefined;
  if (typeof type !== "string" || !Object.hasOwn(LoginSchemas, type)) {
    problems.push({
      path: `${path}.type`,
      message: `found ${JSON.stringify(type)}, expected one of ${Object.keys(LoginSchemas)
        .map((t) => `"${t}"`)
        .join(", ")}`,
    });
    return undefined;
  }
  const schema = LoginSchemas[type as keyof typeof LoginSchemas];
  if (!check(schema, raw, path, problems)) return undefined;
  const r = raw as Static<(typeof LoginSchemas)["oidc"]> & Record<string, unknown>;
  const id = r.id ?? type;
  if (seen.has(id))
    problems.push({ path: `${path}.id`, message: `the login id "${id}" is used twice; give each its own "id"` });
  seen.add(id);
  if (r.allow !== undefined) check(AllowRulesSchema, r.allow, `${path}.allow`, problems);
  allowRulesProblems(r.allow, `${path}.allow`, problems);
  let timeoutMs = 5000;
  if (r.timeout !== undefined) {
    const t = parseDuration(r.timeout);
    if (t === null || t <= 0) problems.push({ path: `${path}.timeout`, message: 'expected a duration such as "5s"' });
    else timeoutMs = t;
  }
  const common: LoginCommon = {
    id,
    label: r.label ?? defaultLabel(type),
    groupRoles: r.groupRoles ?? {},
    injectedRoles: r.injectedRoles ?? [],
    keepUpstreamTokens: r.keepUpstreamTokens ?? false,
  };
  if (r.allow) common.allow = r.allow;

  if (type === "github") {
    const g = raw as Static<(typeof LoginSchemas)["github"]>;
    const baseUrl = (g.baseUrl ?? "https://github.com").replace(/\/$/, "");
    const apiUrl = (
      g.apiUrl ?? (baseUrl === "https://github.com" ? "https://api.github.com" : `${baseUrl}/api/v3`)
    ).replace(/\/$/, "");
    urlProblem(baseUrl, `${path}.baseUrl`, problems);
    urlProblem(apiUrl, `${path}.apiUrl`, problems);
    return {
      ...common,
      type: "github",
      github: {
        id,
        label: common.label,
        clientId: g.clientId,
        clientSecret: g.clientSecret,
        baseUrl,
        apiUrl,
        scopes: g.scopes ?? ["read:user", "user:email", "read:org"],
        timeoutMs,
      },
    };
  }
  if (type === "local") {
    const l = raw as Static<(typeof LoginSchemas)["local"]>;
    const users: Extract<LoginConfig, { type: "local" }>["users"] = {};
    for (const [name, u] of Object.entries(l.users)) {
      if (!/^\$(argon2(id|i|d)|2[aby])\$/.test(u.passwordHash)) {
        problems.push({
          path: `${joinPath(`${path}.users`, name)}.passwordHash`,
          message: "expected an argon2id hash from `gatehouse hash-password`",
        });
      }
      const user: (typeof users)[string] = { passwordHash: u.passwordHash, groups: u.groups ?? [] };
      if (u.email) user.email = u.email;
      if (u.name) user.name = u.name;
      users[name.trim().toLowerCase()] = user;
    }
    const dur = (v: string | number | undefined, fallback: number, key: string) => {
      if (v === undefined) return fallback;
      const ms = parseDuration(v);
      if (ms === null) problems.push({ path: `${path}.lockout.${key}`, message: 'expected a duration such as "30s"' });
      return ms ?? fallback;
    };
    return {
      ...common,
      type: "local",
      users,
      lockout: {
        maxAttempts: l.lockout?.maxAttempts ?? 5,
        baseLockMs: dur(l.lockout?.baseLock, 30_000, "baseLock"),
        maxLockMs: dur(l.lockout?.maxLock, 900_000, "maxLock"),
      },
    };
  }

  // OpenID Connect, generic or a preset.
  const o = raw as Record<string, unknown> & {
    clientId: string;
    clientSecret?: string;
    scopes?: string[];
    subjectClaim?: string;
    groupsClaim?: string;
  };
  const settings: OidcSettings = {
    id,
    label: common.label,
    issuer: "",
    clientId: o.clientId,
    scopes: o.scopes ?? DEFAULT_SCOPES,
    subjectClaim: o.subjectClaim ?? "email",
    groupsClaim: o.groupsClaim ?? "groups",
    authParams: {},
    timeoutMs,
  };
  if (o.clientSecret) settings.clientSecret = o.clientSecret;
  switch (type) {
    case "oidc":
      settings.issuer = o.issuer as string;
      settings.authParams = (o.authParams as Record<string, string>) ?? {};
      break;
    case "google":
      settings.issuer = (o.issuer as string) ?? "https://accounts.google.com";
      if (o.hostedDomain) {
        settings.hostedDomain = o.hostedDomain as string;
        settings.authParams.hd = o.hostedDomain as string;
      }
      break;
    case "microsoft": {
      const tenant = o.tenant as string;
      const multi = ["common", "organizations", "consumers"].includes(tenant);
      settings.issuer = (o.issuer as string) ?? `https://login.microsoftonline.com/${tenant}/v2.0`;
      settings.tenantIssuer = multi;
      settings.subjectClaim = o.subjectClaim ?? "preferred_username";
      // Entra sends no email_verified: a tenant's own addresses are trusted when the tenant is fixed (never for
      // multi-tenant sign-in, where another tenant's admin controls the address).
      settings.trustEmail = !multi;
      break;
    }
    case "keycloak":
      settings.issuer = `${(o.baseUrl as string).replace(/\/$/, "")}/realms/${o.realm as string}`;
      settings.subjectClaim = o.subjectClaim ?? "preferred_username";
      break;
    case "authentik":
      settings.issuer = `${(o.baseUrl as string).replace(/\/$/, "")}/application/o/${o.application as string}/`;
      settings.subjectClaim = o.subjectClaim ?? "preferred_username";
      break;
    case "okta":
      settings.issuer = `https://${o.domain as string}/oauth2/${(o.authorizationServer as string) ?? "default"}`;
      break;
  }
  urlProblem(
    settings.issuer,
    `${path}.${type === "oidc" || o.issuer ? "issuer" : type === "okta" ? "domain" : "baseUrl"}`,
    problems,
  );
  return { ...common, type: "oidc", oidc: settings };
}

function defaultLabel(type: string): string {
  return (
    {
      oidc: "single sign-on",
      google: "Google",
      microsoft: "Microsoft",
      keycloak: "Keycloak",
      authentik: "Authentik",
      okta: "Okta",
      github: "GitHub",
      local: "a local account",
    } as Record<string, string>
  )[type] as string;
}

export function loadLogins(
  list: unknown[] | undefined,
  path: string,
  problems: Problem[],
  check: Check,
): LoginConfig[] {
  const seen = new Set<string>(["trusted-header"]);
  const out: LoginConfig[] = [];
  for (const [i, raw] of (list ?? []).entries()) {
    const l = login(raw, joinPath(path, i), problems, check, seen);
    if (l) out.push(l);
  }
  return out;
}
