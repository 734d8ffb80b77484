// Gatehouse as a resource server for tokens another issuer mints (serverAuth.jwt / serverAuth.introspection), end to
// end: panva's oidc-provider on loopback is the external issuer (resource indicators give RFC 9068 JWT access tokens
// for the URL asked for; tokens without one are opaque, for introspection), Gatehouse runs as a process in front of
// real backends (server-everything over stdio, and the SDK-built HTTP backend), and the official SDK client makes the
// calls that must succeed while plain fetch shows the refusals: 401 invalid_token with the RFC 9728 challenge, 403
// insufficient_scope. Each route is its own protected resource: a token for /servers/a/mcp does not open
// /servers/b/mcp. Discovery is checked in direct mode (metadata names the issuer) and proxy mode (Gatehouse
// republishes the issuer's metadata under its own name, with a registration shim), the latter through the SDK's whole
// OAuth flow.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { decodeJwt, decodeProtectedHeader, exportSPKI, generateKeyPair, importJWK, type JWK, SignJWT } from "jose";
import { type ExternalIssuer, startExternalIssuer } from "../fixtures/external-issuer.ts";
import { type HttpBackend, startHttpBackend } from "../fixtures/http-backend.ts";
import { onCleanup } from "../helpers/cleanup.ts";
import { connect } from "../helpers/client.ts";
import { type Running, startGatehouse } from "../helpers/gatehouse-process.ts";
import { freePort } from "../helpers/net.ts";
import { HeadlessOAuthProvider } from "../helpers/oauth-client.ts";
import { everythingStdio } from "../helpers/paths.ts";
import { writeConfig } from "../helpers/temp.ts";

let idp: ExternalIssuer;
let backend: HttpBackend;
/** The redirect URI the issuer's pre-registered `app` client allows (nothing listens: the headless browser stops). */
let appRedirect: string;

beforeAll(async () => {
  appRedirect = `http://127.0.0.1:${await freePort()}/callback`;
  idp = await startExternalIssuer({ redirectUris: [appRedirect] });
  onCleanup(() => idp.stop());
  backend = await startHttpBackend({ name: "b-backend" });
  onCleanup(() => backend.stop());
}, 60_000);

afterAll(async () => {
  await idp?.stop();
  await backend?.stop();
});

/** Starts Gatehouse on a port chosen beforehand, so that the config can name its own public URLs. */
async function gatehouse(config: (base: string) => Record<string, unknown>): Promise<Running> {
  const port = await freePort();
  const gh = await startGatehouse({ config: writeConfig(config(`http://127.0.0.1:${port}`)), port });
  onCleanup(async () => {
    await gh.stop();
  });
  return gh;
}

/** An MCP initialize by plain fetch, for the answers the SDK would only turn into an exception. */
function initialize(url: string, token?: string): Promise<Response> {
  return fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "curl-ish", version: "1" } },
    }),
  });
}

/** The parameters of a `Bearer` challenge. */
function challenge(res: Response): Record<string, string> {
  const header = res.headers.get("www-authenticate") ?? "";
  expect(header).toStartWith("Bearer ");
  const out: Record<string, string> = {};
  for (const m of header.matchAll(/([a-z_]+)="([^"]*)"/g)) out[m[1] as string] = m[2] as string;
  return out;
}

/** The SDK client lists the tools of a route and calls one; returns the tool names. */
async function listAndCall(url: string, token: string, tool: string, args: Record<string, unknown>) {
  const client = await connect(url, { token });
  try {
    const names = (await client.listTools()).tools.map((t) => t.name);
    const result = (await client.callTool({ name: tool, arguments: args })) as {
      content: { type: string; text: string }[];
      isError?: boolean;
    };
    return { names, result };
  } finally {
    await client.close();
  }
}

describe("jwt tokens of an external issuer, direct discovery", () => {
  let gh: Running;
  const mcp = () => `${gh.url}/mcp`;
  const route = (name: string) => `${gh.url}/servers/${name}/mcp`;

  beforeAll(async () => {
    gh = await gatehouse((base) => ({
      mcpServers: {
        a: everythingStdio(),
        b: { url: backend.url },
        // The same backend again, whose route accepts another audience than its own URL.
        c: { url: backend.url, route: { audience: ["urn:example:c"] } },
        // …and again, for the rotation race: each route keeps its own copy of the issuer's keys.
        d: { url: backend.url },
      },
      serverAuth: {
        providers: ["jwt"],
        jwt: {
          issuer: idp.issuer,
          audience: `${base}/mcp`,
          algorithms: ["RS256"],
          requireTyp: "at+jwt",
          discovery: { mode: "direct", resourceUrl: `${base}/mcp`, scopesSupported: ["mcp"] },
        },
      },
    }));
  }, 60_000);

  test("a JWT minted for the /mcp resource URL: the SDK client lists and calls tools of both backends", async () => {
    const token = await idp.clientCredentials({ resource: mcp() });
    expect(decodeProtectedHeader(token).typ).toBe("at+jwt");
    expect(decodeJwt(token)).toMatchObject({ iss: idp.issuer, aud: mcp(), client_id: idp.machine.clientId });

    const { names, result } = await listAndCall(mcp(), token, "a__echo", { message: "from afar" });
    expect(names).toContain("a__echo");
    expect(names).toContain("b__headers");
    expect(result.isError).toBeFalsy();
    expect(result.content[0]?.text).toContain("from afar");

    // The issuer's token stays at Gatehouse: the HTTP backend never sees it.
    const client = await connect(mcp(), { token });
    const seen = (await client.callTool({ name: "b__headers", arguments: {} })) as { content: { text: string }[] };
    await client.close();
    const headers = JSON.parse(seen.content[0]?.text as string) as Record<string, string>;
    expect(headers.authorization).toBeUndefined();
    expect(JSON.stringify(backend.seenHeaders)).not.toContain(token);
  });

  test("no token: 401 whose challenge points at the protected resource metadata, without an error", async () => {
    const res = await initialize(mcp());
    expect(res.status).toBe(401);
    const c = challenge(res);
    expect(c.resource_metadata).toBe(`${gh.url}/.well-known/oauth-protected-resource/mcp`);
    expect(c.scope).toBe("mcp");
    expect(c.error).toBeUndefined();
  });

  test("a JWT minted for another audience is refused: 401 invalid_token with the challenge", async () => {
    const elsewhere = await idp.clientCredentials({ resource: "https://other-api.example/mcp" });
    expect(decodeJwt(elsewhere).aud).toBe("https://other-api.example/mcp");
    const res = await initialize(mcp(), elsewhere);
    expect(res.status).toBe(401);
    const c = challenge(res);
    expect(c.error).toBe("invalid_token");
    expect(c.resource_metadata).toBe(`${gh.url}/.well-known/oauth-protected-resource/mcp`);
    expect(c.error_description).toContain("aud");
    // The SDK client is refused too (it has no way to sign in on its own here).
    await expect(connect(mcp(), { token: elsewhere })).rejects.toThrow();
    await gh.waitForLog(/request refused.*aud/);
  });

  test("a token for /servers/a/mcp works there, and is refused at /servers/b/mcp and at /mcp", async () => {
    const forA = await idp.clientCredentials({ resource: route("a") });
    const { names, result } = await listAndCall(route("a"), forA, "get-sum", { a: 2, b: 3 });
    expect(names).toContain("echo"); // unprefixed: the backend's own route
    expect(names).not.toContain("b__echo");
    expect(result.content[0]?.text).toContain("5");

    for (const [url, metadata] of [
      [route("b"), `${gh.url}/.well-known/oauth-protected-resource/servers/b/mcp`],
      [mcp(), `${gh.url}/.well-known/oauth-protected-resource/mcp`],
    ] as const) {
      const res = await initialize(url, forA);
      expect(res.status).toBe(401);
      const c = challenge(res);
      expect(c.error).toBe("invalid_token");
      expect(c.resource_metadata).toBe(metadata);
    }

    // …and the other way round: the /mcp token does not open a backend's own route, b's own token does.
    expect((await initialize(route("b"), await idp.clientCredentials({ resource: mcp() }))).status).toBe(401);
    const forB = await idp.clientCredentials({ resource: route("b") });
    const b = await listAndCall(route("b"), forB, "echo", { message: "bee" });
    expect(b.names).toContain("admin_reset");
    expect(b.result.content[0]?.text).toBe("echo: bee");
  });

  test("requireTyp: a JWT the issuer signed for /mcp but typed JWT, not at+jwt, is refused", async () => {
    idp.plainTyp = true;
    const token = await idp.clientCredentials({ resource: mcp() }).finally(() => {
      idp.plainTyp = false;
    });
    expect(decodeProtectedHeader(token).typ).toBe("JWT");
    const res = await initialize(mcp(), token);
    expect(res.status).toBe(401);
    const c = challenge(res);
    expect(c.error).toBe("invalid_token");
    expect(c.error_description).toContain("at+jwt");
  });

  test("route.audience replaces a backend route's own URL as the audience its tokens need", async () => {
    const forC = await idp.clientCredentials({ resource: "urn:example:c" });
    const { result } = await listAndCall(route("c"), forC, "add", { a: 20, b: 22 });
    expect(result.content[0]?.text).toBe("42");
    const ownUrl = await idp.clientCredentials({ resource: route("c") });
    const res = await initialize(route("c"), ownUrl);
    expect(res.status).toBe(401);
    expect(challenge(res).error).toBe("invalid_token");
  });

  test("protected resource metadata names the issuer, which really serves matching metadata", async () => {
    for (const [path, resource] of [
      ["/.well-known/oauth-protected-resource/mcp", mcp()],
      ["/.well-known/oauth-protected-resource/servers/a/mcp", route("a")],
      ["/.well-known/oauth-protected-resource/servers/b/mcp", route("b")],
    ] as const) {
      const res = await fetch(`${gh.url}${path}`);
      expect(res.status).toBe(200);
      const body = (await res.json()) as Record<string, unknown>;
      expect(body).toMatchObject({
        resource,
        authorization_servers: [idp.issuer],
        scopes_supported: ["mcp"],
        bearer_methods_supported: ["header"],
      });
    }
    const as = (await (await fetch(`${idp.issuer}/.well-known/openid-configuration`)).json()) as Record<
      string,
      unknown
    >;
    expect(as.issuer).toBe(idp.issuer);
    // Direct mode: Gatehouse does not pretend to be an authorization server.
    expect((await fetch(`${gh.url}/.well-known/oauth-authorization-server`)).status).toBe(404);
    expect((await fetch(`${gh.url}/register`, { method: "POST", body: "{}" })).status).toBe(404);
  });

  test("the issuer rotates its signing key: a token with the new kid is accepted (the JWKS is fetched again)", async () => {
    // /mcp has fetched the JWKS already (first test); the new key is not in it.
    expect(idp.jwksFetches()).toBeGreaterThan(0);
    const oldKid = idp.currentKid();
    const newKid = await idp.rotateKeys();
    expect(newKid).not.toBe(oldKid);
    const token = await idp.clientCredentials({ resource: mcp() });
    expect(decodeProtectedHeader(token).kid).toBe(newKid);
    const before = idp.jwksFetches();
    const { names } = await listAndCall(mcp(), token, "a__echo", { message: "rotated" });
    expect(names).toContain("a__echo");
    expect(idp.jwksFetches()).toBe(before + 1);
  });

  test("right after a rotation, concurrent requests with the new kid are all accepted (one JWKS fetch serves all)", async () => {
    // /servers/d/mcp, used by no other test, fetches the keys of now; then the issuer rotates.
    const warm = await idp.clientCredentials({ resource: route("d") });
    expect((await initialize(route("d"), warm)).status).toBe(200);
    const newKid = await idp.rotateKeys();
    const tokens = await Promise.all([1, 2, 3, 4].map(() => idp.clientCredentials({ resource: route("d") })));
    expect(tokens.map((t) => decodeProtectedHeader(t).kid)).toEqual([newKid, newKid, newKid, newKid]);
    const answers = await Promise.all(tokens.map((t) => initialize(route("d"), t)));
    const refused = await Promise.all(
      answers.filter((r) => r.status !== 200).map(async (r) => `${r.status} ${r.headers.get("www-authenticate")}`),
    );
    expect(refused).toEqual([]);
  });

  test("a token signed with a key the issuer does not publish is refused, whatever its claims", async () => {
    const { privateKey } = await generateKeyPair("RS256", { extractable: true });
    const genuine = decodeJwt(await idp.clientCredentials({ resource: route("b") }));
    const forged = await new SignJWT({ ...genuine, scope: "mcp mcp:admin" })
      .setProtectedHeader({ alg: "RS256", typ: "at+jwt", kid: "not-the-issuers" })
      .sign(privateKey);
    const res = await initialize(route("b"), forged);
    expect(res.status).toBe(401);
    expect(challenge(res).error).toBe("invalid_token");
    // The same forgery claiming the issuer's current kid does not verify either.
    const sameKid = await new SignJWT({ ...genuine })
      .setProtectedHeader({ alg: "RS256", typ: "at+jwt", kid: idp.currentKid() })
      .sign(privateKey);
    expect((await initialize(route("b"), sameKid)).status).toBe(401);
    // Unsigned (alg none): refused as well.
    const header = Buffer.from(JSON.stringify({ alg: "none", typ: "at+jwt" })).toString("base64url");
    const payload = Buffer.from(JSON.stringify(genuine)).toString("base64url");
    expect((await initialize(route("b"), `${header}.${payload}.`)).status).toBe(401);
  });

  test("HS256 signed with the issuer's own public key as the secret (key confusion) is refused", async () => {
    const { keys } = (await (await fetch(`${idp.issuer}/jwks`)).json()) as { keys: JWK[] };
    const published = keys.find((k) => k.kid === idp.currentKid()) as JWK;
    const pem = await exportSPKI((await importJWK(published, "RS256")) as CryptoKey);
    const genuine = decodeJwt(await idp.clientCredentials({ resource: route("b") }));
    for (const secret of [pem, JSON.stringify(published)]) {
      const forged = await new SignJWT({ ...genuine })
        .setProtectedHeader({ alg: "HS256", typ: "at+jwt", kid: idp.currentKid() })
        .sign(new TextEncoder().encode(secret));
      const res = await initialize(route("b"), forged);
      expect(res.status).toBe(401);
      const c = challenge(res);
      expect(c.error).toBe("invalid_token");
      expect(c.error_description).toContain("algorithm is not accepted");
    }
  });

  test("a kid with a line break is refused with 401 and a well-formed challenge, not a 500", async () => {
    const { privateKey } = await generateKeyPair("RS256");
    const genuine = decodeJwt(await idp.clientCredentials({ resource: route("b") }));
    const forged = await new SignJWT({ ...genuine })
      .setProtectedHeader({ alg: "RS256", typ: "at+jwt", kid: "x\r\nSet-Cookie: owned=1" })
      .sign(privateKey);
    const res = await initialize(route("b"), forged);
    expect(res.status).toBe(401);
    expect(res.headers.get("set-cookie")).toBeNull();
    expect(challenge(res).error).toBe("invalid_token");
  });
});

describe("opaque tokens checked at the issuer's introspection endpoint", () => {
  let gh: Running;

  beforeAll(async () => {
    gh = await gatehouse((base) => ({
      mcpServers: { a: everythingStdio(), b: { url: backend.url } },
      serverAuth: {
        providers: ["introspection"],
        introspection: {
          endpoint: `${idp.issuer}/token/introspection`,
          clientId: idp.introspector.clientId,
          clientSecret: idp.introspector.clientSecret,
          issuer: idp.issuer,
          // oidc-provider answers client_credentials tokens without `sub`: the client is the subject.
          subjectClaim: "client_id",
          // No cache, so that a revocation shows at once.
          cacheMaxEntries: 0,
          discovery: { mode: "direct", resourceUrl: `${base}/mcp` },
        },
      },
    }));
  }, 60_000);

  test("an opaque token (no resource indicator) is accepted through introspection; the SDK lists and calls", async () => {
    const token = await idp.clientCredentials();
    expect(token.split(".").length).toBe(1); // not a JWT
    const { names, result } = await listAndCall(`${gh.url}/mcp`, token, "a__echo", { message: "opaque" });
    expect(names).toContain("a__get-sum");
    expect(result.content[0]?.text).toContain("opaque");

    // Revoked at the issuer: refused on the next request.
    await idp.revoke(token);
    const res = await initialize(`${gh.url}/mcp`, token);
    expect(res.status).toBe(401);
    const c = challenge(res);
    expect(c.error).toBe("invalid_token");
    expect(c.resource_metadata).toBe(`${gh.url}/.well-known/oauth-protected-resource/mcp`);
    await gh.waitForLog(/request refused.*not active/);
  });

  test("a token revoked before its first use, and a made-up one, are refused with invalid_token", async () => {
    const revoked = await idp.clientCredentials();
    await idp.revoke(revoked);
    for (const token of [revoked, "made-up-token-0123456789", "a.b"]) {
      const res = await initialize(`${gh.url}/mcp`, token);
      expect(res.status).toBe(401);
      expect(challenge(res).error).toBe("invalid_token");
    }
  });

  test("an opaque token minted for /servers/b/mcp opens that route only: not /servers/a/mcp, not /mcp", async () => {
    const forB = `${gh.url}/servers/b/mcp`;
    idp.opaqueResources.add(forB);
    const token = await idp.clientCredentials({ resource: forB });
    expect(token.split(".").length).toBe(1);
    const { names, result } = await listAndCall(forB, token, "echo", { message: "opaque b" });
    expect(names).toContain("admin_reset");
    expect(result.content[0]?.text).toBe("echo: opaque b");

    const atA = await initialize(`${gh.url}/servers/a/mcp`, token);
    expect(atA.status).toBe(401);
    expect(challenge(atA).error).toBe("invalid_token");
    // /mcp aggregates every backend: a token the issuer bound to b alone must not open a's tools through it.
    const atMcp = await initialize(`${gh.url}/mcp`, token);
    expect(atMcp.status).toBe(401);
    expect(challenge(atMcp).error).toBe("invalid_token");
    expect(challenge(atMcp).resource_metadata).toBe(`${gh.url}/.well-known/oauth-protected-resource/mcp`);
  });

  test("a JWT at this introspection-only Gatehouse: the issuer cannot introspect it, so 401, not an outage (503)", async () => {
    const jwt = await idp.clientCredentials({ resource: `${gh.url}/mcp` });
    expect(jwt.split(".").length).toBe(3);
    const res = await initialize(`${gh.url}/mcp`, jwt);
    expect(res.status).toBe(401);
    expect(challenge(res).error).toBe("invalid_token");
  });

  test("an opaque token the issuer minted for another API is refused at /mcp (its introspected aud)", async () => {
    idp.opaqueResources.add("https://other-api.example/");
    const token = await idp.clientCredentials({ resource: "https://other-api.example/" });
    const res = await initialize(`${gh.url}/mcp`, token);
    expect(res.status).toBe(401);
    expect(challenge(res).error).toBe("invalid_token");
  });

  test("a backend's own route wants its URL as audience: an opaque token without one is refused there", async () => {
    const token = await idp.clientCredentials();
    const res = await initialize(`${gh.url}/servers/a/mcp`, token);
    expect(res.status).toBe(401);
    const c = challenge(res);
    expect(c.error).toBe("invalid_token");
    expect(c.resource_metadata).toBe(`${gh.url}/.well-known/oauth-protected-resource/servers/a/mcp`);
  });
});

describe("proxy discovery: Gatehouse republishes the issuer's metadata, with a registration shim", () => {
  let gh: Running;

  beforeAll(async () => {
    gh = await gatehouse((base) => ({
      mcpServers: { b: { url: backend.url } },
      serverAuth: {
        providers: ["jwt"],
        jwt: {
          issuer: idp.issuer,
          audience: `${base}/mcp`,
          requireTyp: "at+jwt",
          discovery: {
            mode: "proxy",
            resourceUrl: `${base}/mcp`,
            scopesSupported: ["mcp"],
            staticClient: { clientId: idp.app.clientId, clientSecret: idp.app.clientSecret },
          },
        },
      },
    }));
  }, 60_000);

  test("protected resource metadata names Gatehouse as the authorization server", async () => {
    const res = await fetch(`${gh.url}/.well-known/oauth-protected-resource/mcp`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ resource: `${gh.url}/mcp`, authorization_servers: [gh.url] });
  });

  test("/.well-known/oauth-authorization-server is the issuer's metadata with issuer rewritten", async () => {
    const upstream = await idp.metadata();
    for (const path of ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"]) {
      const res = await fetch(`${gh.url}${path}`);
      expect(res.status).toBe(200);
      const body = (await res.json()) as Record<string, unknown>;
      expect(body.issuer).toBe(gh.url);
      expect(body.registration_endpoint).toBe(`${gh.url}/register`);
      // discovery.scopesSupported, in this document too (as mcp-oauth-proxy's SCOPES_SUPPORTED).
      expect(body.scopes_supported).toEqual(["mcp"]);
      const { issuer: _i, registration_endpoint: _r, scopes_supported: _s, ...rest } = body;
      const { issuer: _ui, registration_endpoint: _ur, scopes_supported: _us, ...upstreamRest } = upstream;
      expect(rest).toEqual(upstreamRest);
      expect(body.authorization_endpoint).toBe(`${idp.issuer}/auth`);
      expect(body.token_endpoint).toBe(`${idp.issuer}/token`);
    }
  });

  test("POST /register (and /oauth/register, mcp-oauth-proxy's path) answers with the pre-registered client", async () => {
    for (const path of ["/register", "/oauth/register"]) {
      const res = await fetch(`${gh.url}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ client_name: "Some MCP client", redirect_uris: [appRedirect] }),
      });
      expect(res.status).toBe(201);
      expect(await res.json()).toMatchObject({
        client_id: idp.app.clientId,
        client_secret: idp.app.clientSecret,
        client_name: "Some MCP client",
        redirect_uris: [appRedirect],
        token_endpoint_auth_method: "client_secret_post",
      });
    }
  });

  test("the SDK's whole OAuth flow: 401 → metadata via Gatehouse → shim → issuer login → JWT → tools/call", async () => {
    const oauth = new HeadlessOAuthProvider(appRedirect);
    const url = new URL(`${gh.url}/mcp`);
    const first = new StreamableHTTPClientTransport(url, { authProvider: oauth });
    await expect(new Client({ name: "t", version: "1" }).connect(first)).rejects.toThrow(UnauthorizedError);
    expect(oauth.clientInformation()?.client_id).toBe(idp.app.clientId);
    const authorize = oauth.authorizationUrls[0] as URL;
    expect(authorize.origin).toBe(idp.issuer);
    expect(authorize.searchParams.get("resource")).toBe(`${gh.url}/mcp`);
    const code = oauth.code();
    if (!code) throw new Error(`no code: ${oauth.lastBrowse?.status} ${oauth.lastBrowse?.page?.slice(0, 400)}`);
    await first.finishAuth(code);

    const access = oauth.tokens()?.access_token as string;
    expect(decodeProtectedHeader(access).typ).toBe("at+jwt");
    expect(decodeJwt(access)).toMatchObject({ iss: idp.issuer, aud: `${gh.url}/mcp`, sub: "alice" });

    const client = new Client({ name: "t", version: "1" });
    await client.connect(new StreamableHTTPClientTransport(url, { authProvider: oauth }));
    expect((await client.listTools()).tools.map((t) => t.name)).toContain("b__echo");
    expect(await client.callTool({ name: "b__echo", arguments: { message: "via proxy" } })).toMatchObject({
      content: [{ text: "echo: via proxy" }],
    });
    await client.close();
  });
});

describe("requiredScopes", () => {
  let gh: Running;

  beforeAll(async () => {
    gh = await gatehouse((base) => ({
      mcpServers: { b: { url: backend.url } },
      serverAuth: {
        providers: ["jwt"],
        jwt: {
          issuer: idp.issuer,
          audience: `${base}/mcp`,
          requiredScopes: ["mcp:admin"],
          discovery: { mode: "direct", resourceUrl: `${base}/mcp` },
        },
      },
    }));
  }, 60_000);

  test("a valid token without the required scope gets 403 insufficient_scope naming it", async () => {
    const token = await idp.clientCredentials({ resource: `${gh.url}/mcp`, scope: "mcp" });
    expect(decodeJwt(token).scope).toBe("mcp");
    const res = await initialize(`${gh.url}/mcp`, token);
    expect(res.status).toBe(403);
    const c = challenge(res);
    expect(c.error).toBe("insufficient_scope");
    expect(c.scope?.split(" ")).toContain("mcp:admin");
    expect(c.resource_metadata).toBe(`${gh.url}/.well-known/oauth-protected-resource/mcp`);
    await expect(connect(`${gh.url}/mcp`, { token })).rejects.toThrow();
  });

  test("with the scope, the SDK client lists and calls tools", async () => {
    const token = await idp.clientCredentials({ resource: `${gh.url}/mcp`, scope: "mcp mcp:admin" });
    const { names, result } = await listAndCall(`${gh.url}/mcp`, token, "b__add", { a: 1, b: 1 });
    expect(names).toContain("b__admin_reset");
    expect(result.content[0]?.text).toBe("2");
  });
});

describe("an issuer that cannot be reached", () => {
  test("a JWT whose keys cannot be fetched gets 503, not invalid_token (which would send the client to sign in)", async () => {
    const gone = await startExternalIssuer();
    onCleanup(() => gone.stop());
    const gh = await gatehouse((base) => ({
      mcpServers: { b: { url: backend.url } },
      serverAuth: {
        providers: ["jwt"],
        jwt: {
          issuer: gone.issuer,
          audience: `${base}/mcp`,
          timeout: "2s",
          discovery: { mode: "direct", resourceUrl: `${base}/mcp` },
        },
      },
    }));
    const token = await gone.clientCredentials({ resource: `${gh.url}/mcp` });
    await gone.stop();
    const res = await initialize(`${gh.url}/mcp`, token);
    expect(res.headers.get("www-authenticate") ?? "").not.toContain("invalid_token");
    expect(res.status).toBe(503);
    await gh.waitForLog(/request refused.*cannot/);
  });

  test("discovery answers but the JWKS endpoint is down: 503 with a Bearer challenge, no stack, then 200 once it is back", async () => {
    const port = await freePort();
    const jwksUri = `http://127.0.0.1:${port}/jwks`;
    const gh = await gatehouse((base) => ({
      mcpServers: { b: { url: backend.url } },
      serverAuth: {
        providers: ["jwt"],
        jwt: {
          issuer: idp.issuer,
          jwksUri,
          audience: `${base}/mcp`,
          timeout: "2s",
          discovery: { mode: "direct", resourceUrl: `${base}/mcp` },
        },
      },
    }));
    const token = await idp.clientCredentials({ resource: `${gh.url}/mcp` });
    const res = await initialize(`${gh.url}/mcp`, token);
    expect(res.status).toBe(503);
    const header = res.headers.get("www-authenticate") ?? "";
    expect(header).toStartWith("Bearer ");
    expect(header).not.toContain("invalid_token");
    const body = await res.text();
    // Retry shortly, says the answer; where the keys could not be fetched from is for the log only.
    expect(body).toContain("the token cannot be checked right now; retry shortly");
    expect(body).not.toContain(jwksUri);
    expect(body).not.toMatch(/\n\s+at /);
    await gh.waitForLog(/request refused.*cannot fetch its JWKS/);

    // The keys come back (a relay to the issuer's JWKS on that port): the same token passes, nothing was cached.
    const relay = Bun.serve({ hostname: "127.0.0.1", port, fetch: () => fetch(`${idp.issuer}/jwks`) });
    onCleanup(() => relay.stop(true));
    expect((await initialize(`${gh.url}/mcp`, token)).status).toBe(200);
    relay.stop(true);
  });
});
