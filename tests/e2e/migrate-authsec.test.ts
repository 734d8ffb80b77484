// AuthSec's "How to add OAuth to an MCP server", step by step through real Gatehouse processes: the minimal flow
// (401 with resource_metadata, RFC 9728 metadata, the code flow with PKCE and consent, the retried call, a 403 for a
// tool the scopes do not cover), its checklist (`Bearer garbage` is a 401; tools/list is filtered; a token for another
// audience is refused), the per-scenario scope matrix ("Alice with the Claude-Desktop client can do read but not
// write", with `clients` on toolScopes entries and on ACL grants), audit records naming the client, and token
// revocation by adding introspection to JWT validation (introspection.alsoFor "jwt") — with a Gatehouse as the
// identity provider (it introspects and revokes its JWT access tokens) and with panva's oidc-provider (which cannot
// introspect its JWTs: Gatehouse then refuses them, saying why).

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { type ExternalIssuer, startExternalIssuer } from "../fixtures/external-issuer.ts";
import { type HttpBackend, startHttpBackend } from "../fixtures/http-backend.ts";
import { type Running, startGatehouse } from "../helpers/gatehouse-process.ts";
import { freePort } from "../helpers/net.ts";
import { HeadlessOAuthProvider, tokensByBrowser } from "../helpers/oauth-client.ts";
import { writeConfig } from "../helpers/temp.ts";

let backend: HttpBackend;
const ALICE = { "x-forwarded-user": "alice", "x-forwarded-groups": "staff" };

beforeAll(async () => {
  backend = await startHttpBackend();
}, 60_000);
afterAll(async () => {
  await backend?.stop();
});

async function gatehouse(config: (base: string) => Record<string, unknown>): Promise<Running> {
  const port = await freePort();
  return startGatehouse({ config: writeConfig(config(`http://127.0.0.1:${port}`)), port });
}

const redirect = async () => `http://127.0.0.1:${await freePort()}/callback`;

/** The minimal flow's steps 1–5 with the SDK client: 401, metadata, registration, authorize + consent, token, retry. */
async function connectAs(mcp: string, clientName: string) {
  const provider = new HeadlessOAuthProvider(
    await redirect(),
    { headers: ALICE },
    { client_name: clientName, grant_types: ["authorization_code"] },
  );
  const first = new StreamableHTTPClientTransport(new URL(mcp), { authProvider: provider });
  await expect(new Client({ name: clientName, version: "1" }).connect(first)).rejects.toThrow(UnauthorizedError);
  await first.finishAuth(provider.code() as string);
  const client = new Client({ name: clientName, version: "1" });
  await client.connect(new StreamableHTTPClientTransport(new URL(mcp), { authProvider: provider }));
  return { client, provider };
}

/** A tools/call that may need a step-up (step 6's 403): completes the re-authorization and calls again. */
async function callWithStepUp(client: Client, provider: HeadlessOAuthProvider, name: string) {
  try {
    return await client.callTool({ name, arguments: {} });
  } catch (e) {
    if (!(e instanceof UnauthorizedError)) throw e;
    await (client.transport as StreamableHTTPClientTransport).finishAuth(provider.code() as string);
    return client.callTool({ name, arguments: {} });
  }
}

/** initialize + one request by plain fetch, for the answers the SDK turns into exceptions. */
async function rawCall(mcp: string, token: string, method: string, params: Record<string, unknown>) {
  const headers = {
    authorization: `Bearer ${token}`,
    "content-type": "application/json",
    accept: "application/json, text/event-stream",
  };
  const init = await fetch(mcp, {
    method: "POST",
    headers,
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "raw", version: "1" } },
    }),
  });
  return fetch(mcp, {
    method: "POST",
    headers: { ...headers, "mcp-session-id": init.headers.get("mcp-session-id") as string },
    body: JSON.stringify({ jsonrpc: "2.0", id: 2, method, params }),
  });
}

describe("the minimal flow, and the scope matrix per user and client (Gatehouse as the authorization server)", () => {
  let gh: Running;
  let mcp: string;
  beforeAll(async () => {
    gh = await gatehouse((base) => ({
      mcpServers: { web: { url: backend.url } },
      serverAuth: {
        providers: ["oauth_as"],
        // The scope every token needs, advertised in the protected resource metadata (AuthSec's scopes_supported).
        oauthAs: {
          issuerUrl: base,
          trustedSourceCidrs: ["127.0.0.1/32"],
          scopesSupported: ["mcp"],
          requiredScopes: ["mcp"],
        },
        // The scope matrix: which scope each tool needs; writing is for Cursor only.
        toolScopes: {
          "files:read": { tools: ["web__peek", "web__add"], description: "Read your files" },
          "files:write": { tools: ["web__admin_reset", "web__grow"], clients: ["Cursor"], description: "Change files" },
        },
        // The same policy in the ACL: staff may read with any client, write only with Cursor.
        acl: {
          default: "deny",
          roles: {
            staff: [
              { server: "web", access: "read" },
              { server: "web", access: "write", clients: ["Cursor"] },
            ],
          },
        },
      },
      audit: { enabled: true, output: "stderr" },
    }));
    mcp = `${gh.url}/mcp`;
  }, 60_000);
  afterAll(async () => {
    await gh?.stop();
  });

  test("step 1–3: no Authorization header → 401 whose resource_metadata leads to the authorization server", async () => {
    const res = await fetch(mcp, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
    });
    expect(res.status).toBe(401);
    const challenge = res.headers.get("www-authenticate") as string;
    expect(challenge).toStartWith("Bearer ");
    expect(challenge).toContain(`resource_metadata="${gh.url}/.well-known/oauth-protected-resource/mcp"`);
    const prm = (await (await fetch(`${gh.url}/.well-known/oauth-protected-resource/mcp`)).json()) as Record<
      string,
      unknown
    >;
    expect(prm).toMatchObject({
      resource: mcp,
      authorization_servers: [gh.url],
      scopes_supported: ["mcp"],
      bearer_methods_supported: ["header"],
    });
  });

  test('"Test with Authorization: Bearer garbage — you should get 401, not 200"', async () => {
    const res = await fetch(mcp, {
      method: "POST",
      headers: { authorization: "Bearer garbage", "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
    });
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toContain('error="invalid_token"');
  });

  test("Alice with Claude Desktop can read but not write: write tools are not listed, not callable, not grantable", async () => {
    const { client, provider } = await connectAs(mcp, "Claude Desktop");
    // Step 6: a read tool needs files:read — the 403 makes the SDK step up through a new consent.
    expect(await callWithStepUp(client, provider, "web__peek")).toMatchObject({ content: [{ text: "peeked" }] });
    expect(provider.tokens()?.scope?.split(" ").sort()).toEqual(["files:read", "mcp"]);
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names).toContain("web__peek");
    expect(names).toContain("web__add");
    expect(names).not.toContain("web__admin_reset");
    expect(names).not.toContain("web__echo");
    // A write tool is hidden from this client: the answer of a tool that does not exist, not a step-up to loop on.
    await expect(client.callTool({ name: "web__admin_reset", arguments: {} })).rejects.toThrow(/Unknown tool/);
    await client.close();

    // Even asked for explicitly, files:write is not granted to Claude Desktop.
    const token = await tokensByBrowser(gh.url, {
      redirect: await redirect(),
      clientName: "Claude Desktop",
      scope: "mcp files:read files:write",
      browser: { headers: ALICE },
    });
    expect(token.scope.split(" ").sort()).toEqual(["files:read", "mcp"]);
    await gh.waitForLog(/scopes withheld, they are for other clients.*scopes=files:write/);
  });

  test("Alice with Cursor can write: the 403 names files:write, and after the step-up the call runs", async () => {
    const { client, provider } = await connectAs(mcp, "Cursor");
    const refused = await rawCall(mcp, provider.tokens()?.access_token as string, "tools/call", {
      name: "web__admin_reset",
      arguments: {},
    });
    expect(refused.status).toBe(403);
    expect(refused.headers.get("www-authenticate")).toContain('scope="mcp files:write"');
    expect(await callWithStepUp(client, provider, "web__admin_reset")).toMatchObject({ content: [{ text: "reset" }] });
    expect((await client.listTools()).tools.map((t) => t.name)).toContain("web__admin_reset");
    await client.close();
  });

  test("audit: who called what, with which client", async () => {
    const logs = await gh.waitForLog(/audit.*web__admin_reset.*success=true/);
    const line = logs
      .split("\n")
      .find((l) => /audit/.test(l) && l.includes("web__admin_reset") && l.includes("success=true"));
    expect(line).toContain("subject=alice");
    expect(line).toMatch(/client_id=\S+/);
  });
});

describe("token revocation: JWT validation plus introspection (introspection.alsoFor jwt)", () => {
  let idp: Running;
  let rs: Running;
  let rsMcp: string;
  beforeAll(async () => {
    const rsPort = await freePort();
    rsMcp = `http://127.0.0.1:${rsPort}/mcp`;
    // The identity provider: a Gatehouse issuing RS256 JWT access tokens for the resource server, introspecting them
    // for it, and revoking them (RFC 7009).
    idp = await gatehouse((base) => ({
      mcpServers: { web: { url: backend.url } },
      serverAuth: {
        providers: ["oauth_as"],
        oauthAs: {
          issuerUrl: base,
          resourceUrl: rsMcp,
          trustedSourceCidrs: ["127.0.0.1/32"],
          scopesSupported: ["mcp"],
          requiredScopes: ["mcp"],
          signingAlgorithm: "RS256",
          introspectionClients: { "mcp-resource-server": "introspection-secret-0123456789" },
        },
      },
    }));
    rs = await startGatehouse({
      port: rsPort,
      config: writeConfig({
        mcpServers: { web: { url: backend.url } },
        serverAuth: {
          providers: ["jwt"],
          jwt: {
            issuer: idp.url,
            audience: rsMcp,
            requireTyp: "at+jwt",
            requiredScopes: ["mcp"],
            discovery: { mode: "direct", resourceUrl: rsMcp, scopesSupported: ["mcp"] },
          },
          introspection: {
            endpoint: `${idp.url}/introspect`,
            clientId: "mcp-resource-server",
            clientSecret: "introspection-secret-0123456789",
            alsoFor: "jwt",
            cacheMaxTtl: "1s",
          },
        },
      }),
    });
  }, 60_000);
  afterAll(async () => {
    await rs?.stop();
    await idp?.stop();
  });

  test("a JWT that verifies and is active works; revoked at the identity provider, it stops within cacheMaxTtl", async () => {
    // The minimal flow against a resource server whose metadata names another authorization server.
    const { client, provider } = await connectAs(rsMcp, "Claude Desktop");
    expect(await client.callTool({ name: "web__echo", arguments: { message: "hi" } })).toMatchObject({
      content: [{ text: "echo: hi" }],
    });
    await client.close();
    const token = provider.tokens()?.access_token as string;
    const clientId = (provider.clientInformation() as { client_id: string }).client_id;
    const revoked = await fetch(`${idp.url}/revoke`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token, token_type_hint: "access_token", client_id: clientId }),
    });
    expect(revoked.status).toBe(200);
    // The signature and exp are still good; the issuer now says inactive. A cached answer lives at most 1 s.
    const until = Date.now() + 5000;
    let status = 0;
    while (Date.now() < until) {
      status = (await rawCall(rsMcp, token, "tools/list", {})).status;
      if (status === 401) break;
      await Bun.sleep(100);
    }
    expect(status).toBe(401);
    await rs.waitForLog("the token is not active (introspection)");
  });
});

describe("alsoFor jwt with an identity provider that cannot introspect its JWTs (panva's oidc-provider)", () => {
  let issuer: ExternalIssuer;
  let rs: Running;
  let rsMcp: string;
  beforeAll(async () => {
    issuer = await startExternalIssuer();
    const port = await freePort();
    rsMcp = `http://127.0.0.1:${port}/mcp`;
    rs = await startGatehouse({
      port,
      config: writeConfig({
        mcpServers: { web: { url: backend.url } },
        serverAuth: {
          providers: ["jwt"],
          jwt: { issuer: issuer.issuer, audience: rsMcp, discovery: { mode: "none" } },
          introspection: {
            endpoint: `${issuer.issuer}/token/introspection`,
            clientId: issuer.introspector.clientId,
            clientSecret: issuer.introspector.clientSecret,
            alsoFor: "jwt",
            discovery: { mode: "none" },
          },
        },
      }),
    });
  }, 60_000);
  afterAll(async () => {
    await rs?.stop();
    await issuer?.stop();
  });

  test("its JWT verifies locally but cannot be introspected: refused (fail closed), saying why", async () => {
    const token = await issuer.clientCredentials({ resource: rsMcp });
    const res = await rawCall(rsMcp, token, "tools/list", {});
    expect(res.status).toBe(401);
    await rs.waitForLog("the issuer does not know this kind of token (introspection)");
  });

  test("a token for another audience is refused locally (the aud mismatch of AuthSec's checklist)", async () => {
    const token = await issuer.clientCredentials({ resource: "http://127.0.0.1:1/another-api" });
    const res = await rawCall(rsMcp, token, "tools/list", {});
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toContain('error="invalid_token"');
    await rs.waitForLog(/jwt: claim check failed: unexpected \\?"aud\\?" claim value/);
  });
});
