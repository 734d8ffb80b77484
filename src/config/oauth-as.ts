// The `serverAuth.oauthAs` section: Gatehouse's own authorization server — its issuer and protected resource, token
// lifetimes, scopes, who signs users in (a trusted proxy's headers, the login methods of logins.ts), the clients
// exempt from consent, the resource servers allowed to introspect, and the secrets it needs.

import { sha256Hex } from "../crypto.ts";
import { DEFAULTS } from "./defaults.ts";
import { allowRulesProblems, loginsSection } from "./logins.ts";
import { found, joinPath, type Problems } from "./problems.ts";
import type { OAuthAsInput } from "./schema.ts";
import type { OAuthAsConfig } from "./types.ts";

export const SHA256_KEY = /^sha256:([0-9a-fA-F]{64})$/;

const bytes = (s: string) => new TextEncoder().encode(s).length;

/**
 * Why a regular-expression entry (`^…$`, mcp-oauth2-proxy's allowedRedirectURLs) cannot be used, or undefined. It
 * must be anchored at both ends (an unanchored expression matches any URL that merely contains it), compile, and
 * keep its dots escaped in the host: an unescaped `.` there (or `.*`) lets `app-example.com` or
 * `evil.com/x.example.com` through.
 */
function regexProblem(pattern: string): string | undefined {
  const trailing = /(\\*)\$$/.exec(pattern);
  if (!trailing || (trailing[1] as string).length % 2 === 1) {
    return `found ${found(pattern)}: a regular expression must be anchored at both ends, ^…$ (it starts with ^ but does not end with $)`;
  }
  try {
    new RegExp(pattern);
  } catch (e) {
    return `found ${found(pattern)}: not a valid regular expression (${(e as Error).message})`;
  }
  const scheme = pattern.indexOf("://");
  if (scheme < 0) return undefined;
  let escaped = false;
  let inClass = false;
  for (const ch of pattern.slice(scheme + 3)) {
    if (escaped) escaped = false;
    else if (ch === "\\") escaped = true;
    else if (inClass) inClass = ch !== "]";
    else if (ch === "[") inClass = true;
    else if (ch === "/" || ch === "$") break;
    else if (ch === ".") {
      return `found ${found(pattern)}: an unescaped "." in the host matches any character (and ".*" any host); write \\. for a dot and [a-z0-9-]+ for a label`;
    }
  }
  return undefined;
}

const DAY_MS = 86_400_000;
/** The maintenance timer looks every minute: a shorter period could not be honoured. */
const MIN_ROTATION_MS = 60_000;

/** signingKeyRotation (a duration) or signingKeyRotationDays (the older key, still read): one of the two. */
function signingKeyRotation(o: OAuthAsInput, path: string, p: Problems): number {
  if (o.signingKeyRotation !== undefined && o.signingKeyRotationDays !== undefined) {
    p.add(
      `${path}.signingKeyRotation`,
      "set either signingKeyRotation (a duration) or signingKeyRotationDays, not both",
    );
  }
  if (o.signingKeyRotation === undefined)
    return (o.signingKeyRotationDays ?? DEFAULTS.oauthAs.signingKeyRotationDays) * DAY_MS;
  const ms = p.duration(o.signingKeyRotation, `${path}.signingKeyRotation`, 0);
  if (ms !== 0 && ms < MIN_ROTATION_MS) {
    p.add(`${path}.signingKeyRotation`, `found ${found(o.signingKeyRotation)}: expected 0 (never) or at least "1m"`);
  }
  return ms;
}

/** Entries: exact URLs, prefixes ending in "*", or anchored regular expressions (^…$). */
function redirectPatterns(list: readonly string[], path: string, p: Problems): string[] {
  for (const [i, pattern] of list.entries()) {
    if (pattern.startsWith("^")) {
      const problem = regexProblem(pattern);
      if (problem) p.add(`${path}[${i}]`, problem);
      continue;
    }
    if (pattern.includes("\\") || pattern.endsWith("$")) {
      p.add(
        `${path}[${i}]`,
        `found ${found(pattern)}: this looks like a regular expression; write it anchored at both ends, ^…$, or as a plain URL`,
      );
      continue;
    }
    const star = pattern.indexOf("*");
    if (star >= 0 && star !== pattern.length - 1) {
      p.add(`${path}[${i}]`, `found ${found(pattern)}: only a trailing "*" is allowed (it matches any suffix)`);
      continue;
    }
    const prefix = star >= 0 ? pattern.slice(0, -1) : pattern;
    if (!/^[A-Za-z][A-Za-z0-9+.-]*:/.test(prefix)) {
      p.add(
        `${path}[${i}]`,
        `found ${found(pattern)}, expected a URL (https://…, http://127.0.0.1…, or app-scheme://…), a prefix ending in "*", or a regular expression ^…$`,
      );
    }
  }
  return [...list];
}

export function oauthAsSection(o: OAuthAsInput, p: Problems, dir = "."): OAuthAsConfig {
  const path = "serverAuth.oauthAs";
  const d = DEFAULTS.oauthAs;
  let issuer: URL | undefined;
  try {
    issuer = new URL(o.issuerUrl);
  } catch {
    // reported below
  }
  if (!issuer || (issuer.protocol !== "https:" && issuer.protocol !== "http:")) {
    p.add(`${path}.issuerUrl`, `found ${found(o.issuerUrl)}, expected an https:// URL`);
  } else if (issuer.search || issuer.hash) {
    p.add(`${path}.issuerUrl`, "must not have a query or fragment (RFC 8414 §2)");
  } else if (issuer.protocol === "http:") {
    // Loopback development works; nothing hosted will connect, and tokens would cross the network in clear.
    p.warn(
      `${path}.issuerUrl`,
      "uses plain http: hosted clients (Claude, ChatGPT) need https, and tokens travel in clear",
    );
  }
  if (o.jwtSecret !== undefined && bytes(o.jwtSecret) < 32) {
    p.add(
      `${path}.jwtSecret`,
      `must be at least 32 bytes (got ${bytes(o.jwtSecret)}); or remove it to sign with generated ES256 keys`,
    );
  }
  const trusted = p.cidrs(o.trustedSourceCidrs, `${path}.trustedSourceCidrs`) ?? [];
  const logins = loginsSection(o.logins, `${path}.logins`, p, dir);
  if ((o.trustedSourceCidrs ?? []).length === 0 && logins.length === 0) {
    p.add(
      `${path}.trustedSourceCidrs`,
      "must list at least one CIDR (the reverse proxy /authorize trusts for the user header), or configure oauthAs.logins",
    );
  }
  if (o.allow) allowRulesProblems(o.allow, `${path}.allow`, p);
  for (const key of ["sessionSecret", "upstreamTokenKey"] as const) {
    const v = o[key];
    if (v !== undefined && bytes(v) < 32) p.add(`${path}.${key}`, `must be at least 32 bytes (got ${bytes(v)})`);
  }
  for (const [i, l] of logins.entries()) {
    if (l.keepUpstreamTokens && !o.upstreamTokenKey) {
      p.add(`${path}.logins[${i}].keepUpstreamTokens`, "needs oauthAs.upstreamTokenKey to encrypt the tokens it keeps");
    }
  }
  for (const key of ["scopesSupported", "injectedRoles"] as const) {
    for (const [i, v] of (o[key] ?? []).entries())
      if (v.trim() === "") p.add(`${path}.${key}[${i}]`, "must not be empty");
  }
  if (o.consent === "skip") {
    // MCP security best practices ("Confused Deputy Problem"): a server that lets clients register themselves MUST
    // obtain the user's consent for each one. mcp serve skips it; Gatehouse does only when asked to, and says why.
    p.warn(
      `${path}.consent`,
      `is "skip": no consent page${o.registrationEnabled === false ? "" : ", for clients that registered themselves too"} — a malicious client can obtain a code for any signed-in user who follows its link. Use it only when every client is trusted (or list them in consentSkipClients instead${o.registrationEnabled === false ? "" : ", or set registrationEnabled: false"})`,
    );
  }
  const issuerUrl = issuer ? o.issuerUrl.replace(/\/+$/, "") : o.issuerUrl;
  // scopesSupported keeps mcp serve's meaning: the scopes advertised, default none (avelino/mcp
  // docs/howto/oauth-as.md "scopesSupported … [] … Advertised in metadata"); it never becomes a requirement. What a
  // token needs for /mcp is requiredScopes, a key of its own, default none (RFC 6750 §3.1 insufficient_scope).
  const scopesSupported = [...(o.scopesSupported ?? d.scopesSupported)];
  const requiredScopes = [...(o.requiredScopes ?? d.requiredScopes)];
  for (const [i, sc] of requiredScopes.entries()) {
    if (!scopesSupported.includes(sc)) {
      p.add(
        `${path}.requiredScopes[${i}]`,
        `${found(sc)} is not in scopesSupported: add it there too (a scope /mcp requires must be one clients are told of)`,
      );
    }
  }
  for (const [i, sc] of requiredScopes.entries()) {
    if (sc.trim() === "") p.add(`${path}.requiredScopes[${i}]`, "must not be empty");
  }
  if (o.requiredScopes === undefined && scopesSupported.some((x) => x !== "offline_access")) {
    // Gatehouse used to require these too: say it, since a token without them is no longer refused.
    p.warn(
      `${path}.scopesSupported`,
      "is advertised only (as in mcp serve): /mcp requires no scope; set oauthAs.requiredScopes to require some " +
        "(Gatehouse used to require scopesSupported itself)",
    );
  }
  const resourceUrl = o.resourceUrl ?? `${issuerUrl}/mcp`;
  // Without an issuer there is no default resource to check: its problem is the issuer's, reported above.
  if (issuer || o.resourceUrl !== undefined) {
    try {
      const r = new URL(resourceUrl);
      if (r.hash || (r.protocol !== "https:" && r.protocol !== "http:")) throw new Error();
    } catch {
      p.add(`${path}.resourceUrl`, `found ${found(resourceUrl)}, expected the https:// URL of /mcp`);
    }
  }
  const introspectionClients: OAuthAsConfig["introspectionClients"] = [];
  for (const [id, secret] of Object.entries(o.introspectionClients ?? {})) {
    const hashed = SHA256_KEY.exec(secret);
    if (!hashed && secret.length < 16) {
      p.add(
        joinPath(`${path}.introspectionClients`, id),
        "the secret must have at least 16 characters (or be sha256:<hex>)",
      );
    }
    introspectionClients.push({
      clientId: id,
      secretSha256: hashed ? (hashed[1] as string).toLowerCase() : sha256Hex(secret),
    });
  }
  const result: OAuthAsConfig = {
    issuerUrl,
    trustedUserHeader: (o.trustedUserHeader ?? d.trustedUserHeader).toLowerCase(),
    trustedGroupsHeader: (o.trustedGroupsHeader ?? d.trustedGroupsHeader).toLowerCase(),
    trustedEmailHeader: (o.trustedEmailHeader ?? d.trustedEmailHeader).toLowerCase(),
    trustedSourceCidrs: trusted,
    accessTokenTtlSeconds: o.accessTokenTtlSeconds ?? d.accessTokenTtlSeconds,
    refreshTokenTtlSeconds: o.refreshTokenTtlSeconds ?? d.refreshTokenTtlSeconds,
    authorizationCodeTtlSeconds: o.authorizationCodeTtlSeconds ?? d.authorizationCodeTtlSeconds,
    scopesSupported,
    redirectUriAllowlist: redirectPatterns(
      o.redirectUriAllowlist ?? d.redirectUriAllowlist,
      `${path}.redirectUriAllowlist`,
      p,
    ),
    injectedRoles: o.injectedRoles ?? [],
    resourceUrl: resourceUrl.replace(/\/+$/, ""),
    requiredScopes,
    consentSkipClients: o.consentSkipClients ?? [],
    consent: o.consent ?? d.consent,
    refreshReuseGraceSeconds: o.refreshReuseGraceSeconds ?? d.refreshReuseGraceSeconds,
    signingKeyRotationMs: signingKeyRotation(o, path, p),
    signingAlgorithm: o.signingAlgorithm ?? d.signingAlgorithm,
    offerBackendScopesMs:
      o.offerBackendScopes === undefined || o.offerBackendScopes === false
        ? d.offerBackendScopesMs
        : o.offerBackendScopes === true
          ? d.offerBackendScopesWaitMs
          : p.duration(o.offerBackendScopes, `${path}.offerBackendScopes`, d.offerBackendScopesWaitMs),
    introspectionClients,
    registrationEnabled: o.registrationEnabled ?? d.registrationEnabled,
    rateLimits: { ...d.rateLimits, ...o.rateLimits },
    cimd: {
      enabled: o.clientIdMetadataDocuments?.enabled ?? d.cimd.enabled,
      allowPrivateNetwork: o.clientIdMetadataDocuments?.allowPrivateNetwork ?? d.cimd.allowPrivateNetwork,
      timeoutMs: o.clientIdMetadataDocuments?.timeoutMs ?? d.cimd.timeoutMs,
    },
    logins,
    trustedHeaderLogin: trusted.length > 0,
    sessionLifetimeMs: p.duration(o.sessionLifetime, `${path}.sessionLifetime`, d.sessionLifetimeMs),
  };
  if (o.allow) result.allow = o.allow;
  if (o.sessionSecret) result.sessionSecret = o.sessionSecret;
  if (o.upstreamTokenKey) result.upstreamTokenKey = o.upstreamTokenKey;
  if (o.jwtSecret !== undefined) result.jwtSecret = o.jwtSecret;
  return result;
}
