// /mcp through app.handle: the Streamable HTTP rules, authentication and access control, against a real
// HTTP backend (the SDK's server) and server-everything over stdio.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type HttpBackend, startHttpBackend } from "../fixtures/http-backend.ts";
import { type TestApp, testApp } from "../helpers/app.ts";
import { everythingStdio } from "../helpers/paths.ts";

let web: HttpBackend;
let t: TestApp;
const ALICE = { authorization: "Bearer tok-alice" };
const BOB = { authorization: "Bearer tok-bob" };

beforeAll(async () => {
  web = await startHttpBackend();
  t = await testApp({
    mcpServers: {
      everything: everythingStdio(),
      web: {
        url: web.url,
        headers: { "X-Backend-Key": "backend-secret" },
        forward_identity: { header: "X-User", roles_header: "X-Roles" },
      },
    },
    serverAuth: {
      providers: ["bearer"],
      bearer: { tokens: { "tok-alice": { subject: "alice", roles: ["admin"] }, "tok-bob": "bob" } },
      acl: {
        default: "allow",
        rules: [
          { subjects: ["bob"], tools: ["everything__*"], policy: "deny" },
          { subjects: ["bob"], tools: ["*admin*"], policy: "deny" },
        ],
      },
    },
    gateway: { maxBodyBytes: 4096, allowedOrigins: ["http://localhost:6274"] },
  });
}, 30_000);

afterAll(async () => {
  await t.close();
  await web.stop();
});

const call = (id: number, method: string, params: Record<string, unknown> = {}) => ({
  jsonrpc: "2.0",
  id,
  method,
  params,
});

async function body(res: Response): Promise<Record<string, unknown>> {
  const text = await res.text();
  if ((res.headers.get("content-type") ?? "").includes("text/event-stream")) {
    const datas = text
      .split("\n")
      .filter((l) => l.startsWith("data: ") && l.length > 6)
      .map((l) => JSON.parse(l.slice(6)));
    return datas.at(-1);
  }
  return JSON.parse(text);
}

describe("authentication", () => {
  test("no credentials → 401 with a Bearer challenge and no error code (RFC 6750 §3.1)", async () => {
    const res = await t.rpc(call(1, "initialize"));
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toBe('Bearer realm="gatehouse"');
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain(
      "missing Authorization header",
    );
  });

  test("an unknown token → 401 invalid_token", async () => {
    const res = await t.rpc(call(1, "initialize"), { authorization: "Bearer nope" });
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toContain('error="invalid_token"');
    expect(t.lines.some((l) => l.includes("request refused") && l.includes("invalid bearer token"))).toBe(true);
    expect(t.lines.some((l) => l.includes("nope"))).toBe(false);
  });

  test("another scheme → 401 invalid_request", async () => {
    const res = await t.rpc(call(1, "initialize"), { authorization: "Basic dG9rLWFsaWNlOg==" });
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toContain('error="invalid_request"');
  });

  test("a token in the query string is not a credential", async () => {
    const res = await t.request("/mcp?access_token=tok-alice", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(call(1, "initialize")),
    });
    expect(res.status).toBe(401);
  });
});

describe("Origin and CORS (DNS rebinding defence)", () => {
  test("a foreign Origin → 403 before anything else", async () => {
    const res = await t.rpc(call(1, "initialize"), { ...ALICE, origin: "http://evil.example" });
    expect(res.status).toBe(403);
  });

  test("an allowed Origin gets CORS headers exposing what MCP clients read", async () => {
    const res = await t.rpc(
      call(1, "initialize", {
        protocolVersion: "2025-11-25",
        capabilities: {},
        clientInfo: { name: "x", version: "1" },
      }),
      {
        ...ALICE,
        origin: "http://localhost:6274",
      },
    );
    expect(res.status).toBe(200);
    expect(res.headers.get("access-control-allow-origin")).toBe("http://localhost:6274");
    expect(res.headers.get("access-control-expose-headers")).toContain("Mcp-Session-Id");
    expect(res.headers.get("access-control-expose-headers")).toContain("WWW-Authenticate");
  });

  test("preflight: allowed origin 204, foreign origin 403", async () => {
    const ok = await t.request("/mcp", {
      method: "OPTIONS",
      headers: {
        origin: "http://localhost:6274",
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization,mcp-session-id",
      },
    });
    expect(ok.status).toBe(204);
    expect(ok.headers.get("access-control-allow-methods")).toContain("DELETE");
    const bad = await t.request("/mcp", { method: "OPTIONS", headers: { origin: "https://evil.example" } });
    expect(bad.status).toBe(403);
  });
});

describe("malformed input", () => {
  test("invalid JSON → 400 -32700", async () => {
    const res = await t.rpc("{nope", ALICE);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: number } }).error.code).toBe(-32700);
  });

  test("JSON that is not JSON-RPC → 400 -32600", async () => {
    const sid = await t.session(ALICE);
    const res = await t.rpc({ hello: "world" }, { ...ALICE, "mcp-session-id": sid });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: number } }).error.code).toBe(-32600);
  });

  test("a body over gateway.maxBodyBytes → 413, naming the setting", async () => {
    const res = await t.rpc(
      call(1, "tools/call", { name: "web__echo", arguments: { message: "x".repeat(5000) } }),
      ALICE,
    );
    expect(res.status).toBe(413);
    expect(await res.text()).toContain("gateway.maxBodyBytes");
  });

  test("a wrong Content-Type → 415", async () => {
    const res = await t.request("/mcp", {
      method: "POST",
      headers: { ...ALICE, "content-type": "text/plain" },
      body: "{}",
    });
    expect(res.status).toBe(415);
  });

  test("an unsupported MCP-Protocol-Version → 400", async () => {
    const sid = await t.session(ALICE);
    const res = await t.rpc(call(2, "tools/list"), {
      ...ALICE,
      "mcp-session-id": sid,
      "mcp-protocol-version": "1999-01-01",
    });
    expect(res.status).toBe(400);
    expect(await res.text()).toContain("Unsupported MCP-Protocol-Version");
  });

  test("HEAD /mcp and HEAD /mcp/sse with a valid token → 405 at once, and no session is opened", async () => {
    const before = t.app.gatehouse.sessions.count;
    for (const path of ["/mcp", "/mcp/sse"]) {
      const res = await t.request(path, { method: "HEAD", headers: { ...ALICE, accept: "text/event-stream" } });
      expect(res.status).toBe(405);
      expect(res.headers.get("allow")).toContain("GET");
    }
    expect(t.app.gatehouse.sessions.count).toBe(before);
  });

  test("unknown routes → 404 JSON, never HTML", async () => {
    const res = await t.request("/nope");
    expect(res.status).toBe(404);
    expect(res.headers.get("content-type")).toContain("application/json");
  });
});

describe("sessions", () => {
  test("initialize issues a random session id; a request without one → 400", async () => {
    const a = await t.session(ALICE);
    const b = await t.session(ALICE);
    expect(a).not.toBe(b);
    expect(a).toMatch(/^[\x21-\x7e]{20,}$/);
    const res = await t.rpc(call(1, "tools/list"), ALICE);
    expect(res.status).toBe(400);
    expect(await res.text()).toContain("Mcp-Session-Id header is required");
  });

  test("an unknown session → 404", async () => {
    const res = await t.rpc(call(1, "tools/list"), { ...ALICE, "mcp-session-id": "does-not-exist" });
    expect(res.status).toBe(404);
  });

  test("another subject's session → 404, as if it did not exist", async () => {
    const sid = await t.session(ALICE);
    for (const method of ["POST", "GET", "DELETE"]) {
      const res =
        method === "POST"
          ? await t.rpc(call(1, "tools/list"), { ...BOB, "mcp-session-id": sid })
          : await t.request("/mcp", {
              method,
              headers: { ...BOB, "mcp-session-id": sid, accept: "text/event-stream" },
            });
      expect(res.status).toBe(404);
    }
    // and the session still works for its owner
    expect((await t.rpc(call(2, "ping"), { ...ALICE, "mcp-session-id": sid })).status).toBe(200);
  });

  test("notifications and responses → 202 without a body", async () => {
    const sid = await t.session(ALICE);
    const res = await t.rpc(
      { jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: 99 } },
      { ...ALICE, "mcp-session-id": sid },
    );
    expect(res.status).toBe(202);
    expect(await res.text()).toBe("");
  });

  test("DELETE ends the session; it is 404 afterwards", async () => {
    const sid = await t.session(ALICE);
    const del = await t.request("/mcp", { method: "DELETE", headers: { ...ALICE, "mcp-session-id": sid } });
    expect(del.status).toBe(200);
    expect((await t.rpc(call(1, "ping"), { ...ALICE, "mcp-session-id": sid })).status).toBe(404);
  });

  test("versions: the client's supported version is kept, an unknown one gets the newest", async () => {
    for (const [asked, got] of [
      ["2025-03-26", "2025-03-26"],
      ["2025-06-18", "2025-06-18"],
      ["2024-11-05", "2024-11-05"],
      ["2030-01-01", "2025-11-25"],
    ]) {
      const res = await t.rpc(
        call(1, "initialize", { protocolVersion: asked, capabilities: {}, clientInfo: { name: "v", version: "1" } }),
        ALICE,
      );
      expect(((await res.json()) as { result: { protocolVersion: string } }).result.protocolVersion).toBe(
        got as string,
      );
    }
  });
});

describe("batches (JSON-RPC arrays)", () => {
  test("refused on 2025-06-18 and later", async () => {
    const sid = await t.session(ALICE, "2025-06-18");
    const res = await t.rpc([call(1, "ping")], { ...ALICE, "mcp-session-id": sid });
    expect(res.status).toBe(400);
    expect(await res.text()).toContain("batches are not allowed");
  });

  test("on 2025-03-26 each item is checked on its own: a hidden call inside allowed ones is refused", async () => {
    const sid = await t.session(BOB, "2025-03-26");
    const res = await t.rpc(
      [
        call(1, "tools/call", { name: "web__echo", arguments: { message: "a" } }),
        call(2, "tools/call", { name: "everything__echo", arguments: { message: "hidden" } }),
        { jsonrpc: "2.0", method: "notifications/initialized" },
        call(3, "tools/call", { name: "web__admin_reset", arguments: {} }),
        call(4, "ping"),
      ],
      { ...BOB, "mcp-session-id": sid },
    );
    expect(res.status).toBe(200);
    const out = (await res.json()) as {
      id: number;
      result?: { content: { text: string }[] };
      error?: { code: number; message: string };
    }[];
    const byId = Object.fromEntries(out.map((r) => [r.id, r]));
    expect(byId[1]?.result?.content[0]?.text).toBe("echo: a");
    expect(byId[2]?.error).toEqual({ code: -32602, message: "Unknown tool: everything__echo" });
    expect(byId[3]?.error).toEqual({ code: -32602, message: "Unknown tool: web__admin_reset" });
    expect(byId[4]?.result as unknown).toEqual({});
  });

  test("initialize inside a batch is refused; an empty batch is refused", async () => {
    expect((await t.rpc([call(1, "initialize")], ALICE)).status).toBe(400);
    const sid = await t.session(ALICE, "2025-03-26");
    expect((await t.rpc([], { ...ALICE, "mcp-session-id": sid })).status).toBe(400);
  });
});

describe("aggregation and access control", () => {
  test("tools of every backend, prefixed, descriptions tagged; each caller sees only what it may use", async () => {
    const a = await t.session(ALICE);
    const aliceTools = (
      (await body(await t.rpc(call(1, "tools/list"), { ...ALICE, "mcp-session-id": a }))).result as {
        tools: { name: string; description: string }[];
      }
    ).tools;
    const names = aliceTools.map((x) => x.name);
    expect(names).toContain("everything__echo");
    expect(names).toContain("web__admin_reset");
    expect(aliceTools.find((x) => x.name === "web__echo")?.description).toBe("[web] Echoes its input");

    const b = await t.session(BOB);
    const bobTools = (
      (await body(await t.rpc(call(1, "tools/list"), { ...BOB, "mcp-session-id": b }))).result as {
        tools: { name: string }[];
      }
    ).tools.map((x) => x.name);
    expect(bobTools.some((n) => n.startsWith("everything__"))).toBe(false);
    expect(bobTools).not.toContain("web__admin_reset");
    expect(bobTools).toContain("web__echo");
  });

  test("a hidden tool and a nonexistent one get the same answer", async () => {
    const b = await t.session(BOB);
    const hidden = await body(
      await t.rpc(call(1, "tools/call", { name: "everything__echo", arguments: { message: "x" } }), {
        ...BOB,
        "mcp-session-id": b,
      }),
    );
    const missing = await body(
      await t.rpc(call(1, "tools/call", { name: "web__nope", arguments: {} }), { ...BOB, "mcp-session-id": b }),
    );
    const prefix = await body(
      await t.rpc(call(1, "tools/call", { name: "nosuch__echo", arguments: {} }), { ...BOB, "mcp-session-id": b }),
    );
    expect(hidden.error).toEqual({ code: -32602, message: "Unknown tool: everything__echo" });
    expect(missing.error).toEqual({ code: -32602, message: "Unknown tool: web__nope" });
    expect(prefix.error).toEqual({ code: -32602, message: "Unknown tool: nosuch__echo" });
  });

  test("an unknown method → -32601", async () => {
    const a = await t.session(ALICE);
    expect((await body(await t.rpc(call(1, "tools/destroy"), { ...ALICE, "mcp-session-id": a }))).error).toMatchObject({
      code: -32601,
    });
  });

  test("resources, templates and prompts are aggregated and routed by prefix", async () => {
    const a = await t.session(ALICE);
    const h = { ...ALICE, "mcp-session-id": a };
    const resources = (
      (await body(await t.rpc(call(1, "resources/list"), h))).result as { resources: { uri: string }[] }
    ).resources;
    expect(resources.map((r) => r.uri)).toContain("web+memo://readme");
    // Valid URIs (RFC 3986 schemes have no "_"), as clients that parse them require.
    for (const r of resources) expect(() => new URL(r.uri)).not.toThrow();
    const read = (await body(await t.rpc(call(2, "resources/read", { uri: "web+memo://readme" }), h))).result as {
      contents: { uri: string; text: string }[];
    };
    expect(read.contents[0]).toEqual({ uri: "web+memo://readme", text: "hello from the http backend" });
    const prompts = (
      (await body(await t.rpc(call(3, "prompts/list"), h))).result as { prompts: { name: string }[] }
    ).prompts.map((p) => p.name);
    expect(prompts).toContain("web__greet");
    expect(prompts).toContain("everything__simple-prompt");
    const got = (await body(await t.rpc(call(4, "prompts/get", { name: "web__greet", arguments: { who: "Ada" } }), h)))
      .result as { messages: { content: { text: string } }[] };
    expect(got.messages[0]?.content.text).toBe("Hello Ada");
    const templates = (
      (await body(await t.rpc(call(5, "resources/templates/list"), h))).result as {
        resourceTemplates: { uriTemplate: string }[];
      }
    ).resourceTemplates;
    expect(templates.every((x) => x.uriTemplate.startsWith("everything+") || x.uriTemplate.startsWith("web+"))).toBe(
      true,
    );
    const completion = await body(
      await t.rpc(
        call(6, "completion/complete", {
          ref: { type: "ref/prompt", name: "everything__completable-prompt" },
          argument: { name: "department", value: "E" },
        }),
        h,
      ),
    );
    expect(completion.result).toBeDefined();
  });

  test("the client's credentials never reach a backend; configured headers and forward_identity do", async () => {
    const a = await t.session(ALICE);
    const res = await body(
      await t.rpc(call(1, "tools/call", { name: "web__headers", arguments: {} }), { ...ALICE, "mcp-session-id": a }),
    );
    const seen = JSON.parse((res.result as { content: { text: string }[] }).content[0]?.text ?? "{}") as Record<
      string,
      string
    >;
    expect(seen.authorization).toBeUndefined();
    expect(JSON.stringify(web.seenHeaders)).not.toContain("tok-alice");
    expect(seen["x-backend-key"]).toBe("backend-secret");
    expect(seen["x-user"]).toBe("alice");
    expect(seen["x-roles"]).toBe("admin");
    expect(seen.host).toBe(new URL(web.url).host);
  });
});

describe("streaming", () => {
  test("progress from the backend turns the answer into SSE, with event ids, ending with the result", async () => {
    const a = await t.session(ALICE);
    const res = await t.rpc(
      call(7, "tools/call", { name: "web__progress", arguments: { steps: 3 }, _meta: { progressToken: "p1" } }),
      {
        ...ALICE,
        "mcp-session-id": a,
      },
    );
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const text = await res.text();
    const events = text.split("\n\n").filter((e) => e.includes("data: {"));
    expect(events.length).toBe(4);
    for (const e of events) expect(e).toMatch(/^id: \d+-\d+/m);
    const msgs = events.map((e) =>
      JSON.parse(
        e
          .split("\n")
          .find((l) => l.startsWith("data: "))!
          .slice(6),
      ),
    );
    expect(msgs.slice(0, 3).map((m) => m.params.progressToken)).toEqual(["p1", "p1", "p1"]);
    expect(msgs[3].id).toBe(7);
  });

  test("a client that accepts only JSON gets JSON", async () => {
    const a = await t.session(ALICE);
    const res = await t.rpc(
      call(8, "tools/call", { name: "web__progress", arguments: { steps: 2 }, _meta: { progressToken: 1 } }),
      {
        ...ALICE,
        "mcp-session-id": a,
        accept: "application/json",
      },
    );
    expect(res.headers.get("content-type")).toContain("application/json");
  });

  test("a dropped stream can be resumed with Last-Event-ID from the session's buffer", async () => {
    const a = await t.session(ALICE);
    const res = await t.rpc(
      call(9, "tools/call", { name: "web__progress", arguments: { steps: 5 }, _meta: { progressToken: "r" } }),
      {
        ...ALICE,
        "mcp-session-id": a,
      },
    );
    const reader = res.body!.getReader();
    let seen = "";
    while (!/id: (\d+-\d+)\ndata: \{/.test(seen)) seen += new TextDecoder().decode((await reader.read()).value);
    const firstId = /id: (\d+-\d+)\ndata: \{/.exec(seen)![1]!;
    await reader.cancel(); // the client goes away
    await Bun.sleep(250); // the tool finishes meanwhile; its events are kept for the session
    const resumed = await t.request("/mcp", {
      method: "GET",
      headers: { ...ALICE, "mcp-session-id": a, accept: "text/event-stream", "last-event-id": firstId },
    });
    expect(resumed.status).toBe(200);
    const rest = await resumed.text();
    const datas = rest
      .split("\n")
      .filter((l) => l.startsWith("data: {"))
      .map((l) => JSON.parse(l.slice(6)));
    expect(datas.at(-1).id).toBe(9);
    expect(datas.filter((d) => d.method === "notifications/progress").length).toBeGreaterThanOrEqual(3);
  });

  test("GET needs Accept: text/event-stream", async () => {
    const a = await t.session(ALICE);
    const res = await t.request("/mcp", {
      method: "GET",
      headers: { ...ALICE, "mcp-session-id": a, accept: "application/json" },
    });
    expect(res.status).toBe(406);
  });
});

describe("/health, /livez, /readyz, /healthz", () => {
  test('/healthz answers as mcp-oauth-proxy\'s does: 200 {"status":"ok"}, without credentials, any Host', async () => {
    const probe = await testApp({
      mcpServers: { a: everythingStdio() },
      serverAuth: { providers: ["bearer"], bearer: { tokens: { "t-1": "alice" } } },
      gateway: { allowedHosts: ["mcp.example.com"] },
    });
    try {
      for (const host of ["mcp.example.com", "10.1.2.3:8080", "pod.cluster.internal"]) {
        const res = await probe.request("/healthz", { headers: { host } });
        expect(res.status).toBe(200);
        expect(await res.json()).toEqual({ status: "ok" });
        expect(res.headers.get("cache-control")).toBe("no-store");
      }
    } finally {
      await probe.close();
    }
  });

  test("a backend that failed to start makes /health degraded, naming it; /livez and /readyz stay 200", async () => {
    const broken = await testApp({
      mcpServers: { good: everythingStdio(), bad: { command: "/nonexistent/mcp-server" } },
      serverAuth: { providers: ["bearer"], bearer: { tokens: { "t-1": "alice" } } },
    });
    try {
      const before = (await (await broken.request("/health")).json()) as Record<string, unknown>;
      expect(before.status).toBe("ok"); // not started yet is not failing
      const auth = { authorization: "Bearer t-1" };
      const sid = await broken.session(auth);
      await broken.rpc(call(2, "tools/list"), { ...auth, "mcp-session-id": sid });
      const after = (await (await broken.request("/health")).json()) as Record<string, unknown>;
      expect(after).toMatchObject({ status: "degraded", backends_failing: ["bad"], backends_configured: 2 });
      expect((await broken.request("/livez")).status).toBe(200);
      expect((await broken.request("/readyz")).status).toBe(200);
    } finally {
      await broken.close();
    }
  });

  test("reports the mcp serve fields", async () => {
    const res = await t.request("/health");
    expect(res.status).toBe(200);
    const h = (await res.json()) as Record<string, unknown>;
    expect(h).toMatchObject({ status: "ok", backends_configured: 2, version: "0.0.0-test" });
    expect(typeof h.backends_connected).toBe("number");
    expect(typeof h.active_clients).toBe("number");
    expect(typeof h.tools).toBe("number");
  });
});
