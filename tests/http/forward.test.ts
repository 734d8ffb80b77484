// gateway.forward in process (env-only mode's pass-through, mcp-oauth-proxy's every-other-path proxy): after /mcp's
// checks — credentials, Origin, rate limit, body size — a request no Gatehouse endpoint answers reaches the upstream
// with its method, headers, query and body, and its answer comes back as it was (status, headers, encoded bytes, an
// SSE stream as it flows), hop-by-hop headers dropped both ways and the client's Authorization never passed on.
// /mcp stays Gatehouse's MCP gateway; discovery, /healthz and /health stay Gatehouse's.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ConfigError } from "../../src/config/problems.ts";
import { type HttpBackend, startHttpBackend } from "../fixtures/http-backend.ts";
import { type TestApp, testApp } from "../helpers/app.ts";
import { freePort } from "../helpers/net.ts";

let backend: HttpBackend;
let origin: string;
let t: TestApp;
const ALICE = { authorization: "Bearer alice-token" };

function config(gateway: Record<string, unknown>, url = `${origin}/mcp`) {
  return {
    mcpServers: { upstream: { url } },
    serverAuth: {
      providers: ["bearer"],
      bearer: { tokens: { "alice-token": { subject: "alice", roles: ["staff"] } } },
    },
    gateway: {
      passthrough: "upstream",
      serverRoutes: false,
      paths: ["/mcp"],
      forward: { url: origin, appendPath: true },
      accessLog: true,
      ...gateway,
    },
  };
}

beforeAll(async () => {
  backend = await startHttpBackend({ name: "forwarded" });
  origin = `http://127.0.0.1:${backend.port}`;
  t = await testApp(config({ maxBodyBytes: 4096 }));
});

afterAll(async () => {
  await t?.close();
  await backend?.stop();
});

interface Echo {
  method: string;
  path: string;
  query: string;
  headers: Record<string, string>;
  body: string;
}

describe("the bearer check comes first", () => {
  test("no token, or a wrong one: 401 with the challenge, and the upstream never sees the request", async () => {
    const before = backend.seenHeaders.length;
    for (const headers of [{}, { authorization: "Bearer nope" }] as Record<string, string>[]) {
      const res = await t.request("/echo/secret", { headers });
      expect(res.status).toBe(401);
      expect(res.headers.get("www-authenticate")).toStartWith("Bearer");
      expect(await res.text()).not.toContain('/echo/secret"');
    }
    expect(backend.seenHeaders.length).toBe(before);
  });

  test("a browser Origin that is not allowed: 403, as on /mcp", async () => {
    const res = await t.request("/echo/x", { headers: { ...ALICE, origin: "https://evil.example" } });
    expect(res.status).toBe(403);
  });
});

describe("what passes through", () => {
  test("method, path, query and body reach the upstream; its status, headers and body come back", async () => {
    for (const method of ["GET", "POST", "PUT", "PATCH", "DELETE"]) {
      const withBody = method !== "GET";
      const res = await t.request("/echo/a/b?x=1&y=two", {
        method,
        headers: { ...ALICE, "content-type": "text/plain", "x-custom": "kept" },
        ...(withBody ? { body: `body of ${method}` } : {}),
      });
      expect(res.status).toBe(200);
      expect(res.headers.get("x-backend")).toBe("http-backend");
      const seen = (await res.json()) as Echo;
      expect(seen).toMatchObject({
        method,
        path: "/echo/a/b",
        query: "?x=1&y=two",
        body: withBody ? `body of ${method}` : "",
      });
      expect(seen.headers["x-custom"]).toBe("kept");
      expect(seen.headers["content-type"]).toBe("text/plain");
      expect(seen.headers.host).toBe(`127.0.0.1:${backend.port}`);
    }
    const teapot = await t.request("/echo/status?status=418", { headers: ALICE });
    expect(teapot.status).toBe(418);
  });

  test("HEAD and OPTIONS without a preflight are forwarded too", async () => {
    const head = await t.request("/echo/h", { method: "HEAD", headers: ALICE });
    expect(head.status).toBe(200);
    expect(head.headers.get("x-backend")).toBe("http-backend");
    const options = await t.request("/echo/o", { method: "OPTIONS", headers: ALICE });
    expect(((await options.json()) as Echo).method).toBe("OPTIONS");
  });

  test("never the client's Authorization, nor hop-by-hop headers, nor identity headers it made up", async () => {
    const res = await t.request("/echo/headers", {
      headers: {
        ...ALICE,
        connection: "x-drop-me",
        "x-drop-me": "named by Connection",
        "keep-alive": "timeout=5",
        te: "trailers",
        "proxy-authorization": "Basic c2VjcmV0",
        "x-auth-request-user": "admin",
        cookie: "a=1",
      },
    });
    const seen = ((await res.json()) as Echo).headers;
    expect(seen.authorization).toBeUndefined();
    expect(JSON.stringify(seen)).not.toContain("alice-token");
    for (const h of ["x-drop-me", "keep-alive", "te", "proxy-authorization", "x-auth-request-user"]) {
      expect(seen[h]).toBeUndefined();
    }
    expect(seen.cookie).toBe("a=1");
    // …and the upstream's own hop-by-hop headers stay on its side.
    expect(res.headers.get("x-hop")).toBeNull();
    expect(res.headers.get("connection")).toBeNull();
  });

  test("an encoded answer is passed on as it was, Content-Encoding and bytes", async () => {
    const res = await t.request("/echo/zipped?gzip", { headers: ALICE });
    expect(res.headers.get("content-encoding")).toBe("gzip");
    const raw = new Uint8Array(await res.arrayBuffer());
    const seen = JSON.parse(new TextDecoder().decode(Bun.gunzipSync(raw))) as Echo;
    expect(seen.path).toBe("/echo/zipped");
  });

  test("an SSE answer streams: each event arrives when the upstream writes it, not at the end", async () => {
    const started = Date.now();
    const res = await t.request("/events?n=3&gap=300", { headers: { ...ALICE, accept: "text/event-stream" } });
    expect(res.headers.get("content-type")).toBe("text/event-stream");
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const first = await reader.read();
    const firstAt = Date.now() - started;
    expect(new TextDecoder().decode(first.value)).toContain("data: event 0");
    let rest = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      rest += new TextDecoder().decode(value);
    }
    expect(rest).toContain("data: event 2");
    expect(firstAt).toBeLessThan(300);
    expect(Date.now() - started).toBeGreaterThanOrEqual(550);
  });

  test("a body over gateway.maxBodyBytes: 413, declared or chunked", async () => {
    const big = "x".repeat(5000);
    const declared = await t.request("/echo/big", { method: "POST", headers: ALICE, body: big });
    expect(declared.status).toBe(413);
    const chunks = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < 5; i++) c.enqueue(new TextEncoder().encode("y".repeat(1000)));
        c.close();
      },
    });
    const chunked = await t.request("/echo/big", { method: "POST", headers: ALICE, body: chunks });
    expect(chunked.status).toBe(413);
  });

  test("each authenticated request is logged at info with sub, method and path (and its time and req id)", async () => {
    await t.request("/echo/logged?token=not-in-the-log", { method: "DELETE", headers: ALICE });
    const line = t.lines.find((l) => l.includes("request sub=alice method=DELETE path=/echo/logged")) as string;
    expect(line).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z INFO /);
    expect(line).toMatch(/ req=\S+$/);
    expect(line).not.toContain("not-in-the-log");
  });
});

describe("what stays Gatehouse's", () => {
  test("/mcp is the MCP gateway; / and other paths are the upstream's", async () => {
    const sid = await t.session(ALICE);
    expect(sid).toBeTruthy();
    const root = await t.request("/", { headers: ALICE });
    expect(root.status).toBe(404);
    expect(await root.text()).toBe("not found"); // the upstream's 404, not Gatehouse's JSON one
  });

  test("discovery, /healthz and /health answer without credentials; unknown well-known paths are not forwarded", async () => {
    expect((await t.request("/healthz")).status).toBe(200);
    expect((await t.request("/health")).status).toBe(200);
    const wk = await t.request("/.well-known/something-else", { headers: ALICE });
    expect(wk.status).toBe(404);
    expect(((await wk.json()) as { error: string }).error).toBe("not_found");
    // Gatehouse's own paths, with a method they do not take: still not the upstream's.
    const before = backend.seenHeaders.length;
    for (const [method, path] of [
      ["POST", "/healthz"],
      ["POST", "/metrics"],
      ["GET", "/register"],
      ["POST", "/oauth/register"],
      ["DELETE", "/mcp/sse"],
      ["PUT", "/mcp/message"],
      ["GET", "/authenticate/x/y"],
    ] as const) {
      const res = await t.request(path, { method, headers: ALICE });
      expect([path, res.status]).toEqual([path, 404]);
      // Gatehouse's JSON 404, not the upstream's plain "not found".
      expect(((await res.json()) as { error: string }).error).toBe("not_found");
    }
    expect(backend.seenHeaders.length).toBe(before);
  });

  test("CORS: an allowed browser origin gets its headers on forwarded answers and preflights", async () => {
    const res = await t.request("/echo/cors", { headers: { ...ALICE, origin: "https://claude.ai" } });
    expect(res.status).toBe(200);
    expect(res.headers.get("access-control-allow-origin")).toBe("https://claude.ai");
    const pre = await t.request("/echo/cors", {
      method: "OPTIONS",
      headers: { origin: "https://claude.ai", "access-control-request-method": "PUT" },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get("access-control-allow-methods")).toContain("PUT");
  });
});

describe("forward variants", () => {
  test("without appendPath every path goes to forward.url itself (MCP_UPSTREAM_PATH), the query kept", async () => {
    const fixed = await testApp(config({ forward: { url: `${origin}/echo/fixed` } }));
    try {
      const seen = (await (await fixed.request("/anything/else?q=1", { headers: ALICE })).json()) as Echo;
      expect(seen).toMatchObject({ path: "/echo/fixed", query: "?q=1" });
    } finally {
      await fixed.close();
    }
  });

  test("the rate limit counts forwarded requests: 429 with Retry-After", async () => {
    const limited = await testApp(config({ rateLimitPerMinute: 2 }));
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) statuses.push((await limited.request("/echo/r", { headers: ALICE })).status);
      expect(statuses).toEqual([200, 200, 429]);
      expect((await limited.request("/echo/r", { headers: ALICE })).headers.get("retry-after")).toBeTruthy();
    } finally {
      await limited.close();
    }
  });

  test("an upstream that does not answer: 502, and the log says so", async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const down = await testApp(config({ forward: { url: dead, appendPath: true } }, `${dead}/mcp`));
    try {
      const res = await down.request("/echo/x", { headers: ALICE });
      expect(res.status).toBe(502);
      expect(down.lines.some((l) => l.includes("cannot forward: the upstream did not answer"))).toBe(true);
    } finally {
      await down.close();
    }
  });

  test("forward.server must name an HTTP backend in mcpServers; forward.url must be an http(s) URL", async () => {
    for (const [forward, path] of [
      [{ url: origin, server: "nope" }, "gateway.forward.server"],
      [{ url: "ftp://x" }, "gateway.forward.url"],
    ] as const) {
      const e = (await testApp(config({ forward })).catch((x) => x)) as ConfigError;
      expect(e).toBeInstanceOf(ConfigError);
      expect(e.problems.map((p) => p.path)).toEqual([path]);
    }
  });
});
