// Redirect URI rules (RFC 9700 §4.1, OAuth 2.1 §2.3.1 and §7.5, RFC 8252 §7): registered URIs must be canonical
// (no userinfo, fragment or dot-segment tricks), https or loopback http, and allowed by the configured allowlist;
// custom schemes (cursor://…) only when listed; allowlist entries may be anchored regular expressions (`^…$`). At
// /authorize a URI must equal a registered one exactly, except that a loopback URI may use any port (RFC 8252 §7.3).

import { DEFAULTS } from "../config/defaults.ts";

const LOOPBACK_HOSTS = new Set(["127.0.0.1", "[::1]", "localhost"]);

/** The hosted clients' callbacks and loopback, used when `redirectUriAllowlist` is not configured. */
export const DEFAULT_REDIRECT_ALLOWLIST: readonly string[] = DEFAULTS.oauthAs.redirectUriAllowlist;

export function isLoopback(u: URL): boolean {
  return u.protocol === "http:" && LOOPBACK_HOSTS.has(u.hostname);
}

/** Parses a redirect URI and rejects the forms used to smuggle another destination. */
export function parseRedirectUri(raw: string): { ok: true; url: URL } | { ok: false; reason: string } {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return { ok: false, reason: "is not an absolute URI" };
  }
  if (raw.includes("#")) return { ok: false, reason: "must not contain a fragment (RFC 6749 §3.1.2)" };
  if (u.username || u.password || /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*@/i.test(raw)) {
    return { ok: false, reason: "must not contain userinfo (user@host)" };
  }
  // The URI must already be in canonical form: no `..`, `%2e%2e`, backslashes or case games in scheme/host.
  if (u.href !== raw && u.href !== `${raw}/`) return { ok: false, reason: "is not in canonical form" };
  if (u.protocol === "javascript:" || u.protocol === "data:" || u.protocol === "file:") {
    return { ok: false, reason: `uses the forbidden scheme ${u.protocol}` };
  }
  if (u.protocol === "http:" && !isLoopback(u)) {
    return { ok: false, reason: "uses http:// on a host that is not loopback (use https://)" };
  }
  return { ok: true, url: u };
}

/** Loopback URIs compare without their port (RFC 8252 §7.3). */
function withoutLoopbackPort(u: URL): string {
  if (!isLoopback(u)) return u.href;
  const copy = new URL(u.href);
  copy.port = "";
  return copy.href;
}

/**
 * Allowlist patterns: exact, a prefix ending in `*`, or a regular expression `^…$` (anchored at both ends, checked at
 * load) matched against the whole canonical URL, port included. Loopback exact and prefix patterns match any port.
 * A prefix that is a bare origin (`https://app.example*`) is read as `https://app.example/*`, so it cannot match
 * `app.example.evil.com`.
 */
export function allowedByList(u: URL, patterns: readonly string[]): boolean {
  const value = withoutLoopbackPort(u);
  for (const p of patterns) {
    if (p.startsWith("^")) {
      if (new RegExp(p).test(u.href)) return true;
      continue;
    }
    const star = p.endsWith("*");
    const base = star ? p.slice(0, -1) : p;
    let normalized = base;
    try {
      normalized = withoutLoopbackPort(new URL(base));
    } catch {
      // a pattern that is only a prefix such as "cursor://" stays as written
    }
    if (star ? value.startsWith(normalized) : value === normalized) return true;
  }
  return false;
}

/** Why a URI may not be registered, or undefined when it may. */
export function registrationProblem(raw: string, allowlist: readonly string[]): string | undefined {
  const parsed = parseRedirectUri(raw);
  if (!parsed.ok) return `redirect_uri ${JSON.stringify(raw)} ${parsed.reason}`;
  if (!allowedByList(parsed.url, allowlist)) {
    return `redirect_uri ${JSON.stringify(raw)} is not allowed by oauthAs.redirectUriAllowlist`;
  }
  return undefined;
}

/** Exact match against the registered URIs, loopback ports excepted. */
export function matchesRegistered(requested: string, registered: readonly string[]): boolean {
  const parsed = parseRedirectUri(requested);
  if (!parsed.ok) return false;
  if (registered.includes(requested)) return true;
  if (!isLoopback(parsed.url)) return false;
  const want = withoutLoopbackPort(parsed.url);
  return registered.some((r) => {
    try {
      const u = new URL(r);
      return isLoopback(u) && withoutLoopbackPort(u) === want;
    } catch {
      return false;
    }
  });
}
