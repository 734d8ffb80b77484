// Issue 5 at the HTTP level, in process: forward auth (/authenticate), per-backend routes, anonymous policy, the
// rate limit, Origin rules on the OAuth endpoints, 405 for other methods, and a backend Gatehouse spawns itself
// (started, waited for, restarted after it dies).

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type HttpBackend, startHttpBackend } from "../fixtures/http-backend.ts";
import { type TestApp, testApp } from "../helpers/app.ts";
import { freePort } from "../helpers/net.ts";
import { BUN, ROOT } from "../helpers/paths.ts";

let backend: HttpBackend;
let t: TestApp;
const ALICE = { authorization: "Bearer alice-token" };
const rpc = (id: number, method: string, params: Record<string, unknown> = {}) => ({
  jsonrpc: "2.0",
  id,
  method,
  params,
});
const INIT = rpc(0, "initialize", {
  protocolVersion: "2025-06-18",
  capabilities: {},
  clientInfo: { name: "t", version: "1" },
});

beforeAll(async () => {
  backend = await startHttpBackend();
  t = await testApp({
    mcpServers: { web: { url: backend.url }, other: { url: backend.url, route: { publicTools: ["echo"] } } },
    serverAuth: {
      providers: ["bearer"],
      bearer: { tokens: { "alice-token": { subject: "alice", roles: ["staff", "ops"] } } },
    },
    gateway: { route: { requireAuthForToolsList: false, publicTools: ["web__echo"] }, rateLimitPerMinute: 1000 },
  });
});

afterAll(async () => {
  await t?.close();
  await backend?.stop();
});

async function post(path: string, body: unknown, headers: Record<string, string> = {}) {
  return t.request(path, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...headers },
    body: JSON.stringify(body),
  });
}

async function session(path: string, headers: Record<string, string> = {}) {
  const res = await post(path, INIT, headers);
  expect(res.status).toBe(200);
  return {
    ...headers,
    "mcp-session-id": res.headers.get("mcp-session-id") as string,
    "mcp-protocol-version": "2025-06-18",
  };
}

describe("forward auth", () => {
  test("no token: 401 with the challenge; a good token: 200 with the identity headers", async () => {
    const none = await t.request("/authenticate", { headers: { "x-original-uri": "/mcp" } });
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toStartWith("Bearer ");
    const bad = await t.request("/authenticate", { headers: { authorization: "Bearer nope" } });
    expect(bad.status).toBe(401);
    expect(bad.headers.get("www-authenticate")).toContain('error="invalid_token"');
    const ok = await t.request("/authenticate", { headers: ALICE });
    expect(ok.status).toBe(200);
    expect(ok.headers.get("x-auth-request-user")).toBe("alice");
    expect(ok.headers.get("x-auth-request-groups")).toBe("");
    expect(ok.headers.get("x-auth-request-roles")).toBe("staff,ops");
    const head = await t.request("/authenticate", { method: "HEAD", headers: ALICE });
    expect(head.status).toBe(200);
  });
  test("/authenticate/<server> uses that route; an unknown server is 404", async () => {
    expect((await t.request("/authenticate/web", { headers: ALICE })).status).toBe(200);
    expect((await t.request("/authenticate/web")).status).toBe(401);
    expect((await t.request("/authenticate/nope", { headers: ALICE })).status).toBe(404);
  });
});

describe("routes and policy", () => {
  test("/servers/<name>/mcp serves the backend unprefixed, with its own server info", async () => {
    const init = await post("/servers/web/mcp", INIT, ALICE);
    const body = (await init.json()) as { result: { serverInfo: { name: string }; instructions?: string } };
    expect(body.result.serverInfo.name).toBe("http-backend");
    const h = { ...ALICE, "mcp-session-id": init.headers.get("mcp-session-id") as string };
    const list = (await (await post("/servers/web/mcp", rpc(1, "tools/list"), h)).json()) as {
      result: { tools: { name: string; description?: string }[] };
    };
    const echo = list.result.tools.find((x) => x.name === "echo");
    expect(echo?.description).toBe("Echoes its input");
    const call = await post("/servers/web/mcp", rpc(2, "tools/call", { name: "echo", arguments: { message: "x" } }), h);
    expect(await call.json()).toMatchObject({ result: { content: [{ text: "echo: x" }] } });
    // Unknown methods go to the backend (it answers "method not found" itself); look-alikes of the methods the
    // policy checks never do.
    const unknown = (await (await post("/servers/web/mcp", rpc(4, "vendor/extension"), h)).json()) as {
      error: { code: number; message: string };
    };
    expect(unknown.error.code).toBe(-32601);
    for (const method of ["Tools/Call", "tools/call ", "ｔｏｏｌｓ/call"]) {
      const res = await post("/servers/web/mcp", rpc(5, method, { name: "admin_reset", arguments: {} }), h);
      const answer = (await res.json()) as { error: { code: number; message: string } };
      expect(answer.error).toEqual({ code: -32601, message: `Method not found: ${method}` });
    }
    // Sessions are per route: this one does not exist at /mcp or at another backend's route.
    expect((await post("/mcp", rpc(3, "ping"), h)).status).toBe(404);
    expect((await post("/servers/other/mcp", rpc(3, "ping"), h)).status).toBe(404);
  });
  test("anonymous: may list and call public tools; anything else gets 401 with the challenge", async () => {
    const h = await session("/mcp");
    const list = (await (await post("/mcp", rpc(1, "tools/list"), h)).json()) as { result: { tools: unknown[] } };
    expect(list.result.tools.length).toBeGreaterThan(0);
    const pub = await post("/mcp", rpc(2, "tools/call", { name: "web__echo", arguments: { message: "hi" } }), h);
    expect(await pub.json()).toMatchObject({ result: { content: [{ text: "echo: hi" }] } });
    const priv = await post("/mcp", rpc(3, "tools/call", { name: "web__add", arguments: { a: 1, b: 2 } }), h);
    expect(priv.status).toBe(401);
    expect(priv.headers.get("www-authenticate")).toStartWith("Bearer ");
    expect((await post("/mcp", rpc(4, "resources/list"), h)).status).toBe(401);
    // A bad token is not downgraded to anonymous.
    expect((await post("/mcp", INIT, { authorization: "Bearer wrong" })).status).toBe(401);
  });
  test("a backend route has its own policy: default needs auth, publicTools names are unprefixed there", async () => {
    expect((await post("/servers/web/mcp", INIT)).status).toBe(401);
    const h = await session("/servers/other/mcp");
    const call = await post(
      "/servers/other/mcp",
      rpc(1, "tools/call", { name: "echo", arguments: { message: "o" } }),
      h,
    );
    expect(await call.json()).toMatchObject({ result: { content: [{ text: "echo: o" }] } });
    expect((await post("/servers/other/mcp", rpc(2, "tools/list"), h)).status).toBe(401);
  });
  test("a new GET stream on 2025-11-25 starts with a priming event (an id and empty data)", async () => {
    const init = await post(
      "/mcp",
      rpc(0, "initialize", {
        protocolVersion: "2025-11-25",
        capabilities: {},
        clientInfo: { name: "t", version: "1" },
      }),
      ALICE,
    );
    const res = await t.request("/mcp", {
      headers: {
        ...ALICE,
        accept: "text/event-stream",
        "mcp-session-id": init.headers.get("mcp-session-id") as string,
      },
    });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(first).toMatch(/^id: 0-\d+\ndata: \n\n/);
    await reader.cancel();
  });
  test("PUT and PATCH get 405 with Allow", async () => {
    const res = await t.request("/mcp", { method: "PUT", body: "{}" });
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toContain("POST");
  });
  test("Gatehouse's own loopback origin passes the Origin check; another origin does not", async () => {
    const own = await post("/mcp", INIT, { ...ALICE, host: "127.0.0.1:8080", origin: "http://127.0.0.1:8080" });
    expect(own.status).toBe(200);
    const evil = await post("/mcp", INIT, { ...ALICE, host: "evil.example:8080", origin: "http://evil.example:8080" });
    expect(evil.status).toBe(403);
  });
});

describe("rate limit", () => {
  test("over gateway.rateLimitPerMinute: 429 with Retry-After, per caller", async () => {
    const limited = await testApp({
      mcpServers: { web: { url: backend.url } },
      serverAuth: { providers: ["bearer"], bearer: { tokens: { "alice-token": "alice", "bob-token": "bob" } } },
      gateway: { rateLimitPerMinute: 2 },
    });
    try {
      const send = (token: string) =>
        limited.rpc(rpc(1, "ping"), { authorization: `Bearer ${token}`, "mcp-session-id": "x" });
      await send("alice-token");
      await send("alice-token");
      const third = await send("alice-token");
      expect(third.status).toBe(429);
      expect(Number(third.headers.get("retry-after"))).toBeGreaterThan(0);
      expect(await third.text()).toContain("gateway.rateLimitPerMinute");
      expect((await send("bob-token")).status).not.toBe(429);
    } finally {
      await limited.close();
    }
  });
});

describe("the OAuth endpoints and browser origins", () => {
  test("a foreign origin cannot register a client, nor with text/plain; the listed ones can", async () => {
    const as = await testApp({
      mcpServers: { web: { url: backend.url } },
      serverAuth: {
        providers: ["oauth_as"],
        oauthAs: { issuerUrl: "https://gh.example", trustedSourceCidrs: ["127.0.0.1/32"] },
      },
    });
    try {
      const body = JSON.stringify({ redirect_uris: ["http://127.0.0.1:9/cb"], token_endpoint_auth_method: "none" });
      const evil = await as.request("/register", {
        method: "POST",
        headers: { origin: "https://evil.example", "content-type": "text/plain" },
        body,
      });
      expect(evil.status).toBe(403);
      expect(await evil.text()).toContain("gateway.allowedOrigins");
      const plain = await as.request("/register", { method: "POST", headers: { "content-type": "text/plain" }, body });
      expect(plain.status).toBe(400);
      expect(await plain.text()).toContain("application/json");
      const token = await as.request("/token", {
        method: "POST",
        headers: { origin: "https://evil.example", "content-type": "application/x-www-form-urlencoded" },
        body: "grant_type=authorization_code&code=x",
      });
      expect(token.status).toBe(403);
      const claude = await as.request("/register", {
        method: "POST",
        headers: { origin: "https://claude.ai", "content-type": "application/json" },
        body,
      });
      expect(claude.status).toBe(201);
      // Host: the configured issuer's host and loopback are served; another name is refused (DNS rebinding).
      const withHost = (host: string, path = "/.well-known/oauth-authorization-server") =>
        as.request(path, { headers: { host } });
      expect((await withHost("gh.example")).status).toBe(200);
      expect((await withHost("127.0.0.1:8080")).status).toBe(200);
      const rebound = await withHost("evil.example:8080");
      expect(rebound.status).toBe(403);
      expect(await rebound.text()).toContain("gateway.allowedHosts");
      expect((await withHost("10.1.2.3:8080")).status).toBe(200); // an IP address is no rebinding
      expect((await withHost("gatehouse")).status).toBe(200); // nginx's default Host: the upstream's name
      expect((await withHost("evil.example", "/health")).status).toBe(200);
      // Every route is a resource of the authorization server, with its own metadata.
      const prm = (await (await as.request("/.well-known/oauth-protected-resource/servers/web/mcp")).json()) as {
        resource: string;
        authorization_servers: string[];
      };
      expect(prm.resource).toBe("https://gh.example/servers/web/mcp");
      expect(prm.authorization_servers).toEqual(["https://gh.example"]);
      const challenge = (await as.request("/servers/web/mcp", { method: "POST", body: "{}" })).headers.get(
        "www-authenticate",
      );
      expect(challenge).toContain(
        'resource_metadata="https://gh.example/.well-known/oauth-protected-resource/servers/web/mcp"',
      );
    } finally {
      await as.close();
    }
  });
});

describe("a spawned HTTP backend", () => {
  test("is started, waited for, used, and restarted after it dies", async () => {
    const port = await freePort();
    const app = await testApp({
      mcpServers: {
        spawned: { command: BUN, args: [`${ROOT}/tests/fixtures/http-backend.ts`], env: { PORT: String(port) }, port },
      },
    });
    try {
      const h = await app.session();
      const call = async () =>
        (await (
          await app.rpc(rpc(1, "tools/call", { name: "spawned__echo", arguments: { message: "s" } }), {
            "mcp-session-id": h,
          })
        ).json()) as { result?: { content: { text: string }[] }; error?: unknown };
      expect((await call()).result?.content[0]?.text).toBe("echo: s");
      expect(app.lines.some((l) => l.includes("waiting for its port"))).toBe(true);
      // Kill it behind Gatehouse's back: the next calls restart it.
      const backendClient = app.app.gatehouse.gateway.backends.get("spawned")?.client;
      const pid = Number(/pid (\d+)/.exec(backendClient?.describe() ?? "")?.[1]);
      expect(pid).toBeGreaterThan(0);
      process.kill(pid, "SIGKILL");
      let result: Awaited<ReturnType<typeof call>> = {};
      for (let i = 0; i < 50 && !result.result; i++) {
        result = await call();
        if (!result.result) await Bun.sleep(100);
      }
      expect(result.result?.content[0]?.text).toBe("echo: s");
    } finally {
      await app.close();
    }
  });
});
