// serverAuth.introspection.alsoFor "jwt" (AuthSec's validation mode with both): a JWT must verify locally AND be
// active at the issuer's introspection endpoint, so a token revoked at the identity provider stops working before it
// expires — within cacheMaxTtl, the longest an active answer is remembered per token. The issuer is a stand-in
// reached through the injected fetch; time is Bun's system time, which jose reads too.

import { afterEach, beforeEach, describe, expect, setSystemTime, test } from "bun:test";
import { exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";
import { buildChain } from "../../src/auth/chain.ts";
import { ConfigError, parseConfig } from "../../src/config/load.ts";

const ISSUER = "https://idp.example";
const AUDIENCE = "https://mcp.example/mcp";
const T0 = 1_800_000_000_000;

let key: { privateKey: CryptoKey; jwk: JWK };
/** Tokens the issuer has revoked, and how often its introspection endpoint was asked. */
const revoked = new Set<string>();
let introspections = 0;
let introspectionDown = false;
let answerAudience: string | undefined;

const issuerFetch = (async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
  const url = String(input);
  if (url === `${ISSUER}/.well-known/openid-configuration`) {
    return Response.json({ issuer: ISSUER, jwks_uri: `${ISSUER}/jwks` });
  }
  if (url === `${ISSUER}/jwks`) return Response.json({ keys: [key.jwk] });
  if (url === `${ISSUER}/introspect`) {
    introspections++;
    if (introspectionDown) throw new TypeError("Unable to connect. Is the computer able to access the url?");
    const token = new URLSearchParams(String(init?.body)).get("token") as string;
    if (revoked.has(token)) return Response.json({ active: false });
    // The issuer describes the token it was given: its own aud (or the one a test makes it claim).
    const aud = answerAudience ?? (JSON.parse(atob(token.split(".")[1] as string)) as { aud: string }).aud;
    return Response.json({ active: true, iss: ISSUER, aud, sub: "alice", exp: T0 / 1000 + 3600 });
  }
  return new Response("not found", { status: 404 });
}) as typeof fetch;

function serverAuth(introspection: Record<string, unknown> = {}, providers = ["jwt"]) {
  return {
    providers,
    jwt: { issuer: ISSUER, audience: AUDIENCE, algorithms: ["RS256"], discovery: { mode: "none" } },
    introspection: {
      discovery: { mode: "none" },
      endpoint: `${ISSUER}/introspect`,
      clientId: "gatehouse",
      clientSecret: "introspection-secret",
      alsoFor: "jwt",
      ...introspection,
    },
  };
}

function chainOf(auth: Record<string, unknown>) {
  const config = parseConfig(JSON.stringify({ mcpServers: { s: { command: "x" } }, serverAuth: auth }), {
    source: "servers.json",
    dir: "/tmp",
    env: {},
  });
  const chain = buildChain(config.auth, {}, { now: () => Date.now(), fetch: issuerFetch });
  return (token: string) =>
    chain({ headers: new Headers({ authorization: `Bearer ${token}` }), peerAddress: undefined });
}

function jwt(sub = "alice", audience = AUDIENCE): Promise<string> {
  return new SignJWT({ scope: "mcp" })
    .setProtectedHeader({ alg: "RS256", kid: key.jwk.kid as string })
    .setIssuer(ISSUER)
    .setAudience(audience)
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime("1h")
    .sign(key.privateKey);
}

beforeEach(async () => {
  setSystemTime(new Date(T0));
  const { privateKey, publicKey } = await generateKeyPair("RS256", { extractable: true });
  key = { privateKey, jwk: { ...(await exportJWK(publicKey)), kid: "k1", alg: "RS256" } };
  revoked.clear();
  introspections = 0;
  introspectionDown = false;
  answerAudience = undefined;
});
afterEach(() => setSystemTime());

describe("introspection.alsoFor: jwt", () => {
  test("a JWT that verifies and is active passes; the identity is the JWT's", async () => {
    const check = chainOf(serverAuth());
    const r = await check(await jwt());
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.identity).toMatchObject({ subject: "alice", provider: "jwt", scopes: ["mcp"] });
    expect(introspections).toBe(1);
  });

  test("a JWT revoked at the issuer is refused (401 invalid_token) although its signature and exp are good", async () => {
    const check = chainOf(serverAuth());
    const token = await jwt();
    revoked.add(token);
    const r = await check(token);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.failure.status).toBe(401);
      expect(r.failure.error).toBe("invalid_token");
      expect(r.failure.tried).toContain("the token is not active (introspection)");
    }
  });

  test("an active answer is cached per token for at most cacheMaxTtl: a revocation is seen after it", async () => {
    const check = chainOf(serverAuth({ cacheMaxTtl: "30s" }));
    const token = await jwt();
    expect((await check(token)).ok).toBe(true);
    revoked.add(token);
    setSystemTime(new Date(T0 + 29_000));
    expect((await check(token)).ok).toBe(true); // still the cached answer
    expect(introspections).toBe(1);
    setSystemTime(new Date(T0 + 31_000));
    expect((await check(token)).ok).toBe(false);
    expect(introspections).toBe(2);
    // Refusals are not cached: each later try asks again (a token can only become inactive, never active again).
    await check(token);
    expect(introspections).toBe(3);
  });

  test("an introspection endpoint that cannot be reached gives 503, never a pass", async () => {
    const check = chainOf(serverAuth());
    introspectionDown = true;
    const r = await check(await jwt());
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.failure.status).toBe(503);
  });

  test("a JWT that fails local verification is refused without asking the issuer", async () => {
    const check = chainOf(serverAuth());
    const other = await generateKeyPair("RS256");
    const forged = await new SignJWT({})
      .setProtectedHeader({ alg: "RS256", kid: "k1" })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setSubject("alice")
      .setExpirationTime("1h")
      .sign(other.privateKey);
    expect((await check(forged)).ok).toBe(false);
    expect(introspections).toBe(0);
  });

  test("without alsoFor, a JWT is checked locally only (revocation waits for exp)", async () => {
    const { alsoFor: _, ...plain } = serverAuth().introspection;
    const check = chainOf({ ...serverAuth(), introspection: plain });
    const token = await jwt();
    revoked.add(token);
    expect((await check(token)).ok).toBe(true);
    expect(introspections).toBe(0);
  });

  test("the answer is held to the jwt block's audience (Authentik's \"my-mcp\"): not written twice, no discovery of its own", async () => {
    const auth = serverAuth();
    const { discovery: _, ...bare } = auth.introspection;
    const check = chainOf({ ...auth, jwt: { ...auth.jwt, audience: "my-mcp" }, introspection: bare });
    const r = await check(await jwt("alice", "my-mcp"));
    expect(r.ok).toBe(true);
    expect(introspections).toBe(1);
    // The issuer saying the token is for someone else still refuses it.
    answerAudience = "another-api";
    const other = await check(await jwt("bob", "my-mcp"));
    expect(other.ok).toBe(false);
    if (!other.ok) expect(other.failure.tried).toContain("the token is for another audience (introspection)");
  });

  test('alsoFor "jwt" without "jwt" among the providers is refused at load, naming the setting', () => {
    try {
      chainOf(serverAuth({}, ["introspection"]));
      throw new Error("loaded");
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      const p = (e as ConfigError).problems;
      expect(p.map((x) => x.path)).toEqual(["serverAuth.introspection.alsoFor"]);
    }
  });
});
