// Each check of the ID token (OpenID Connect Core §3.1.3.7) shown to bite, against a loopback stand-in provider
// (discovery document and JWKS) and tokens signed here; time comes from a clock the test moves.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";
import { OidcLogin } from "../../src/login/oidc.ts";
import { FakeClock } from "../helpers/clock.ts";

let server: ReturnType<typeof Bun.serve>;
let issuer: string;
let published: JWK[] = [];
let jwksFetches = 0;
let signing: { kid: string; key: CryptoKey };

async function newKey(): Promise<{ kid: string; key: CryptoKey; jwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair("RS256");
  const kid = crypto.randomUUID();
  return { kid, key: privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: "RS256", use: "sig" } };
}

beforeAll(async () => {
  server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req) {
      const path = new URL(req.url).pathname;
      if (path === "/.well-known/openid-configuration") {
        return Response.json({
          issuer,
          authorization_endpoint: `${issuer}/authorize`,
          token_endpoint: `${issuer}/token`,
          jwks_uri: `${issuer}/jwks`,
          id_token_signing_alg_values_supported: ["RS256"],
        });
      }
      if (path === "/jwks") {
        jwksFetches++;
        return Response.json({ keys: published });
      }
      return new Response("not found", { status: 404 });
    },
  });
  issuer = `http://127.0.0.1:${server.port}`;
  const k = await newKey();
  published = [k.jwk];
  signing = k;
});
afterAll(() => server.stop(true));

const clock = new FakeClock();
function login(): OidcLogin {
  return new OidcLogin(
    {
      id: "t",
      label: "T",
      issuer,
      clientId: "gatehouse",
      scopes: ["openid"],
      subjectClaim: "email",
      groupsClaim: "groups",
      authParams: {},
      timeoutMs: 2000,
    },
    () => clock.now(),
  );
}

function token(claims: Record<string, unknown>, key = signing): Promise<string> {
  const now = Math.floor(clock.now() / 1000);
  return new SignJWT({ iss: issuer, sub: "u1", aud: "gatehouse", iat: now, exp: now + 300, nonce: "n-1", ...claims })
    .setProtectedHeader({ alg: "RS256", kid: key.kid })
    .sign(key.key);
}

describe("ID token validation", () => {
  test("a good token passes", async () => {
    const claims = await login().validateIdToken(await token({ email: "a@example.com" }), "n-1");
    expect(claims.sub).toBe("u1");
  });

  const refused: [string, Record<string, unknown>, string][] = [
    ["a wrong iss", { iss: "https://other.example" }, "iss"],
    ["a wrong aud", { aud: "someone-else" }, "aud"],
    ["several audiences without azp", { aud: ["gatehouse", "other"] }, "azp"],
    ["an azp that is not this client", { azp: "other" }, "azp"],
    ["a nonce from another sign-in", { nonce: "n-2" }, "nonce"],
    ["an expired token", { exp: Math.floor(clock.now() / 1000) - 120 }, "expired"],
  ];
  for (const [name, claims, why] of refused) {
    test(`refuses ${name}`, async () => {
      await expect(login().validateIdToken(await token(claims), "n-1")).rejects.toThrow(why);
    });
  }

  test("refuses a token signed by a key the provider does not publish", async () => {
    const rogue = await newKey();
    await expect(login().validateIdToken(await token({}, rogue), "n-1")).rejects.toThrow("does not publish");
  });

  test("an unknown kid after the provider rotated: the JWKS is fetched again and the token accepted", async () => {
    const l = login();
    await l.validateIdToken(await token({}), "n-1"); // first use loads the JWKS
    const before = jwksFetches;
    const next = await newKey();
    published = [next.jwk, ...published];
    await l.validateIdToken(await token({}, next), "n-1");
    expect(jwksFetches).toBe(before + 1);
    // A second unknown kid within the cooldown does not refetch.
    const other = await newKey();
    published = [other.jwk, ...published];
    await expect(l.validateIdToken(await token({}, other), "n-1")).rejects.toThrow("does not publish");
    expect(jwksFetches).toBe(before + 1);
    clock.advance(11_000);
    await l.validateIdToken(await token({}, other), "n-1");
    expect(jwksFetches).toBe(before + 2);
  });

  test("the discovery document must name the configured issuer", async () => {
    const wrong = new OidcLogin(
      {
        id: "t",
        label: "T",
        issuer: `${issuer}/elsewhere`,
        clientId: "c",
        scopes: [],
        subjectClaim: "sub",
        groupsClaim: "groups",
        authParams: {},
        timeoutMs: 2000,
      },
      () => clock.now(),
    );
    await expect(wrong.discover()).rejects.toThrow(); // 404 at the other path, or another issuer
  });

  test("a provider that does not answer fails within the timeout with a clear message", async () => {
    const silent = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Promise(() => {}) });
    const slow = new OidcLogin(
      {
        id: "slow",
        label: "S",
        issuer: `http://127.0.0.1:${silent.port}`,
        clientId: "c",
        scopes: [],
        subjectClaim: "sub",
        groupsClaim: "groups",
        authParams: {},
        timeoutMs: 300,
      },
      () => Date.now(),
    );
    await expect(slow.discover()).rejects.toThrow("did not answer within 300 ms");
    silent.stop(true);
  });

  test("a provider answering garbage is reported as such", async () => {
    const junk = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: () => new Response("<html>oops</html>", { status: 502 }),
    });
    const l = new OidcLogin(
      {
        id: "junk",
        label: "J",
        issuer: `http://127.0.0.1:${junk.port}`,
        clientId: "c",
        scopes: [],
        subjectClaim: "sub",
        groupsClaim: "groups",
        authParams: {},
        timeoutMs: 2000,
      },
      () => Date.now(),
    );
    await expect(l.discover()).rejects.toThrow("not JSON");
    junk.stop(true);
  });
});
