// The whole OAuth flow as the official MCP SDK client runs it against a real Gatehouse process: 401 → protected
// resource metadata → authorization server metadata → registration → authorize (the user named by a trusted
// reverse proxy header from 127.0.0.1) → consent → token → tools/call → refresh.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { auth, UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { type HttpBackend, startHttpBackend } from "../fixtures/http-backend.ts";
import { type Running, startGatehouse } from "../helpers/gatehouse-process.ts";
import { freePort, requestFrom } from "../helpers/net.ts";
import { HeadlessOAuthProvider } from "../helpers/oauth-client.ts";
import { writeConfig } from "../helpers/temp.ts";

let backend: HttpBackend;
let gh: Running;
let mcpUrl: URL;
const PROXY = { "x-forwarded-user": "alice@example.com", "x-forwarded-groups": "engineers, admins" };

beforeAll(async () => {
  backend = await startHttpBackend();
  const port = await freePort();
  const config = writeConfig({
    mcpServers: { web: { url: backend.url } },
    serverAuth: {
      providers: ["oauth_as"],
      oauthAs: {
        issuerUrl: `http://127.0.0.1:${port}`,
        trustedSourceCidrs: ["127.0.0.1/32"],
        scopesSupported: ["mcp"],
        requiredScopes: ["mcp"],
        injectedRoles: ["oauth-user"],
      },
      acl: { default: "deny", rules: [{ roles: ["oauth-user"], tools: ["web__*"], policy: "allow" }] },
    },
  });
  gh = await startGatehouse({ config, port });
  mcpUrl = new URL(`${gh.url}/mcp`);
}, 60_000);

afterAll(async () => {
  await gh?.stop();
  await backend?.stop();
});

async function connectWithOAuth(provider: HeadlessOAuthProvider): Promise<Client> {
  const first = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider });
  const client = new Client({ name: "oauth-test", version: "1" });
  await expect(client.connect(first)).rejects.toThrow(UnauthorizedError);
  const code = provider.code();
  if (!code) throw new Error(`no code: ${provider.lastBrowse?.status} ${provider.lastBrowse?.page?.slice(0, 300)}`);
  await first.finishAuth(code);
  const again = new Client({ name: "oauth-test", version: "1" });
  await again.connect(new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider }));
  return again;
}

describe("the SDK client's OAuth flow", () => {
  test("discovers, registers, authorizes through the trusted header, consents, calls tools and refreshes", async () => {
    const provider = new HeadlessOAuthProvider("http://127.0.0.1:33418/callback", { headers: PROXY });
    const client = await connectWithOAuth(provider);
    expect(provider.lastBrowse?.consentShown).toBe(true);
    const authUrl = provider.authorizationUrls[0] as URL;
    expect(authUrl.searchParams.get("code_challenge_method")).toBe("S256");
    expect(authUrl.searchParams.get("resource")).toBe(mcpUrl.href);
    expect(provider.lastBrowse?.landed?.searchParams.get("iss")).toBe(gh.url);

    expect((await client.listTools()).tools.map((t) => t.name)).toContain("web__echo");
    expect(await client.callTool({ name: "web__echo", arguments: { message: "via oauth" } })).toMatchObject({
      content: [{ text: "echo: via oauth" }],
    });

    // Refresh: the SDK trades its refresh token for new tokens; the old refresh token is rotated.
    const before = provider.tokens();
    expect(before?.refresh_token).toBeDefined();
    expect(await auth(provider, { serverUrl: mcpUrl })).toBe("AUTHORIZED");
    const after = provider.tokens();
    expect(after?.access_token).not.toBe(before?.access_token);
    expect(after?.refresh_token).not.toBe(before?.refresh_token);
    const refreshed = new Client({ name: "oauth-test", version: "1" });
    await refreshed.connect(new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider }));
    expect(await refreshed.callTool({ name: "web__add", arguments: { a: 2, b: 5 } })).toMatchObject({
      content: [{ text: "7" }],
    });
    await refreshed.close();
    await client.close();

    // A second client of the same user is asked for consent too: consent is per (user, client).
    const other = new HeadlessOAuthProvider("http://127.0.0.1:40000/cb", { headers: PROXY });
    const c2 = await connectWithOAuth(other);
    expect(other.lastBrowse?.consentShown).toBe(true);
    await c2.close();

    const logs = await gh.waitForLog("token: refresh_token");
    for (const step of [
      "discovery",
      "client registered",
      "authorize: asking for consent",
      "consent approved",
      "authorize: code issued",
      "token: authorization_code",
      "token: refresh_token",
    ]) {
      expect(logs).toContain(step);
    }
  });

  test("the same client authorizing again skips the consent page (remembered per user and client)", async () => {
    const provider = new HeadlessOAuthProvider("http://127.0.0.1:33419/callback", { headers: PROXY });
    const client = await connectWithOAuth(provider);
    await client.close();
    provider.saveTokens(undefined as never);
    const again = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider });
    await expect(new Client({ name: "x", version: "1" }).connect(again)).rejects.toThrow(UnauthorizedError);
    expect(provider.lastBrowse?.consentShown).toBe(false);
    expect(provider.code()).toBeDefined();
  });

  test("refused at /authorize when the browser comes from 127.0.0.2, outside trustedSourceCidrs", async () => {
    const provider = new HeadlessOAuthProvider("http://127.0.0.1:33420/callback", {
      headers: PROXY,
      fetchImpl: async (url, init) => {
        const r = await requestFrom("127.0.0.2", url, init);
        const headers = new Headers();
        for (const [k, v] of Object.entries(r.headers)) if (typeof v === "string") headers.set(k, v);
        return { status: r.status, headers, text: r.body };
      },
    });
    const transport = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider });
    await expect(new Client({ name: "x", version: "1" }).connect(transport)).rejects.toThrow(UnauthorizedError);
    expect(provider.lastBrowse?.status).toBe(403);
    expect(provider.lastBrowse?.page).toContain("not in oauthAs.trustedSourceCidrs");
    expect(provider.code()).toBeUndefined();
  });

  test("every 401 from /mcp carries the RFC 9728 challenge", async () => {
    const res = await fetch(mcpUrl, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toBe(
      `Bearer resource_metadata="${gh.url}/.well-known/oauth-protected-resource/mcp", scope="mcp"`,
    );
  });
});
