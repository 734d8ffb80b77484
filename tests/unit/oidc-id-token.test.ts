// Each check of the ID token (OpenID Connect Core §3.1.3.7) shown to bite through Gatehouse's use of oauth4webapi:
// a loopback stand-in provider (discovery documents, JWKS, a token endpoint answering with the ID token the test
// signed) and OidcLogin.finish, the path a real callback takes. Time comes from a clock the test moves.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";
import type { OidcSettings } from "../../src/config/types.ts";
import { OidcLogin } from "../../src/login/oidc.ts";
import type { LoginTransaction } from "../../src/login/types.ts";
import { FakeClock } from "../helpers/clock.ts";

let server: ReturnType<typeof Bun.serve>;
let issuer: string;
let published: JWK[] = [];
let jwksFetches = 0;
let signing: { kid: string; key: CryptoKey };
/** What the token endpoint answers next, and the form it was last sent. */
let nextIdToken = "";
let lastTokenForm: URLSearchParams | undefined;

async function newKey(): Promise<{ kid: string; key: CryptoKey; jwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair("RS256");
  const kid = crypto.randomUUID();
  return { kid, key: privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: "RS256", use: "sig" } };
}

const documentFor = (iss: string) => ({
  issuer: iss,
  authorization_endpoint: `${issuer}/authorize`,
  token_endpoint: `${issuer}/token`,
  jwks_uri: `${issuer}/jwks`,
  id_token_signing_alg_values_supported: ["RS256"],
});

beforeAll(async () => {
  server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const path = new URL(req.url).pathname;
      switch (path) {
        case "/.well-known/openid-configuration":
          return Response.json(documentFor(issuer));
        // A document at another path naming the root issuer: not the configured one.
        case "/other/.well-known/openid-configuration":
          return Response.json(documentFor(issuer));
        case "/realm/.well-known/openid-configuration":
          return Response.json(documentFor(`${issuer}/realm`));
        // Entra's multi-tenant document: its issuer is a template each token fills with its own tenant.
        case "/common/v2.0/.well-known/openid-configuration":
          return Response.json(documentFor(`${issuer}/{tenantid}/v2.0`));
        case "/jwks":
          jwksFetches++;
          return Response.json({ keys: published });
        case "/token":
          lastTokenForm = new URLSearchParams(await req.text());
          return Response.json({ access_token: "at-1", token_type: "Bearer", id_token: nextIdToken });
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
function login(settings: Partial<OidcSettings> = {}): OidcLogin {
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
      ...settings,
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

const tx: LoginTransaction = {
  id: "tx-1",
  state: "s-1",
  nonce: "n-1",
  verifier: "v".repeat(43),
  method: "t",
  browser: "b",
  expiresAt: Number.MAX_SAFE_INTEGER,
};

/** The callback of a sign-in whose code the token endpoint exchanges for `idToken`. */
async function signIn(l: OidcLogin, idToken: string, params: Record<string, string> = {}) {
  nextIdToken = idToken;
  return l.finish(new URLSearchParams({ code: "c-1", state: tx.state, ...params }), tx, `${issuer}/cb`);
}

describe("ID token validation", () => {
  test("a good token passes; the code went with its PKCE verifier", async () => {
    const user = await signIn(login(), await token({ email: "a@example.com" }));
    expect(user.subject).toBe("a@example.com");
    expect(user.upstreamTokens?.access_token).toBe("at-1");
    expect(lastTokenForm?.get("code")).toBe("c-1");
    expect(lastTokenForm?.get("code_verifier")).toBe(tx.verifier);
    expect(lastTokenForm?.get("redirect_uri")).toBe(`${issuer}/cb`);
    expect(lastTokenForm?.get("client_id")).toBe("gatehouse");
  });

  const refused: [string, Record<string, unknown>, string][] = [
    ["a wrong iss", { iss: "https://other.example" }, "iss"],
    ["a wrong aud", { aud: "someone-else" }, "aud"],
    ["several audiences without azp", { aud: ["gatehouse", "other"] }, "azp"],
    ["an azp that is not this client", { azp: "other" }, "azp"],
    ["a nonce from another sign-in", { nonce: "n-2" }, "nonce"],
    ["no nonce", { nonce: undefined }, "nonce"],
    ["an expired token", { exp: Math.floor(clock.now() / 1000) - 120 }, "expired"],
  ];
  for (const [name, claims, why] of refused) {
    test(`refuses ${name}`, async () => {
      await expect(signIn(login(), await token(claims))).rejects.toThrow(why);
    });
  }

  test("refuses a token whose signature does not verify", async () => {
    const rogue = await newKey();
    // Signed by another key while naming the published one.
    await expect(signIn(login(), await token({}, { kid: signing.kid, key: rogue.key }))).rejects.toThrow(
      "signature does not verify",
    );
  });

  test("refuses a token signed by a key the provider does not publish", async () => {
    const rogue = await newKey();
    await expect(signIn(login(), await token({}, rogue))).rejects.toThrow("does not publish");
  });

  test("an unknown kid after the provider rotated: the JWKS is fetched again and the token accepted", async () => {
    const l = login();
    await signIn(l, await token({})); // first use loads the JWKS
    const before = jwksFetches;
    const next = await newKey();
    published = [next.jwk, ...published];
    await signIn(l, await token({}, next));
    expect(jwksFetches).toBe(before + 1);
    // A second unknown kid within the cooldown does not refetch.
    const other = await newKey();
    published = [other.jwk, ...published];
    await expect(signIn(l, await token({}, other))).rejects.toThrow("does not publish");
    expect(jwksFetches).toBe(before + 1);
    clock.advance(11_000);
    await signIn(l, await token({}, other));
    expect(jwksFetches).toBe(before + 2);
  });
});

describe("the callback", () => {
  test("a state that is not this sign-in's is refused", async () => {
    await expect(signIn(login(), await token({}), { state: "s-other" })).rejects.toThrow("state");
  });

  test("an error from the provider is reported with its description", async () => {
    const l = login();
    await expect(
      l.finish(
        new URLSearchParams({ error: "access_denied", error_description: "no", state: tx.state }),
        tx,
        `${issuer}/cb`,
      ),
    ).rejects.toThrow("the provider refused: access_denied (no)");
  });

  test("the authorization URL carries PKCE (S256), state and nonce; extra parameters cannot replace them", async () => {
    const l = login({ authParams: { prompt: "consent", state: "forged" } });
    const u = new URL(await l.start(tx, `${issuer}/cb`));
    expect(u.origin + u.pathname).toBe(`${issuer}/authorize`);
    expect(u.searchParams.get("state")).toBe(tx.state);
    expect(u.searchParams.get("nonce")).toBe(tx.nonce);
    expect(u.searchParams.get("code_challenge_method")).toBe("S256");
    expect(u.searchParams.get("code_challenge")).toMatch(/^[\w-]{43}$/);
    expect(u.searchParams.get("prompt")).toBe("consent");
    expect(u.searchParams.has("resource")).toBe(false);
  });
});

describe("discovery", () => {
  test("the discovery document must name the configured issuer", async () => {
    await expect(login({ issuer: `${issuer}/elsewhere` }).discover()).rejects.toThrow(); // 404 at that path
    await expect(login({ issuer: `${issuer}/other` }).discover()).rejects.toThrow(`names issuer ${issuer}`);
  });

  test("a configured issuer may carry a trailing slash the document's lacks", async () => {
    expect((await login({ issuer: `${issuer}/realm/` }).discover()).issuer).toBe(`${issuer}/realm`);
  });

  test("plain http is refused off loopback, before any request", async () => {
    await expect(login({ issuer: "http://idp.example" }).discover()).rejects.toThrow(
      "idp.example is not https (plain http is accepted on loopback only)",
    );
  });

  test("Entra multi-tenant: each token's iss must name the tenant it carries (tid)", async () => {
    const entra = () => login({ issuer: `${issuer}/common/v2.0`, tenantIssuer: true });
    const user = await signIn(entra(), await token({ iss: `${issuer}/tenant-a/v2.0`, tid: "tenant-a", email: "e@a" }));
    expect(user.subject).toBe("e@a");
    await expect(signIn(entra(), await token({ iss: `${issuer}/tenant-b/v2.0`, tid: "tenant-a" }))).rejects.toThrow(
      "iss",
    );
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
