// Per-tool scopes with the official SDK client against a real Gatehouse process: tools outside the token's scopes
// are not listed; calling one gets 403 insufficient_scope naming every scope needed, and the SDK re-authorizes with
// the larger scope (a new consent) and the call succeeds. Scopes come from the config matrix (`serverAuth.toolScopes`)
// and from what a backend advertises (`_meta.scopes`). The user may grant less on the consent page. A 2025-03-26
// batch that hides a call outside the scopes among allowed ones gets that one call refused.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { type HttpBackend, startHttpBackend } from "../fixtures/http-backend.ts";
import { type Running, startGatehouse } from "../helpers/gatehouse-process.ts";
import { freePort } from "../helpers/net.ts";
import { HeadlessOAuthProvider } from "../helpers/oauth-client.ts";
import { writeConfig } from "../helpers/temp.ts";

let backend: HttpBackend;
let gh: Running;
let mcpUrl: URL;
const PROXY = { "x-forwarded-user": "carol@example.com" };

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
      },
      toolScopes: { "tools:write": ["web__admin_*", "web__grow"] },
    },
  });
  gh = await startGatehouse({ config, port });
  mcpUrl = new URL(`${gh.url}/mcp`);
}, 60_000);

afterAll(async () => {
  await gh?.stop();
  await backend?.stop();
});

/** A client registered without refresh tokens, so a step-up goes through authorization (and consent) again. */
function provider(untick: string[] = []) {
  return new HeadlessOAuthProvider(
    `http://127.0.0.1:${40100 + Math.floor(Math.random() * 1000)}/cb`,
    { headers: PROXY, untick },
    { grant_types: ["authorization_code"] },
  );
}

async function connect(p: HeadlessOAuthProvider): Promise<Client> {
  const first = new StreamableHTTPClientTransport(mcpUrl, { authProvider: p });
  await expect(new Client({ name: "step-up", version: "1" }).connect(first)).rejects.toThrow(UnauthorizedError);
  await first.finishAuth(p.code() as string);
  const client = new Client({ name: "step-up", version: "1" });
  await client.connect(new StreamableHTTPClientTransport(mcpUrl, { authProvider: p }));
  return client;
}

/** Calls a tool; when the SDK has to re-authorize (step-up), completes it and calls again. */
async function callWithStepUp(client: Client, p: HeadlessOAuthProvider, name: string) {
  try {
    return await client.callTool({ name, arguments: {} });
  } catch (e) {
    if (!(e instanceof UnauthorizedError)) throw e;
    const transport = client.transport as StreamableHTTPClientTransport;
    await transport.finishAuth(p.code() as string);
    return client.callTool({ name, arguments: {} });
  }
}

describe("per-tool scopes", () => {
  test("a token with only mcp does not see scoped tools; a call steps up through a new consent and succeeds", async () => {
    const p = provider();
    const client = await connect(p);
    expect(p.tokens()?.scope).toBe("mcp");
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names).toContain("web__echo");
    expect(names).not.toContain("web__admin_reset");
    expect(names).not.toContain("web__vault");

    const result = await callWithStepUp(client, p, "web__admin_reset");
    expect(result).toMatchObject({ content: [{ text: "reset" }] });
    // The second authorization asked for what the token had plus what the call needs, and consent was asked again.
    const stepUp = p.authorizationUrls.at(-1) as URL;
    expect(stepUp.searchParams.get("scope")?.split(" ").sort()).toEqual(["mcp", "tools:write"]);
    expect(p.lastBrowse?.consentShown).toBe(true);
    expect(p.tokens()?.scope?.split(" ").sort()).toEqual(["mcp", "tools:write"]);
    expect((await client.listTools()).tools.map((t) => t.name)).toContain("web__admin_reset");

    // A scope the backend advertises (_meta.scopes) works the same way.
    expect(await callWithStepUp(client, p, "web__vault")).toMatchObject({ content: [{ text: "vault opened" }] });
    expect(p.tokens()?.scope?.split(" ")).toContain("vault:read");
    await client.close();

    const logs = await gh.waitForLog("tool call refused: insufficient scope");
    expect(logs).toContain("tool call refused: insufficient scope");
  });

  test("the 403 names every scope the call needs, with the resource metadata", async () => {
    const p = provider();
    const client = await connect(p);
    const token = p.tokens()?.access_token as string;
    const headers = {
      authorization: `Bearer ${token}`,
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
    };
    const init = await fetch(mcpUrl, {
      method: "POST",
      headers,
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "initialize",
        params: { protocolVersion: "2025-03-26", capabilities: {}, clientInfo: { name: "raw", version: "1" } },
      }),
    });
    const sid = init.headers.get("mcp-session-id") as string;
    const session = { ...headers, "mcp-session-id": sid, "mcp-protocol-version": "2025-03-26" };
    const call = (id: number, name: string) => ({
      jsonrpc: "2.0",
      id,
      method: "tools/call",
      params: { name, arguments: name === "web__echo" ? { message: "hi" } : {} },
    });

    const refused = await fetch(mcpUrl, {
      method: "POST",
      headers: session,
      body: JSON.stringify(call(2, "web__grow")),
    });
    expect(refused.status).toBe(403);
    const challenge = refused.headers.get("www-authenticate") as string;
    expect(challenge).toStartWith("Bearer ");
    expect(challenge).toContain('error="insufficient_scope"');
    expect(challenge).toContain('scope="mcp tools:write"');
    expect(challenge).toContain(`resource_metadata="${gh.url}/.well-known/oauth-protected-resource/mcp"`);

    // A batch (2025-03-26) hiding the denied call between allowed ones: only that item is refused.
    const batch = await fetch(mcpUrl, {
      method: "POST",
      headers: session,
      body: JSON.stringify([call(3, "web__echo"), call(4, "web__admin_reset"), { ...call(5, "web__echo") }]),
    });
    expect(batch.status).toBe(200);
    const items = (await batch.json()) as { id: number; result?: unknown; error?: { code: number; message: string } }[];
    const byId = new Map(items.map((i) => [i.id, i]));
    expect(byId.get(3)?.result).toBeDefined();
    expect(byId.get(5)?.result).toBeDefined();
    expect(byId.get(4)?.error?.code).toBe(-32003);
    expect(byId.get(4)?.error?.message).toContain("tools:write");
    // Exact names only: a case variant is another (unknown) tool, not a way around the scope.
    const variant = await fetch(mcpUrl, {
      method: "POST",
      headers: session,
      body: JSON.stringify(call(6, "web__ADMIN_reset")),
    });
    expect(((await variant.json()) as { error: { code: number } }).error.code).toBe(-32602);
    await client.close();
  });

  test("forward auth names the user with the email the trusted proxy gave at sign-in", async () => {
    const p = new HeadlessOAuthProvider(
      "http://127.0.0.1:41999/cb",
      { headers: { ...PROXY, "x-forwarded-email": "carol@mail.example" } },
      { grant_types: ["authorization_code"] },
    );
    const client = await connect(p);
    const res = await fetch(`${gh.url}/authenticate`, {
      headers: { authorization: `Bearer ${p.tokens()?.access_token}` },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-auth-request-user")).toBe("carol@example.com");
    expect(res.headers.get("x-auth-request-email")).toBe("carol@mail.example");
    expect(res.headers.get("x-auth-request-scope")).toBe("mcp");
    await client.close();
  });

  test("the user can grant less on the consent page: the call then still needs the scope", async () => {
    const p = provider(["tools:write"]);
    const first = new StreamableHTTPClientTransport(mcpUrl, { authProvider: p });
    // The first authorization asks only for the required scope: nothing to untick yet.
    const client0 = new Client({ name: "narrow", version: "1" });
    await expect(client0.connect(first)).rejects.toThrow(UnauthorizedError);
    await first.finishAuth(p.code() as string);
    expect(p.tokens()?.scope).toBe("mcp");

    const client = new Client({ name: "narrow", version: "1" });
    await client.connect(new StreamableHTTPClientTransport(mcpUrl, { authProvider: p }));
    // The step-up asks again; this user unticks tools:write again, so the SDK gives up (403 after up-scoping).
    await expect(callWithStepUp(client, p, "web__admin_reset")).rejects.toThrow(/403/);
    expect(p.lastBrowse?.consentShown).toBe(true);
    expect(p.tokens()?.scope).toBe("mcp");
    await client.close();
  });
});
