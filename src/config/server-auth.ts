// The `serverAuth` section: which identity providers run, in order (`providers`), and each one's block — bearer
// tokens, a trusted proxy's headers, the authorization server, tokens of another issuer — plus tool scopes and the
// ACL. A provider listed without its block (but `forwarded`, whose headers have defaults, as in mcp serve), or the
// old single `provider` string, is refused with what to write.

import { sha256Hex } from "../crypto.ts";
import { aclSection } from "./acl.ts";
import { DEFAULTS } from "./defaults.ts";
import { introspectionSection, jwtSection } from "./external.ts";
import { oauthAsSection, SHA256_KEY } from "./oauth-as.ts";
import { found, foundAt, joinPath, type Problems, unknownKeyMessage } from "./problems.ts";
import {
  BearerToken,
  Forwarded,
  type ForwardedInput,
  Introspection,
  type IntrospectionInput,
  Jwt,
  type JwtInput,
  OAuthAs,
  type OAuthAsInput,
  ServerAuth,
  type ServerAuthInput,
  type ToolScopeInput,
} from "./schema.ts";
import type { AuthConfig, BearerEntry, ProviderKind, ToolScopeEntry } from "./types.ts";

export const PROVIDERS: readonly ProviderKind[] = ["none", "bearer", "forwarded", "oauth_as", "jwt", "introspection"];

const BLOCK_OF: Record<Exclude<ProviderKind, "none">, keyof ServerAuthInput> = {
  bearer: "bearer",
  forwarded: "forwarded",
  oauth_as: "oauthAs",
  jwt: "jwt",
  introspection: "introspection",
};

/**
 * Bearer tokens are keys of `tokens`; problem paths never show a clear-text token (only its position), since
 * `gatehouse check` output ends up in CI logs and tickets.
 */
function bearerTokens(raw: unknown, path: string, p: Problems): BearerEntry[] {
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) {
    p.add(path, `found ${foundAt(`${path}.tokens`, raw)}, expected an object with "tokens"`);
    return [];
  }
  const { tokens, ...rest } = raw as Record<string, unknown>;
  for (const key of Object.keys(rest)) p.add(joinPath(path, key), unknownKeyMessage(key, ["tokens"]));
  if (!tokens || typeof tokens !== "object" || Array.isArray(tokens)) {
    p.add(`${path}.tokens`, `found ${foundAt(`${path}.tokens`, tokens)}, expected an object of token → subject`);
    return [];
  }
  const out: BearerEntry[] = [];
  for (const [i, [key, value]] of Object.entries(tokens).entries()) {
    const tp = key.startsWith("sha256:") ? joinPath(`${path}.tokens`, key) : `${path}.tokens[token #${i + 1}]`;
    if (!p.check(BearerToken, value, tp)) continue;
    if (key.trim() === "") {
      p.add(tp, "a token must not be empty");
      continue;
    }
    const hashed = SHA256_KEY.exec(key);
    if (key.startsWith("sha256:") && !hashed) {
      p.add(tp, 'expected "sha256:" followed by 64 hex digits (see `gatehouse hash-token`)');
      continue;
    }
    const v = value as string | { subject: string; roles?: string[] };
    const subject = typeof v === "string" ? v : v.subject;
    if (subject.trim() === "") p.add(tp, "the subject must not be empty");
    out.push({
      sha256: hashed ? (hashed[1] as string).toLowerCase() : sha256Hex(key),
      subject,
      roles: typeof v === "string" ? [] : (v.roles ?? []),
    });
  }
  return out;
}

/** RFC 6749 §3.3 scope-token: printable ASCII without space, quote or backslash (what a client can ask for). */
export const isScopeToken = (s: unknown): s is string => typeof s === "string" && /^[\x21\x23-\x5b\x5d-\x7e]+$/.test(s);

function toolScopes(raw: Record<string, ToolScopeInput>, path: string, p: Problems): Record<string, ToolScopeEntry> {
  const out: Record<string, ToolScopeEntry> = {};
  for (const [scope, entry] of Object.entries(raw)) {
    if (!isScopeToken(scope)) {
      p.add(
        joinPath(path, scope),
        "a scope name is printable ASCII without spaces, quotes or backslashes (RFC 6749 §3.3)",
      );
      continue;
    }
    out[scope] = Array.isArray(entry)
      ? { tools: entry, clients: [] }
      : {
          tools: entry.tools,
          clients: entry.clients ?? [],
          ...(entry.description ? { description: entry.description } : {}),
        };
  }
  return out;
}

/** `dir`: what relative paths (a service account key file) are relative to. */
export function serverAuthSection(input: unknown, p: Problems, dir = "."): AuthConfig {
  const auth: AuthConfig = { providers: [], toolScopes: {} };
  if (input === undefined) return auth;
  const path = "serverAuth";
  let raw = input;
  if (raw && typeof raw === "object" && !Array.isArray(raw) && "provider" in raw) {
    const legacy = (raw as Record<string, unknown>).provider;
    const hint = typeof legacy === "string" ? `"providers": [${JSON.stringify(legacy)}]` : '"providers": ["bearer"]';
    p.add(
      `${path}.provider`,
      `the single "provider" string is no longer supported (it would boot without authentication); write ${hint} instead`,
    );
    const { provider: _ignored, ...rest } = raw as Record<string, unknown>;
    raw = rest;
  }
  // Every block is checked, and the rules run on what the schema accepted, so one wrong setting hides no other.
  p.check(ServerAuth, raw, path);
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) return auth;
  const block = <T>(schema: Parameters<Problems["check"]>[0], key: keyof ServerAuthInput): T | undefined => {
    const value = (raw as Record<string, unknown>)[key];
    if (value === undefined) return undefined;
    p.check(schema, value, `${path}.${key}`);
    return p.prune(value, `${path}.${key}`) as T | undefined;
  };
  const s = p.prune(raw, path) as ServerAuthInput;

  for (const [i, kind] of (s.providers ?? []).entries()) {
    if (!PROVIDERS.includes(kind as ProviderKind)) {
      p.add(
        `${path}.providers[${i}]`,
        `unknown auth provider ${found(kind)}, expected one of ${PROVIDERS.map((x) => `"${x}"`).join(", ")}`,
      );
      continue;
    }
    auth.providers.push(kind as ProviderKind);
  }
  for (const kind of new Set(auth.providers)) {
    // mcp serve: the forwarded block is optional, its headers default (avelino/mcp docs/reference/config-file.md
    // "Forwarded config": "Optional when "forwarded" is in providers").
    if (kind === "none" || kind === "forwarded") continue;
    const name = BLOCK_OF[kind];
    if ((raw as Record<string, unknown>)[name] === undefined) {
      p.add(`${path}.${name}`, `is required because "providers" lists "${kind}"`);
    }
  }

  if (s.bearer !== undefined) auth.bearer = { tokens: bearerTokens(s.bearer, `${path}.bearer`, p) };
  const f = block<ForwardedInput>(Forwarded, "forwarded") ?? (auth.providers.includes("forwarded") ? {} : undefined);
  if (f) {
    auth.forwarded = {
      header: (f.header ?? DEFAULTS.forwarded.header).toLowerCase(),
      groupsHeader: (f.groups_header ?? DEFAULTS.forwarded.groupsHeader).toLowerCase(),
    };
    const trusted = p.cidrs(f.trustedSourceCidrs, `${path}.forwarded.trustedSourceCidrs`);
    if (trusted) auth.forwarded.trustedSourceCidrs = trusted;
  }
  const o = block<OAuthAsInput>(OAuthAs, "oauthAs");
  if (o) auth.oauthAs = oauthAsSection(o, p, dir);
  const j = block<JwtInput>(Jwt, "jwt");
  if (j) auth.jwt = jwtSection(j, `${path}.jwt`, p);
  let x = block<IntrospectionInput>(Introspection, "introspection");
  // A block used only for alsoFor serves no discovery of its own (refusals point at the jwt block's), so it needs
  // none; one listed in providers does.
  if (x && x.discovery === undefined && !auth.providers.includes("introspection")) {
    x = { ...x, discovery: { mode: "none" } };
  }
  if (x) auth.introspection = introspectionSection(x, `${path}.introspection`, p);
  if (auth.introspection?.alsoFor.includes("jwt") && !auth.providers.includes("jwt")) {
    p.add(
      `${path}.introspection.alsoFor`,
      '"jwt" needs "jwt" in serverAuth.providers (and its serverAuth.jwt block): only tokens it accepts are introspected too',
    );
  }
  auth.toolScopes = toolScopes(s.toolScopes ?? {}, `${path}.toolScopes`, p);
  if (s.acl !== undefined) {
    const a = aclSection(s.acl, p);
    if (a) auth.acl = a;
  }
  return auth;
}
