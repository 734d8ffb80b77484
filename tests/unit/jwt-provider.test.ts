// The `jwt` provider against an issuer stand-in reached through the injected fetch (jose's customFetch): discovery,
// the JWKS and its failures, key rotation and the refetch cooldown, and the tokens that must never pass (a key not in
// the set, `alg: none`, HS256 signed with the issuer's public key). Time is Bun's system time, which jose reads too.

import { afterEach, beforeEach, describe, expect, setSystemTime, test } from "bun:test";
import { exportJWK, exportSPKI, generateKeyPair, type JWK, SignJWT } from "jose";
import { acceptedIssuers } from "../../src/auth/claims.ts";
import type { AuthResult } from "../../src/auth/identity.ts";
import { jwtProvider } from "../../src/auth/jwt.ts";
import { parseConfig } from "../../src/config/load.ts";
import type { JwtConfig } from "../../src/config/types.ts";

const ISSUER = "https://idp.example";
const JWKS = `${ISSUER}/keys`;
const AUDIENCE = "https://mcp.example/mcp";
const T0 = 1_800_000_000_000;

interface Key {
  kid: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  jwk: JWK;
}

async function newKey(): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair("RS256", { extractable: true });
  const kid = crypto.randomUUID();
  return { kid, privateKey, publicKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: "RS256", use: "sig" } };
}

type Mode = "up" | "refused" | "http500" | "html" | "not-a-jwks" | "hang";

/** The issuer: its discovery document and JWKS, as the injected fetch sees them. */
class Issuer {
  published: JWK[] = [];
  mode: Mode = "up";
  discoveryDown = false;
  jwksUri = JWKS;
  jwksFetches = 0;
  requests: { url: string; init: RequestInit | undefined }[] = [];
  /** Resolves a "hang" fetch: the JWKS answers only when this is called. */
  release: (() => void) | undefined;

  readonly fetch = (async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = String(input);
    this.requests.push({ url, init });
    if (url === `${ISSUER}/.well-known/openid-configuration`) {
      if (this.discoveryDown) throw new TypeError("Unable to connect. Is the computer able to access the url?");
      return Response.json({ issuer: ISSUER, jwks_uri: this.jwksUri });
    }
    if (url !== JWKS) return new Response("not found", { status: 404 });
    this.jwksFetches++;
    switch (this.mode) {
      case "refused":
        throw new TypeError("Unable to connect. Is the computer able to access the url?");
      case "http500":
        return new Response("oops", { status: 500 });
      case "html":
        return new Response("<html>maintenance</html>", { status: 200, headers: { "content-type": "text/html" } });
      case "not-a-jwks":
        return Response.json({ hello: "world" });
      case "hang":
        return new Promise<Response>((resolve, reject) => {
          this.release = () => resolve(Response.json({ keys: this.published }));
          init?.signal?.addEventListener("abort", () => reject(init.signal?.reason));
        });
      default:
        return Response.json({ keys: this.published });
    }
  }) as typeof fetch;
}

function config(over: Partial<JwtConfig> = {}): JwtConfig {
  return {
    issuer: ISSUER,
    audience: [AUDIENCE],
    algorithms: ["RS256"],
    clockSkewSeconds: 30,
    requiredScopes: [],
    subjectClaim: "sub",
    groupsClaim: "groups",
    timeoutMs: 5000,
    discovery: { mode: "direct", resourceUrl: AUDIENCE, scopesSupported: ["mcp"] },
    ...over,
  };
}

let idp: Issuer;
let current: Key;

beforeEach(async () => {
  setSystemTime(new Date(T0));
  idp = new Issuer();
  current = await newKey();
  idp.published = [current.jwk];
});
afterEach(() => {
  setSystemTime();
});

function provider(over: Partial<JwtConfig> = {}) {
  return jwtProvider(config(over), { now: () => Date.now(), fetch: idp.fetch });
}

/** A token as the issuer mints it (valid two hours, so that tests may move time by an hour). */
function mint(key: Pick<Key, "kid" | "privateKey"> = current, claims: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT({ scope: "mcp", ...claims })
    .setProtectedHeader({ alg: "RS256", typ: "at+jwt", kid: key.kid })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setSubject(String(claims.sub ?? "alice"))
    .setIssuedAt(Math.floor(Date.now() / 1000))
    .setExpirationTime(Math.floor(Date.now() / 1000) + 7200)
    .sign(key.privateKey);
}

function check(p: ReturnType<typeof provider>, token: string): Promise<AuthResult> {
  return Promise.resolve(
    p.authenticate({ headers: new Headers({ authorization: `Bearer ${token}` }), peerAddress: "127.0.0.1" }),
  );
}

/** A refusal, with its challenge shown to be a header value a Response accepts. */
function refused(r: AuthResult) {
  if (r.ok) throw new Error(`accepted as ${r.identity.subject}`);
  new Headers({ "www-authenticate": r.failure.challenge });
  return r.failure;
}

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");

describe("fetching the issuer's keys through jose", () => {
  test("discovered from the issuer, fetched with the injected fetch once, then cached for other tokens", async () => {
    const p = provider();
    const first = await check(p, await mint(current, { sub: "alice" }));
    expect(first.ok && first.identity.subject).toBe("alice");
    const second = await check(p, await mint(current, { sub: "bob" }));
    expect(second.ok && second.identity.subject).toBe("bob");
    expect(idp.jwksFetches).toBe(1);
    expect(idp.requests.map((r) => r.url)).toEqual([`${ISSUER}/.well-known/openid-configuration`, JWKS]);
    const jwks = idp.requests[1]?.init;
    const headers = new Headers(jwks?.headers);
    expect(headers.get("user-agent")).toContain("Gatehouse");
    expect(headers.get("accept")).toContain("application/json");
    expect(jwks?.redirect).toBe("manual");
    expect(jwks?.signal).toBeInstanceOf(AbortSignal);
  });

  test("jwksUri, when set, is fetched without discovery", async () => {
    const p = provider({ jwksUri: JWKS });
    expect((await check(p, await mint())).ok).toBe(true);
    expect(idp.requests.map((r) => r.url)).toEqual([JWKS]);
  });

  test("the keys are fetched again once they are an hour old", async () => {
    const p = provider();
    expect((await check(p, await mint())).ok).toBe(true);
    setSystemTime(new Date(T0 + 59 * 60_000));
    expect((await check(p, await mint())).ok).toBe(true);
    expect(idp.jwksFetches).toBe(1);
    setSystemTime(new Date(T0 + 61 * 60_000));
    expect((await check(p, await mint())).ok).toBe(true);
    expect(idp.jwksFetches).toBe(2);
  });
});

describe("key rotation and the refetch cooldown", () => {
  test("right after the first fetch, the issuer rotates: the new kid is accepted after one refetch", async () => {
    const p = provider();
    expect((await check(p, await mint())).ok).toBe(true);
    const next = await newKey();
    idp.published = [next.jwk, current.jwk];
    setSystemTime(new Date(T0 + 1000)); // well within the cooldown of the first fetch
    const r = await check(p, await mint(next));
    expect(r.ok).toBe(true);
    expect(idp.jwksFetches).toBe(2);
    // The old key still verifies, from the same fetch.
    expect((await check(p, await mint(current, { sub: "old" }))).ok).toBe(true);
    expect(idp.jwksFetches).toBe(2);
  });

  test("concurrent requests with the new kid all wait for one refetch", async () => {
    const p = provider();
    expect((await check(p, await mint())).ok).toBe(true);
    const next = await newKey();
    idp.published = [next.jwk];
    const tokens = await Promise.all([1, 2, 3, 4, 5].map((i) => mint(next, { sub: `u${i}` })));
    const results = await Promise.all(tokens.map((t) => check(p, t)));
    expect(results.map((r) => r.ok)).toEqual([true, true, true, true, true]);
    expect(idp.jwksFetches).toBe(2);
  });

  test("unknown kids refetch at most once per 10 s: 401 invalid_token, and the issuer is not hammered", async () => {
    const p = provider();
    expect((await check(p, await mint())).ok).toBe(true);
    const stranger = await newKey(); // never published
    for (let i = 0; i < 20; i++) {
      const f = refused(await check(p, await mint({ ...stranger, kid: `random-${i}` })));
      expect(f.status).toBe(401);
      expect(f.error).toBe("invalid_token");
      expect(f.description).toContain("does not publish");
      expect(f.description).toContain(`kid random-${i}`);
    }
    expect(idp.jwksFetches).toBe(2); // the first fetch, and one refetch for all twenty

    // A rotation now, inside the cooldown: refused until it ends (the price of not being hammered)…
    const next = await newKey();
    idp.published = [next.jwk];
    setSystemTime(new Date(T0 + 5000));
    expect(refused(await check(p, await mint(next))).status).toBe(401);
    expect(idp.jwksFetches).toBe(2);
    // …then one more refetch, and the new kid passes.
    setSystemTime(new Date(T0 + 10_001));
    expect((await check(p, await mint(next))).ok).toBe(true);
    expect(idp.jwksFetches).toBe(3);
  });
});

describe("an issuer whose keys cannot be fetched: 503, never 401 or a thrown error", () => {
  const cases: [Mode, RegExp][] = [
    ["refused", /cannot fetch its JWKS \(https:\/\/idp\.example\/keys\): Unable to connect/],
    ["http500", /cannot fetch its JWKS .*200/],
    ["html", /cannot fetch its JWKS .*JSON/],
    ["not-a-jwks", /cannot fetch its JWKS .*JSON Web Key Set/],
  ];
  for (const [mode, why] of cases) {
    test(`JWKS endpoint ${mode}: 503 with a Bearer challenge without invalid_token`, async () => {
      idp.mode = mode;
      const p = provider();
      const f = refused(await check(p, await mint()));
      expect(f.status).toBe(503);
      expect(f.error).toBeUndefined();
      expect(f.challenge).toStartWith("Bearer ");
      expect(f.challenge).not.toContain("invalid_token");
      expect(f.description).toStartWith("the token cannot be checked now: ");
      expect(f.description).toMatch(why);
      expect(f.description).not.toContain("    at "); // no stack
      // Once the endpoint is back, the same token passes (the failure was not cached).
      idp.mode = "up";
      expect((await check(p, await mint())).ok).toBe(true);
    });
  }

  test("JWKS endpoint that does not answer: 503 after `timeout`, not a hang", async () => {
    idp.mode = "hang";
    const p = provider({ timeoutMs: 150 });
    // Not a hang: the test's own timeout (5 s) bounds it.
    const f = refused(await check(p, await mint()));
    expect(f.status).toBe(503);
    expect(f.description).toContain("idp.example did not answer within 150 ms");
  }, 5_000);

  test("discovery down: 503, and discovery is tried again on the next request", async () => {
    idp.discoveryDown = true;
    const p = provider();
    const f = refused(await check(p, await mint()));
    expect(f.status).toBe(503);
    expect(f.description).toContain("cannot find the jwks_uri");
    idp.discoveryDown = false;
    expect((await check(p, await mint())).ok).toBe(true);
  });

  test("a discovered jwks_uri that is not a URL: 503, and discovery is tried again", async () => {
    idp.jwksUri = "not a url";
    const p = provider();
    const f = refused(await check(p, await mint()));
    expect(f.status).toBe(503);
    expect(f.description).toContain("jwks_uri is not a URL");
    idp.jwksUri = JWKS;
    expect((await check(p, await mint())).ok).toBe(true);
  });

  test("keys cached, then the issuer goes down and rotates: known kids still pass, the new kid gets 503", async () => {
    const p = provider();
    expect((await check(p, await mint())).ok).toBe(true);
    idp.mode = "refused";
    const next = await newKey();
    idp.published = [next.jwk];
    const f = refused(await check(p, await mint(next)));
    expect(f.status).toBe(503);
    expect(f.challenge).not.toContain("invalid_token");
    expect((await check(p, await mint(current, { sub: "still" }))).ok).toBe(true);
  });

  test("keys expired and the issuer is down: 503 (not a pass on stale keys, not 401)", async () => {
    const p = provider();
    expect((await check(p, await mint())).ok).toBe(true);
    idp.mode = "http500";
    setSystemTime(new Date(T0 + 61 * 60_000));
    expect(refused(await check(p, await mint())).status).toBe(503);
  });
});

describe("tokens that never pass", () => {
  test("signed by a key not in the set, with an unknown kid or the issuer's own: 401 invalid_token", async () => {
    const p = provider();
    const forger = await newKey();
    const unknown = refused(await check(p, await mint(forger)));
    expect(unknown.status).toBe(401);
    expect(unknown.error).toBe("invalid_token");
    expect(unknown.challenge).toContain('error="invalid_token"');
    const sameKid = refused(await check(p, await mint({ kid: current.kid, privateKey: forger.privateKey })));
    expect(sameKid.status).toBe(401);
    expect(sameKid.description).toBe("the signature does not verify");
  });

  test("alg none (with and without a signature part): 401 invalid_token, no key fetched for it", async () => {
    const p = provider();
    const payload = b64({ iss: ISSUER, aud: AUDIENCE, sub: "mallory", exp: Math.floor(T0 / 1000) + 600 });
    for (const alg of ["none", "None", "NONE"]) {
      for (const sig of ["", "c2ln"]) {
        const f = refused(await check(p, `${b64({ alg, typ: "at+jwt", kid: current.kid })}.${payload}.${sig}`));
        expect(f.status).toBe(401);
        expect(f.error).toBe("invalid_token");
      }
    }
    expect(idp.jwksFetches).toBe(0);
  });

  test("HS256 signed with the issuer's public key as the secret: 401, also if HS256 were (wrongly) allowed", async () => {
    const spki = new TextEncoder().encode(await exportSPKI(current.publicKey));
    const jwkText = new TextEncoder().encode(JSON.stringify(current.jwk));
    const forge = (secret: Uint8Array) =>
      new SignJWT({ scope: "mcp" })
        .setProtectedHeader({ alg: "HS256", typ: "at+jwt", kid: current.kid })
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .setSubject("mallory")
        .setExpirationTime(Math.floor(T0 / 1000) + 600)
        .sign(secret);
    const strict = provider();
    for (const secret of [spki, jwkText]) {
      const f = refused(await check(strict, await forge(secret)));
      expect(f.status).toBe(401);
      expect(f.description).toBe("its algorithm is not accepted");
    }
    // Config refuses HS256 next to a JWKS; even built without that check, a public key is never an HMAC secret.
    const lax = provider({ algorithms: ["RS256", "HS256"] });
    for (const secret of [spki, jwkText]) {
      const f = refused(await check(lax, await forge(secret)));
      expect(f.status).toBe(401);
      expect(f.error).toBe("invalid_token");
    }
  });

  test("a kid with control characters is refused with a challenge that is still a valid header", async () => {
    const p = provider();
    const forger = await newKey();
    const f = refused(await check(p, await mint({ kid: "a\r\nSet-Cookie: x=1", privateKey: forger.privateKey })));
    expect(f.status).toBe(401);
    expect(f.description).toContain("kid unprintable");
  });

  test("no kid while the issuer publishes two keys for the algorithm: 401, not 503", async () => {
    const other = await newKey();
    idp.published = [current.jwk, other.jwk];
    const p = provider();
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: "RS256" })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setSubject("alice")
      .setExpirationTime(Math.floor(T0 / 1000) + 600)
      .sign(current.privateKey);
    const f = refused(await check(p, token));
    expect(f.status).toBe(401);
    expect(f.description).toContain("several of the provider's keys");
  });
});

describe("iss with or without its trailing slash (serverAuth.jwt.issuer, OIDC_ISSUER_URL)", () => {
  const APP = "https://idp.example/application/o/my-mcp";

  /** A token whose `iss` is exactly `iss`. */
  function mintIss(iss: string): Promise<string> {
    return new SignJWT({ scope: "mcp" })
      .setProtectedHeader({ alg: "RS256", typ: "at+jwt", kid: current.kid })
      .setIssuer(iss)
      .setAudience(AUDIENCE)
      .setSubject("alice")
      .setExpirationTime(Math.floor(Date.now() / 1000) + 600)
      .sign(current.privateKey);
  }

  /** The jwt provider of a servers.json naming `issuer`, as the configuration loader builds it. */
  function fromServersJson(issuer: string) {
    const c = parseConfig(
      JSON.stringify({
        mcpServers: { a: { url: "http://127.0.0.1:9/mcp" } },
        serverAuth: {
          providers: ["jwt"],
          jwt: { issuer, jwksUri: JWKS, audience: AUDIENCE, discovery: { mode: "direct", resourceUrl: AUDIENCE } },
        },
      }),
      { source: "test", dir: "/", env: {} },
    );
    return jwtProvider(c.auth.jwt as JwtConfig, { now: () => Date.now(), fetch: idp.fetch });
  }

  test("configured with the slash (Authentik's form), the provider's iss without it: accepted", async () => {
    const r = await check(fromServersJson(`${APP}/`), await mintIss(APP));
    expect(r.ok).toBe(true);
  });

  test("configured without the slash, the provider's iss with it (Authentik's tokens): accepted", async () => {
    const r = await check(fromServersJson(APP), await mintIss(`${APP}/`));
    expect(r.ok).toBe(true);
  });

  test("both with the slash, and both without: accepted, as always", async () => {
    expect((await check(fromServersJson(`${APP}/`), await mintIss(`${APP}/`))).ok).toBe(true);
    expect((await check(fromServersJson(APP), await mintIss(APP))).ok).toBe(true);
  });

  test("a plain-name issuer (StringOrURI, not a URL) is compared exactly", () => {
    expect(acceptedIssuers("your-service")).toEqual(["your-service"]);
    expect(acceptedIssuers("https://idp.example/app/")).toEqual([
      "https://idp.example/app/",
      "https://idp.example/app",
    ]);
  });

  test("only that one slash is forgiven: anything else in iss must match exactly", async () => {
    const p = fromServersJson(`${APP}/`);
    for (const iss of [
      `${APP}//`,
      `${APP}/x`,
      "https://idp.example/application/o/my-mc",
      "https://idp.example/application/o/My-Mcp/",
      "http://idp.example/application/o/my-mcp/",
      "https://idp.example:8443/application/o/my-mcp/",
      "https://other.example/application/o/my-mcp/",
      `${APP}/ `,
    ]) {
      const f = refused(await check(p, await mintIss(iss)));
      expect(f.status).toBe(401);
      expect(f.description).toContain('"iss"');
    }
  });
});

describe("allow-lists", () => {
  test("an email the provider marks unverified never matches allow.emails, and the refusal says so", async () => {
    const p = provider({ allow: { emails: ["alice@example.com"] } });
    const f = refused(await check(p, await mint(current, { email: "alice@example.com", email_verified: false })));
    expect(f.status).toBe(403);
    expect(f.description).toContain("email_verified is false");
    const ok = await check(p, await mint(current, { email: "alice@example.com", email_verified: true }));
    expect(ok.ok).toBe(true);
  });
});
