// MCP routes, end to end with the official SDK client against Gatehouse processes and real backends
// (server-everything over stdio, tests/fixtures/http-backend.ts and tests/fixtures/conformance-backend.ts over
// Streamable HTTP): every backend unprefixed at /servers/<name>/mcp with its own sessions and its own initialize,
// `gateway.passthrough`, each route its own OAuth protected resource (token audience = the route's URL), per-route
// policy (`authType`, `requireAuthForToolsList`, `publicTools`) and host-based routing (Host, X-Forwarded-Host
// from trusted proxies only).

import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport, StreamableHTTPError } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { McpError } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";
import { type ConformanceBackend, EXTENSION_METHOD, startConformanceBackend } from "../fixtures/conformance-backend.ts";
import { type HttpBackend, startHttpBackend } from "../fixtures/http-backend.ts";
import { onCleanup } from "../helpers/cleanup.ts";
import { connect } from "../helpers/client.ts";
import { type Running, startGatehouse } from "../helpers/gatehouse-process.ts";
import { freePort, requestFrom } from "../helpers/net.ts";
import { HeadlessOAuthProvider } from "../helpers/oauth-client.ts";
import { authorizeQuery, authorizeTo, pkce, register, remote, tokens } from "../helpers/oauth-flow.ts";
import { BUN, EVERYTHING, everythingStdio } from "../helpers/paths.ts";
import { writeConfig } from "../helpers/temp.ts";

const PROTOCOL = "2025-11-25";
const PROXY = { "x-forwarded-user": "alice@example.com", "x-forwarded-groups": "engineers" };

let alpha: HttpBackend;
let beta: HttpBackend;
let reference: ConformanceBackend;
/** server-everything over stdio, without Gatehouse: what its routes must look like. */
let everythingDirect: Client;

beforeAll(async () => {
  alpha = await startHttpBackend({ name: "alpha" });
  beta = await startHttpBackend({ name: "beta" });
  reference = await startConformanceBackend({ name: "reference-backend" });
  everythingDirect = new Client({ name: "direct", version: "1" });
  await everythingDirect.connect(
    new StdioClientTransport({
      command: BUN,
      args: [EVERYTHING, "stdio"],
      env: { PATH: process.env.PATH ?? "" },
      stderr: "ignore",
    }),
  );
  onCleanup(() => everythingDirect.close());
}, 60_000);

afterAll(async () => {
  await everythingDirect?.close();
  await alpha?.stop();
  await beta?.stop();
  await reference?.stop();
});

const openClients: Client[] = [];
/** Closes SDK clients at the end of the test that opened them, even when it fails. */
function closing(...clients: Client[]): void {
  openClients.push(...clients);
}
afterEach(async () => {
  await Promise.allSettled(openClients.splice(0).map((c) => c.close()));
});

const names = async (c: Client) => (await c.listTools()).tools.map((t) => t.name);

/** A raw initialize, as JSON-RPC over HTTP (no SDK): for checks on status codes and headers. */
function initializeBody(): string {
  return JSON.stringify({
    jsonrpc: "2.0",
    id: 1,
    method: "initialize",
    params: { protocolVersion: PROTOCOL, capabilities: {}, clientInfo: { name: "raw", version: "1" } },
  });
}

function post(url: string, body: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      "mcp-protocol-version": PROTOCOL,
      ...headers,
    },
    body,
  });
}

/** A fetch for the SDK transport that remembers every HTTP answer (status, challenge) by JSON-RPC method. */
function recordingFetch() {
  const seen: { method: string | undefined; status: number; challenge: string | null }[] = [];
  const f = async (url: string | URL, init?: RequestInit): Promise<Response> => {
    const res = await fetch(url, init);
    let method: string | undefined;
    if (typeof init?.body === "string") method = (JSON.parse(init.body) as { method?: string }).method;
    seen.push({ method, status: res.status, challenge: res.headers.get("www-authenticate") });
    return res;
  };
  return { seen, fetch: f };
}

function jwtPayload(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split(".")[1] as string, "base64url").toString()) as Record<string, unknown>;
}

// ---------------------------------------------------------------------------------------------------------------

describe("/servers/<name>/mcp next to the aggregate /mcp (no authentication)", () => {
  let gh: Running;
  beforeAll(async () => {
    const config = writeConfig({
      mcpServers: { a: { url: alpha.url }, ev: everythingStdio(), ref: { url: reference.url } },
      gateway: { hosts: { "a.example": "a" }, trustedProxies: ["127.0.0.2/32"] },
    });
    gh = await startGatehouse({ config });
  }, 60_000);
  afterAll(async () => {
    await gh?.stop();
  });

  test("an HTTP backend's route: its own initialize, its tools unchanged and callable by their own names", async () => {
    const direct = await connect(alpha.url);
    const via = await connect(`${gh.url}/servers/a/mcp`);
    closing(direct, via);
    expect(via.getServerVersion()).toEqual({ name: "alpha", version: "1.0.0" });
    expect(via.getServerCapabilities()).toEqual(direct.getServerCapabilities());
    expect(via.getInstructions()).toBeUndefined();
    // Same definitions as the backend's: names, descriptions (no "[a]"), schemas, annotations, _meta.
    expect((await via.listTools()).tools).toEqual((await direct.listTools()).tools);
    expect(await via.callTool({ name: "echo", arguments: { message: "unprefixed" } })).toMatchObject({
      content: [{ type: "text", text: "echo: unprefixed" }],
    });
    expect(await via.callTool({ name: "add", arguments: { a: 2, b: 5 } })).toMatchObject({ content: [{ text: "7" }] });
    expect(await via.readResource({ uri: "memo://readme" })).toMatchObject({
      contents: [{ uri: "memo://readme", text: "hello from the http backend" }],
    });
    expect(await via.getPrompt({ name: "greet", arguments: { who: "Ada" } })).toMatchObject({
      messages: [{ content: { text: "Hello Ada" } }],
    });
    // The aggregate's prefixed names mean nothing here.
    await expect(via.callTool({ name: "a__echo", arguments: { message: "x" } })).rejects.toThrow(
      "Unknown tool: a__echo",
    );
  });

  test("a stdio backend's route (server-everything) answers initialize as server-everything does", async () => {
    const via = await connect(`${gh.url}/servers/ev/mcp`);
    closing(via);
    expect(via.getServerVersion()).toEqual(everythingDirect.getServerVersion());
    expect(via.getServerVersion()?.name).toBe("mcp-servers/everything");
    expect(via.getServerCapabilities()).toEqual(everythingDirect.getServerCapabilities());
    expect(via.getInstructions()).toBe(everythingDirect.getInstructions());
    const tools = await names(via);
    expect(tools).toContain("get-sum");
    expect(tools).toContain("trigger-long-running-operation");
    expect(tools.some((n) => n.includes("__"))).toBe(false);
    expect(await via.callTool({ name: "get-sum", arguments: { a: 2, b: 3 } })).toMatchObject({
      content: [{ type: "text", text: expect.stringContaining("5") }],
    });
    const { resources } = await via.listResources();
    const first = resources[0];
    expect(first?.uri).toBe((await everythingDirect.listResources()).resources[0]?.uri as string);
    expect((await via.readResource({ uri: first!.uri })).contents[0]?.uri).toBe(first!.uri);
    expect((await via.listPrompts()).prompts.map((p) => p.name)).toEqual(
      (await everythingDirect.listPrompts()).prompts.map((p) => p.name),
    );
  });

  test("progress of a long-running tool reaches the client through the route", async () => {
    const via = await connect(`${gh.url}/servers/ev/mcp`);
    closing(via);
    const progress: number[] = [];
    await via.callTool({ name: "trigger-long-running-operation", arguments: { duration: 1, steps: 2 } }, undefined, {
      onprogress: (p) => progress.push(p.progress),
    });
    expect(progress).toEqual([1, 2]);
  });

  test("a method Gatehouse does not know is forwarded on a route; the aggregate cannot tell whose it is", async () => {
    const via = await connect(`${gh.url}/servers/ref/mcp`);
    const agg = await connect(`${gh.url}/mcp`);
    closing(via, agg);
    expect(via.getServerVersion()?.name).toBe("reference-backend");
    expect(via.getInstructions()).toBe("The conformance suite's reference tools, resources and prompts.");
    const schema = z.object({ echoed: z.record(z.string(), z.unknown()), by: z.string() });
    const request = { method: EXTENSION_METHOD, params: { hello: "world" } } as never;
    expect(await via.request(request, schema)).toEqual({ echoed: { hello: "world" }, by: "reference-backend" });
    const refused = await agg.request(request, schema).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(McpError);
    expect((refused as McpError).code).toBe(-32601);
  });

  test("/mcp still aggregates every backend, prefixed, as Gatehouse", async () => {
    const agg = await connect(`${gh.url}/mcp`);
    closing(agg);
    expect(agg.getServerVersion()?.name).toBe("gatehouse");
    const tools = await names(agg);
    for (const n of ["a__echo", "ev__get-sum", "ref__test_simple_text"]) expect(tools).toContain(n);
    expect(tools).not.toContain("echo");
    expect(await agg.callTool({ name: "a__echo", arguments: { message: "aggregate" } })).toMatchObject({
      content: [{ text: "echo: aggregate" }],
    });
  });

  test("each route has its own sessions: a session of one route is unknown (404) on the others", async () => {
    const via = await connect(`${gh.url}/servers/a/mcp`);
    closing(via);
    const sid = (via.transport as StreamableHTTPClientTransport).sessionId as string;
    expect(sid).toBeTruthy();
    const list = JSON.stringify({ jsonrpc: "2.0", id: 7, method: "tools/list" });
    expect((await post(`${gh.url}/servers/a/mcp`, list, { "mcp-session-id": sid })).status).toBe(200);
    expect((await post(`${gh.url}/servers/ev/mcp`, list, { "mcp-session-id": sid })).status).toBe(404);
    expect((await post(`${gh.url}/mcp`, list, { "mcp-session-id": sid })).status).toBe(404);
  });

  test("a route also speaks the 2024-11-05 HTTP+SSE transport, at /servers/<name>/mcp/sse", async () => {
    const old = await connect(`${gh.url}/servers/a/mcp/sse`, { sse: true });
    closing(old);
    expect(old.getServerVersion()?.name).toBe("alpha");
    expect(await names(old)).toContain("echo");
    expect(await old.callTool({ name: "echo", arguments: { message: "legacy" } })).toMatchObject({
      content: [{ text: "echo: legacy" }],
    });
  });

  test("an unknown server name is not a route", async () => {
    const res = await post(`${gh.url}/servers/nope/mcp`, initializeBody());
    expect(res.status).toBe(404);
  });

  describe("host-based routing", () => {
    test("Host: a.example at /mcp reaches backend a, unprefixed", async () => {
      const viaHost = await connect(`${gh.url}/mcp`, { headers: { host: "a.example" } });
      const direct = await connect(alpha.url);
      closing(viaHost, direct);
      expect(viaHost.getServerVersion()?.name).toBe("alpha");
      expect((await viaHost.listTools()).tools).toEqual((await direct.listTools()).tools);
      expect(await viaHost.callTool({ name: "echo", arguments: { message: "by host" } })).toMatchObject({
        content: [{ text: "echo: by host" }],
      });
    });

    test("X-Forwarded-Host is ignored from a peer outside trustedProxies, believed from one inside", async () => {
      // 127.0.0.1 is not in trustedProxies (127.0.0.2/32): its X-Forwarded-Host changes nothing.
      const untrusted = await connect(`${gh.url}/mcp`, { headers: { "x-forwarded-host": "a.example" } });
      closing(untrusted);
      expect(untrusted.getServerVersion()?.name).toBe("gatehouse");
      expect(await names(untrusted)).toContain("a__echo");

      const headers = {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        "x-forwarded-host": "a.example",
      };
      const trusted = await requestFrom("127.0.0.2", `${gh.url}/mcp`, {
        method: "POST",
        headers,
        body: initializeBody(),
      });
      expect(trusted.status).toBe(200);
      expect(JSON.parse(trusted.body).result.serverInfo.name).toBe("alpha");
      // The same peer without the header gets the aggregate: it is the header that routed it.
      const { "x-forwarded-host": _, ...plain } = headers;
      const unrouted = await requestFrom("127.0.0.2", `${gh.url}/mcp`, {
        method: "POST",
        headers: plain,
        body: initializeBody(),
      });
      expect(JSON.parse(unrouted.body).result.serverInfo.name).toBe("gatehouse");
    });
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe("gateway.passthrough", () => {
  let gh: Running;
  beforeAll(async () => {
    const config = writeConfig({
      mcpServers: { ev: everythingStdio(), a: { url: alpha.url } },
      gateway: { passthrough: "ev" },
    });
    gh = await startGatehouse({ config });
  }, 60_000);
  afterAll(async () => {
    await gh?.stop();
  });

  test("/mcp is server-everything itself: its initialize, its names, unprefixed", async () => {
    const client = await connect(`${gh.url}/mcp`);
    closing(client);
    expect(client.getServerVersion()).toEqual(everythingDirect.getServerVersion());
    expect(client.getServerCapabilities()).toEqual(everythingDirect.getServerCapabilities());
    expect(client.getInstructions()).toBe(everythingDirect.getInstructions());
    const tools = await names(client);
    expect(tools).toContain("echo");
    expect(tools.some((n) => n.startsWith("ev__") || n.startsWith("a__"))).toBe(false);
    expect(await client.callTool({ name: "echo", arguments: { message: "passed through" } })).toMatchObject({
      content: [{ text: "Echo: passed through" }],
    });
    const uri = (await client.listResources()).resources[0]?.uri as string;
    expect(uri).toBe((await everythingDirect.listResources()).resources[0]?.uri as string);
    expect((await client.readResource({ uri })).contents[0]?.uri).toBe(uri);
  });

  test("the other backends keep their own routes", async () => {
    const client = await connect(`${gh.url}/servers/a/mcp`);
    closing(client);
    expect(client.getServerVersion()?.name).toBe("alpha");
    expect(await client.callTool({ name: "echo", arguments: { message: "still here" } })).toMatchObject({
      content: [{ text: "echo: still here" }],
    });
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe("each route its own protected resource (oauth_as), and route policies", () => {
  let gh: Running;
  beforeAll(async () => {
    const port = await freePort();
    const config = writeConfig({
      mcpServers: {
        a: { url: alpha.url },
        b: { url: beta.url },
        open: { url: alpha.url, route: { authType: "none" } },
        pub: { url: alpha.url, route: { requireAuthForToolsList: false, publicTools: ["echo"] } },
      },
      gateway: { hosts: { "a.example": "a" } },
      serverAuth: {
        providers: ["oauth_as"],
        oauthAs: {
          issuerUrl: `http://127.0.0.1:${port}`,
          trustedSourceCidrs: ["127.0.0.1/32"],
          scopesSupported: ["mcp"],
          requiredScopes: ["mcp"],
        },
      },
    });
    gh = await startGatehouse({ config, port });
  }, 60_000);
  afterAll(async () => {
    await gh?.stop();
  });

  /** The SDK's whole OAuth flow against one route: 401 → discovery → registration → authorize → token. */
  async function connectWithOAuth(provider: HeadlessOAuthProvider, url: URL): Promise<Client> {
    const first = new StreamableHTTPClientTransport(url, { authProvider: provider });
    await expect(new Client({ name: "oauth-test", version: "1" }).connect(first)).rejects.toThrow(UnauthorizedError);
    const code = provider.code();
    if (!code) throw new Error(`no code: ${provider.lastBrowse?.status} ${provider.lastBrowse?.page?.slice(0, 300)}`);
    await first.finishAuth(code);
    const client = new Client({ name: "oauth-test", version: "1" });
    await client.connect(new StreamableHTTPClientTransport(url, { authProvider: provider }));
    closing(client);
    return client;
  }

  const challenge = (route: string) =>
    `Bearer resource_metadata="${gh.url}/.well-known/oauth-protected-resource${route}", scope="mcp"`;

  test("a token obtained for /servers/a/mcp works there, and only there", async () => {
    const aUrl = new URL(`${gh.url}/servers/a/mcp`);
    const provider = new HeadlessOAuthProvider("http://127.0.0.1:33501/callback", { headers: PROXY });
    const client = await connectWithOAuth(provider, aUrl);
    expect(provider.authorizationUrls[0]?.searchParams.get("resource")).toBe(aUrl.href);
    const token = provider.tokens()?.access_token as string;
    expect(jwtPayload(token).aud).toBe(aUrl.href);

    expect(client.getServerVersion()?.name).toBe("alpha");
    expect(await client.callTool({ name: "echo", arguments: { message: "with a route token" } })).toMatchObject({
      content: [{ text: "echo: with a route token" }],
    });
    // The token stops at Gatehouse: the backend never sees it.
    const seen = await client.callTool({ name: "headers", arguments: {} });
    const headers = JSON.parse((seen.content as { text: string }[])[0]?.text as string) as Record<string, string>;
    expect(headers.authorization).toBeUndefined();
    expect(JSON.stringify(headers)).not.toContain(token);

    // Another backend's route and the aggregate refuse it: it was minted for another audience.
    for (const route of ["/servers/b/mcp", "/mcp"]) {
      const res = await post(`${gh.url}${route}`, initializeBody(), { authorization: `Bearer ${token}` });
      expect(res.status).toBe(401);
      const header = res.headers.get("www-authenticate") ?? "";
      expect(header).toContain('error="invalid_token"');
      expect(header).toContain(`resource_metadata="${gh.url}/.well-known/oauth-protected-resource${route}"`);
      await expect(connect(`${gh.url}${route}`, { token })).rejects.toThrow();
    }
    const ok = await post(aUrl.href, initializeBody(), { authorization: `Bearer ${token}` });
    expect(ok.status).toBe(200);
  });

  test("a token obtained for /mcp is refused at /servers/a/mcp", async () => {
    const mcpUrl = new URL(`${gh.url}/mcp`);
    const provider = new HeadlessOAuthProvider("http://127.0.0.1:33502/callback", { headers: PROXY });
    const client = await connectWithOAuth(provider, mcpUrl);
    expect(client.getServerVersion()?.name).toBe("gatehouse");
    const token = provider.tokens()?.access_token as string;
    expect(jwtPayload(token).aud).toBe(mcpUrl.href);
    const res = await post(`${gh.url}/servers/a/mcp`, initializeBody(), { authorization: `Bearer ${token}` });
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toContain('error="invalid_token"');
  });

  test("each route's protected resource metadata names that route's URL", async () => {
    for (const name of ["a", "b"]) {
      const res = await fetch(`${gh.url}/.well-known/oauth-protected-resource/servers/${name}/mcp`);
      expect(res.status).toBe(200);
      const body = (await res.json()) as Record<string, unknown>;
      expect(body.resource).toBe(`${gh.url}/servers/${name}/mcp`);
      expect(body.authorization_servers).toEqual([gh.url]);
    }
    const main = (await (await fetch(`${gh.url}/.well-known/oauth-protected-resource/mcp`)).json()) as {
      resource: string;
    };
    expect(main.resource).toBe(`${gh.url}/mcp`);
  });

  test("a host mapped to a backend is its own protected resource, with its own tokens", async () => {
    const hostResource = "http://a.example/mcp";
    const prm = async (headers: Record<string, string>) =>
      (
        (await (await fetch(`${gh.url}/.well-known/oauth-protected-resource/mcp`, { headers })).json()) as {
          resource: string;
        }
      ).resource;
    expect(await prm({ host: "a.example" })).toBe(hostResource);
    expect(await prm({})).toBe(`${gh.url}/mcp`);
    const anonymous = await post(`${gh.url}/mcp`, initializeBody(), { host: "a.example" });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get("www-authenticate")).toBe(
      'Bearer resource_metadata="http://a.example/.well-known/oauth-protected-resource/mcp", scope="mcp"',
    );

    const t = remote(gh.url);
    const { access_token } = await tokens(t, (await register(t)).client_id, hostResource);
    const bearer = { authorization: `Bearer ${access_token}` };
    const ok = await post(`${gh.url}/mcp`, initializeBody(), { ...bearer, host: "a.example" });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { result: { serverInfo: { name: string } } }).result.serverInfo.name).toBe("alpha");
    // The same backend under another route, and /mcp of Gatehouse's own host, are other resources.
    for (const route of ["/servers/a/mcp", "/mcp"]) {
      const res = await post(`${gh.url}${route}`, initializeBody(), bearer);
      expect(res.status).toBe(401);
      expect(res.headers.get("www-authenticate")).toContain('error="invalid_token"');
    }
  });

  test('authType "none": the route serves without credentials', async () => {
    const client = await connect(`${gh.url}/servers/open/mcp`);
    closing(client);
    expect(client.getServerVersion()?.name).toBe("alpha");
    expect(await names(client)).toContain("admin_reset");
    expect(await client.callTool({ name: "add", arguments: { a: 3, b: 4 } })).toMatchObject({
      content: [{ text: "7" }],
    });
  });

  test("default policy: an anonymous client gets 401 with the route's challenge at initialize", async () => {
    for (const route of ["/servers/a/mcp", "/mcp"]) {
      const refused = await connect(`${gh.url}${route}`).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(StreamableHTTPError);
      expect((refused as StreamableHTTPError).code).toBe(401);
      const res = await post(`${gh.url}${route}`, initializeBody());
      expect(res.status).toBe(401);
      expect(res.headers.get("www-authenticate")).toBe(challenge(route));
    }
  });

  test("requireAuthForToolsList: false + publicTools: anonymous lists and calls public tools, others get 401", async () => {
    const rec = recordingFetch();
    const anonymous = new Client({ name: "anonymous", version: "1" });
    await anonymous.connect(
      new StreamableHTTPClientTransport(new URL(`${gh.url}/servers/pub/mcp`), { fetch: rec.fetch }),
    );
    closing(anonymous);
    expect(anonymous.getServerVersion()?.name).toBe("alpha");
    const tools = await names(anonymous);
    expect(tools).toContain("echo");
    expect(tools).toContain("add");
    expect(await anonymous.callTool({ name: "echo", arguments: { message: "public" } })).toMatchObject({
      content: [{ text: "echo: public" }],
    });

    const refused = await anonymous.callTool({ name: "add", arguments: { a: 1, b: 1 } }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(StreamableHTTPError);
    expect((refused as StreamableHTTPError).code).toBe(401);
    const call = rec.seen.filter((s) => s.method === "tools/call");
    expect(call.map((s) => s.status)).toEqual([200, 401]);
    expect(call[1]?.challenge).toBe(challenge("/servers/pub/mcp"));
    // Anything else that needs a user is refused the same way.
    const resources = await anonymous.listResources().catch((e: unknown) => e);
    expect((resources as StreamableHTTPError).code).toBe(401);
  });

  test("the 2024-11-05 HTTP+SSE transport of that route applies the same policy", async () => {
    const old = await connect(`${gh.url}/servers/pub/mcp/sse`, { sse: true });
    closing(old);
    expect(await names(old)).toContain("add");
    expect(await old.callTool({ name: "echo", arguments: { message: "old and public" } })).toMatchObject({
      content: [{ text: "echo: old and public" }],
    });
    await expect(old.callTool({ name: "add", arguments: { a: 1, b: 2 } })).rejects.toThrow(/401/);
    await expect(connect(`${gh.url}/servers/a/mcp/sse`, { sse: true })).rejects.toThrow();
  });

  test("a bad token is refused on that route, even for what anonymous callers may do", async () => {
    const res = await post(`${gh.url}/servers/pub/mcp`, initializeBody(), { authorization: "Bearer not-a-token" });
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toContain('error="invalid_token"');
  });

  test("the authorization server accepts as resource the URL of a protected route, and no other", async () => {
    const t = remote(gh.url);
    const client = await register(t);
    const outcome = async (route: string) => {
      const res = await authorizeTo(
        t,
        authorizeQuery(client.client_id, pkce().challenge, { resource: `${gh.url}${route}` }),
        {
          headers: PROXY,
        },
      );
      const location = new URL(res.headers.get("location") ?? "http://invalid/");
      return location.searchParams.get("code") ? "code" : (location.searchParams.get("error") ?? `HTTP ${res.status}`);
    };
    expect(await outcome("/servers/a/mcp")).toBe("code");
    expect(await outcome("/servers/pub/mcp")).toBe("code");
    expect(await outcome("/mcp")).toBe("code");
    // No such backend; and a route with authType "none" is no protected resource: no token is minted for either.
    expect(await outcome("/servers/nope/mcp")).toBe("invalid_target");
    expect(await outcome("/servers/open/mcp")).toBe("invalid_target");
  });

  test("an anonymous client of that route authorizes when a call needs it, then calls the tool", async () => {
    const url = new URL(`${gh.url}/servers/pub/mcp`);
    const provider = new HeadlessOAuthProvider("http://127.0.0.1:33503/callback", { headers: PROXY });
    const transport = new StreamableHTTPClientTransport(url, { authProvider: provider });
    const client = new Client({ name: "step-up", version: "1" });
    await client.connect(transport); // no token yet: initialize is allowed anonymously
    closing(client);
    expect(await names(client)).toContain("add");
    await expect(client.callTool({ name: "add", arguments: { a: 20, b: 22 } })).rejects.toThrow(UnauthorizedError);
    expect(provider.authorizationUrls[0]?.searchParams.get("resource")).toBe(url.href);
    await transport.finishAuth(provider.code() as string);
    // The session was opened anonymously and stays bound to that principal: the authorized client starts a new one.
    const authorized = new Client({ name: "step-up", version: "1" });
    await authorized.connect(new StreamableHTTPClientTransport(url, { authProvider: provider }));
    closing(authorized);
    expect(await authorized.callTool({ name: "add", arguments: { a: 20, b: 22 } })).toMatchObject({
      content: [{ text: "42" }],
    });
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe("tasks (MCP 2025-11-25) on a pass-through route", () => {
  // server-everything supports task-augmented tools/call and tasks/list|get|result|cancel; a pass-through route
  // forwards these methods. The backend holds one session for every client of the route, so only Gatehouse can keep
  // one user's tasks from another ("receivers MUST bind tasks to the authorization context", MCP tasks, Security).
  let gh: Running;
  beforeAll(async () => {
    const config = writeConfig({
      mcpServers: { ev: everythingStdio() },
      serverAuth: {
        providers: ["bearer"],
        bearer: { tokens: { "tok-ada": { subject: "ada", roles: [] }, "tok-bob": { subject: "bob", roles: [] } } },
      },
    });
    gh = await startGatehouse({ config });
  }, 60_000);
  afterAll(async () => {
    await gh?.stop();
  });

  const anything = z.record(z.string(), z.unknown());
  const call = (c: Client, method: string, params: Record<string, unknown>) =>
    c.request({ method, params } as never, anything);
  const failure = (p: Promise<unknown>) =>
    p.then(
      (r) => `answered ${JSON.stringify(r).slice(0, 120)}`,
      (e: unknown) => (e instanceof McpError ? `error ${e.code}` : String(e)),
    );

  test("a user sees and controls only the tasks they created", async () => {
    const url = `${gh.url}/servers/ev/mcp`;
    const ada = await connect(url, { token: "tok-ada" });
    const bob = await connect(url, { token: "tok-bob" });
    closing(ada, bob);
    expect(ada.getServerCapabilities()?.tasks).toBeDefined();
    const created = await call(ada, "tools/call", {
      name: "simulate-research-query",
      arguments: { topic: "ada's research" },
      task: { ttl: 60_000 },
    });
    const taskId = (created.task as { taskId: string }).taskId;
    expect(taskId).toBeTruthy();
    const ids = async (c: Client) =>
      ((await call(c, "tasks/list", {})).tasks as { taskId: string }[]).map((t) => t.taskId);
    expect(await ids(ada)).toContain(taskId);
    expect((await call(ada, "tasks/get", { taskId })).taskId).toBe(taskId);

    // Bob gets for Ada's task exactly what he gets for a task that does not exist.
    expect(await ids(bob)).not.toContain(taskId);
    expect(await failure(call(bob, "tasks/get", { taskId: "no-such-task" }))).toBe("error -32602");
    for (const method of ["tasks/get", "tasks/result", "tasks/cancel"]) {
      expect(`${method}: ${await failure(call(bob, method, { taskId }))}`).toBe(`${method}: error -32602`);
    }
    expect((await call(ada, "tasks/get", { taskId })).status).not.toBe("cancelled");
    await call(ada, "tasks/cancel", { taskId });
  });
});
