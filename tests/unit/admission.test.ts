// The admission pipeline's checks one by one, framework-free (web-standard Request in, values out): each refusal
// with its status and a message naming the setting at fault.

import { describe, expect, test } from "bun:test";
import { scopesOf } from "../../src/auth/claims.ts";
import type { AuthFailure, AuthResult, Identity } from "../../src/auth/identity.ts";
import { DEFAULTS } from "../../src/config/defaults.ts";
import type { RoutePolicy } from "../../src/config/types.ts";
import { memoryLogger } from "../../src/log.ts";
import {
  type AdmissionDeps,
  type AdmissionRoute,
  admitCaller,
  admitForwarded,
  admitRequest,
  checkAnonymous,
  type Incoming,
  type Refused,
  readMessages,
  refused,
} from "../../src/mcp/admission.ts";
import type { JsonRpcRequest } from "../../src/mcp/jsonrpc.ts";
import { RateLimiter } from "../../src/policy/rate-limit.ts";

const noCredentials: AuthFailure = { status: 401, description: "no credentials", challenge: 'Bearer realm="x"' };
const alice: Identity = { subject: "alice", roles: [], groups: [], provider: "bearer" };

function route(result: AuthResult, policy: Partial<RoutePolicy> = {}): AdmissionRoute {
  return {
    name: "gatehouse",
    resourceUrl: "https://mcp.example.com/mcp",
    policy: { ...DEFAULTS.route, ...policy } as RoutePolicy,
    authenticate: async () => result,
  };
}

function deps(over: Partial<AdmissionDeps> = {}): AdmissionDeps {
  return { allowedOrigins: ["https://claude.ai"], maxBodyBytes: 100, log: memoryLogger(), ...over };
}

const post = (body: string, headers: Record<string, string> = {}) =>
  new Request("http://127.0.0.1:1/mcp", {
    method: "POST",
    body,
    headers: { "content-type": "application/json", ...headers },
  });

function refusal(x: object) {
  if (!refused(x)) throw new Error(`admitted: ${JSON.stringify(x)}`);
  return (x as Refused).refusal;
}

describe("the caller", () => {
  test("a browser Origin not in gateway.allowedOrigins is refused with 403 before credentials are looked at", async () => {
    let asked = false;
    const r: AdmissionRoute = {
      ...route({ ok: true, identity: alice }),
      authenticate: async () => {
        asked = true;
        return { ok: true, identity: alice };
      },
    };
    const out = refusal(await admitCaller(post("{}", { origin: "https://evil.example" }), r, deps()));
    expect(out).toMatchObject({ kind: "rpc", status: 403, message: "Origin https://evil.example is not allowed" });
    expect(asked).toBe(false);
    // Allowed origins, Gatehouse's own origin and requests without Origin pass.
    for (const origin of ["https://claude.ai", "https://mcp.example.com", undefined]) {
      const req = post("{}", origin ? { origin } : {});
      expect(refused(await admitCaller(req, r, deps()))).toBe(false);
    }
  });

  test("no credentials on a route that admits anonymous callers: admitted as anonymous, with the challenge kept", async () => {
    const open = route({ ok: false, failure: noCredentials }, { requireAuthForToolsList: false });
    const caller = await admitCaller(post("{}"), open, deps());
    expect(caller).toMatchObject({ identity: { subject: "anonymous", provider: "none" }, challenge: noCredentials });
    // Bad credentials are never anonymous.
    const bad: AuthFailure = { ...noCredentials, error: "invalid_token", description: "expired" };
    expect(
      refusal(
        await admitCaller(post("{}"), route({ ok: false, failure: bad }, { requireAuthForToolsList: false }), deps()),
      ),
    ).toEqual({
      kind: "auth",
      failure: bad,
    });
    // A closed route refuses with its challenge; forward auth never admits anonymous callers.
    expect(refusal(await admitCaller(post("{}"), route({ ok: false, failure: noCredentials }), deps())).kind).toBe(
      "auth",
    );
    expect(refusal(await admitForwarded(post("{}"), open, memoryLogger())).kind).toBe("auth");
  });

  test("a token without its provider's requiredScopes gets 403 insufficient_scope (RFC 6750 §3.1)", async () => {
    const identity: Identity = { ...alice, scopes: ["read"], requiredScopes: ["mcp"] };
    for (const out of [
      refusal(await admitCaller(post("{}"), route({ ok: true, identity }), deps())),
      refusal(await admitForwarded(post("{}"), route({ ok: true, identity }), memoryLogger())),
    ]) {
      if (out.kind !== "auth") throw new Error("expected an auth refusal");
      expect(out.failure).toMatchObject({ status: 403, error: "insufficient_scope" });
      expect(out.failure.description).toContain("mcp");
    }
  });

  test("past gateway.rateLimitPerMinute a caller gets 429 with Retry-After; another caller is not affected", async () => {
    let now = 0;
    const limiter = new RateLimiter(2, () => now);
    const d = deps({ limiter });
    const r = route({ ok: true, identity: alice });
    expect(refused(await admitCaller(post("{}"), r, d))).toBe(false);
    expect(refused(await admitCaller(post("{}"), r, d))).toBe(false);
    const out = refusal(await admitCaller(post("{}"), r, d));
    expect(out).toMatchObject({ kind: "rpc", status: 429, retryAfter: 30 });
    if (out.kind === "rpc") expect(out.message).toContain("gateway.rateLimitPerMinute");
    const other = route({ ok: true, identity: { ...alice, subject: "bob" } });
    expect(refused(await admitCaller(post("{}"), other, d))).toBe(false);
    now += 30_000;
    expect(refused(await admitCaller(post("{}"), r, d))).toBe(false);
  });
});

describe("the messages", () => {
  const read = (req: Request, over: Partial<AdmissionDeps> = {}) => readMessages(req, deps(over), "streamable-http");

  test("each malformed body gets its status and a message naming what is wrong", async () => {
    const cases: [Request, number, string][] = [
      [post("{}", { "content-type": "text/plain" }), 415, "Content-Type must be application/json"],
      [post("x".repeat(101)), 413, "gateway.maxBodyBytes"],
      [post("{nope"), 400, "Parse error"],
      [post("[]"), 400, "empty batch"],
      [post("{}", { "mcp-protocol-version": "1999-01-01" }), 400, "Unsupported MCP-Protocol-Version: 1999-01-01"],
    ];
    for (const [req, status, message] of cases) {
      const out = refusal(await read(req));
      expect(out).toMatchObject({ kind: "rpc", status });
      if (out.kind === "rpc") expect(out.message).toContain(message);
    }
  });

  test("a chunked body over the limit is refused without reading it all", async () => {
    let pulled = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        pulled++;
        c.enqueue(new Uint8Array(64));
        if (pulled > 1000) c.close();
      },
    });
    const req = new Request("http://127.0.0.1:1/mcp", {
      method: "POST",
      body,
      headers: { "content-type": "application/json" },
    });
    expect(refusal(await read(req))).toMatchObject({ status: 413 });
    expect(pulled).toBeLessThan(10);
  });

  test("messages are classified; a batch keeps its items apart", async () => {
    const one = (await read(post('{"jsonrpc":"2.0","id":1,"method":"ping"}'))) as Incoming;
    expect(one).toEqual({
      batch: false,
      messages: [{ kind: "request", message: { jsonrpc: "2.0", id: 1, method: "ping" } }],
    });
    const batch = (await read(post('[{"jsonrpc":"2.0","method":"x"},{"bad":1}]'))) as Incoming;
    expect(batch.batch).toBe(true);
    expect(batch.messages.map((m) => m.kind)).toEqual(["notification", null]);
    // The 2024-11-05 /message takes exactly one well-formed message.
    expect(refusal(await readMessages(post("[]"), deps(), "sse"))).toMatchObject({ status: 400 });
  });

  test("an anonymous batch is refused as a whole when any item needs a user", async () => {
    const r = route(
      { ok: false, failure: noCredentials },
      { requireAuthForToolsList: false, publicTools: ["a__public"] },
    );
    const caller = { identity: alice, challenge: noCredentials };
    const msg = (method: string, params?: object) => ({
      kind: "request" as const,
      message: { jsonrpc: "2.0", id: 1, method, params },
    });
    const ok: Incoming = { batch: true, messages: [msg("tools/list"), msg("tools/call", { name: "a__public" })] };
    expect(checkAnonymous(r, caller, ok, memoryLogger())).toBeUndefined();
    const mixed: Incoming = { batch: true, messages: [msg("tools/list"), msg("tools/call", { name: "a__private" })] };
    expect(checkAnonymous(r, caller, mixed, memoryLogger())?.refusal).toEqual({ kind: "auth", failure: noCredentials });
    // A caller with credentials is not checked against the anonymous policy.
    expect(checkAnonymous(r, { identity: alice }, mixed, memoryLogger())).toBeUndefined();
  });
});

describe("per-method scopes (route.methodScopes)", () => {
  const resolver = { resolve: () => undefined };
  const req = (method: string): JsonRpcRequest => ({ jsonrpc: "2.0", id: 1, method });
  const policy = { methodScopes: { "tools/call": ["mcp:call"], "*": ["mcp"] } };

  test("a method's scopes are required of scoped tokens; '*' covers the others; unscoped tokens pass", async () => {
    const lister: Identity = { ...alice, provider: "jwt", scopes: ["mcp"] };
    expect(
      refused(await admitRequest(resolver, { identity: lister }, req("tools/list"), false, memoryLogger(), policy)),
    ).toBe(false);
    const call = await admitRequest(resolver, { identity: lister }, req("tools/call"), false, memoryLogger(), policy);
    const r = refusal(call);
    if (r.kind !== "auth") throw new Error("expected a step-up");
    expect(r.failure).toMatchObject({ status: 403, error: "insufficient_scope" });
    expect(r.failure.challenge).toContain("mcp:call");
    const none: Identity = { ...alice, provider: "jwt", scopes: [] };
    expect(
      refused(await admitRequest(resolver, { identity: none }, req("tools/list"), false, memoryLogger(), policy)),
    ).toBe(true);
    // In a batch: the item's JSON-RPC error, not a 403 for the whole batch.
    const inBatch = await admitRequest(resolver, { identity: lister }, req("tools/call"), true, memoryLogger(), policy);
    expect(refused(inBatch)).toBe(false);
    if (!refused(inBatch)) expect(inBatch.target).toMatchObject({ kind: "refused", scopes: ["mcp:call"] });
    // Bearer-table and forwarded identities have no notion of scope.
    expect(
      refused(await admitRequest(resolver, { identity: alice }, req("tools/call"), false, memoryLogger(), policy)),
    ).toBe(false);
  });
});

test("a token's scopes come from scope, scp or scopes (simple-rpc-ai-backend's array)", () => {
  expect(scopesOf({ scope: "a b" })).toEqual(["a", "b"]);
  expect(scopesOf({ scp: ["a", "b"] })).toEqual(["a", "b"]);
  expect(scopesOf({ scopes: ["mcp", "mcp:call", 3] })).toEqual(["mcp", "mcp:call"]);
  expect(scopesOf({ scopes: "mcp mcp:call" })).toEqual(["mcp", "mcp:call"]);
  expect(scopesOf({})).toEqual([]);
});
