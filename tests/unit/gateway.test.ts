// The gateway core without HTTP: naming and resolution in the catalog, the method table, forwarding and the way
// back, tasks, subscriptions, the audit record, and the session registry — against in-memory backends
// (tests/helpers/fake-backend.ts) and a fake clock.

import { describe, expect, test } from "bun:test";
import type { AuditEntry, Auditor } from "../../src/audit.ts";
import type { Identity } from "../../src/auth/identity.ts";
import { parseConfig } from "../../src/config/load.ts";
import { memoryLogger } from "../../src/log.ts";
import { admitRequest, refused } from "../../src/mcp/admission.ts";
import type { Channel } from "../../src/mcp/call.ts";
import { Cancellation } from "../../src/mcp/cancellation.ts";
import { INSUFFICIENT_SCOPE } from "../../src/mcp/catalog.ts";
import { looksLikeKnownMethod } from "../../src/mcp/dispatch.ts";
import { Gateway } from "../../src/mcp/gateway.ts";
import {
  ErrorCode,
  type JsonRpcFailure,
  type JsonRpcMessage,
  type JsonRpcRequest,
  type JsonRpcSuccess,
} from "../../src/mcp/jsonrpc.ts";
import type { ClientSession } from "../../src/mcp/session.ts";
import { SessionRegistry } from "../../src/mcp/sessions.ts";
import { Acl } from "../../src/policy/acl.ts";
import { ToolScopes } from "../../src/policy/tool-scopes.ts";
import { FakeClock } from "../helpers/clock.ts";
import { FakeServer, type FakeServerOptions, fakeBackend } from "../helpers/fake-backend.ts";

const alice: Identity = { subject: "alice", roles: ["admin"], groups: [], provider: "bearer" };
const bob: Identity = { subject: "bob", roles: ["reader"], groups: [], provider: "bearer" };

interface Setup {
  servers?: Record<string, FakeServerOptions>;
  serverAuth?: Record<string, unknown>;
  passthrough?: string;
}

function setup(o: Setup = {}) {
  const servers = o.servers ?? {
    a: { tools: [{ name: "echo", description: "Echoes", annotations: { readOnlyHint: true } }, { name: "write" }] },
    b: { tools: [{ name: "echo" }], resources: [{ uri: "file:///x", name: "x" }], prompts: [{ name: "greet" }] },
  };
  const mcpServers = Object.fromEntries(Object.keys(servers).map((n) => [n, { command: "unused" }]));
  const config = parseConfig(JSON.stringify({ mcpServers, ...(o.serverAuth ? { serverAuth: o.serverAuth } : {}) }), {
    source: "t",
    dir: "/",
    env: {},
  });
  const clock = new FakeClock();
  const log = memoryLogger();
  const fakes = new Map<string, FakeServer>();
  const gateways: Gateway[] = [];
  const backends = config.backends.map((b) => {
    const fake = new FakeServer(servers[b.name]);
    fakes.set(b.name, fake);
    return fakeBackend(b, fake, clock, (name, n) => {
      for (const g of gateways) g.onBackendBroadcast(name, n);
    });
  });
  const audits: AuditEntry[] = [];
  const audit: Auditor = { logArguments: true, record: (e) => audits.push(e), event() {} };
  const sessions = new SessionRegistry({ clock, log, config: config.gateway });
  const gateway = new Gateway({
    id: "/mcp",
    backends: o.passthrough ? backends.filter((b) => b.config.name === o.passthrough) : backends,
    sessions,
    acl: new Acl(config.auth.acl),
    log,
    clock,
    version: "test",
    audit,
    toolScopes: new ToolScopes(config.auth.toolScopes),
    ...(o.passthrough ? { passthrough: o.passthrough } : {}),
  });
  gateways.push(gateway);
  let nextId = 1;
  /** Opens and initializes a session for someone. */
  const open = async (identity: Identity, capabilities: Record<string, unknown> = {}) => {
    const session = gateway.open(identity, "streamable-http");
    const request: JsonRpcRequest = {
      jsonrpc: "2.0",
      id: 0,
      method: "initialize",
      params: { protocolVersion: "2025-06-18", capabilities, clientInfo: { name: "unit" } },
    };
    await gateway.initialize({ session, identity, request });
    return session;
  };
  /** Sends one request through the gateway the way a transport does; what reached the client is in `seen`. */
  const call = async (session: ClientSession, identity: Identity, method: string, params?: Record<string, unknown>) => {
    const seen: JsonRpcMessage[] = [];
    const channel: Channel = { deliver: (m) => seen.push(m) };
    const request: JsonRpcRequest = { jsonrpc: "2.0", id: nextId++, method, ...(params ? { params } : {}) };
    const response = await gateway.handle({ session, identity, request, channel });
    return { response, seen, result: (response as JsonRpcSuccess).result, error: (response as JsonRpcFailure).error };
  };
  return { gateway, sessions, fakes, audits, log, clock, open, call };
}

describe("naming and resolution", () => {
  test("the aggregate lists every backend's tools as server__tool, descriptions tagged, resources as server+uri", async () => {
    const t = setup();
    const s = await t.open(alice);
    const tools = (await t.call(s, alice, "tools/list")).result.tools as { name: string; description?: string }[];
    expect(tools.map((x) => x.name).sort()).toEqual(["a__echo", "a__write", "b__echo"]);
    expect(tools.find((x) => x.name === "a__echo")?.description).toBe("[a] Echoes");
    const resources = (await t.call(s, alice, "resources/list")).result.resources as { uri: string }[];
    expect(resources.map((r) => r.uri)).toEqual(["b+file:///x"]);
    const prompts = (await t.call(s, alice, "prompts/list")).result.prompts as { name: string }[];
    expect(prompts.map((p) => p.name)).toEqual(["b__greet"]);
  });

  test("a call reaches the backend under its own name; a resource read under its own URI", async () => {
    const t = setup();
    const s = await t.open(alice);
    const r = await t.call(s, alice, "tools/call", { name: "b__echo", arguments: { m: 1 } });
    expect(r.result.content).toEqual([{ type: "text", text: '{"m":1}' }]);
    expect(t.fakes.get("b")?.calls("tools/call")[0]?.params).toMatchObject({ name: "echo", arguments: { m: 1 } });
    expect(t.fakes.get("a")?.calls("tools/call")).toEqual([]);
    const read = await t.call(s, alice, "resources/read", { uri: "b+file:///x" });
    expect(t.fakes.get("b")?.calls("resources/read")[0]?.params?.uri).toBe("file:///x");
    // URIs in results are named as the route shows them.
    expect((read.result.contents as { uri: string }[])[0]?.uri).toBe("b+file:///x");
  });

  test("a pass-through route shows the backend's names unprefixed and its own server info", async () => {
    const t = setup({ passthrough: "a" });
    const s = t.gateway.open(alice, "streamable-http");
    const init = await t.gateway.initialize({
      session: s,
      identity: alice,
      request: { jsonrpc: "2.0", id: 0, method: "initialize", params: { protocolVersion: "2025-11-25" } },
    });
    expect(init.result).toMatchObject({ serverInfo: { name: "fake" }, instructions: "the fake's own instructions" });
    const tools = (await t.call(s, alice, "tools/list")).result.tools as { name: string }[];
    expect(tools.map((x) => x.name).sort()).toEqual(["echo", "write"]);
  });

  test("unknown, malformed and misrouted names get the same answer as a tool that does not exist", async () => {
    const t = setup();
    const s = await t.open(alice);
    for (const name of ["nope", "a__nope", "zz__echo", "a_echo", "__echo"]) {
      const r = await t.call(s, alice, "tools/call", { name });
      expect(r.error).toMatchObject({ code: ErrorCode.InvalidParams, message: `Unknown tool: ${name}` });
    }
    expect((await t.call(s, alice, "tools/call", {})).error?.message).toBe("tools/call needs params.name");
    expect((await t.call(s, alice, "resources/read", { uri: "file:///x" })).error?.message).toBe(
      "Unknown resource: file:///x",
    );
    expect(t.fakes.get("a")?.calls("tools/call")).toEqual([]);
  });
});

describe("the ACL and tool scopes, decided once", () => {
  const serverAuth = {
    acl: {
      default: "deny",
      roles: { admin: [{ server: "*", access: "*" }], reader: [{ server: "a", access: "read" }] },
    },
    toolScopes: { "tools:write": ["a__write"] },
  };

  test("a tool hidden by the ACL is unknown, logged once and audited once with the rule that decided", async () => {
    const t = setup({ serverAuth });
    const s = await t.open(bob);
    const listed = (await t.call(s, bob, "tools/list")).result.tools as { name: string }[];
    expect(listed.map((x) => x.name)).toEqual(["a__echo"]);
    const r = await t.call(s, bob, "tools/call", { name: "a__write", arguments: { secret: 1 } });
    expect(r.error).toMatchObject({ code: ErrorCode.InvalidParams, message: "Unknown tool: a__write" });
    expect(t.log.lines.filter((l) => l.includes("tool call refused by the ACL")).length).toBe(1);
    expect(t.audits).toHaveLength(1);
    expect(t.audits[0]).toMatchObject({ method: "tools/call", name: "a__write", subject: "bob", success: false });
    expect(t.audits[0]?.acl_rule).toBeDefined();
    expect(t.fakes.get("a")?.calls("tools/call")).toEqual([]);
  });

  test("an allowed call is audited once with its server, rule, arguments and outcome", async () => {
    const t = setup({ serverAuth });
    const s = await t.open(bob);
    await t.call(s, bob, "tools/call", { name: "a__echo", arguments: { m: "hi" } });
    expect(t.audits).toEqual([
      expect.objectContaining({
        method: "tools/call",
        name: "a__echo",
        server: "a",
        success: true,
        arguments: { m: "hi" },
        acl_rule: expect.any(String),
      }),
    ]);
  });

  test("a token without a tool's scope does not see it; calling it is refused naming the scope, never forwarded", async () => {
    const t = setup({ serverAuth });
    const scoped: Identity = { ...alice, provider: "oauth_as", scopes: ["mcp"] };
    const s = await t.open(scoped);
    const listed = (await t.call(s, scoped, "tools/list")).result.tools as { name: string }[];
    expect(listed.map((x) => x.name)).not.toContain("a__write");
    const r = await t.call(s, scoped, "tools/call", { name: "a__write" });
    expect(r.error).toMatchObject({
      code: INSUFFICIENT_SCOPE,
      data: { error: "insufficient_scope", scope: "tools:write" },
    });
    expect(t.fakes.get("a")?.calls("tools/call")).toEqual([]);
    const withScope: Identity = { ...scoped, scopes: ["mcp", "tools:write"] };
    expect((await t.call(s, withScope, "tools/call", { name: "a__write" })).error).toBeUndefined();
  });

  test("admission turns a scope refusal into a step-up (403) alone, and into the item's error inside a batch", async () => {
    const t = setup({ serverAuth });
    const scoped: Identity = { ...alice, provider: "oauth_as", scopes: ["mcp"], resourceMetadata: "https://g/x" };
    const request: JsonRpcRequest = { jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "a__write" } };
    const alone = await admitRequest(t.gateway, { identity: scoped }, request, false, t.log);
    expect(refused(alone)).toBe(true);
    if (!refused(alone) || alone.refusal.kind !== "auth") throw new Error("expected an auth refusal");
    expect(alone.refusal.failure.status).toBe(403);
    // MCP §Scope Challenge Handling: the challenge names what the token has plus what the call needs.
    expect(alone.refusal.failure.challenge).toContain('scope="mcp tools:write"');
    const inBatch = await admitRequest(t.gateway, { identity: scoped }, request, true, t.log);
    expect(refused(inBatch)).toBe(false);
    if (refused(inBatch)) return;
    expect(inBatch.target).toMatchObject({ kind: "refused", scopes: ["tools:write"] });
  });
});

describe("the method table", () => {
  test("the aggregate refuses methods it cannot route; a pass-through forwards them, but never a variant of a checked one", async () => {
    const servers = { a: { tools: [{ name: "echo" }], extra: { "vendor/thing": () => ({ ok: true }) } } };
    const agg = setup({ servers });
    const s1 = await agg.open(alice);
    expect((await agg.call(s1, alice, "vendor/thing")).error?.code).toBe(ErrorCode.MethodNotFound);
    const pt = setup({ servers, passthrough: "a" });
    const s2 = await pt.open(alice);
    expect((await pt.call(s2, alice, "vendor/thing")).result).toEqual({ ok: true });
    for (const variant of ["Tools/Call", "tools/call ", "ｔｏｏｌｓ/call"]) {
      expect(looksLikeKnownMethod(variant)).toBe(true);
      expect((await pt.call(s2, alice, variant, { name: "echo" })).error?.code).toBe(ErrorCode.MethodNotFound);
    }
    expect(pt.fakes.get("a")?.received.map((r) => r.method)).not.toContain("Tools/Call");
  });

  test("initialize inside a session is refused; ping answers; logging/setLevel checks its level", async () => {
    const t = setup();
    const s = await t.open(alice);
    expect((await t.call(s, alice, "initialize", {})).error?.message).toContain("already initialized");
    expect((await t.call(s, alice, "ping")).result).toEqual({});
    expect((await t.call(s, alice, "logging/setLevel", { level: "loud" })).error?.code).toBe(ErrorCode.InvalidParams);
    expect((await t.call(s, alice, "logging/setLevel", { level: "warning" })).result).toEqual({});
    expect(s.logLevel).toBe("warning");
  });

  test("completion/complete is routed by its ref to the backend that owns the prompt", async () => {
    const t = setup();
    const s = await t.open(alice);
    await t.call(s, alice, "completion/complete", { ref: { type: "ref/prompt", name: "b__greet" }, argument: {} });
    expect(t.fakes.get("b")?.calls("completion/complete")[0]?.params?.ref).toEqual({
      type: "ref/prompt",
      name: "greet",
    });
    const bad = await t.call(s, alice, "completion/complete", { ref: { type: "ref/other" } });
    expect(bad.error?.message).toContain('"ref/prompt" or "ref/resource"');
  });
});

describe("forwarding and the way back", () => {
  const servers = {
    a: {
      tools: [{ name: "slow" }, { name: "ask" }, { name: "chatty" }],
      handlers: {
        slow: (c: import("../helpers/fake-backend.ts").ToolContext) => {
          const token = (c.params._meta as { progressToken: unknown }).progressToken;
          c.notify("notifications/progress", { progressToken: token, progress: 1 });
          return { token };
        },
        ask: async (c: import("../helpers/fake-backend.ts").ToolContext) => {
          const answer = await c.ask("sampling/createMessage", { messages: [] });
          return { answer: "result" in answer ? answer.result : answer.error };
        },
        chatty: (c: import("../helpers/fake-backend.ts").ToolContext) => {
          c.notify("notifications/message", { level: "debug", data: "noise" });
          c.notify("notifications/message", { level: "error", data: "signal" });
          return {};
        },
      },
    },
  };

  test("the client's progress token is swapped for one unique to Gatehouse, and back", async () => {
    const t = setup({ servers });
    const s = await t.open(alice);
    const r = await t.call(s, alice, "tools/call", { name: "a__slow", _meta: { progressToken: "mine" } });
    const upstream = r.result.token as string;
    expect(upstream).not.toBe("mine");
    expect(upstream).toMatch(/^gatehouse-/);
    expect(r.seen).toEqual([
      { jsonrpc: "2.0", method: "notifications/progress", params: { progressToken: "mine", progress: 1 } },
    ]);
  });

  test("a backend's request reaches only a client that declared the capability; the answer goes back under the backend's id", async () => {
    const t = setup({ servers });
    const without = await t.open(alice);
    const refusedAnswer = await t.call(without, alice, "tools/call", { name: "a__ask" });
    expect(refusedAnswer.seen).toEqual([]);
    expect(refusedAnswer.result.answer).toMatchObject({ code: ErrorCode.MethodNotFound });

    const withSampling = await t.open(alice, { sampling: {} });
    const pending = t.call(withSampling, alice, "tools/call", { name: "a__ask" });
    await new Promise((r) => setTimeout(r, 5));
    const outgoing = [...withSampling.outgoing.keys()][0] as string;
    expect(outgoing).toMatch(/^gatehouse-/);
    await t.gateway.answer(withSampling, { jsonrpc: "2.0", id: outgoing, result: { role: "assistant" } });
    const done = await pending;
    expect(done.seen[0]).toMatchObject({ method: "sampling/createMessage", id: outgoing });
    expect(done.result.answer).toEqual({ role: "assistant" });
    expect(t.fakes.get("a")?.answers.at(-1)?.id).toMatch(/^srv-/);
  });

  test("log messages below the session's level are not relayed", async () => {
    const t = setup({ servers });
    const s = await t.open(alice);
    await t.call(s, alice, "logging/setLevel", { level: "warning" });
    const r = await t.call(s, alice, "tools/call", { name: "a__chatty" });
    expect(r.seen.map((m) => (m as unknown as { params: { data: string } }).params.data)).toEqual(["signal"]);
    // Never forwarded: the backend session is shared by every client.
    expect(t.fakes.get("a")?.calls("logging/setLevel")).toEqual([]);
  });
});

describe("tasks on a pass-through route", () => {
  const servers = {
    a: {
      tools: [{ name: "job" }],
      handlers: { job: () => ({ task: { taskId: "t-1", status: "working", ttl: 60_000 } }) },
      extra: {
        "tasks/get": (p: Record<string, unknown>) => ({ taskId: p.taskId, status: "working" }),
        "tasks/list": () => ({ tasks: [{ taskId: "t-1" }, { taskId: "someone-elses" }] }),
      },
    },
  };

  test("only the principal that created a task may see it; another's is 'not found' and never forwarded", async () => {
    const t = setup({ servers, passthrough: "a" });
    const sa = await t.open(alice);
    const sb = await t.open(bob);
    await t.call(sa, alice, "tools/call", { name: "job", task: { ttl: 60_000 } });
    expect((await t.call(sa, alice, "tasks/get", { taskId: "t-1" })).result).toMatchObject({ taskId: "t-1" });
    const before = t.fakes.get("a")?.calls("tasks/get").length;
    expect((await t.call(sb, bob, "tasks/get", { taskId: "t-1" })).error?.message).toBe("Task not found: t-1");
    expect(t.fakes.get("a")?.calls("tasks/get").length).toBe(before);
    const listed = (await t.call(sa, alice, "tasks/list")).result.tasks as { taskId: string }[];
    expect(listed.map((x) => x.taskId)).toEqual(["t-1"]);
    expect((await t.call(sb, bob, "tasks/list")).result.tasks).toEqual([]);
    t.clock.advance(60_001);
    expect((await t.call(sa, alice, "tasks/get", { taskId: "t-1" })).error?.message).toBe("Task not found: t-1");
  });

  test("the aggregate has no tasks: tasks/* is not found and a task-augmented call runs as a plain one", async () => {
    const t = setup({ servers });
    const s = await t.open(alice);
    await t.call(s, alice, "tools/call", { name: "a__job", task: { ttl: 1 } });
    expect(t.fakes.get("a")?.calls("tools/call")[0]?.params?.task).toBeUndefined();
    expect((await t.call(s, alice, "tasks/get", { taskId: "t-1" })).error?.code).toBe(ErrorCode.MethodNotFound);
  });
});

describe("subscriptions", () => {
  test("one upstream subscription however many sessions; the backend told when the last one leaves or ends", async () => {
    const t = setup();
    const s1 = await t.open(alice);
    const s2 = await t.open(bob);
    await t.call(s1, alice, "resources/subscribe", { uri: "b+file:///x" });
    await t.call(s2, bob, "resources/subscribe", { uri: "b+file:///x" });
    const b = t.fakes.get("b") as FakeServer;
    expect(b.calls("resources/subscribe").map((r) => r.params?.uri)).toEqual(["file:///x"]);
    expect(t.gateway.hasSubscriptions("b")).toBe(true);
    const got: JsonRpcMessage[] = [];
    s2.attachNew("0", { send: (_id, m) => got.push(m), close() {} });
    b.broadcast("notifications/resources/updated", { uri: "file:///x" });
    expect(got).toEqual([
      { jsonrpc: "2.0", method: "notifications/resources/updated", params: { uri: "b+file:///x" } },
    ]);
    await t.call(s1, alice, "resources/unsubscribe", { uri: "b+file:///x" });
    expect(b.calls("resources/unsubscribe")).toEqual([]);
    t.sessions.close(s2.id, "test");
    await new Promise((r) => setTimeout(r, 5));
    expect(b.calls("resources/unsubscribe").map((r) => r.params?.uri)).toEqual(["file:///x"]);
    expect(t.gateway.hasSubscriptions("b")).toBe(false);
  });
});

describe("the session registry", () => {
  test("a session is found only by its principal and on its route", async () => {
    const t = setup();
    const s = await t.open(alice);
    expect(await t.gateway.find(s.id, alice)).toBe(s);
    expect(await t.gateway.find(s.id, bob)).toBeUndefined();
    expect(await t.gateway.find(s.id, { ...alice, provider: "forwarded" })).toBeUndefined();
    expect(await t.sessions.find("server:a", s.id, alice)).toBeUndefined();
  });

  test("idle sessions are reaped; one with a request in flight or an open stream is not", async () => {
    const t = setup();
    const idle = await t.open(alice);
    const busy = await t.open(alice);
    const streaming = await t.open(alice);
    busy.inFlight.set(1, new Cancellation());
    streaming.attachNew("0", { send() {}, close() {} });
    t.sessions.start();
    t.clock.advance(3_600_000 + 30_000);
    expect(t.sessions.get(idle.id)).toBeUndefined();
    expect(t.sessions.get(busy.id)).toBe(busy);
    expect(t.sessions.get(streaming.id)).toBe(streaming);
    expect(t.sessions.inFlight).toBe(1);
    t.sessions.shutdown();
    expect(t.sessions.count).toBe(0);
  });

  test("a cancellation aborts the request in flight", async () => {
    const t = setup();
    const s = await t.open(alice);
    const cancellation = new Cancellation();
    s.inFlight.set(7, cancellation);
    t.gateway.notify(s, { jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: 7 } });
    expect(cancellation.cancelled).toBe(true);
  });
});
