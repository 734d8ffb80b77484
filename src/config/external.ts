// The `jwt` and `introspection` blocks of serverAuth: tokens minted by another issuer, which Gatehouse checks as a
// resource server (RFC 9068 / RFC 7662), and the discovery documents it serves for them.

import type { Static } from "@sinclair/typebox";
import { DEFAULTS } from "./defaults.ts";
import { allowRulesProblems } from "./logins.ts";
import type { Problems } from "./problems.ts";
import { AllowRules as AllowRulesSchema, type Introspection, type Jwt } from "./schema.ts";
import type { ExternalDiscoveryConfig, IntrospectionConfig, JwtConfig } from "./types.ts";

function discovery(d: Static<typeof Jwt>["discovery"], path: string, problems: Problems): ExternalDiscoveryConfig {
  const out: ExternalDiscoveryConfig = {
    mode: d?.mode ?? DEFAULTS.discovery.mode,
    scopesSupported: d?.scopesSupported ?? [],
  };
  if (d?.resourceUrl) {
    problems.httpsUrl(d.resourceUrl, `${path}.resourceUrl`);
    out.resourceUrl = d.resourceUrl.replace(/\/$/, "");
  }
  if (d?.publicUrl) {
    problems.httpsUrl(d.publicUrl, `${path}.publicUrl`);
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

export function jwtSection(j: Static<typeof Jwt>, path: string, problems: Problems): JwtConfig {
  // RFC 7519 §4.1.1: `iss` is a StringOrURI. A service token's issuer may be a plain name ("your-service") when the
  // keys are a shared secret and nothing is discovered from it; otherwise it must be the issuer's https URL.
  const plainName = j.issuer !== undefined && !/^[a-z][a-z0-9+.-]*:/i.test(j.issuer);
  if (plainName && j.secret !== undefined && j.discovery?.mode === "none") {
    if (!/^[\x21-\x7e]+$/.test(j.issuer as string)) {
      problems.push({ path: `${path}.issuer`, message: "expected a URL, or a name without spaces (with secret)" });
    }
  } else if (plainName) {
    problems.push({
      path: `${path}.issuer`,
      message: `found ${JSON.stringify(j.issuer)}, a name: an issuer that is not a URL is accepted only with "secret" (HS256) and "discovery": {"mode": "none"} — keys and metadata cannot be found from a name`,
    });
  } else problems.httpsUrl(j.issuer, `${path}.issuer`);
  problems.httpsUrl(j.jwksUri, `${path}.jwksUri`);
  if (j.allow) {
    problems.check(AllowRulesSchema, j.allow, `${path}.allow`);
    allowRulesProblems(j.allow, `${path}.allow`, problems);
  }
  const symmetric = j.secret !== undefined;
  if (symmetric && new TextEncoder().encode(j.secret as string).length < 32) {
    problems.push({ path: `${path}.secret`, message: "must be at least 32 bytes" });
  }
  const algorithms = j.algorithms ?? [
    ...(symmetric ? DEFAULTS.jwt.symmetricAlgorithms : DEFAULTS.jwt.asymmetricAlgorithms),
  ];
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
    clockSkewSeconds: Math.round(problems.duration(j.clockSkew, `${path}.clockSkew`, DEFAULTS.jwt.clockSkewMs) / 1000),
    requiredScopes: j.requiredScopes ?? [],
    subjectClaim: j.subjectClaim ?? DEFAULTS.jwt.subjectClaim,
    groupsClaim: j.groupsClaim ?? DEFAULTS.jwt.groupsClaim,
    timeoutMs: problems.duration(j.timeout, `${path}.timeout`, DEFAULTS.jwt.timeoutMs),
    discovery: discovery(j.discovery, `${path}.discovery`, problems),
  };
  if (j.jwksUri) out.jwksUri = j.jwksUri;
  if (j.secret) out.secret = j.secret;
  if (j.requireTyp) out.requireTyp = j.requireTyp.toLowerCase();
  if (j.allow) out.allow = j.allow;
  return out;
}

export function introspectionSection(
  x: Static<typeof Introspection>,
  path: string,
  problems: Problems,
): IntrospectionConfig {
  problems.httpsUrl(x.endpoint, `${path}.endpoint`);
  if (x.allow) {
    problems.check(AllowRulesSchema, x.allow, `${path}.allow`);
    allowRulesProblems(x.allow, `${path}.allow`, problems);
  }
  const out: IntrospectionConfig = {
    endpoint: x.endpoint,
    clientId: x.clientId,
    clientSecret: x.clientSecret,
    authMethod: x.authMethod ?? DEFAULTS.introspection.authMethod,
    requiredScopes: x.requiredScopes ?? [],
    subjectClaim: x.subjectClaim ?? DEFAULTS.jwt.subjectClaim,
    groupsClaim: x.groupsClaim ?? DEFAULTS.jwt.groupsClaim,
    cacheMaxEntries: x.cacheMaxEntries ?? DEFAULTS.introspection.cacheMaxEntries,
    cacheMaxTtlMs: problems.duration(x.cacheMaxTtl, `${path}.cacheMaxTtl`, DEFAULTS.introspection.cacheMaxTtlMs),
    timeoutMs: problems.duration(x.timeout, `${path}.timeout`, DEFAULTS.introspection.timeoutMs),
    discovery: discovery(x.discovery, `${path}.discovery`, problems),
    alsoFor: x.alsoFor === undefined ? [] : typeof x.alsoFor === "string" ? [x.alsoFor] : [...new Set(x.alsoFor)],
  };
  if (x.issuer) out.issuer = x.issuer;
  const aud = list(x.audience);
  if (aud) out.audience = aud;
  if (x.allow) out.allow = x.allow;
  return out;
}
