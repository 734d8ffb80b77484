// The `oauthAs.logins` part of servers.json: each login method checked against its schema, presets (Google,
// Microsoft Entra ID, Keycloak, Authentik, Okta) expanded to their OpenID Connect settings, ids made unique.

import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { Static } from "@sinclair/typebox";
import { DEFAULTS } from "./defaults.ts";
import { parseDuration } from "./duration.ts";
import { found, joinPath, type Problems } from "./problems.ts";
import { AllowRules as AllowRulesSchema, LoginSchemas } from "./schema.ts";
import type { AllowRules, LoginCommon, LoginConfig, OidcSettings, WorkspaceSettings } from "./types.ts";

export function allowRulesProblems(allow: AllowRules | undefined, path: string, problems: Problems): void {
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

/** Turns one entry of `logins` into its normalised form, or undefined when it has problems (recorded). */
function login(
  raw: unknown,
  path: string,
  problems: Problems,
  seen: Set<string>,
  dir: string,
): LoginConfig | undefined {
  const type = raw && typeof raw === "object" && !Array.isArray(raw) ? (raw as { type?: unknown }).type : undefined;
  if (typeof type !== "string" || !Object.hasOwn(LoginSchemas, type)) {
    problems.push({
      path: `${path}.type`,
      message: `found ${found(type)}, expected one of ${Object.keys(LoginSchemas)
        .map((t) => `"${t}"`)
        .join(", ")}`,
    });
    return undefined;
  }
  const schema = LoginSchemas[type as keyof typeof LoginSchemas];
  if (!problems.check(schema, raw, path)) return undefined;
  const r = raw as Static<(typeof LoginSchemas)["oidc"]> & Record<string, unknown>;
  const id = r.id ?? type;
  if (seen.has(id))
    problems.push({ path: `${path}.id`, message: `the login id "${id}" is used twice; give each its own "id"` });
  seen.add(id);
  if (r.allow !== undefined) problems.check(AllowRulesSchema, r.allow, `${path}.allow`);
  allowRulesProblems(r.allow, `${path}.allow`, problems);
  let timeoutMs: number = DEFAULTS.login.timeoutMs;
  if (r.timeout !== undefined) {
    const t = parseDuration(r.timeout);
    if (t === null || t <= 0) problems.push({ path: `${path}.timeout`, message: 'expected a duration such as "5s"' });
    else timeoutMs = t;
  }
  const common: LoginCommon = {
    id,
    label: r.label ?? (DEFAULTS.login.labels[type] as string),
    groupRoles: r.groupRoles ?? {},
    injectedRoles: r.injectedRoles ?? [],
    keepUpstreamTokens: r.keepUpstreamTokens ?? false,
  };
  if (r.allow) common.allow = r.allow;

  if (type === "github") {
    const g = raw as Static<(typeof LoginSchemas)["github"]>;
    const baseUrl = (g.baseUrl ?? DEFAULTS.login.githubBaseUrl).replace(/\/$/, "");
    const apiUrl = (
      g.apiUrl ?? (baseUrl === DEFAULTS.login.githubBaseUrl ? DEFAULTS.login.githubApiUrl : `${baseUrl}/api/v3`)
    ).replace(/\/$/, "");
    problems.httpsUrl(baseUrl, `${path}.baseUrl`);
    problems.httpsUrl(apiUrl, `${path}.apiUrl`);
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
        scopes: g.scopes ?? [...DEFAULTS.login.githubScopes],
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
        maxAttempts: l.lockout?.maxAttempts ?? DEFAULTS.login.lockout.maxAttempts,
        baseLockMs: dur(l.lockout?.baseLock, DEFAULTS.login.lockout.baseLockMs, "baseLock"),
        maxLockMs: dur(l.lockout?.maxLock, DEFAULTS.login.lockout.maxLockMs, "maxLock"),
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
    scopes: o.scopes ?? [...DEFAULTS.login.oidcScopes],
    subjectClaim: o.subjectClaim ?? DEFAULTS.login.subjectClaim,
    groupsClaim: o.groupsClaim ?? DEFAULTS.login.groupsClaim,
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
      if (o.workspace) {
        const w = workspaceSettings(o.workspace as WorkspaceInput, `${path}.workspace`, problems, dir, timeoutMs);
        if (w) settings.workspace = w;
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
  problems.httpsUrl(
    settings.issuer,
    `${path}.${type === "oidc" || o.issuer ? "issuer" : type === "okta" ? "domain" : "baseUrl"}`,
  );
  return { ...common, type: "oidc", oidc: settings };
}

type WorkspaceInput = NonNullable<Static<(typeof LoginSchemas)["google"]>["workspace"]>;

const DIRECTORY_URL = "https://admin.googleapis.com";

/**
 * google.workspace: the service account (its JSON key, from a file or inline) Gatehouse signs in as to read the
 * user's groups from the Admin SDK Directory API. Read and checked here, so a wrong key fails at start with its path.
 */
function workspaceSettings(
  w: WorkspaceInput,
  path: string,
  problems: Problems,
  dir: string,
  timeoutMs: number,
): WorkspaceSettings | undefined {
  if ((w.serviceAccountKeyFile === undefined) === (w.serviceAccountKey === undefined)) {
    problems.push({
      path,
      message: "set one of serviceAccountKeyFile (a JSON key file) or serviceAccountKey (its text)",
    });
    return undefined;
  }
  let text = w.serviceAccountKey;
  const where = w.serviceAccountKeyFile ? `${path}.serviceAccountKeyFile` : `${path}.serviceAccountKey`;
  if (w.serviceAccountKeyFile) {
    try {
      text = readFileSync(resolve(dir, w.serviceAccountKeyFile), "utf8");
    } catch (e) {
      problems.push({ path: where, message: `cannot read ${w.serviceAccountKeyFile}: ${(e as Error).message}` });
      return undefined;
    }
  }
  let key: Record<string, unknown>;
  try {
    key = JSON.parse(text as string) as Record<string, unknown>;
  } catch {
    problems.push({
      path: where,
      message: "is not JSON (expected a service account key downloaded from Google Cloud)",
    });
    return undefined;
  }
  if (key.type !== "service_account") {
    problems.push({
      path: where,
      message: `is a credential of type ${found(key.type)}; only a service account key ("type": "service_account") can be used: workload identity federation and metadata-server credentials are not supported`,
    });
    return undefined;
  }
  const str = (v: unknown) => (typeof v === "string" && v !== "" ? v : undefined);
  const clientEmail = str(key.client_email);
  const privateKey = str(key.private_key);
  if (!clientEmail || !privateKey?.includes("BEGIN PRIVATE KEY")) {
    problems.push({ path: where, message: "has no client_email or no private_key (PKCS #8 PEM)" });
    return undefined;
  }
  const tokenUri = str(key.token_uri) ?? "https://oauth2.googleapis.com/token";
  const directoryUrl = (w.directoryUrl ?? DIRECTORY_URL).replace(/\/$/, "");
  problems.httpsUrl(tokenUri, `${where} (token_uri)`);
  problems.httpsUrl(directoryUrl, `${path}.directoryUrl`);
  const out: WorkspaceSettings = { clientEmail, privateKey, tokenUri, directoryUrl, timeoutMs };
  if (w.adminEmail) out.adminEmail = w.adminEmail;
  return out;
}

export function loginsSection(list: unknown[] | undefined, path: string, problems: Problems, dir = "."): LoginConfig[] {
  const seen = new Set<string>(["trusted-header"]);
  const out: LoginConfig[] = [];
  for (const [i, raw] of (list ?? []).entries()) {
    const l = login(raw, joinPath(path, i), problems, seen, dir);
    if (l) out.push(l);
  }
  return out;
}
