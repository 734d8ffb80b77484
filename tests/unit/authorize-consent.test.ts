// The authorization endpoint and the consent step (src/oauth/authorize.ts), driven directly through `authorize()`
// and `decideConsent()` against the in-memory store and a clock the test moves: no HTTP server. The user is the
// one a trusted reverse proxy names (x-forwarded-user from 127.0.0.1). Each refusal is checked for where it goes
// (an error page, or back to the client with state and iss) and for what it leaves behind (no code, no consent).

import { beforeEach, describe, expect, test } from "bun:test";
import { createHash, randomBytes } from "node:crypto";
import { parseConfig } from "../../src/config/load.ts";
import type { OAuthAsConfig } from "../../src/config/types.ts";
import { memoryLogger } from "../../src/log.ts";
import { AuthorizationServer } from "../../src/oauth/authorization-server.ts";
import {
  type AuthorizeOutcome,
  authorize,
  decideConsent,
  type PendingAuthorization,
  PendingAuthorizations,
} from "../../src/oauth/authorize.ts";
import { token } from "../../src/oauth/token.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import type { ClientRecord, CodeRecord, ConsentRecord, TransientKind } from "../../src/store/types.ts";
import { FakeClock } from "../helpers/clock.ts";

// ---------------------------------------------------------------------------------------------------------------
// Helpers

const ISSUER = "https://gh.example";
const RESOURCE = `${ISSUER}/mcp`;
const OTHER_RESOURCE = `${ISSUER}/servers/s/mcp`;
const REDIRECT = "http://127.0.0.1:9999/callback";
const WEB_REDIRECT = "https://claude.ai/api/mcp/auth_callback";
const PENDING_TTL_MS = 10 * 60_000;
const PROXY = "127.0.0.1";

function asConfig(extra: Record<string, unknown> = {}): OAuthAsConfig {
  const config = parseConfig(
    JSON.stringify({
      mcpServers: { s: { url: "http://127.0.0.1:1/mcp" } },
      serverAuth: {
        providers: ["oauth_as"],
        oauthAs: {
          issuerUrl: ISSUER,
          trustedSourceCidrs: [`${PROXY}/32`],
          scopesSupported: ["mcp", "extra"],
          requiredScopes: ["mcp"],
          ...extra,
        },
      },
    }),
    { source: "servers.json", dir: "/etc/gatehouse", env: {} },
  );
  return config.auth.oauthAs as OAuthAsConfig;
}

/** The memory store, recording what the flow writes: codes issued, consents remembered, pending requests kept. */
class RecordingStore extends MemoryStore {
  readonly codesIssued: CodeRecord[] = [];
  readonly consentsPut: ConsentRecord[] = [];
  readonly pendingsPut: string[] = [];
  override async putCode(hash: string, record: CodeRecord) {
    this.codesIssued.push(structuredClone(record));
    return super.putCode(hash, record);
  }
  override async putConsent(consent: ConsentRecord) {
    this.consentsPut.push(consent);
    return super.putConsent(consent);
  }
  override async putTransient(kind: TransientKind, id: string, value: unknown, expiresAt: number) {
    if (kind === "authorization") this.pendingsPut.push(id);
    return super.putTransient(kind, id, value, expiresAt);
  }
}

interface World {
  as: AuthorizationServer;
  store: RecordingStore;
  clock: FakeClock;
  pendings: PendingAuthorizations;
  client: ClientRecord;
}

async function server(extra: Record<string, unknown> = {}, client: Partial<ClientRecord> = {}): Promise<World> {
  const store = new RecordingStore();
  const clock = new FakeClock();
  const as = new AuthorizationServer({ config: asConfig(extra), store, clock, log: memoryLogger() });
  await as.init();
  as.serveResource(OTHER_RESOURCE);
  const record: ClientRecord = {
    client_id: "app",
    client_name: "The App",
    client_id_issued_at: Math.floor(clock.now() / 1000),
    redirect_uris: [REDIRECT],
    token_endpoint_auth_method: "none",
    grant_types: ["authorization_code", "refresh_token"],
    response_types: ["code"],
    ...client,
  };
  await store.putClient(record);
  return { as, store, clock, pendings: new PendingAuthorizations(store), client: record };
}

function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString("base64url");
  return { verifier, challenge: createHash("sha256").update(verifier).digest("base64url") };
}

const userHeaders = (subject = "alice") =>
  new Headers({ "x-forwarded-user": subject, "x-forwarded-groups": "staff", "x-forwarded-email": `${subject}@x.test` });

/** GET /authorize minus HTTP: `params` override the defaults (null removes one); the user is alice by default. */
function ask(
  w: World,
  params: Record<string, string | null> = {},
  { challenge = pkce().challenge, headers = userHeaders(), peer = PROXY } = {},
): Promise<AuthorizeOutcome> {
  const q = new URLSearchParams({
    response_type: "code",
    client_id: w.client.client_id,
    redirect_uri: REDIRECT,
    code_challenge: challenge,
    code_challenge_method: "S256",
    state: "st4te",
    resource: RESOURCE,
    scope: "mcp",
  });
  for (const [k, v] of Object.entries(params)) {
    if (v === null) q.delete(k);
    else q.set(k, v);
  }
  return authorize(w.as, { params: q, headers, peer, session: undefined });
}

/** The consent page is shown: its pending request is stored, as the HTTP layer does when it renders the page. */
async function consentShown(w: World, outcome: AuthorizeOutcome): Promise<PendingAuthorization> {
  if (outcome.kind !== "consent") throw new Error(`expected the consent page, got ${JSON.stringify(outcome)}`);
  await w.pendings.add(outcome.pending);
  return outcome.pending;
}

/** POST /authorize (the consent form) minus HTTP; by default the right form, from the right browser and user. */
function answer(
  w: World,
  p: PendingAuthorization,
  {
    decision = "approve",
    csrf = p.csrf,
    /** null: the browser sent no consent cookie. */
    cookie = p.browser as string | null,
    headers = userHeaders(),
    extra = [] as [string, string][],
  } = {},
): Promise<AuthorizeOutcome> {
  const form = new URLSearchParams([["request_id", p.id], ["csrf", csrf], ["decision", decision], ...extra]);
  return decideConsent(w.as, w.pendings, {
    form,
    cookie: cookie ?? undefined,
    headers,
    peer: PROXY,
    session: undefined,
  });
}

function redirectOf(o: AuthorizeOutcome): { url: URL; params: URLSearchParams; status: number | undefined } {
  if (o.kind !== "redirect") throw new Error(`expected a redirect, got ${JSON.stringify(o)}`);
  const url = new URL(o.location);
  return { url, params: url.searchParams, status: o.status };
}

/** An error sent back to the client: at its redirect URI, with state and iss (RFC 6749 §4.1.2.1, RFC 9207 §2). */
function expectClientError(o: AuthorizeOutcome, error: string, state: string | null = "st4te"): URLSearchParams {
  const { url, params } = redirectOf(o);
  expect(`${url.origin}${url.pathname}`).toBe(REDIRECT);
  expect(params.get("error")).toBe(error);
  expect(params.get("error_description")).toBeString();
  expect(params.get("state")).toBe(state);
  expect(params.get("iss")).toBe(ISSUER);
  expect(params.get("code")).toBeNull();
  return params;
}

/** An error page shown to the user, never a redirect (RFC 6749 §4.1.2.1). */
function expectPage(o: AuthorizeOutcome, status: 400 | 403, title?: string): void {
  if (o.kind !== "page") throw new Error(`expected an error page, got ${JSON.stringify(o)}`);
  expect(o.status).toBe(status);
  if (title) expect(o.title).toContain(title);
}

/** Nothing of the flow was written: no code, no consent, no pending request. */
function expectNothingStored(w: World): void {
  expect(w.store.codesIssued).toEqual([]);
  expect(w.store.consentsPut).toEqual([]);
  expect(w.store.pendingsPut).toEqual([]);
}

/** Redeems a code at the token endpoint (framework-free), with its verifier. */
function redeem(w: World, code: string, verifier: string) {
  return token(
    w.as,
    new Headers(),
    new URLSearchParams({
      grant_type: "authorization_code",
      code,
      redirect_uri: REDIRECT,
      code_verifier: verifier,
      client_id: w.client.client_id,
    }),
  );
}

// ---------------------------------------------------------------------------------------------------------------

let w: World;
beforeEach(async () => {
  w = await server();
});

describe("client and redirect URI unverified: an error page, never a redirect (RFC 6749 §4.1.2.1)", () => {
  // RFC 6749 §4.1.2.1: if the redirect URI is missing, invalid or mismatching, or the client identifier is missing
  // or invalid, the server SHOULD inform the resource owner and MUST NOT automatically redirect the user-agent.
  test("no client_id", async () => {
    expectPage(await ask(w, { client_id: null }), 400, "incomplete");
    expectNothingStored(w);
  });

  test("an unknown client", async () => {
    expectPage(await ask(w, { client_id: "nobody" }), 400, "Unknown app");
    expectNothingStored(w);
  });

  test("a redirect_uri the client did not register: exact match only (OAuth 2.1 §2.3.1, RFC 9700 §4.1.3)", async () => {
    for (const redirect_uri of [
      "http://127.0.0.1:9999/callback/other",
      "http://127.0.0.1:9999/callback?x=1",
      "http://127.0.0.1:9999/Callback",
      "http://127.0.0.2:9999/callback",
      "https://127.0.0.1:9999/callback",
      "https://evil.example/callback",
      "http://127.0.0.1:9999/callback#frag",
      "http://evil.example@127.0.0.1:9999/callback",
      "not a uri",
    ]) {
      expectPage(await ask(w, { redirect_uri }), 400, "redirect");
    }
    expectNothingStored(w);
  });

  test("a loopback redirect_uri may use any port (RFC 8252 §7.3)", async () => {
    const p = await consentShown(w, await ask(w, { redirect_uri: "http://127.0.0.1:51234/callback" }));
    expect(p.redirectUri).toBe("http://127.0.0.1:51234/callback");
  });

  test("a non-loopback redirect_uri must match its port too", async () => {
    w = await server({}, { redirect_uris: [WEB_REDIRECT] });
    expectPage(await ask(w, { redirect_uri: "https://claude.ai:8443/api/mcp/auth_callback" }), 400);
    expect((await ask(w, { redirect_uri: WEB_REDIRECT })).kind).toBe("consent");
  });

  test("no redirect_uri: the one registered, when there is exactly one (RFC 6749 §3.1.2.3)", async () => {
    const p = await consentShown(w, await ask(w, { redirect_uri: null }));
    expect(p.redirectUri).toBe(REDIRECT);
    w = await server({}, { redirect_uris: [REDIRECT, "http://127.0.0.1:9999/other"] });
    expectPage(await ask(w, { redirect_uri: null }), 400, "incomplete");
    expectNothingStored(w);
  });

  test("a registered redirect_uri the allowlist no longer allows is refused", async () => {
    w = await server({ redirectUriAllowlist: ["https://claude.ai/api/mcp/auth_callback"] });
    expectPage(await ask(w), 400, "redirect");
    expectNothingStored(w);
  });

  test("a foreign redirect URI is checked before anything else: no error of the request is sent to it", async () => {
    // A request wrong in every way, with a foreign redirect URI, must not bounce its error to that URI (an open
    // redirector, RFC 9700 §4.11).
    const o = await ask(w, { redirect_uri: "https://evil.example/cb", response_type: "token", code_challenge: null });
    expectPage(o, 400);
  });
});

describe("request errors go back to the client with state and iss (RFC 6749 §4.1.2.1, RFC 9207 §2)", () => {
  test("response_type other than code → unsupported_response_type (OAuth 2.1 §4.1.1: no implicit grant)", async () => {
    for (const response_type of ["token", "code token", "id_token", "none"]) {
      expectClientError(await ask(w, { response_type }), "unsupported_response_type");
    }
    expectNothingStored(w);
  });

  test("no response_type → invalid_request, not unsupported_response_type (RFC 6749 §4.1.2.1)", async () => {
    // RFC 6749 §4.1.2.1: invalid_request — "the request is missing a required parameter"; unsupported_response_type
    // is for a value the server does not support.
    for (const response_type of [null, ""]) {
      const params = expectClientError(await ask(w, { response_type }), "invalid_request");
      expect(params.get("error_description")).toContain("response_type is required");
    }
    expectNothingStored(w);
  });

  test("no code_challenge → invalid_request (OAuth 2.1 §4.1.1, RFC 7636 §4.4.1)", async () => {
    // RFC 7636 §4.4.1: a server that requires PKCE MUST answer a request without code_challenge with invalid_request.
    const params = expectClientError(await ask(w, { code_challenge: null }), "invalid_request");
    expect(params.get("error_description")).toContain("code_challenge");
    expectNothingStored(w);
  });

  test("code_challenge_method plain or absent → invalid_request: S256 only (RFC 7636 §4.4.1, §4.2)", async () => {
    // RFC 7636 §4.2: a client capable of S256 MUST use it; OAuth 2.1 and the MCP authorization spec require it.
    for (const method of ["plain", "s256", "S512", null]) {
      const params = expectClientError(await ask(w, { code_challenge_method: method }), "invalid_request");
      expect(params.get("error_description")).toContain("S256");
    }
    expectNothingStored(w);
  });

  test("a code_challenge that is not a base64url SHA-256 → invalid_request (RFC 7636 §4.2)", async () => {
    const good = pkce().challenge;
    for (const code_challenge of ["short", `${good}A`, `${good.slice(0, 42)}=`, `${good.slice(0, 42)}+`]) {
      expectClientError(await ask(w, { code_challenge }), "invalid_request");
    }
    expectNothingStored(w);
  });

  test("a resource not served here → invalid_target (RFC 8707 §2)", async () => {
    // RFC 8707 §2: an unknown or unacceptable resource is invalid_target.
    for (const resource of ["https://evil.example/mcp", `${ISSUER}/elsewhere`, `${RESOURCE}#frag`, "mcp"]) {
      expectClientError(await ask(w, { resource }), "invalid_target");
    }
    expectNothingStored(w);
  });

  test("two resources at once → invalid_target", async () => {
    const { challenge } = pkce();
    const params = new URLSearchParams({
      response_type: "code",
      client_id: w.client.client_id,
      redirect_uri: REDIRECT,
      code_challenge: challenge,
      code_challenge_method: "S256",
      state: "st4te",
    });
    params.append("resource", RESOURCE);
    params.append("resource", OTHER_RESOURCE);
    const o = await authorize(w.as, { params, headers: userHeaders(), peer: PROXY, session: undefined });
    expectClientError(o, "invalid_target");
    expectNothingStored(w);
  });

  test("request objects and non-query response modes are refused", async () => {
    expectClientError(await ask(w, { request: "eyJ..." }), "request_not_supported");
    expectClientError(await ask(w, { request_uri: "urn:x" }), "request_not_supported");
    expectClientError(await ask(w, { response_mode: "fragment" }), "invalid_request");
    expectNothingStored(w);
  });

  test("state comes back exactly as sent, and is left out when the client sent none (RFC 6749 §4.1.2.1)", async () => {
    const odd = "a b&c=d/é";
    expectClientError(await ask(w, { response_type: "token", state: odd }), "unsupported_response_type", odd);
    expectClientError(await ask(w, { response_type: "token", state: null }), "unsupported_response_type", null);
  });

  test("prompt=none when consent is needed → consent_required, nothing asked", async () => {
    expectClientError(await ask(w, { prompt: "none" }), "consent_required");
    expectNothingStored(w);
  });

  test("a browser the proxy does not vouch for: a page, no redirect, nothing stored", async () => {
    // Forged identity headers from an address outside trustedSourceCidrs are not believed.
    expectPage(await ask(w, {}, { peer: "203.0.113.9" }), 403);
    expectPage(await ask(w, {}, { headers: new Headers() }), 403);
    expectNothingStored(w);
  });
});

describe("scopes (RFC 6749 §3.3)", () => {
  test("unknown scopes are dropped, never granted; known ones kept, duplicates once", async () => {
    // RFC 6749 §3.3: the server MAY fully or partially ignore the scope requested (the token response says which).
    const p = await consentShown(w, await ask(w, { scope: "mcp admin extra mcp openid" }));
    expect(p.scopes).toEqual(["mcp", "extra"]);
  });

  test("only unknown scopes, or none at all: the required scopes", async () => {
    expect((await consentShown(w, await ask(w, { scope: "openid email profile" }))).scopes).toEqual(["mcp"]);
    expect((await consentShown(w, await ask(w, { scope: null }))).scopes).toEqual(["mcp"]);
  });

  test("per-tool scopes the gateway adds are grantable", async () => {
    w.as.extraScopes = () => ["tools:write"];
    expect((await consentShown(w, await ask(w, { scope: "mcp tools:write" }))).scopes).toEqual(["mcp", "tools:write"]);
  });
});

describe("consent: the pending authorization", () => {
  test("a valid request asks for consent: nothing issued yet, the request bound to all it said", async () => {
    const { challenge } = pkce();
    const o = await ask(w, { scope: "mcp extra", resource: OTHER_RESOURCE }, { challenge });
    const p = await consentShown(w, o);
    expect(p).toMatchObject({
      client: { client_id: "app" },
      redirectUri: REDIRECT,
      state: "st4te",
      codeChallenge: challenge,
      scopes: ["mcp", "extra"],
      resource: OTHER_RESOURCE,
      user: { subject: "alice", groups: ["staff"], email: "alice@x.test", method: "trusted-header" },
      expiresAt: w.clock.now() + PENDING_TTL_MS,
    });
    // The form is bound by unguessable, distinct values.
    expect(new Set([p.id, p.csrf, p.browser]).size).toBe(3);
    expect(await w.pendings.peek(p.id)).toEqual(p);
    expect(w.store.codesIssued).toEqual([]);
    expect(await w.store.getConsent("alice", "app")).toBeUndefined();
  });

  test("approve → 303 to the redirect URI with code, state and iss; the code is bound to user, client, scope, resource", async () => {
    const { verifier, challenge } = pkce();
    const p = await consentShown(w, await ask(w, { scope: "mcp extra" }, { challenge }));
    const { params, status, url } = redirectOf(await answer(w, p));
    // RFC 9700 §4.12: the answer to a form POST is a 303, so the browser does not re-POST to the client.
    expect(status).toBe(303);
    expect(`${url.origin}${url.pathname}`).toBe(REDIRECT);
    expect(params.get("state")).toBe("st4te");
    expect(params.get("iss")).toBe(ISSUER); // RFC 9207 §2
    expect(w.store.codesIssued).toEqual([
      expect.objectContaining({
        client_id: "app",
        redirect_uri: REDIRECT,
        code_challenge: challenge,
        scopes: ["mcp", "extra"],
        resource: RESOURCE,
        subject: "alice",
        email: "alice@x.test",
      }),
    ]);
    const tokens = await redeem(w, params.get("code") as string, verifier);
    expect(tokens.scope).toBe("mcp extra");
    const v = await w.as.tokens.verify(tokens.access_token, RESOURCE, w.clock.now());
    expect(v.ok && v.claims).toMatchObject({ sub: "alice", client_id: "app", aud: RESOURCE, scope: "mcp extra" });
  });

  test("the approval is remembered per (user, client): the next request gets a code at once; prompt=consent asks again", async () => {
    await answer(w, await consentShown(w, await ask(w)));
    expect(await w.store.getConsent("alice", "app")).toMatchObject({ scopes: ["mcp"], granted_at: w.clock.now() });
    const again = redirectOf(await ask(w));
    expect(again.params.get("code")).toBeString();
    expect(again.params.get("state")).toBe("st4te");
    expect((await ask(w, { prompt: "consent" })).kind).toBe("consent");
    // Another user, or a wider request, is asked.
    expect((await ask(w, {}, { headers: userHeaders("bob") })).kind).toBe("consent");
    expect((await ask(w, { scope: "mcp extra" })).kind).toBe("consent");
  });

  test("deny → 303 access_denied with state and iss; no code, no consent (RFC 6749 §4.1.2.1)", async () => {
    const p = await consentShown(w, await ask(w));
    const o = await answer(w, p, { decision: "deny" });
    // RFC 6749 §4.1.2.1: access_denied — the resource owner denied the request.
    expectClientError(o, "access_denied");
    expect(redirectOf(o).status).toBe(303);
    expect(w.store.codesIssued).toEqual([]);
    expect(await w.store.getConsent("alice", "app")).toBeUndefined();
    // The pending request is gone: the denial cannot be turned into an approval afterwards.
    expect(await w.pendings.peek(p.id)).toBeUndefined();
    expectPage(await answer(w, p), 403);
    expect(w.store.codesIssued).toEqual([]);
  });

  test("the user may untick optional scopes; required ones stay", async () => {
    const p = await consentShown(w, await ask(w, { scope: "mcp extra" }));
    await answer(w, p, { extra: [["narrowable", "1"]] }); // no box ticked
    expect(w.store.codesIssued.map((c) => c.scopes)).toEqual([["mcp"]]);
    expect((await w.store.getConsent("alice", "app"))?.scopes).toEqual(["mcp"]);
  });

  test("the consent form cannot widen the request: a scope ticked but not asked for is not granted", async () => {
    const p = await consentShown(w, await ask(w, { scope: "mcp" }));
    const ticked: [string, string][] = [
      ["narrowable", "1"],
      ["scope", "mcp"],
      ["scope", "extra"],
    ];
    await answer(w, p, { extra: ticked });
    expect(w.store.codesIssued.map((c) => c.scopes)).toEqual([["mcp"]]);
  });

  test("scopes the backends advertise are offered beyond the request, and granted only when ticked", async () => {
    w = await server({ offerBackendScopes: true });
    w.as.extraScopes = () => ["toolbox:read_only", "toolbox:read_write"];
    const asked: string[] = [];
    w.as.backendScopes = async (resource) => {
      asked.push(resource);
      return ["toolbox:read_only", "toolbox:read_write", "mcp", "not-supported"];
    };
    const p = await consentShown(w, await ask(w, { scope: "mcp" }));
    expect(asked).toEqual([RESOURCE]);
    // What the app asked for stays as asked; the rest is offered (unticked on the page), unsupported ones never.
    expect(p.scopes).toEqual(["mcp"]);
    expect(p.offered).toEqual(["toolbox:read_only", "toolbox:read_write"]);
    const ticked: [string, string][] = [
      ["narrowable", "1"],
      ["scope", "mcp"],
      ["scope", "toolbox:read_only"],
      ["scope", "invented"],
    ];
    await answer(w, p, { extra: ticked });
    expect(w.store.codesIssued.map((c) => c.scopes)).toEqual([["mcp", "toolbox:read_only"]]);
    expect((await w.store.getConsent("alice", "app"))?.scopes).toEqual(["mcp", "toolbox:read_only"]);
  });

  test("nothing ticked among the offered scopes grants none of them; by default no backend is asked", async () => {
    w = await server({ offerBackendScopes: "1s" });
    w.as.extraScopes = () => ["toolbox:read_only"];
    w.as.backendScopes = async () => ["toolbox:read_only"];
    const p = await consentShown(w, await ask(w, { scope: "mcp" }));
    await answer(w, p, { extra: [["narrowable", "1"]] });
    expect(w.store.codesIssued.map((c) => c.scopes)).toEqual([["mcp"]]);

    w = await server();
    w.as.backendScopes = async () => {
      throw new Error("must not be asked");
    };
    expect((await consentShown(w, await ask(w, { scope: "mcp" }))).offered).toBeUndefined();
  });

  test("clients listed in consentSkipClients get a code without a consent page", async () => {
    w = await server({ consentSkipClients: ["app"] });
    const { params, status } = redirectOf(await ask(w));
    expect(status).toBe(302);
    expect(params.get("code")).toBeString();
    expect(w.store.pendingsPut).toEqual([]);
  });

  test('consent: "skip" (mcp serve\'s flow): every client gets a code for the user the proxy names, no page', async () => {
    w = await server({ consent: "skip" });
    const { params, status } = redirectOf(await ask(w));
    expect(status).toBe(302);
    expect(params.get("code")).toBeString();
    expect(params.get("state")).toBe("st4te");
    expect(w.store.pendingsPut).toEqual([]);
    expect(w.store.consentsPut).toEqual([]);
    // Without a user the proxy names, nothing is issued: the same page as ever.
    expect((await ask(w, {}, { headers: new Headers() })).kind).toBe("page");
  });
});

describe("redirect_uri at the token request: only when the authorization request sent it (RFC 6749 §4.1.3)", () => {
  /** The code of an approved request, and the token request for it with the given redirect_uri (null: none). */
  async function codeFor(params: Record<string, string | null>) {
    const { verifier, challenge } = pkce();
    const p = await consentShown(w, await ask(w, { prompt: "consent", ...params }, { challenge }));
    const code = redirectOf(await answer(w, p)).params.get("code") as string;
    return (redirectUri: string | null) => {
      const form = new URLSearchParams({
        grant_type: "authorization_code",
        code,
        code_verifier: verifier,
        client_id: w.client.client_id,
      });
      if (redirectUri !== null) form.set("redirect_uri", redirectUri);
      return token(w.as, new Headers(), form);
    };
  }

  test("omitted at /authorize (one URI registered): the code remembers it, and /token may omit it too", async () => {
    const redeemWith = await codeFor({ redirect_uri: null });
    expect(w.store.codesIssued.at(-1)).toMatchObject({ redirect_uri: REDIRECT, redirect_uri_omitted: true });
    expect((await redeemWith(null)).access_token).toBeString();
    // When it is sent anyway, it must be that URI (RFC 6749 §4.1.3: identical).
    expect((await (await codeFor({ redirect_uri: null }))(REDIRECT)).access_token).toBeString();
    await expect((await codeFor({ redirect_uri: null }))("http://127.0.0.1:9999/other")).rejects.toMatchObject({
      error: "invalid_grant",
    });
  });

  test("sent at /authorize: /token must send it (invalid_request), identical (invalid_grant)", async () => {
    const redeemWith = await codeFor({});
    expect(w.store.codesIssued.at(-1)?.redirect_uri_omitted).toBeUndefined();
    await expect(redeemWith(null)).rejects.toMatchObject({ error: "invalid_request" });
    await expect(redeemWith("http://127.0.0.1:9999/other")).rejects.toMatchObject({ error: "invalid_grant" });
  });

  test("a consent given earlier (a code at once, 302) remembers the omission too", async () => {
    await answer(w, await consentShown(w, await ask(w)));
    const { verifier, challenge } = pkce();
    const code = redirectOf(await ask(w, { redirect_uri: null }, { challenge })).params.get("code") as string;
    const form = { grant_type: "authorization_code", code, code_verifier: verifier, client_id: w.client.client_id };
    expect((await token(w.as, new Headers(), new URLSearchParams(form))).access_token).toBeString();
  });
});

describe("consent: one use, bound to its browser and user", () => {
  test("approved twice: the second answer is refused; one code only", async () => {
    const p = await consentShown(w, await ask(w));
    redirectOf(await answer(w, p));
    expectPage(await answer(w, p), 403);
    expect(w.store.codesIssued.length).toBe(1);
  });

  test("two answers at the same moment: exactly one code", async () => {
    const p = await consentShown(w, await ask(w));
    const outcomes = await Promise.all([answer(w, p), answer(w, p), answer(w, p)]);
    expect(outcomes.filter((o) => o.kind === "redirect").length).toBe(1);
    expect(w.store.codesIssued.length).toBe(1);
  });

  test("a wrong CSRF token or a missing consent cookie is refused, and the request is kept for the real form", async () => {
    // The consent form must not be answerable by a cross-site POST (CSRF): both its token and its cookie are checked.
    const p = await consentShown(w, await ask(w));
    expectPage(await answer(w, p, { csrf: "forged" }), 403);
    expectPage(await answer(w, p, { cookie: null }), 403);
    expectPage(await answer(w, p, { cookie: "another-browser" }), 403);
    expect(w.store.codesIssued).toEqual([]);
    expect(await w.pendings.peek(p.id)).toBeDefined();
    expect(redirectOf(await answer(w, p)).params.get("code")).toBeString();
  });

  test("another user cannot answer someone's consent form", async () => {
    const p = await consentShown(w, await ask(w));
    expectPage(await answer(w, p, { headers: userHeaders("mallory") }), 403, "Another user");
    expect(w.store.codesIssued).toEqual([]);
    expect(await w.store.getConsent("mallory", "app")).toBeUndefined();
    expect(await w.store.getConsent("alice", "app")).toBeUndefined();
  });

  test("an unknown request id is refused", async () => {
    const p = await consentShown(w, await ask(w));
    expectPage(await answer(w, { ...p, id: "no-such-request" }), 403);
    expect(w.store.codesIssued).toEqual([]);
  });
});

describe("consent: a pending request expires by the clock", () => {
  test("still good at the end of its ten minutes", async () => {
    const p = await consentShown(w, await ask(w));
    w.clock.advance(PENDING_TTL_MS);
    expect(redirectOf(await answer(w, p)).params.get("code")).toBeString();
  });

  test("expired: refused with a page, no code, no consent, and the request is gone", async () => {
    const p = await consentShown(w, await ask(w));
    w.clock.advance(PENDING_TTL_MS + 1);
    expectPage(await answer(w, p), 400, "expired");
    expect(w.store.codesIssued).toEqual([]);
    expect(await w.store.getConsent("alice", "app")).toBeUndefined();
    expect(await w.pendings.peek(p.id)).toBeUndefined();
  });

  test("expired requests are swept from the store", async () => {
    const p = await consentShown(w, await ask(w));
    w.clock.advance(PENDING_TTL_MS + 1);
    await w.as.maintain();
    expect(await w.pendings.peek(p.id)).toBeUndefined();
  });
});
