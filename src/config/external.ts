// The `jwt` and `introspection` blocks of serverAuth: tokens minted by another issuer, which Gatehouse checks as a
// resource server (RFC 9068 / RFC 7662), and the discovery documents it serves for them.

import type { Static } from "@sinclair/typebox";
import { parseDuration } from "./duration.ts";
import { allowRulesProblems, type Problem } from "./logins.ts";
import { AllowRules as AllowRulesSchema, type Introspection, type Jwt } from "./schema.ts";
import type { ExternalDiscoveryConfig, IntrospectionConfig, JwtConfig } from "./types.ts";

type Check = (
  schema: Parameters<typeof import("@sinclair/typebox/value").Value.Errors>[0],
  value: unknown,
  path: string,
  problems: Problem[],
) => boolean;

const LOOPBACK = /^http:\/\/(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?(\/|$)/;

function httpsUrl(value: string | undefined, path: string, problems: Problem[]): void {
  if (value === undefined) return;
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

function ms(v: string | number | undefined, fallback: number, path: string, problems: Problem[]): number {
  if (v === undefined) return fallback;
  const d = parseDuration(v);
  if (d === null) {
    problems.push({ path, message: 'expected a duration such as "30s"' });
    return fallback;
  }
  return d;
}

function discovery(d: Static<typeof Jwt>["discovery"], path: string, problems: Problem[]): ExternalDiscoveryConfig {
  const out: ExternalDiscoveryConfig = { mode: d?.mode ?? "direct", scopesSupported: d?.scopesSupported ?? [] };
  if (d?.resourceUrl) {
    httpsUrl(d.resourceUrl, `${path}.resourceUrl`, problems);
    out.resourceUrl = d.resourceUrl.replace(/\/$/, "");
  }
  if (d?.publicUrl) {
    httpsUrl(d.publicUrl, `${path}.publicUrl`, problems);
    out.publicUrl = d.publicUrl.replace(/\/$/, "");
  }
  if (d?.staticClient) out.staticClient = d.staticClient;
  if (out.mode !== "none" && !out.resourceUrl) {
    problems.push({
      path: `${path}.resourceUrl`,
      message: 'is required to serve discovery documents (the public URL of /mcp), or set mode: "none"',
    });
  }
  if (out.mode === "proxy" && !out.publicUrl && out.resourceUrl) out.publicUrl = new URL(out.resourceUrl).origin;
  return out;
}

const list = (v: string | string[] | undefined) => (v === undefined ? undefined : typeof v === "string" ? [v] : v);

export function jwtConfig(j: Static<typeof Jwt>, path: string, problems: Problem[], check: Check): JwtConfig {
  httpsUrl(j.issuer, `${path}.issuer`, problems);
  httpsUrl(j.jwksUri, `${path}.jwksUri`, problems);
  if (j.allow) {
    check(AllowRulesSchema, j.allow, `${path}.allow`, problems);
    allowRulesProblems(j.allow, `${path}.allow`, problems);
  }
  const symmetric = j.secret !== undefined;
  if (symmetric && new TextEncoder().encode(j.secret as string).length < 32) {
    problems.push({ path: `${path}.secret`, message: "must be at least 32 bytes" });
  }
  const algorithms = j.algorithms ?? (symmetric ? ["HS256"] : ["RS256", "PS256", "ES256", "EdDSA"]);
  for (const [i, a] of algorithms.entries()) {
    if (a.toLowerCase() === "none")
      problems.push({ path: `${path}.algorithms[${i}]`, message: '"none" is never accepted' });
    else if (symmetric !== a.startsWith("HS")) {
      problems.push({
        path: `${path}.algorithms[${i}]`,
        message: `${a} does not go with ${symmetric ? "a shared secret" : "public keys (JWKS)"}`,
      });
    }
  }
  const out: JwtConfig = {
    issuer: j.issuer,
    audience: list(j.audience) as string[],
    algorithms,
    clockSkewSeconds: Math.round(ms(j.clockSkew, 30_000, `${path}.clockSkew`, problems) / 1000),
    requiredScopes: j.requiredScopes ?? [],
    subjectClaim: j.subjectClaim ?? "sub",
    groupsClaim: j.groupsClaim ?? "groups",
    timeoutMs: ms(j.timeout, 5000, `${path}.timeout`, problems),
    discovery: discovery(j.discovery, `${path}.discovery`, problems),
  };
  if (j.jwksUri) out.jwksUri = j.jwksUri;
  if (j.secret) out.secret = j.secret;
  if (j.requireTyp) out.requireTyp = j.requireTyp.toLowerCase();
  if (j.allow) out.allow = j.allow;
  return out;
}

export function introspectionConfig(
  x: Static<typeof Introspection>,
  path: string,
  problems: Problem[],
  check: Check,
): IntrospectionConfig {
  httpsUrl(x.endpoint, `${path}.endpoint`, problems);
  if (x.allow) {
    check(AllowRulesSchema, x.allow, `${path}.allow`, problems);
    allowRulesProblems(x.allow, `${path}.allow`, problems);
  }
  const out: IntrospectionConfig = {
    endpoint: x.endpoint,
    clientId: x.clientId,
    clientSecret: x.clientSecret,
    authMethod: x.authMethod ?? "client_secret_basic",
    requiredScopes: x.requiredScopes ?? [],
    subjectClaim: x.subjectClaim ?? "sub",
    groupsClaim: x.groupsClaim ?? "groups",
    cacheMaxEntries: x.cacheMaxEntries ?? 10_000,
    cacheMaxTtlMs: ms(x.cacheMaxTtl, 300_000, `${path}.cacheMaxTtl`, problems),
    timeoutMs: ms(x.timeout, 5000, `${path}.timeout`, problems),
    discovery: discovery(x.discovery, `${path}.discovery`, problems),
  };
  if (x.issuer) out.issuer = x.issuer;
  const aud = list(x.audience);
  if (aud) out.audience = aud;
  if (x.allow) out.allow = x.allow;
  return out;
}
