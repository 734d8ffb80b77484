// The token endpoint's grant handlers (src/oauth/token.ts, grants/), driven directly through `token()` against the
// in-memory store and a clock the test moves: no HTTP server. Each rule is checked for the outcome a client sees
// (the RFC 6749 §5.2 error code) and for what it leaves in the store (no grant, no refresh token after a failure).

import { beforeEach, describe, expect, test } from "bun:test";
import { createHash, randomBytes } from "node:crypto";
import { parseConfig } from "../../src/config/load.ts";
import type { OAuthAsConfig } from "../../src/config/types.ts";
import { sha256Hex } from "../../src/crypto.ts";
import { memoryLogger } from "../../src/log.ts";
import { AuthorizationServer, type TokenResponse } from "../../src/oauth/authorization-server.ts";
import { oauthProvider } from "../../src/oauth/bearer-verifier.ts";
import { OAuthError, type OAuthErrorCode } from "../../src/oauth/errors.ts";
import { revoke } from "../../src/oauth/revocation.ts";
import { token } from "../../src/oauth/token.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import type { ClientRecord, CodeRecord } from "../../src/store/types.ts";
import { FakeClock } from "../helpers/clock.ts";

// ---------------------------------------------------------------------------------------------------------------
// Helpers

const ISSUER = "https://gh.example";
const RESOURCE = `${ISSUER}/mcp`;
/** A second protected resource served by the same authorization server (a route's URL). */
const OTHER_RESOURCE = `${ISSUER}/servers/s/mcp`;
const REDIRECT = "http://127.0.0.1:9999/callback";
const CODE_TTL_S = 60;
const GRACE_S = 30;

function asConfig(extra: Record<string, unknown> = {}): OAuthAsConfig {
  const config = parseConfig(
    JSON.stringify({
      mcpServers: { s: { url: "http://127.0.0.1:1/mcp" } },
      serverAuth: {
        providers: ["oauth_as"],
        oauthAs: {
          issuerUrl: ISSUER,
          trustedSourceCidrs: ["127.0.0.1/32"],
          scopesSupported: ["mcp", "extra"],
          requiredScopes: ["mcp"],
          authorizationCodeTtlSeconds: CODE_TTL_S,
          refreshReuseGraceSeconds: GRACE_S,
          ...extra,
        },
      },
    }),
    { source: "servers.json", dir: "/etc/gatehouse", env: {} },
  );
  return config.auth.oauthAs as OAuthAsConfig;
}

interface World {
  as: AuthorizationServer;
  store: MemoryStore;
  clock: FakeClock;
}

async function server(
  extra: Record<string, unknown> = {},
  store = new MemoryStore(),
  clock = new FakeClock(),
): Promise<World> {
  const as = new AuthorizationServer({ config: asConfig(extra), store, clock, log: memoryLogger() });
  await as.init();
  as.serveResource(OTHER_RESOURCE);
  return { as, store, clock };
}

let clientCount = 0;
async function addClient(w: World, over: Partial<ClientRecord> & { secret?: string } = {}): Promise<ClientRecord> {
  const { secret, ...rest } = over;
  const client: ClientRecord = {
    client_id: `client-${++clientCount}`,
    client_id_issued_at: Math.floor(w.clock.now() / 1000),
    redirect_uris: [REDIRECT],
    token_endpoint_auth_method: "none",
    grant_types: ["authorization_code", "refresh_token"],
    response_types: ["code"],
    ...(secret ? { client_secret_sha256: sha256Hex(secret) } : {}),
    ...rest,
  };
  await w.store.putClient(client);
  return client;
}

function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString("base64url");
  return { verifier, challenge: createHash("sha256").update(verifier).digest("base64url") };
}

/** A code as the consent step issues it (authorize.ts `issue`), for alice, with its PKCE verifier. */
async function issueCode(
  w: World,
  client: ClientRecord,
  over: Partial<Omit<CodeRecord, "expires_at">> = {},
): Promise<{ code: string; verifier: string; challenge: string }> {
  const { verifier, challenge } = pkce();
  const code = await w.as.issueCode({
    client_id: client.client_id,
    redirect_uri: REDIRECT,
    code_challenge: challenge,
    scopes: ["mcp", "extra"],
    resource: RESOURCE,
    subject: "alice",
    groups: ["staff"],
    roles: ["staff"],
    ...over,
  });
  return { code, verifier, challenge };
}

/** POST /token, minus HTTP: headers and a form in, a token response or an OAuthError out. */
function tokenCall(w: World, form: Record<string, string>, headers: Record<string, string> = {}) {
  return token(w.as, new Headers(headers), new URLSearchParams(form));
}

function exchangeForm(client: ClientRecord, c: { code: string; verifier: string }, extra: Record<string, string> = {}) {
  return {
    grant_type: "authorization_code",
    code: c.code,
    redirect_uri: REDIRECT,
    code_verifier: c.verifier,
    client_id: client.client_id,
    ...extra,
  };
}

function refreshForm(client: ClientRecord, refreshToken: string, extra: Record<string, string> = {}) {
  return { grant_type: "refresh_token", refresh_token: refreshToken, client_id: client.client_id, ...extra };
}

/** A code exchanged: the token response. */
async function tokensFor(w: World, client: ClientRecord, over: Partial<Omit<CodeRecord, "expires_at">> = {}) {
  const c = await issueCode(w, client, over);
  return tokenCall(w, exchangeForm(client, c, over.resource ? { resource: over.resource } : {}));
}

/** Awaits a refusal and checks its RFC 6749 §5.2 error code (and, when given, what its description says). */
async function refused(
  p: Promise<unknown>,
  error: OAuthErrorCode,
  { status = 400, says }: { status?: number; says?: string } = {},
): Promise<OAuthError> {
  let caught: unknown;
  try {
    await p;
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(OAuthError);
  const e = caught as OAuthError;
  expect({ error: e.error, status: e.status }).toEqual({ error, status });
  if (says) expect(e.description).toContain(says);
  return e;
}

/** What the resource (/mcp) says of an access token: the oauth_as provider's verdict. */
async function accepted(w: World, accessToken: string, resource = RESOURCE): Promise<boolean> {
  const provider = oauthProvider(w.as, resource);
  const r = await provider.authenticate({
    headers: new Headers({ authorization: `Bearer ${accessToken}` }),
    peerAddress: "127.0.0.1",
  });
  return r.ok;
}

async function claimsOf(w: World, accessToken: string, resource = RESOURCE) {
  const v = await w.as.tokens.verify(accessToken, resource, w.clock.now());
  if (!v.ok) throw new Error(`access token does not verify: ${v.reason}`);
  return v.claims;
}

// ---------------------------------------------------------------------------------------------------------------

let w: World;
beforeEach(async () => {
  w = await server();
});

describe("the token table: grant_type and parameters", () => {
  test("a grant type outside the table is unsupported_grant_type, whoever asks (RFC 6749 §5.2)", async () => {
    for (const grant_type of ["password", "client_credentials", "implicit", "urn:ietf:params:oauth:grant-type:jwt"]) {
      // Checked before client authentication: no client is needed to learn the grant is not served.
      await refused(tokenCall(w, { grant_type }), "unsupported_grant_type", { says: grant_type });
    }
    expect((await w.store.stats()).grants).toBe(0);
  });

  test("a missing grant_type is invalid_request naming the parameter (RFC 6749 §5.2)", async () => {
    const client = await addClient(w);
    await refused(tokenCall(w, { client_id: client.client_id }), "invalid_request", { says: "grant_type" });
  });

  test("each missing parameter is named: code, redirect_uri, refresh_token (RFC 6749 §4.1.3, §6, §5.2)", async () => {
    const client = await addClient(w);
    const c = await issueCode(w, client);
    const full = exchangeForm(client, c);
    for (const name of ["code", "redirect_uri"] as const) {
      const { [name]: _dropped, ...form } = full;
      await refused(tokenCall(w, form), "invalid_request", { says: `${name} is required` });
    }
    await refused(tokenCall(w, { grant_type: "refresh_token", client_id: client.client_id }), "invalid_request", {
      says: "refresh_token is required",
    });
    // None of these requests spent the code: it still redeems.
    expect((await tokenCall(w, full)).access_token).toBeString();
  });

  test("a parameter sent twice is invalid_request (RFC 6749 §3.2: MUST NOT be included more than once)", async () => {
    const client = await addClient(w);
    const c = await issueCode(w, client);
    const form = new URLSearchParams(exchangeForm(client, c));
    form.append("code", c.code);
    await refused(token(w.as, new Headers(), form), "invalid_request", { says: "code was sent more than once" });
    expect((await w.store.stats()).grants).toBe(0);
  });

  test("every parameter the token endpoint reads is refused when sent twice, naming it; nothing is spent", async () => {
    const client = await addClient(w);
    const c = await issueCode(w, client);
    // RFC 6749 §3.2: "Request and response parameters MUST NOT be included more than once" — even when both copies
    // are the same, or one is empty. (resource may repeat, RFC 8707 §2: two resources are invalid_target, above.)
    for (const [name, second] of [
      ["grant_type", "authorization_code"],
      ["code_verifier", c.verifier],
      ["code_verifier", ""],
      ["redirect_uri", REDIRECT],
      ["client_id", client.client_id],
    ] as const) {
      const form = new URLSearchParams(exchangeForm(client, c));
      form.append(name, second);
      await refused(token(w.as, new Headers(), form), "invalid_request", { says: `${name} was sent more than once` });
    }
    const withSecret = new URLSearchParams({ ...exchangeForm(client, c), client_secret: "a" });
    withSecret.append("client_secret", "b");
    await refused(token(w.as, new Headers(), withSecret), "invalid_request", { says: "client_secret was sent" });
    expect((await w.store.stats()).grants).toBe(0);
    const first = await tokenCall(w, exchangeForm(client, c)); // the code was not spent by any of them
    const rt = first.refresh_token as string;
    for (const [name, second] of [
      ["scope", "mcp"],
      ["refresh_token", rt],
    ] as const) {
      const form = new URLSearchParams(refreshForm(client, rt, { scope: "mcp" }));
      form.append(name, second);
      await refused(token(w.as, new Headers(), form), "invalid_request", { says: `${name} was sent more than once` });
    }
    // Refused before anything was looked at: the refresh token was not rotated.
    expect((await w.store.getRefreshToken(sha256Hex(rt)))?.rotated_at).toBeUndefined();
    expect((await tokenCall(w, refreshForm(client, rt))).access_token).toBeString();
  });

  test("a client that did not register a grant type may not use it: unauthorized_client (RFC 6749 §5.2)", async () => {
    const client = await addClient(w, { grant_types: ["authorization_code"] });
    await refused(tokenCall(w, refreshForm(client, "anything")), "unauthorized_client");
  });
});

describe("client authentication at the token endpoint (RFC 6749 §2.3.1, §3.2.1)", () => {
  test("no client_id at all → 401 invalid_client", async () => {
    const client = await addClient(w);
    const { client_id: _id, ...form } = exchangeForm(client, await issueCode(w, client));
    await refused(tokenCall(w, form), "invalid_client", { status: 401 });
  });

  test("an unknown client → 401 invalid_client", async () => {
    await refused(
      tokenCall(w, { grant_type: "refresh_token", refresh_token: "x", client_id: "nobody" }),
      "invalid_client",
      {
        status: 401,
      },
    );
  });

  test("a confidential client: wrong secret, or no secret, refused; Basic with the right secret works", async () => {
    const client = await addClient(w, { token_endpoint_auth_method: "client_secret_basic", secret: "s3cret-s3cret" });
    const c = await issueCode(w, client);
    const { client_id: _id, ...form } = exchangeForm(client, c);
    const basic = (secret: string) => ({ authorization: `Basic ${btoa(`${client.client_id}:${secret}`)}` });
    const wrong = await refused(tokenCall(w, form, basic("wrong")), "invalid_client", { status: 401 });
    // RFC 6749 §5.2: a 401 for a client that used the Authorization header MUST carry WWW-Authenticate.
    expect(wrong.headers["www-authenticate"]).toContain("Basic");
    await refused(tokenCall(w, { ...form, client_id: client.client_id }), "invalid_client", { status: 401 });
    // A refused client authentication does not spend the code.
    expect((await tokenCall(w, form, basic("s3cret-s3cret"))).access_token).toBeString();
  });

  test("a public client that sends a secret is refused (it authenticates with none only)", async () => {
    const client = await addClient(w);
    const c = await issueCode(w, client);
    await refused(tokenCall(w, exchangeForm(client, c, { client_secret: "guess" })), "invalid_client", {
      status: 401,
    });
  });
});

describe("authorization_code: the exchange", () => {
  test("a good exchange: an RFC 9068 access token for the user, client, scopes and resource; a refresh token", async () => {
    const client = await addClient(w);
    const r = await tokensFor(w, client);
    expect(r).toMatchObject({ token_type: "Bearer", scope: "mcp extra", expires_in: 3600 });
    expect(r.refresh_token).toBeString();
    const claims = await claimsOf(w, r.access_token);
    expect(claims).toMatchObject({ sub: "alice", client_id: client.client_id, aud: RESOURCE, scope: "mcp extra" });
    expect(await accepted(w, r.access_token)).toBe(true);
    // The grant is stored with its first refresh token.
    const [grant] = await w.store.grantsOfClient(client.client_id);
    expect(grant).toMatchObject({ id: claims.gid, subject: "alice", scopes: ["mcp", "extra"], resource: RESOURCE });
    expect((await w.store.getRefreshToken(sha256Hex(r.refresh_token as string)))?.grant_id).toBe(claims.gid);
  });

  test("a client without the refresh_token grant gets no refresh token", async () => {
    const client = await addClient(w, { grant_types: ["authorization_code"] });
    const r = await tokensFor(w, client);
    expect(r.refresh_token).toBeUndefined();
    expect((await w.store.stats()).refreshTokens).toBe(0);
  });
});

describe("authorization_code: PKCE (RFC 7636 §4.6, OAuth 2.1 §4.1.3)", () => {
  test("the right verifier passes; a wrong one is invalid_grant and issues nothing", async () => {
    const client = await addClient(w);
    const c = await issueCode(w, client);
    // RFC 7636 §4.6: the server MUST verify code_verifier against code_challenge; a mismatch is invalid_grant.
    await refused(tokenCall(w, exchangeForm(client, c, { code_verifier: pkce().verifier })), "invalid_grant", {
      says: "code_verifier",
    });
    expect((await w.store.stats()).grants).toBe(0);
    expect((await w.store.stats()).refreshTokens).toBe(0);
  });

  test("no verifier at all is invalid_grant, never a downgrade to no PKCE (OAuth 2.1 §4.1.3)", async () => {
    const client = await addClient(w);
    const c = await issueCode(w, client);
    const { code_verifier: _v, ...form } = exchangeForm(client, c);
    await refused(tokenCall(w, form), "invalid_grant", { says: "code_verifier" });
    expect((await w.store.stats()).grants).toBe(0);
  });

  test('"plain" is refused: sending the challenge itself as the verifier fails (S256 only, OAuth 2.1 §4.1.1)', async () => {
    const client = await addClient(w);
    const c = await issueCode(w, client);
    // With method "plain" (RFC 7636 §4.2) the verifier equals the challenge; the server only computes S256.
    await refused(tokenCall(w, exchangeForm(client, c, { code_verifier: c.challenge })), "invalid_grant");
    expect((await w.store.stats()).grants).toBe(0);
  });

  test("a verifier outside the RFC 7636 §4.1 alphabet or length is refused even if its hash matches", async () => {
    const client = await addClient(w);
    const short = "abc"; // fewer than 43 characters
    const c = await issueCode(w, client, {
      code_challenge: createHash("sha256").update(short).digest("base64url"),
    });
    await refused(tokenCall(w, exchangeForm(client, { code: c.code, verifier: short })), "invalid_grant");
  });

  test("a failed verification spends the code: retrying it with the right verifier is refused too", async () => {
    const client = await addClient(w);
    const c = await issueCode(w, client);
    await refused(tokenCall(w, exchangeForm(client, c, { code_verifier: pkce().verifier })), "invalid_grant");
    // Whoever guessed first spent it; an attacker cannot keep trying verifiers against one code.
    await refused(tokenCall(w, exchangeForm(client, c)), "invalid_grant", { says: "already used" });
    expect((await w.store.stats()).grants).toBe(0);
  });
});

describe("authorization_code: single use (RFC 6749 §4.1.2, OAuth 2.1 §4.1.3)", () => {
  test("a replayed code is refused AND revokes the grant issued from it, with its tokens", async () => {
    const client = await addClient(w);
    const c = await issueCode(w, client);
    const first = await tokenCall(w, exchangeForm(client, c));
    const { gid } = await claimsOf(w, first.access_token);
    // RFC 6749 §4.1.2: the client MUST NOT use the code more than once; if it is used more than once the server
    // MUST deny the request and SHOULD revoke all tokens previously issued based on that code.
    w.clock.advance(1_000);
    await refused(tokenCall(w, exchangeForm(client, c)), "invalid_grant", { says: "already used" });
    const grant = await w.store.getGrant(gid);
    expect(grant?.revoked_at).toBe(w.clock.now());
    expect(grant?.revoked_reason).toContain("replayed");
    // Every token of the grant stops working: the access token at the resource, the refresh token at /token.
    expect(await accepted(w, first.access_token)).toBe(false);
    expect(await w.store.getRefreshToken(sha256Hex(first.refresh_token as string))).toBeUndefined();
    await refused(tokenCall(w, refreshForm(client, first.refresh_token as string)), "invalid_grant");
    expect((await w.store.stats()).refreshTokens).toBe(0);
  });

  test("concurrent redemptions of one code: never more than one issued, and nothing issued works", async () => {
    const client = await addClient(w);
    const c = await issueCode(w, client);
    const results = await Promise.allSettled([1, 2, 3].map(() => tokenCall(w, exchangeForm(client, c))));
    // RFC 6749 §4.1.2: the server MUST deny a code used more than once; the later ones all are.
    expect(results.filter((r) => r.status === "fulfilled").length).toBeLessThanOrEqual(1);
    expect(results.filter((r) => r.status === "rejected").length).toBeGreaterThanOrEqual(2);
    for (const r of results) {
      if (r.status === "rejected") expect((r.reason as OAuthError).error).toBe("invalid_grant");
      else expect(await accepted(w, r.value.access_token)).toBe(false);
    }
  });

  test("a replay racing the first redemption still revokes what that redemption issues", async () => {
    const client = await addClient(w);
    const c = await issueCode(w, client);
    const results = await Promise.allSettled([1, 2].map(() => tokenCall(w, exchangeForm(client, c))));
    expect(results.some((r) => r.status === "rejected")).toBe(true);
    // RFC 6749 §4.1.2: the server SHOULD revoke all tokens previously issued based on that code.
    for (const r of results) if (r.status === "fulfilled") expect(await accepted(w, r.value.access_token)).toBe(false);
    expect((await w.store.grantsOfClient(client.client_id)).filter((g) => g.revoked_at === undefined)).toEqual([]);
    expect((await w.store.stats()).refreshTokens).toBe(0);
  });

  test("a replay between the first redemption's checks and its grant being stored: nothing is issued", async () => {
    // The first exchange is held just before it stores its grant (the window in which the grant does not exist
    // yet, so revoking it finds nothing); the replay comes then.
    let reached!: () => void;
    const atPutGrant = new Promise<void>((r) => (reached = r));
    let go!: () => void;
    const gate = new Promise<void>((r) => (go = r));
    class HeldStore extends MemoryStore {
      override async putGrant(...args: Parameters<MemoryStore["putGrant"]>) {
        reached();
        await gate;
        return super.putGrant(...args);
      }
    }
    w = await server({}, new HeldStore());
    const client = await addClient(w);
    const c = await issueCode(w, client);
    const first = tokenCall(w, exchangeForm(client, c));
    first.catch(() => {});
    await atPutGrant;
    await refused(tokenCall(w, exchangeForm(client, c)), "invalid_grant", { says: "already used" });
    go();
    // The replay revoked the grant before it existed: the first exchange is refused too, and stores nothing.
    await refused(first, "invalid_grant", { says: "more than once" });
    expect(await w.store.grantsOfClient(client.client_id)).toEqual([]);
    expect(await w.store.stats()).toMatchObject({ grants: 0, refreshTokens: 0 });
    // The code stays spent.
    await refused(tokenCall(w, exchangeForm(client, c)), "invalid_grant", { says: "already used" });
  });

  test("an unknown code is invalid_grant", async () => {
    const client = await addClient(w);
    const c = await issueCode(w, client);
    await refused(tokenCall(w, exchangeForm(client, { ...c, code: "not-a-code" })), "invalid_grant");
  });
});

describe("authorization_code: expiry by the clock (RFC 6749 §4.1.2: a maximum lifetime of 10 minutes)", () => {
  test("redeemable until its lifetime ends", async () => {
    const client = await addClient(w);
    const c = await issueCode(w, client);
    w.clock.advance(CODE_TTL_S * 1000);
    expect((await tokenCall(w, exchangeForm(client, c))).access_token).toBeString();
  });

  test("an expired code is invalid_grant and issues nothing", async () => {
    const client = await addClient(w);
    const c = await issueCode(w, client);
    w.clock.advance(CODE_TTL_S * 1000 + 1);
    await refused(tokenCall(w, exchangeForm(client, c)), "invalid_grant", { says: "expired" });
    expect((await w.store.stats()).grants).toBe(0);
  });

  test("swept once expired: the store forgets it", async () => {
    const client = await addClient(w);
    const c = await issueCode(w, client);
    w.clock.advance(CODE_TTL_S * 1000 + 1);
    await w.as.maintain();
    expect(await w.store.consumeCode(sha256Hex(c.code), "probe")).toBeUndefined();
  });
});

describe("authorization_code: bound to its client and redirect URI (RFC 6749 §4.1.3)", () => {
  test("another client presenting the code is invalid_grant; nothing is issued to it", async () => {
    const owner = await addClient(w);
    const thief = await addClient(w);
    const c = await issueCode(w, owner);
    // RFC 6749 §4.1.3: ensure the code was issued to the authenticated confidential client / the client_id.
    await refused(tokenCall(w, exchangeForm(thief, c)), "invalid_grant", { says: "another client" });
    expect(await w.store.grantsOfClient(thief.client_id)).toEqual([]);
    expect((await w.store.stats()).grants).toBe(0);
  });

  test("a redirect_uri other than the authorization request's is invalid_grant", async () => {
    const client = await addClient(w, { redirect_uris: [REDIRECT, "http://127.0.0.1:9999/other"] });
    const c = await issueCode(w, client);
    // RFC 6749 §4.1.3: the values MUST be identical (here, even another registered URI is refused).
    for (const redirect_uri of ["http://127.0.0.1:9999/other", `${REDIRECT}/`, "http://127.0.0.1:9998/callback"]) {
      const again = await issueCode(w, client);
      await refused(tokenCall(w, exchangeForm(client, again, { redirect_uri })), "invalid_grant", {
        says: "redirect_uri",
      });
    }
    expect((await w.store.stats()).grants).toBe(0);
    expect((await tokenCall(w, exchangeForm(client, c))).access_token).toBeString();
  });
});

describe("authorization_code: redirect_uri at the token request only if the authorization request sent it", () => {
  // RFC 6749 §4.1.3 (kept by OAuth 2.1 §4.1.3): redirect_uri is REQUIRED "if the redirect_uri parameter was included
  // in the authorization request", and then the values MUST be identical.
  test("sent at /authorize: required at /token (invalid_request naming it), and the code is not spent", async () => {
    const client = await addClient(w);
    const c = await issueCode(w, client);
    const { redirect_uri: _r, ...form } = exchangeForm(client, c);
    await refused(tokenCall(w, form), "invalid_request", { says: "redirect_uri is required" });
    await refused(tokenCall(w, { ...form, redirect_uri: "" }), "invalid_request", { says: "redirect_uri is required" });
    expect((await w.store.stats()).grants).toBe(0);
    expect((await tokenCall(w, exchangeForm(client, c))).access_token).toBeString();
  });

  test("omitted at /authorize (the only registered URI used): may be omitted at /token; if sent, identical", async () => {
    const client = await addClient(w);
    const c = await issueCode(w, client, { redirect_uri_omitted: true });
    const { redirect_uri: _r, ...form } = exchangeForm(client, c);
    const r = await tokenCall(w, form);
    expect(await accepted(w, r.access_token)).toBe(true);
    // Sending it anyway is fine when it is that URI, refused when it is another.
    expect(
      (await tokenCall(w, exchangeForm(client, await issueCode(w, client, { redirect_uri_omitted: true }))))
        .access_token,
    ).toBeString();
    const other = await issueCode(w, client, { redirect_uri_omitted: true });
    await refused(
      tokenCall(w, exchangeForm(client, other, { redirect_uri: "http://127.0.0.1:9999/other" })),
      "invalid_grant",
      { says: "redirect_uri" },
    );
  });

  test("a missing redirect_uri spends nothing of a code for another client: that is invalid_grant first", async () => {
    const owner = await addClient(w);
    const thief = await addClient(w);
    const c = await issueCode(w, owner);
    const { redirect_uri: _r, ...form } = exchangeForm(thief, c);
    await refused(tokenCall(w, form), "invalid_grant", { says: "another client" });
  });
});

describe("authorization_code: the resource indicator (RFC 8707 §2.2)", () => {
  test("the resource authorized may be named again, in any canonical spelling", async () => {
    const client = await addClient(w);
    const c = await issueCode(w, client);
    const r = await tokenCall(w, exchangeForm(client, c, { resource: "HTTPS://GH.EXAMPLE/mcp/" }));
    expect((await claimsOf(w, r.access_token)).aud).toBe(RESOURCE);
  });

  test("no resource at the token request: the token is for the one authorized", async () => {
    const client = await addClient(w);
    const r = await tokensFor(w, client, { resource: OTHER_RESOURCE });
    expect((await claimsOf(w, r.access_token, OTHER_RESOURCE)).aud).toBe(OTHER_RESOURCE);
    // RFC 8707 §2: the audience restricts the token: the other resource refuses it.
    expect(await accepted(w, r.access_token, RESOURCE)).toBe(false);
    expect(await accepted(w, r.access_token, OTHER_RESOURCE)).toBe(true);
  });

  test("another served resource than the one authorized is invalid_target; nothing is issued", async () => {
    const client = await addClient(w);
    const c = await issueCode(w, client);
    await refused(tokenCall(w, exchangeForm(client, c, { resource: OTHER_RESOURCE })), "invalid_target");
    expect((await w.store.stats()).grants).toBe(0);
  });

  test("a resource not served here, or two at once, is invalid_target (RFC 8707 §2)", async () => {
    const client = await addClient(w);
    await refused(
      tokenCall(w, exchangeForm(client, await issueCode(w, client), { resource: "https://evil.example/mcp" })),
      "invalid_target",
      { says: "not served here" },
    );
    const form = new URLSearchParams(exchangeForm(client, await issueCode(w, client), { resource: RESOURCE }));
    form.append("resource", OTHER_RESOURCE);
    await refused(token(w.as, new Headers(), form), "invalid_target");
    expect((await w.store.stats()).grants).toBe(0);
  });
});

describe("refresh_token: rotation on every use (OAuth 2.1 §4.3, RFC 9700 §4.14.2)", () => {
  async function firstTokens(world = w) {
    const client = await addClient(world);
    const r = await tokensFor(world, client);
    return { client, first: r, rt: r.refresh_token as string };
  }

  test("a refresh gives a new access token and a new refresh token; the new one works", async () => {
    const { client, first, rt } = await firstTokens();
    w.clock.advance(1_000);
    const second = await tokenCall(w, refreshForm(client, rt));
    expect(second.refresh_token).toBeString();
    expect(second.refresh_token).not.toBe(rt);
    expect(second.access_token).not.toBe(first.access_token);
    expect(second.scope).toBe("mcp extra");
    // The same grant continues: same user, client and resource.
    const [a, b] = [await claimsOf(w, first.access_token), await claimsOf(w, second.access_token)];
    expect(b).toMatchObject({ sub: "alice", client_id: client.client_id, aud: RESOURCE, gid: a.gid });
    w.clock.advance((GRACE_S + 1) * 1000);
    const third = await tokenCall(w, refreshForm(client, second.refresh_token as string));
    expect(await accepted(w, third.access_token)).toBe(true);
    // The used token is remembered as used (to recognise a replay), not deleted.
    expect((await w.store.getRefreshToken(sha256Hex(rt)))?.rotated_at).toBeDefined();
  });

  test("the old token presented again after the grace window is refused and revokes the whole grant", async () => {
    const { client, first, rt } = await firstTokens();
    const second = await tokenCall(w, refreshForm(client, rt));
    w.clock.advance((GRACE_S + 1) * 1000);
    // RFC 9700 §4.14.2: a used refresh token presented again means one copy is stolen: the grant is revoked.
    await refused(tokenCall(w, refreshForm(client, rt)), "invalid_grant", { says: "already used" });
    const { gid } = await claimsOf(w, first.access_token);
    expect((await w.store.getGrant(gid))?.revoked_reason).toContain("reused");
    // The legitimate holder's successor dies with it, and so do the access tokens.
    await refused(tokenCall(w, refreshForm(client, second.refresh_token as string)), "invalid_grant");
    expect(await accepted(w, second.access_token)).toBe(false);
    expect(await accepted(w, first.access_token)).toBe(false);
    expect((await w.store.stats()).refreshTokens).toBe(0);
  });

  test("concurrent refreshes with one token, in one process: the very same answer to both", async () => {
    const { client, rt } = await firstTokens();
    const [a, b] = await Promise.all([tokenCall(w, refreshForm(client, rt)), tokenCall(w, refreshForm(client, rt))]);
    expect(b).toEqual(a);
    expect(a.refresh_token).not.toBe(rt);
    // Only one rotation happened: one successor (the grant's refresh tokens: the used one and the new one).
    expect((await w.store.stats()).refreshTokens).toBe(2);
    expect((await tokenCall(w, refreshForm(client, a.refresh_token as string))).access_token).toBeString();
  });

  test("a retry within the grace window (a lost response) gets the same answer; the grant stays", async () => {
    const { client, rt } = await firstTokens();
    const a = await tokenCall(w, refreshForm(client, rt));
    w.clock.advance(GRACE_S * 1000);
    const b = await tokenCall(w, refreshForm(client, rt));
    expect(b).toEqual(a);
    expect(await accepted(w, a.access_token)).toBe(true);
  });

  test("another replica sharing the store, within the grace window: the sealed answer of the first", async () => {
    const { client, rt } = await firstTokens();
    const a = await tokenCall(w, refreshForm(client, rt));
    // A second authorization server on the same store: it has no in-process memory of the first refresh.
    const replica = await server({}, w.store, w.clock);
    w.clock.advance(5_000);
    const b = await tokenCall(replica, refreshForm(client, rt));
    expect(b).toEqual(a);
    expect((await w.store.stats()).refreshTokens).toBe(2);
  });

  test("after a restart within the grace window (answer lost): a sibling pair in the same grant", async () => {
    const { client, first, rt } = await firstTokens();
    const a = await tokenCall(w, refreshForm(client, rt));
    // The durable records survive a restart; the sealed answers (memory only) do not.
    const restarted = new MemoryStore();
    restarted.restore(w.store.snapshot());
    const after = await server({}, restarted, w.clock);
    w.clock.advance(5_000);
    const b = await tokenCall(after, refreshForm(client, rt));
    expect(b.refresh_token).not.toBe(a.refresh_token);
    expect((await claimsOf(after, b.access_token)).gid).toBe((await claimsOf(w, first.access_token)).gid);
    expect((await tokenCall(after, refreshForm(client, a.refresh_token as string))).access_token).toBeString();
    expect((await tokenCall(after, refreshForm(client, b.refresh_token as string))).access_token).toBeString();
  });

  test("a revoked grant stays revoked: a repeat within the grace window is invalid_grant, not a 200", async () => {
    const { client, rt } = await firstTokens();
    const a = await tokenCall(w, refreshForm(client, rt));
    await w.store.revokeGrant((await claimsOf(w, a.access_token)).gid, w.clock.now(), "revoked by the user");
    // The in-process answer of the first refresh is not handed out once its grant is dead.
    await refused(tokenCall(w, refreshForm(client, rt)), "invalid_grant");
    // Nor by another replica (the store path), nor after the window.
    const replica = await server({}, w.store, w.clock);
    await refused(tokenCall(replica, refreshForm(client, rt)), "invalid_grant");
    w.clock.advance((GRACE_S + 1) * 1000);
    await refused(tokenCall(w, refreshForm(client, rt)), "invalid_grant");
  });

  test("revoked through the revocation endpoint (RFC 7009): a repeat within the window is invalid_grant", async () => {
    const { client, rt } = await firstTokens();
    const a = await tokenCall(w, refreshForm(client, rt));
    await revoke(
      w.as,
      new Headers(),
      new URLSearchParams({ token: a.refresh_token as string, client_id: client.client_id }),
    );
    await refused(tokenCall(w, refreshForm(client, rt)), "invalid_grant");
    expect(await accepted(w, a.access_token)).toBe(false);
  });

  test("a refresh token of another client is invalid_grant, and leaves the token usable by its owner", async () => {
    const { client, rt } = await firstTokens();
    const other = await addClient(w);
    // RFC 6749 §6: the server MUST validate that the refresh token was issued to the authenticated client.
    await refused(tokenCall(w, refreshForm(other, rt)), "invalid_grant");
    expect((await w.store.getRefreshToken(sha256Hex(rt)))?.rotated_at).toBeUndefined();
    expect((await tokenCall(w, refreshForm(client, rt))).access_token).toBeString();
  });

  test("an unknown refresh token is invalid_grant", async () => {
    const client = await addClient(w);
    await refused(tokenCall(w, refreshForm(client, "no-such-token")), "invalid_grant");
  });
});

describe("refresh_token: scope (RFC 6749 §6)", () => {
  test("a refresh may narrow the scopes of the access token; the grant keeps its scopes", async () => {
    const client = await addClient(w);
    const first = await tokensFor(w, client);
    const narrow = await tokenCall(w, refreshForm(client, first.refresh_token as string, { scope: "mcp" }));
    expect(narrow.scope).toBe("mcp");
    expect((await claimsOf(w, narrow.access_token)).scope).toBe("mcp");
    // RFC 6749 §6: a new refresh token's scope MUST be identical to that of the refresh token presented.
    const full = await tokenCall(w, refreshForm(client, narrow.refresh_token as string));
    expect(full.scope).toBe("mcp extra");
  });

  test("widening is invalid_scope and rotates nothing: the token still refreshes", async () => {
    const client = await addClient(w);
    const first = await tokensFor(w, client, { scopes: ["mcp"] });
    const rt = first.refresh_token as string;
    // RFC 6749 §6: the requested scope MUST NOT include any scope not originally granted.
    for (const scope of ["mcp extra", "extra", "mcp admin"]) {
      await refused(tokenCall(w, refreshForm(client, rt, { scope })), "invalid_scope");
    }
    expect((await w.store.getRefreshToken(sha256Hex(rt)))?.rotated_at).toBeUndefined();
    expect((await tokenCall(w, refreshForm(client, rt))).scope).toBe("mcp");
  });

  test("the resource cannot change at a refresh (RFC 8707 §2.2): invalid_target", async () => {
    const client = await addClient(w);
    const first = await tokensFor(w, client);
    const rt = first.refresh_token as string;
    await refused(tokenCall(w, refreshForm(client, rt, { resource: OTHER_RESOURCE })), "invalid_target");
    const same = await tokenCall(w, refreshForm(client, rt, { resource: RESOURCE }));
    expect((await claimsOf(w, same.access_token)).aud).toBe(RESOURCE);
  });
});

describe("refresh_token: concurrent requests with one token but different scope or resource", () => {
  test("a widening request does not get the answer of a valid one in flight: its own invalid_scope", async () => {
    const client = await addClient(w);
    const rt = (await tokensFor(w, client, { scopes: ["mcp"] })).refresh_token as string;
    const [good, wide] = await Promise.allSettled([
      tokenCall(w, refreshForm(client, rt)),
      tokenCall(w, refreshForm(client, rt, { scope: "mcp extra" })),
    ]);
    expect(good.status === "fulfilled" && good.value.scope).toBe("mcp");
    // RFC 6749 §6: the requested scope MUST NOT include any scope not originally granted.
    expect(wide.status === "rejected" && (wide.reason as OAuthError).error).toBe("invalid_scope");
  });

  test("a valid request does not share the error of an invalid one in flight", async () => {
    const client = await addClient(w);
    const rt = (await tokensFor(w, client, { scopes: ["mcp"] })).refresh_token as string;
    const [wide, good] = await Promise.allSettled([
      tokenCall(w, refreshForm(client, rt, { scope: "mcp extra" })),
      tokenCall(w, refreshForm(client, rt, { resource: RESOURCE })),
    ]);
    expect(wide.status === "rejected" && (wide.reason as OAuthError).error).toBe("invalid_scope");
    expect(good.status === "fulfilled" && good.value.scope).toBe("mcp");
    if (good.status === "fulfilled") expect(await accepted(w, good.value.access_token)).toBe(true);
  });

  test("a resource other than the grant's is its own invalid_target, even while a refresh is in flight", async () => {
    const client = await addClient(w);
    const rt = (await tokensFor(w, client)).refresh_token as string;
    const [good, other] = await Promise.allSettled([
      tokenCall(w, refreshForm(client, rt)),
      tokenCall(w, refreshForm(client, rt, { resource: OTHER_RESOURCE })),
    ]);
    expect(good.status).toBe("fulfilled");
    expect(other.status === "rejected" && (other.reason as OAuthError).error).toBe("invalid_target");
  });

  test("two valid requests for different scopes: one is answered, the other refused (never the other's tokens)", async () => {
    const client = await addClient(w);
    const rt = (await tokensFor(w, client)).refresh_token as string;
    const [narrow, full] = await Promise.allSettled([
      tokenCall(w, refreshForm(client, rt, { scope: "mcp" })),
      tokenCall(w, refreshForm(client, rt)),
    ]);
    const won = [narrow, full].filter((r) => r.status === "fulfilled") as PromiseFulfilledResult<TokenResponse>[];
    const lost = [narrow, full].filter((r) => r.status === "rejected") as PromiseRejectedResult[];
    expect(won.length).toBe(1);
    expect(lost.map((r) => (r.reason as OAuthError).error)).toEqual(["invalid_grant"]);
    expect(won[0]?.value.scope).toBe(narrow.status === "fulfilled" ? "mcp" : "mcp extra");
    // Not a reuse after the window: the grant lives on, and the winner's successor refreshes.
    expect(await accepted(w, won[0]?.value.access_token as string)).toBe(true);
    expect((await tokenCall(w, refreshForm(client, won[0]?.value.refresh_token as string))).access_token).toBeString();
  });

  test("through another replica within the window, another scope is refused; the same scopes in another spelling are a repeat", async () => {
    const client = await addClient(w);
    const rt = (await tokensFor(w, client)).refresh_token as string;
    const a = await tokenCall(w, refreshForm(client, rt));
    const replica = await server({}, w.store, w.clock);
    await refused(tokenCall(replica, refreshForm(client, rt, { scope: "mcp" })), "invalid_grant", {
      says: "other scopes",
    });
    expect(await tokenCall(replica, refreshForm(client, rt, { scope: "extra mcp" }))).toEqual(a);
    // And in this process too: a different request is no repeat of the cached one.
    await refused(tokenCall(w, refreshForm(client, rt, { scope: "mcp" })), "invalid_grant", { says: "other scopes" });
    expect(await tokenCall(w, refreshForm(client, rt))).toEqual(a);
  });
});

describe("refresh_token: expiry by the clock", () => {
  const TTL_S = 3600;

  test("a refresh token works until the grant's lifetime ends, then is invalid_grant", async () => {
    w = await server({ refreshTokenTtlSeconds: TTL_S });
    const client = await addClient(w);
    const first = await tokensFor(w, client);
    w.clock.advance(TTL_S * 1000 - 10_000);
    const late = await tokenCall(w, refreshForm(client, first.refresh_token as string));
    // An access token never outlives its grant.
    expect(late.expires_in).toBeLessThanOrEqual(10);
    w.clock.advance(10_001);
    await refused(tokenCall(w, refreshForm(client, late.refresh_token as string)), "invalid_grant");
  });

  test("rotation does not extend the lifetime: the successor expires with the grant", async () => {
    w = await server({ refreshTokenTtlSeconds: TTL_S });
    const client = await addClient(w);
    let r: TokenResponse = await tokensFor(w, client);
    for (let i = 0; i < 3; i++) {
      w.clock.advance(TTL_S * 250);
      r = await tokenCall(w, refreshForm(client, r.refresh_token as string));
    }
    w.clock.advance(TTL_S * 250 + 1);
    await refused(tokenCall(w, refreshForm(client, r.refresh_token as string)), "invalid_grant");
  });
});
