// The authorization server's signing keys: oauthAs.signingAlgorithm "RS256" for resource servers that accept only
// RSA (ES256 stays the default), switching algorithm rotates at start while tokens signed with the old key keep
// verifying until they expire, the JWKS publishes each key with its kty/alg, each key verifies only its own
// algorithm, and the rotation period is a duration (signingKeyRotation: "12h") beside signingKeyRotationDays.

import { describe, expect, test } from "bun:test";
import { decodeProtectedHeader, importJWK, type JWK, jwtVerify } from "jose";
import { ConfigError, parseConfig } from "../../src/config/load.ts";
import { createLogger } from "../../src/log.ts";
import { AccessTokens } from "../../src/oauth/access-tokens.ts";
import { KeyRing, type KeyRingOptions } from "../../src/oauth/keys.ts";
import { authorizationServerMetadata } from "../../src/oauth/metadata.ts";
import { MemoryStore } from "../../src/store/memory.ts";

const ISSUER = "https://mcp.example.com";
const AUD = "https://mcp.example.com/mcp";
const log = createLogger({ level: "error" });
const HOUR = 3_600_000;

function ring(store: MemoryStore, o: Partial<KeyRingOptions> = {}) {
  return new KeyRing(store, { accessTokenTtlSeconds: 3600, rotationMs: 30 * 24 * HOUR, ...o }, log);
}

async function mint(keys: KeyRing, now: number) {
  const tokens = new AccessTokens(keys, ISSUER);
  const { token } = await tokens.mint({
    subject: "alice",
    clientId: "c1",
    audience: AUD,
    scopes: ["mcp"],
    groups: [],
    roles: [],
    grantId: "g1",
    now: Math.floor(now / 1000),
    ttlSeconds: 3600,
  });
  return { token, tokens };
}

function oauthAs(extra: Record<string, unknown>) {
  const config = {
    mcpServers: { s: { command: "x" } },
    serverAuth: {
      providers: ["oauth_as"],
      oauthAs: { issuerUrl: ISSUER, trustedSourceCidrs: ["127.0.0.1/32"], ...extra },
    },
  };
  try {
    return parseConfig(JSON.stringify(config), { source: "servers.json", dir: "/tmp", env: {} }).auth.oauthAs;
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
}

describe("signing keys", () => {
  test("ES256 is the default; RS256 keys are RSA, published with kty RSA and alg RS256", async () => {
    const now = Date.now();
    const es = ring(new MemoryStore());
    await es.init(now);
    expect(es.jwks().keys[0]).toMatchObject({ kty: "EC", crv: "P-256", alg: "ES256", use: "sig" });

    const rs = ring(new MemoryStore(), { algorithm: "RS256" });
    await rs.init(now);
    const jwk = rs.jwks().keys[0] as JWK;
    expect(jwk).toMatchObject({ kty: "RSA", alg: "RS256", use: "sig", e: "AQAB" });
    expect(jwk.d).toBeUndefined(); // public parts only
    const { token, tokens } = await mint(rs, now);
    expect(decodeProtectedHeader(token)).toMatchObject({ alg: "RS256", typ: "at+jwt", kid: jwk.kid });
    // A resource server that knows only RSA verifies it with the published key.
    await jwtVerify(token, await importJWK(jwk, "RS256"), { issuer: ISSUER, audience: AUD, algorithms: ["RS256"] });
    expect((await tokens.verify(token, AUD, now)).ok).toBe(true);
    expect(rs.algorithms()).toEqual(["RS256"]);
  });

  test("switching ES256 → RS256 rotates at start; the ES256 tokens keep verifying until their key expires", async () => {
    const store = new MemoryStore();
    const t0 = Date.now();
    const before = ring(store);
    await before.init(t0);
    const { token: esToken } = await mint(before, t0);

    const after = ring(store, { algorithm: "RS256" });
    await after.init(t0 + 1000);
    const jwks = after.jwks().keys;
    expect(jwks.map((k) => k.alg).sort()).toEqual(["ES256", "RS256"]);
    const { token: rsToken, tokens } = await mint(after, t0 + 1000);
    expect(decodeProtectedHeader(rsToken).alg).toBe("RS256");
    expect((await tokens.verify(esToken, AUD, t0 + 2000)).ok).toBe(true);
    expect((await tokens.verify(rsToken, AUD, t0 + 2000)).ok).toBe(true);
    // The metadata names the signing algorithm first, then what still verifies.
    expect(after.algorithms()).toEqual(["RS256", "ES256"]);
    const cfg = oauthAs({}) as NonNullable<ReturnType<typeof oauthAs>> & { issuerUrl: string };
    expect(
      authorizationServerMetadata(cfg as never, after.algorithms()).access_token_signing_alg_values_supported,
    ).toEqual(["RS256", "ES256"]);

    // Past the retired key's end (its last token's expiry), ES256 tokens no longer verify.
    const late = t0 + 3 * HOUR;
    await store.sweep(late);
    const reloaded = ring(store, { algorithm: "RS256" });
    await reloaded.init(late);
    expect(reloaded.jwks().keys.map((k) => k.alg)).toEqual(["RS256"]);
    const again = new AccessTokens(reloaded, ISSUER);
    expect(await again.verify(esToken, AUD, late)).toMatchObject({ ok: false });
  });

  test("a key verifies only its own algorithm: an ES256 kid with alg RS256 (or HS256) is refused", async () => {
    const store = new MemoryStore();
    const now = Date.now();
    const keys = ring(store);
    await keys.init(now);
    const kid = keys.jwks().keys[0]?.kid as string;
    expect(await keys.verifyKey(kid, "ES256", now)).toBeDefined();
    expect(await keys.verifyKey(kid, "RS256", now)).toBeUndefined();
    expect(await keys.verifyKey(kid, "HS256", now)).toBeUndefined();
    expect(await keys.verifyKey(kid, "none", now)).toBeUndefined();
  });

  test("the admin CLI's ring (switchAlgorithm false) reads the state without rotating it", async () => {
    const store = new MemoryStore();
    const now = Date.now();
    await ring(store).init(now);
    const cli = ring(store, { algorithm: "RS256", rotationMs: 0, switchAlgorithm: false });
    await cli.init(now + 1000);
    expect((await store.getKeys()).length).toBe(1);
    expect(cli.jwks().keys[0]?.alg).toBe("ES256");
  });

  test("rotation period as a duration: a 12h key rotates after 12 hours, not before", async () => {
    const store = new MemoryStore();
    const t0 = Date.now();
    const keys = ring(store, { rotationMs: 12 * HOUR });
    await keys.init(t0);
    await keys.maybeRotate(t0 + 11 * HOUR);
    expect((await store.getKeys()).length).toBe(1);
    await keys.maybeRotate(t0 + 12 * HOUR);
    expect((await store.getKeys()).length).toBe(2);
  });

  test("signingKeyRotation (duration) and signingKeyRotationDays both load; both at once, or too short, is refused", () => {
    expect(oauthAs({})).toMatchObject({ signingKeyRotationMs: 30 * 24 * HOUR, signingAlgorithm: "ES256" });
    expect(oauthAs({ signingKeyRotationDays: 7 })).toMatchObject({ signingKeyRotationMs: 7 * 24 * HOUR });
    expect(oauthAs({ signingKeyRotation: "12h", signingAlgorithm: "RS256" })).toMatchObject({
      signingKeyRotationMs: 12 * HOUR,
      signingAlgorithm: "RS256",
    });
    expect(oauthAs({ signingKeyRotation: 0 })).toMatchObject({ signingKeyRotationMs: 0 });
    const both = oauthAs({ signingKeyRotation: "12h", signingKeyRotationDays: 1 }) as {
      path: string;
      message: string;
    }[];
    expect(both[0]?.path).toBe("serverAuth.oauthAs.signingKeyRotation");
    expect(both[0]?.message).toContain("not both");
    const short = oauthAs({ signingKeyRotation: "10s" }) as { path: string; message: string }[];
    expect(short[0]?.message).toContain('at least "1m"');
    const alg = oauthAs({ signingAlgorithm: "PS256" }) as { path: string; message: string }[];
    expect(alg[0]?.path).toBe("serverAuth.oauthAs.signingAlgorithm");
  });
});
