// The authorization server's rules, one by one, through app.handle, with a clock the test moves. Each attack from
// the security checklist is tried and must be refused with the documented error, changing nothing.

import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { SignJWT } from "jose";
import { GatehouseMetrics } from "../../src/gatehouse-metrics.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import { type TestApp, testApp } from "../helpers/app.ts";
import { FakeClock } from "../helpers/clock.ts";
import {
  authorizeQuery,
  authorizeTo,
  code,
  ISSUER,
  oauthConfig,
  pkce,
  REDIRECT,
  RESOURCE,
  register,
  tokenRequest,
  tokens,
  USER,
} from "../helpers/oauth-flow.ts";

let t: TestApp;
let store: MemoryStore;
let clock: FakeClock;

async function setup(
  extra: Record<string, unknown> = {},
  resolve?: (h: string) => Promise<{ address: string; family: number }[]>,
) {
  store = new MemoryStore();
  clock = new FakeClock();
  t = await testApp(oauthConfig({ scopesSupported: ["mcp", "extra"], requiredScopes: ["mcp"], ...extra }), {
    deps: { store, clock, ...(resolve ? { resolve } : {}) },
  });
}

beforeEach(async () => {
  await setup();
});
afterEach(async () => {
  await t.close();
});

const mcpPost = (token: string, extraHeaders: Record<string, string> = {}) =>
  t.request("/mcp", {
    method: "POST",
    headers: {
      authorization: `Bearer ${token}`,
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      ...extraHeaders,
    },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "t", version: "1" } },
    }),
  });

async function expectOAuthError(res: Response, status: number, error: string) {
  expect(res.status).toBe(status);
  expect(res.headers.get("cache-control")).toBe("no-store");
  expect(((await res.json()) as { error: string }).error).toBe(error);
}

function locationParams(res: Response): URLSearchParams {
  const l = res.headers.get("location");
  if (!l) throw new Error(`no redirect (status ${res.status})`);
  return new URL(l).searchParams;
}

describe("discovery (RFC 8414, RFC 9728)", () => {
  test("AS metadata advertises what MCP clients check", async () => {
    const res = await t.request("/.well-known/oauth-authorization-server");
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    const m = (await res.json()) as Record<string, unknown>;
    expect(m).toMatchObject({
      issuer: ISSUER,
      authorization_endpoint: `${ISSUER}/authorize`,
      token_endpoint: `${ISSUER}/token`,
      registration_endpoint: `${ISSUER}/register`,
      code_challenge_methods_supported: ["S256"],
      response_types_supported: ["code"],
      grant_types_supported: ["authorization_code", "refresh_token"],
      client_id_metadata_document_supported: true,
      authorization_response_iss_parameter_supported: true,
    });
    expect(m.token_endpoint_auth_methods_supported).toContain("none");
    expect(JSON.stringify(m)).not.toContain("implicit");
    expect(JSON.stringify(m)).not.toContain('"password"');
  });

  test("protected resource metadata at the path-inserted URL and the root, issuer byte-identical", async () => {
    for (const path of ["/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"]) {
      const prm = (await (await t.request(path)).json()) as Record<string, unknown>;
      expect(prm).toEqual({
        resource: RESOURCE,
        authorization_servers: [ISSUER],
        scopes_supported: ["mcp"],
        bearer_methods_supported: ["header"],
        resource_name: "Gatehouse MCP gateway",
      });
    }
  });

  test("X-Forwarded-Host/Proto, even from a trusted proxy, never change the issuer or the resource (checklist #16)", async () => {
    await t.close();
    const config = oauthConfig({ scopesSupported: ["mcp"] });
    t = await testApp({ ...config, gateway: { trustedProxies: ["127.0.0.1/32"], allowedHosts: ["*"] } });
    const forged = { "x-forwarded-host": "evil.example", "x-forwarded-proto": "http", host: "evil.example" };
    const as = (await (await t.request("/.well-known/oauth-authorization-server", { headers: forged })).json()) as {
      issuer: string;
      token_endpoint: string;
    };
    expect(as.issuer).toBe(ISSUER);
    expect(as.token_endpoint.startsWith(ISSUER)).toBe(true);
    const prm = (await (await t.request("/.well-known/oauth-protected-resource/mcp", { headers: forged })).json()) as {
      resource: string;
      authorization_servers: string[];
    };
    expect(prm).toMatchObject({ resource: RESOURCE, authorization_servers: [ISSUER] });
    const challenge = (await t.rpc({ jsonrpc: "2.0", id: 1, method: "tools/list" }, forged)).headers.get(
      "www-authenticate",
    );
    expect(challenge).toContain(`${ISSUER}/.well-known/oauth-protected-resource/mcp`);
    expect(challenge).not.toContain("evil.example");
  });

  test("OIDC discovery has the fields OIDC-shaped parsers require", async () => {
    const d = (await (await t.request("/.well-known/openid-configuration")).json()) as Record<string, unknown>;
    expect(d.jwks_uri).toBe(`${ISSUER}/jwks`);
    expect(d.subject_types_supported).toEqual(["public"]);
    expect(d.code_challenge_methods_supported).toEqual(["S256"]);
  });

  test("unknown well-known paths are 404 JSON", async () => {
    const res = await t.request("/.well-known/oauth-authorization-server/other-tenant");
    expect(res.status).toBe(404);
    expect(res.headers.get("content-type")).toContain("application/json");
  });

  test("the JWKS publishes one ES256 key, without private parts", async () => {
    const jwks = (await (await t.request("/jwks")).json()) as { keys: Record<string, unknown>[] };
    expect(jwks.keys.length).toBe(1);
    expect(jwks.keys[0]).toMatchObject({ kty: "EC", crv: "P-256", alg: "ES256", use: "sig" });
    expect(jwks.keys[0]?.d).toBeUndefined();
  });

  test("an issuer with a path gets path-inserted metadata", async () => {
    await t.close();
    await setup({ issuerUrl: "https://gh.example/tenant", resourceUrl: "https://gh.example/tenant/mcp" });
    const m = (await (await t.request("/.well-known/oauth-authorization-server/tenant")).json()) as { issuer: string };
    expect(m.issuer).toBe("https://gh.example/tenant");
    const prm = (await (await t.request("/.well-known/oauth-protected-resource/tenant/mcp")).json()) as {
      resource: string;
    };
    expect(prm.resource).toBe("https://gh.example/tenant/mcp");
  });
});

describe("registration (RFC 7591)", () => {
  test("a public client: 201 echoing its metadata, no nulls, no secret", async () => {
    const c = await register(t, { client_uri: "https://app.example", scope: "mcp" });
    expect(c).toMatchObject({
      redirect_uris: [REDIRECT],
      token_endpoint_auth_method: "none",
      client_name: "Test",
      grant_types: ["authorization_code", "refresh_token"],
    });
    expect(c.client_secret).toBeUndefined();
    expect(JSON.stringify(c)).not.toContain("null");
  });

  test("a confidential client gets a secret once; only its hash is stored", async () => {
    const c = await register(t, { token_endpoint_auth_method: "client_secret_post" });
    expect(typeof c.client_secret).toBe("string");
    expect(c.client_secret_expires_at).toBe(0);
    expect(JSON.stringify(await store.getClient(c.client_id))).not.toContain(c.client_secret as string);
  });

  const bad: [string, string[]][] = [
    ["userinfo", ["https://claude.ai@evil.example/cb"]],
    ["fragment", ["https://claude.ai/api/mcp/auth_callback#frag"]],
    ["path traversal", ["https://chatgpt.com/connector/oauth/../../evil"]],
    ["encoded traversal", ["https://chatgpt.com/connector/oauth/%2e%2e/%2e%2e/evil"]],
    ["http on a public host", ["http://claude.ai/api/mcp/auth_callback"]],
    ["a host not on the allowlist", ["https://evil.example/callback"]],
    ["a custom scheme not on the allowlist", ["someapp://callback"]],
    ["javascript:", ["javascript:alert(1)"]],
  ];
  for (const [name, uris] of bad) {
    test(`refuses a redirect URI with ${name} (invalid_redirect_uri), registering nothing`, async () => {
      const res = await t.request("/register", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ redirect_uris: uris, token_endpoint_auth_method: "none" }),
      });
      await expectOAuthError(res, 400, "invalid_redirect_uri");
      expect((await store.stats()).clients).toBe(0);
    });
  }

  test("custom schemes pass when listed; loopback http passes on any port", async () => {
    await t.close();
    await setup({ redirectUriAllowlist: ["cursor://anysphere.cursor-mcp/oauth/callback", "http://127.0.0.1/*"] });
    await register(t, { redirect_uris: ["cursor://anysphere.cursor-mcp/oauth/callback", "http://127.0.0.1:54321/cb"] });
  });

  test("registrationEnabled: false — gone from the metadata, and a client that registers anyway is refused, logged", async () => {
    await t.close();
    await setup({ registrationEnabled: false });
    const meta = (await (await t.request("/.well-known/oauth-authorization-server")).json()) as Record<string, unknown>;
    expect(meta.registration_endpoint).toBeUndefined();
    const res = await t.request("/register", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ redirect_uris: [REDIRECT], token_endpoint_auth_method: "none" }),
    });
    expect(res.status).toBe(403);
    const body = (await res.json()) as { error: string; error_description: string };
    expect(body.error).toBe("access_denied");
    expect(body.error_description).toContain("oauthAs.registrationEnabled: false");
    expect((await store.stats()).clients).toBe(0);
    expect(t.lines.some((l) => l.includes("registration refused") && l.includes("registrationEnabled"))).toBe(true);
  });

  test("malformed metadata is invalid_client_metadata", async () => {
    for (const body of [
      { redirect_uris: [REDIRECT], token_endpoint_auth_method: "private_key_jwt" },
      { redirect_uris: [REDIRECT], response_types: ["token"] },
      { redirect_uris: [REDIRECT], client_uri: "ftp://x" },
    ]) {
      const res = await t.request("/register", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      await expectOAuthError(res, 400, "invalid_client_metadata");
    }
    const notJson = await t.request("/register", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{",
    });
    await expectOAuthError(notJson, 400, "invalid_client_metadata");
  });
});

describe("authorization endpoint", () => {
  test("the happy path: consent, then a code with state and iss (RFC 9207)", async () => {
    const c = await register(t);
    const { challenge } = pkce();
    const res = await authorizeTo(t, authorizeQuery(c.client_id, challenge));
    expect(res.status).toBe(303);
    const p = locationParams(res);
    expect(p.get("code")).toBeTruthy();
    expect(p.get("state")).toBe("st4te");
    expect(p.get("iss")).toBe(ISSUER);
  });

  test("an unknown client or an unregistered redirect_uri: an error page, never a redirect", async () => {
    const c = await register(t);
    const { challenge } = pkce();
    for (const q of [
      authorizeQuery("no-such-client", challenge),
      authorizeQuery(c.client_id, challenge, { redirect_uri: "https://evil.example/cb" }),
      authorizeQuery(c.client_id, challenge, { redirect_uri: "http://127.0.0.1:9999/other" }),
      authorizeQuery(c.client_id, challenge, { redirect_uri: "http://127.0.0.1:9999/callback#x" }),
      authorizeQuery(c.client_id, challenge, { redirect_uri: "http://user@127.0.0.1:9999/callback" }),
    ]) {
      const res = await t.request(q, { headers: USER });
      expect(res.status).toBe(400);
      expect(res.headers.get("location")).toBeNull();
      expect(res.headers.get("content-type")).toContain("text/html");
      expect(res.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
    }
  });

  test("a loopback redirect_uri may use another port (RFC 8252 §7.3)", async () => {
    const c = await register(t);
    const res = await authorizeTo(
      t,
      authorizeQuery(c.client_id, pkce().challenge, { redirect_uri: "http://127.0.0.1:40404/callback" }),
    );
    expect(res.headers.get("location")).toStartWith("http://127.0.0.1:40404/callback?code=");
  });

  const pkceCases: [string, Record<string, string | null>, string][] = [
    ["missing code_challenge", { code_challenge: null }, "invalid_request"],
    ["plain", { code_challenge_method: "plain" }, "invalid_request"],
    ["no method (defaults to plain)", { code_challenge_method: null }, "invalid_request"],
    ["response_type token", { response_type: "token" }, "unsupported_response_type"],
    ["a resource served elsewhere", { resource: "https://other.example/mcp" }, "invalid_target"],
  ];
  for (const [name, change, error] of pkceCases) {
    test(`${name} → ${error}, redirected with state and iss, no code issued`, async () => {
      const c = await register(t);
      const res = await t.request(authorizeQuery(c.client_id, pkce().challenge, change), { headers: USER });
      expect(res.status).toBe(302);
      const p = locationParams(res);
      expect(p.get("error")).toBe(error);
      expect(p.get("state")).toBe("st4te");
      expect(p.get("iss")).toBe(ISSUER);
      expect(p.get("code")).toBeNull();
    });
  }

  test("resource is compared canonically (scheme and host case, trailing slash)", async () => {
    const c = await register(t);
    const res = await authorizeTo(
      t,
      authorizeQuery(c.client_id, pkce().challenge, { resource: "HTTPS://GH.EXAMPLE/mcp/" }),
    );
    expect(locationParams(res).get("code")).toBeTruthy();
  });

  test("forged trusted headers from an untrusted address: 403 page, nothing remembered", async () => {
    const c = await register(t);
    const res = await t.request(authorizeQuery(c.client_id, pkce().challenge), { headers: USER, peer: "127.0.0.2" });
    expect(res.status).toBe(403);
    expect(await res.text()).toContain("127.0.0.2");
    expect(res.headers.get("set-cookie")).toBeNull();
  });

  test("no user header: 403 page naming the header", async () => {
    const c = await register(t);
    const res = await t.request(authorizeQuery(c.client_id, pkce().challenge), { headers: {} });
    expect(res.status).toBe(403);
    expect(await res.text()).toContain("x-forwarded-user");
  });
});

describe("consent", () => {
  test("the page names the client, the host it returns to and the scopes; it cannot be framed", async () => {
    const c = await register(t, { client_name: "Claude <script>" });
    const res = await t.request(authorizeQuery(c.client_id, pkce().challenge), { headers: USER });
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain("Claude &lt;script&gt;");
    expect(html).toContain("127.0.0.1:9999");
    expect(html).toContain("<code>mcp</code>");
    expect(res.headers.get("x-frame-options")).toBe("DENY");
    expect(res.headers.get("referrer-policy")).toBe("no-referrer");
    expect(res.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
    expect(res.headers.get("set-cookie")).toMatch(
      /^__Host-gatehouse-consent=[^;]+; Path=\/; HttpOnly; SameSite=Lax; Max-Age=600; Secure$/,
    );
  });

  test("deny → access_denied with state and iss, 303", async () => {
    const c = await register(t);
    const res = await authorizeTo(t, authorizeQuery(c.client_id, pkce().challenge), { decision: "deny" });
    expect(res.status).toBe(303);
    const p = locationParams(res);
    expect(p.get("error")).toBe("access_denied");
    expect(p.get("state")).toBe("st4te");
    expect(p.get("iss")).toBe(ISSUER);
    expect(await store.getConsent("alice", c.client_id)).toBeUndefined();
  });

  test("a POST without the CSRF token, or without the cookie, is refused; nothing is approved", async () => {
    const c = await register(t);
    const page = await t.request(authorizeQuery(c.client_id, pkce().challenge), { headers: USER });
    const html = await page.text();
    const requestId = /name="request_id" value="([^"]+)"/.exec(html)?.[1] as string;
    const csrf = /name="csrf" value="([^"]+)"/.exec(html)?.[1] as string;
    const cookie = (page.headers.get("set-cookie") ?? "").split(";")[0] as string;
    const post = (form: Record<string, string>, headers: Record<string, string>) =>
      t.request("/authorize", {
        method: "POST",
        headers: { ...USER, ...headers, "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams(form).toString(),
      });
    const noCsrf = await post({ request_id: requestId, decision: "approve" }, { cookie });
    expect(noCsrf.status).toBe(403);
    const noCookie = await post({ request_id: requestId, csrf, decision: "approve" }, {});
    expect(noCookie.status).toBe(403);
    expect(await store.getConsent("alice", c.client_id)).toBeUndefined();
    // the genuine form still works afterwards
    const ok = await post({ request_id: requestId, csrf, decision: "approve" }, { cookie });
    expect(ok.status).toBe(303);
  });

  test("another user cannot complete someone's consent form", async () => {
    const c = await register(t);
    const page = await t.request(authorizeQuery(c.client_id, pkce().challenge), { headers: USER });
    const html = await page.text();
    const form = {
      request_id: /name="request_id" value="([^"]+)"/.exec(html)?.[1] as string,
      csrf: /name="csrf" value="([^"]+)"/.exec(html)?.[1] as string,
      decision: "approve",
    };
    const res = await t.request("/authorize", {
      method: "POST",
      headers: {
        "x-forwarded-user": "mallory",
        cookie: (page.headers.get("set-cookie") ?? "").split(";")[0] as string,
        "content-type": "application/x-www-form-urlencoded",
      },
      body: new URLSearchParams(form).toString(),
    });
    expect(res.status).toBe(403);
  });

  test("approved once per (user, client), then skipped; prompt=consent asks again", async () => {
    const c = await register(t);
    await code(t, c.client_id, pkce().challenge);
    const direct = await t.request(authorizeQuery(c.client_id, pkce().challenge), { headers: USER });
    expect(direct.status).toBe(302);
    expect(locationParams(direct).get("code")).toBeTruthy();
    const again = await t.request(authorizeQuery(c.client_id, pkce().challenge, { prompt: "consent" }), {
      headers: USER,
    });
    expect(again.status).toBe(200);
    const bob = await t.request(authorizeQuery(c.client_id, pkce().challenge), {
      headers: { "x-forwarded-user": "bob" },
    });
    expect(bob.status).toBe(200);
  });

  test("clients listed in consentSkipClients skip the page", async () => {
    await t.close();
    await setup();
    const c = await register(t);
    await t.close();
    // same store, new config listing the client
    t = await testApp(oauthConfig({ consentSkipClients: [c.client_id] }), { deps: { store, clock } });
    const res = await t.request(authorizeQuery(c.client_id, pkce().challenge), { headers: USER });
    expect(res.status).toBe(302);
  });
});

describe("token endpoint", () => {
  test("issues RFC 9068 tokens with no-store", async () => {
    const c = await register(t);
    const { verifier, challenge } = pkce();
    const res = await tokenRequest(t, {
      grant_type: "authorization_code",
      code: await code(t, c.client_id, challenge),
      redirect_uri: REDIRECT,
      code_verifier: verifier,
      client_id: c.client_id,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ token_type: "Bearer", expires_in: 3600, scope: "mcp" });
    const [header, payload] = (body.access_token as string)
      .split(".")
      .slice(0, 2)
      .map((p) => JSON.parse(Buffer.from(p, "base64url").toString()));
    expect(header).toMatchObject({ typ: "at+jwt", alg: "ES256" });
    expect(payload).toMatchObject({
      iss: ISSUER,
      aud: RESOURCE,
      sub: "alice",
      client_id: c.client_id,
      scope: "mcp",
      groups: ["staff"],
      roles: ["staff"],
    });
    for (const claim of ["jti", "iat", "exp"]) expect(payload[claim]).toBeDefined();
  });

  test("a wrong PKCE verifier or none at all → invalid_grant", async () => {
    const c = await register(t);
    const { challenge } = pkce();
    const wrong = await tokenRequest(t, {
      grant_type: "authorization_code",
      code: await code(t, c.client_id, challenge),
      redirect_uri: REDIRECT,
      code_verifier: pkce().verifier,
      client_id: c.client_id,
    });
    await expectOAuthError(wrong, 400, "invalid_grant");
    const missing = await tokenRequest(t, {
      grant_type: "authorization_code",
      code: await code(t, c.client_id, challenge),
      redirect_uri: REDIRECT,
      client_id: c.client_id,
    });
    await expectOAuthError(missing, 400, "invalid_grant");
    expect((await store.stats()).grants).toBe(0);
  });

  test("a replayed code is refused and revokes the tokens it produced (RFC 6749 §4.1.2)", async () => {
    const c = await register(t);
    const { verifier, challenge } = pkce();
    const theCode = await code(t, c.client_id, challenge);
    const form = {
      grant_type: "authorization_code",
      code: theCode,
      redirect_uri: REDIRECT,
      code_verifier: verifier,
      client_id: c.client_id,
    };
    const first = (await (await tokenRequest(t, form)).json()) as { access_token: string; refresh_token: string };
    expect((await mcpPost(first.access_token)).status).toBe(200);
    await expectOAuthError(await tokenRequest(t, form), 400, "invalid_grant");
    expect((await mcpPost(first.access_token)).status).toBe(401);
    await expectOAuthError(
      await tokenRequest(t, {
        grant_type: "refresh_token",
        refresh_token: first.refresh_token,
        client_id: c.client_id,
      }),
      400,
      "invalid_grant",
    );
  });

  test("an expired code is refused", async () => {
    const c = await register(t);
    const { verifier, challenge } = pkce();
    const theCode = await code(t, c.client_id, challenge);
    clock.advance(61_000);
    await expectOAuthError(
      await tokenRequest(t, {
        grant_type: "authorization_code",
        code: theCode,
        redirect_uri: REDIRECT,
        code_verifier: verifier,
        client_id: c.client_id,
      }),
      400,
      "invalid_grant",
    );
  });

  test("a code is bound to its client and redirect_uri", async () => {
    const a = await register(t);
    const b = await register(t);
    const { verifier, challenge } = pkce();
    const stolen = await code(t, a.client_id, challenge);
    await expectOAuthError(
      await tokenRequest(t, {
        grant_type: "authorization_code",
        code: stolen,
        redirect_uri: REDIRECT,
        code_verifier: verifier,
        client_id: b.client_id,
      }),
      400,
      "invalid_grant",
    );
    const other = await code(t, a.client_id, challenge);
    await expectOAuthError(
      await tokenRequest(t, {
        grant_type: "authorization_code",
        code: other,
        redirect_uri: "http://127.0.0.1:9999/elsewhere",
        code_verifier: verifier,
        client_id: a.client_id,
      }),
      400,
      "invalid_grant",
    );
  });

  test("Basic credentials with a bad percent-escape are the client's fault: 401 invalid_client, not 500", async () => {
    for (const path of ["/token", "/revoke", "/introspect"]) {
      const res = await t.request(path, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${btoa("%zz:%zz")}` },
        body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: "x", token: "x" }).toString(),
      });
      await expectOAuthError(res, 401, "invalid_client");
      expect(res.headers.get("www-authenticate")).toContain("Basic");
    }
  });

  test("client authentication: unknown client and wrong secret → 401 invalid_client; Basic works", async () => {
    await expectOAuthError(
      await tokenRequest(t, { grant_type: "refresh_token", refresh_token: "x", client_id: "ghost" }),
      401,
      "invalid_client",
    );
    const conf = await register(t, { token_endpoint_auth_method: "client_secret_basic" });
    const basic = (secret: string) => ({ authorization: `Basic ${btoa(`${conf.client_id}:${secret}`)}` });
    const bad = await tokenRequest(t, { grant_type: "refresh_token", refresh_token: "x" }, basic("wrong"));
    expect(bad.status).toBe(401);
    expect(bad.headers.get("www-authenticate")).toContain("Basic");
    const { verifier, challenge } = pkce();
    const ok = await tokenRequest(
      t,
      {
        grant_type: "authorization_code",
        code: await code(t, conf.client_id, challenge),
        redirect_uri: REDIRECT,
        code_verifier: verifier,
      },
      basic(conf.client_secret as string),
    );
    expect(ok.status).toBe(200);
    // a public client may not present a secret; a confidential one may not skip it
    const pub = await register(t);
    await expectOAuthError(
      await tokenRequest(t, {
        grant_type: "refresh_token",
        refresh_token: "x",
        client_id: pub.client_id,
        client_secret: "s",
      }),
      401,
      "invalid_client",
    );
    await expectOAuthError(
      await tokenRequest(t, { grant_type: "refresh_token", refresh_token: "x", client_id: conf.client_id }),
      401,
      "invalid_client",
    );
  });

  test("unsupported grant types and non-form bodies", async () => {
    await expectOAuthError(
      await tokenRequest(t, { grant_type: "password", username: "a", password: "b" }),
      400,
      "unsupported_grant_type",
    );
    await expectOAuthError(await tokenRequest(t, { grant_type: "client_credentials" }), 400, "unsupported_grant_type");
    const json = await t.request("/token", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    await expectOAuthError(json, 400, "invalid_request");
  });
});

describe("refresh tokens", () => {
  test("rotate on every use; a concurrent reuse within the grace window gets the same answer", async () => {
    const c = await register(t);
    const first = await tokens(t, c.client_id);
    const form = { grant_type: "refresh_token", refresh_token: first.refresh_token, client_id: c.client_id };
    const [a, b] = await Promise.all([tokenRequest(t, form), tokenRequest(t, form)]);
    const ja = (await a.json()) as { refresh_token: string; access_token: string };
    const jb = (await b.json()) as { refresh_token: string; access_token: string };
    expect(ja.refresh_token).not.toBe(first.refresh_token);
    expect(jb).toEqual(ja);
    const next = await tokenRequest(t, { ...form, refresh_token: ja.refresh_token });
    expect(next.status).toBe(200);
  });

  test("reuse after the grace window revokes the whole grant", async () => {
    const c = await register(t);
    const first = await tokens(t, c.client_id);
    const form = { grant_type: "refresh_token", refresh_token: first.refresh_token, client_id: c.client_id };
    const second = (await (await tokenRequest(t, form)).json()) as { refresh_token: string; access_token: string };
    clock.advance(31_000);
    await expectOAuthError(await tokenRequest(t, form), 400, "invalid_grant");
    await expectOAuthError(
      await tokenRequest(t, { ...form, refresh_token: second.refresh_token }),
      400,
      "invalid_grant",
    );
    expect((await mcpPost(second.access_token)).status).toBe(401);
  });

  test("a refresh may narrow scopes but not widen them; it is bound to its client", async () => {
    const c = await register(t);
    const first = await tokens(t, c.client_id);
    await expectOAuthError(
      await tokenRequest(t, {
        grant_type: "refresh_token",
        refresh_token: first.refresh_token,
        client_id: c.client_id,
        scope: "mcp extra",
      }),
      400,
      "invalid_scope",
    );
    const other = await register(t);
    await expectOAuthError(
      await tokenRequest(t, {
        grant_type: "refresh_token",
        refresh_token: first.refresh_token,
        client_id: other.client_id,
      }),
      400,
      "invalid_grant",
    );
  });
});

describe("the resource side: /mcp accepts only its own live tokens", () => {
  test("a good token opens a session", async () => {
    const c = await register(t);
    expect((await mcpPost((await tokens(t, c.client_id)).access_token)).status).toBe(200);
  });

  test("expired → 401 invalid_token with the challenge", async () => {
    const c = await register(t);
    const tk = await tokens(t, c.client_id);
    clock.advance(3_610_000); // past exp and the 5 s of tolerated clock skew
    const res = await mcpPost(tk.access_token);
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toStartWith(
      `Bearer resource_metadata="${ISSUER}/.well-known/oauth-protected-resource/mcp", scope="mcp", error="invalid_token"`,
    );
  });

  test("another resource's token (wrong audience) → 401", async () => {
    const as = t.app.gatehouse.authorizationServer!;
    const c = await register(t);
    const tk = await tokens(t, c.client_id);
    const claims = JSON.parse(Buffer.from(tk.access_token.split(".")[1] as string, "base64url").toString());
    const { token } = await as.tokens.mint({
      subject: "alice",
      clientId: c.client_id,
      audience: "https://other.example/mcp",
      scopes: ["mcp"],
      groups: [],
      roles: [],
      grantId: claims.gid,
      now: as.nowSeconds(),
      ttlSeconds: 600,
    });
    expect((await mcpPost(token)).status).toBe(401);
  });

  test("alg none and HS256 confusion → 401", async () => {
    const c = await register(t);
    const tk = await tokens(t, c.client_id);
    const payload = JSON.parse(Buffer.from(tk.access_token.split(".")[1] as string, "base64url").toString());
    const none = `${Buffer.from(JSON.stringify({ alg: "none", typ: "at+jwt" })).toString("base64url")}.${tk.access_token.split(".")[1]}.`;
    expect((await mcpPost(none)).status).toBe(401);
    const jwks = (await (await t.request("/jwks")).json()) as { keys: Record<string, unknown>[] };
    const confused = await new SignJWT(payload)
      .setProtectedHeader({ alg: "HS256", typ: "at+jwt", kid: jwks.keys[0]?.kid as string })
      .sign(new TextEncoder().encode(JSON.stringify(jwks.keys[0])));
    expect((await mcpPost(confused)).status).toBe(401);
  });

  test("a token in the query string is not accepted", async () => {
    const c = await register(t);
    const tk = await tokens(t, c.client_id);
    const res = await t.request(`/mcp?access_token=${tk.access_token}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    expect(res.status).toBe(401);
  });

  test("a token without the required scope → 403 insufficient_scope naming it", async () => {
    const c = await register(t);
    const { verifier, challenge } = pkce();
    const theCode = await code(t, c.client_id, challenge, { scope: "extra" });
    const tk = (await (
      await tokenRequest(t, {
        grant_type: "authorization_code",
        code: theCode,
        redirect_uri: REDIRECT,
        code_verifier: verifier,
        client_id: c.client_id,
      })
    ).json()) as { access_token: string; scope: string };
    expect(tk.scope).toBe("extra");
    const res = await mcpPost(tk.access_token);
    expect(res.status).toBe(403);
    expect(res.headers.get("www-authenticate")).toContain('error="insufficient_scope"');
    expect(res.headers.get("www-authenticate")).toContain('scope="mcp"');
  });
});

describe("revocation (RFC 7009) and introspection (RFC 7662)", () => {
  test("revoking a refresh token revokes its grant and so its access tokens", async () => {
    const c = await register(t);
    const tk = await tokens(t, c.client_id);
    const res = await t.request("/revoke", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token: tk.refresh_token, client_id: c.client_id }).toString(),
    });
    expect(res.status).toBe(200);
    expect((await mcpPost(tk.access_token)).status).toBe(401);
  });

  test("revoking an access token; unknown tokens still get 200; another client's tokens are untouched", async () => {
    const c = await register(t);
    const other = await register(t);
    const tk = await tokens(t, c.client_id);
    const revoke = (token: string, clientId: string) =>
      t.request("/revoke", {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ token, client_id: clientId, token_type_hint: "access_token" }).toString(),
      });
    expect((await revoke(tk.access_token, other.client_id)).status).toBe(200);
    expect((await mcpPost(tk.access_token)).status).toBe(200);
    expect((await revoke("not-a-token", c.client_id)).status).toBe(200);
    expect((await revoke(tk.access_token, c.client_id)).status).toBe(200);
    expect((await mcpPost(tk.access_token)).status).toBe(401);
  });

  test("introspection for a listed resource server; refused to the public", async () => {
    await t.close();
    await setup({ introspectionClients: { "rs-1": "resource-server-secret-1" } });
    const c = await register(t);
    const tk = await tokens(t, c.client_id);
    const introspect = (token: string, auth?: string) =>
      t.request("/introspect", {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", ...(auth ? { authorization: auth } : {}) },
        body: new URLSearchParams({ token }).toString(),
      });
    const rs = `Basic ${btoa("rs-1:resource-server-secret-1")}`;
    const active = (await (await introspect(tk.access_token, rs)).json()) as Record<string, unknown>;
    expect(active).toMatchObject({
      active: true,
      sub: "alice",
      client_id: c.client_id,
      scope: "mcp",
      aud: RESOURCE,
      iss: ISSUER,
    });
    expect(((await (await introspect(tk.refresh_token, rs)).json()) as { active: boolean }).active).toBe(true);
    expect(((await (await introspect("garbage", rs)).json()) as { active: boolean }).active).toBe(false);
    expect((await introspect(tk.access_token)).status).toBe(401);
    expect((await introspect(tk.access_token, `Basic ${btoa("rs-1:wrong")}`)).status).toBe(401);
  });

  test("refusals at /introspect, /revoke and /token each get a log line and an audit record naming the client", async () => {
    await t.close();
    await setup({ introspectionClients: { "rs-1": "resource-server-secret-1" } });
    const form = (path: string, body: Record<string, string>, headers: Record<string, string> = {}) =>
      t.request(path, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
        body: new URLSearchParams(body).toString(),
      });
    const wrongSecret = `Basic ${btoa("rs-1:wrong-secret-value")}`;
    expect((await form("/introspect", { token: "x" }, { authorization: wrongSecret })).status).toBe(401);
    expect((await form("/revoke", { token: "abc", client_id: "nobody" })).status).toBe(401);
    const c = await register(t);
    expect((await form("/revoke", { client_id: c.client_id })).status).toBe(400);
    const basic = `Basic ${btoa(`${c.client_id}:wrong`)}`;
    expect(
      (await form("/token", { grant_type: "authorization_code", code: "x" }, { authorization: basic })).status,
    ).toBe(401);
    const has = (...parts: string[]) => t.lines.some((l) => parts.every((p) => l.includes(p)));
    expect(has("introspection refused", "client_id=rs-1", "invalid_client")).toBe(true);
    expect(has("token_introspected", "success=false", "client_id=rs-1")).toBe(true);
    expect(has("revocation refused", "client_id=nobody", "invalid_client")).toBe(true);
    expect(has("token_revoked", "success=false", `client_id=${c.client_id}`, "token is required")).toBe(true);
    expect(has("token refused", `client_id=${c.client_id}`, "invalid_client")).toBe(true);
    expect(t.lines.some((l) => l.includes("wrong-secret-value"))).toBe(false);
    // The wrong content type at /token is counted with the other refusals.
    const metrics = new GatehouseMetrics("0.0.0-test", "bun");
    await t.close();
    t = await testApp(oauthConfig(), { deps: { metrics } });
    await t.request("/token", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect(metrics.render()).toMatch(/gatehouse_oauth_token_refusals_total\{error="invalid_request"\} 1/);
  });
});

describe("client ID metadata documents", () => {
  test("a URL client_id resolving to a private address is refused before any fetch", async () => {
    await t.close();
    await setup({}, async () => [{ address: "10.0.0.5", family: 4 }]);
    for (const id of [
      "https://internal.example/client.json",
      "https://169.254.169.254/latest/meta-data",
      "https://127.0.0.1/client.json",
      "https://[::1]/c.json",
    ]) {
      const res = await t.request(authorizeQuery(id, pkce().challenge), { headers: USER });
      expect(res.status).toBe(400);
      expect(await res.text()).toContain("not a public address");
    }
  });

  test("malformed client_id URLs are refused", async () => {
    for (const id of [
      "https://example.com",
      "https://example.com/",
      "https://user@example.com/c.json",
      "https://example.com/a/../c.json",
      "https://example.com/c.json?x=1",
    ]) {
      const res = await t.request(authorizeQuery(id, pkce().challenge), { headers: USER });
      expect(res.status).toBe(400);
    }
  });
});

describe("HS256 with oauthAs.jwtSecret (the mcp serve seed)", () => {
  test("tokens are HS256, the JWKS is empty, and ES256 or none tokens are refused", async () => {
    await t.close();
    await setup({ jwtSecret: "x".repeat(32) });
    const c = await register(t);
    const tk = await tokens(t, c.client_id);
    expect(JSON.parse(Buffer.from(tk.access_token.split(".")[0] as string, "base64url").toString())).toMatchObject({
      alg: "HS256",
      typ: "at+jwt",
    });
    expect((await mcpPost(tk.access_token)).status).toBe(200);
    expect(((await (await t.request("/jwks")).json()) as { keys: unknown[] }).keys).toEqual([]);
    const payload = JSON.parse(Buffer.from(tk.access_token.split(".")[1] as string, "base64url").toString());
    const forged = await new SignJWT(payload)
      .setProtectedHeader({ alg: "HS256", typ: "at+jwt" })
      .sign(new TextEncoder().encode("y".repeat(32)));
    expect((await mcpPost(forged)).status).toBe(401);
  });
});

describe("CORS for browser clients (the Inspector, claude.ai)", () => {
  test("registration and token answer allowed origins, errors included", async () => {
    const origin = "http://localhost:6274";
    const pre = await t.request("/token", {
      method: "OPTIONS",
      headers: { origin, "access-control-request-method": "POST" },
    });
    expect(pre.status).toBe(204);
    const reg = await t.request("/register", {
      method: "POST",
      headers: { origin, "content-type": "application/json" },
      body: JSON.stringify({ redirect_uris: [REDIRECT], token_endpoint_auth_method: "none" }),
    });
    expect(reg.headers.get("access-control-allow-origin")).toBe(origin);
    const err = await tokenRequest(
      t,
      { grant_type: "refresh_token", refresh_token: "nope", client_id: "ghost" },
      { origin },
    );
    expect(err.status).toBe(401);
    expect(err.headers.get("access-control-allow-origin")).toBe(origin);
    const evil = await tokenRequest(
      t,
      { grant_type: "refresh_token", refresh_token: "nope", client_id: "ghost" },
      { origin: "https://evil.example" },
    );
    expect(evil.headers.get("access-control-allow-origin")).toBeNull();
  });
});
