// BackendClient against a scripted transport and a fake clock: multiplexing, deadlines, crashes, restarts,
// idle reaping and who receives what the backend sends.

import { describe, expect, test } from "bun:test";
import { memoryLogger } from "../../src/log.ts";
import { BackendClient, type RequestOwner, restartDelayMs } from "../../src/mcp/backends/backend-client.ts";
import { idleTimeoutMs } from "../../src/mcp/backends/idle.ts";
import type { BackendTransport, TransportHandlers } from "../../src/mcp/backends/transport.ts";
import type { JsonRpcMessage, JsonRpcNotification, JsonRpcRequest } from "../../src/mcp/jsonrpc.ts";
import { FakeClock } from "../helpers/clock.ts";

class ScriptedTransport implements BackendTransport {
  handlers: TransportHandlers | undefined;
  sent: JsonRpcMessage[] = [];
  starts = 0;
  closes = 0;
  failInitialize = false;
  async start(h: TransportHandlers) {
    this.handlers = h;
    this.starts++;
  }
  async send(m: JsonRpcMessage) {
    this.sent.push(m);
    if ("method" in m && m.method === "initialize" && "id" in m) {
      queueMicrotask(() =>
        this.handlers?.onMessage(
          this.failInitialize
            ? { jsonrpc: "2.0", id: m.id, error: { code: -32603, message: "boom" } }
            : {
                jsonrpc: "2.0",
                id: m.id,
                result: { protocolVersion: "2025-06-18", capabilities: { tools: {} }, serverInfo: { name: "fake" } },
              },
        ),
      );
    }
  }
  setProtocolVersion() {}
  async close() {
    this.closes++;
  }
  describe() {
    return "scripted";
  }
  /** The last request sent with this method. */
  last(method: string): JsonRpcRequest {
    return [...this.sent].reverse().find((m) => "method" in m && m.method === method && "id" in m) as JsonRpcRequest;
  }
  reply(id: number | string, result: Record<string, unknown>) {
    this.handlers?.onMessage({ jsonrpc: "2.0", id, result });
  }
}

function setup() {
  const clock = new FakeClock();
  const transport = new ScriptedTransport();
  const broadcasts: JsonRpcNotification[] = [];
  const client = new BackendClient({
    name: "fake",
    transport,
    clock,
    log: memoryLogger(),
    version: "t",
    requestTimeoutMs: 10_000,
    startupTimeoutMs: 5_000,
    onBroadcast: (_b, n) => broadcasts.push(n),
  });
  return { clock, transport, client, broadcasts };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

function owner(sessionId: string): RequestOwner & { got: JsonRpcMessage[] } {
  const got: JsonRpcMessage[] = [];
  return { sessionId, got, deliver: (m) => got.push(m) };
}

describe("BackendClient", () => {
  test("initializes on first use, then multiplexes concurrent requests by id", async () => {
    const { transport, client } = setup();
    const a = client.request("tools/call", { name: "a" });
    const b = client.request("tools/call", { name: "b" });
    await tick();
    expect(client.info?.protocolVersion).toBe("2025-06-18");
    const calls = transport.sent.filter((m) => "method" in m && m.method === "tools/call") as JsonRpcRequest[];
    expect(calls.map((c) => c.params?.name)).toEqual(["a", "b"]);
    transport.reply(calls[1]!.id, { which: "b" });
    transport.reply(calls[0]!.id, { which: "a" });
    expect(await a).toEqual({ which: "a" });
    expect(await b).toEqual({ which: "b" });
    expect(transport.sent.some((m) => "method" in m && m.method === "notifications/initialized")).toBe(true);
  });

  test("a request without an answer fails at its deadline, naming backend and method; the backend is told", async () => {
    const { clock, transport, client } = setup();
    const p = client.request("tools/call", { name: "slow" });
    await tick();
    clock.advance(10_000);
    await expect(p).rejects.toThrow('backend "fake" did not answer tools/call within 10 s');
    expect(transport.sent.some((m) => "method" in m && m.method === "notifications/cancelled")).toBe(true);
  });

  test("progress resets the deadline and reaches the caller", async () => {
    const { clock, transport, client } = setup();
    const o = owner("s1");
    const p = client.request("tools/call", { name: "long", _meta: { progressToken: "tok" } }, { owner: o });
    await tick();
    clock.advance(9_000);
    transport.handlers?.onMessage({
      jsonrpc: "2.0",
      method: "notifications/progress",
      params: { progressToken: "tok", progress: 1 },
    });
    clock.advance(9_000);
    transport.reply(transport.last("tools/call").id, { ok: true });
    expect(await p).toEqual({ ok: true });
    expect(o.got.length).toBe(1);
  });

  test("a crash fails calls in flight with the backend's name; the next call restarts it at once", async () => {
    const { transport, client } = setup();
    const p = client.request("tools/call", { name: "x" });
    await tick();
    transport.handlers?.onClose("process exited with code 137");
    await expect(p).rejects.toThrow('backend "fake" process exited with code 137 while handling tools/call');
    const again = client.request("ping", undefined);
    await tick();
    expect(transport.starts).toBe(2);
    transport.reply(transport.last("ping").id, {});
    expect(await again).toEqual({});
  });

  test("repeated crashes back off; calls meanwhile fail fast saying when it retries", async () => {
    const { clock, transport, client } = setup();
    for (let i = 0; i < 2; i++) {
      const p = client.request("ping", undefined);
      await tick();
      transport.handlers?.onClose("process exited with code 1");
      await expect(p).rejects.toThrow();
    }
    await expect(client.request("ping", undefined)).rejects.toThrow("next restart attempt in 1 s");
    expect(client.status).toBe("backoff");
    clock.advance(1000);
    const p = client.request("ping", undefined);
    await tick();
    transport.reply(transport.last("ping").id, {});
    expect(await p).toEqual({});
  });

  test("a backend that fails initialize is reported with the reason", async () => {
    const { transport, client } = setup();
    transport.failInitialize = true;
    await expect(client.request("ping", undefined)).rejects.toThrow('backend "fake" failed to start: boom');
    expect(client.error).toContain("boom");
  });

  test("restart delays: immediately, then 1 s doubling up to 30 s", () => {
    expect([1, 2, 3, 4, 5, 10].map(restartDelayMs)).toEqual([0, 1000, 2000, 4000, 8000, 30_000]);
  });

  test("an idle backend is stopped and starts again on next use", async () => {
    const { clock, transport, client } = setup();
    const p = client.request("ping", undefined);
    await tick();
    transport.reply(transport.last("ping").id, {});
    await p;
    expect(await client.reapIfIdle(60_000)).toBe(false);
    clock.advance(60_001);
    expect(await client.reapIfIdle(60_000)).toBe(true);
    expect(transport.closes).toBe(1);
    expect(client.connected).toBe(false);
    const q = client.request("ping", undefined);
    await tick();
    transport.reply(transport.last("ping").id, {});
    await q;
    expect(transport.starts).toBe(2);
  });

  test("list changes are broadcast; unattributed messages reach a caller only when one session is in flight", async () => {
    const { transport, client, broadcasts } = setup();
    const a = owner("session-a");
    const p1 = client.request("tools/call", { name: "1" }, { owner: a });
    await tick();
    transport.handlers?.onMessage({ jsonrpc: "2.0", method: "notifications/tools/list_changed" });
    expect(broadcasts.map((b) => b.method)).toEqual(["notifications/tools/list_changed"]);
    transport.handlers?.onMessage({
      jsonrpc: "2.0",
      method: "notifications/message",
      params: { level: "info", data: "x" },
    });
    expect(a.got.length).toBe(1);

    const b = owner("session-b");
    const p2 = client.request("tools/call", { name: "2" }, { owner: b });
    await tick();
    transport.handlers?.onMessage({
      jsonrpc: "2.0",
      method: "notifications/message",
      params: { level: "info", data: "y" },
    });
    expect(a.got.length).toBe(1);
    expect(b.got.length).toBe(0);
    // A server request that cannot be attributed is answered with an error instead of reaching another user.
    transport.handlers?.onMessage({ jsonrpc: "2.0", id: 77, method: "sampling/createMessage", params: {} });
    await tick();
    const answer = transport.sent.find((m) => !("method" in m) && m.id === 77) as { error?: { message: string } };
    expect(answer.error?.message).toContain("cannot tell which client");
    // Related messages (Streamable HTTP says which request's stream carried them) go to that request's owner.
    const id2 = transport.last("tools/call").id;
    transport.handlers?.onMessage({ jsonrpc: "2.0", method: "notifications/message", params: { data: "z" } }, id2);
    expect(b.got.length).toBe(1);
    transport.reply(transport.last("tools/call").id, {});
    transport.reply(
      (transport.sent.find((m) => "params" in m && (m as JsonRpcRequest).params?.name === "1") as JsonRpcRequest).id,
      {},
    );
    await Promise.all([p1, p2]);
  });
});

describe("idle timeouts (idle_timeout)", () => {
  const start = 0;
  const hour = 3_600_000;
  test.each([
    ["never", { kind: "never" }, 10, undefined],
    ["fixed", { kind: "fixed", ms: 120_000 }, 0, 120_000],
    ["adaptive, never used, within warm-up", { kind: "adaptive", minMs: 60_000, maxMs: 300_000 }, 0, undefined],
    ["adaptive, one request", { kind: "adaptive", minMs: 30_000, maxMs: 300_000 }, 1, 30_000],
    ["adaptive, busy (>20/h)", { kind: "adaptive", minMs: 60_000, maxMs: 300_000 }, 50, 300_000],
    ["adaptive, warm (>5/h)", { kind: "adaptive", minMs: 60_000, maxMs: 300_000 }, 10, 180_000],
    ["adaptive, cold", { kind: "adaptive", minMs: 60_000, maxMs: 300_000 }, 5, 60_000],
    ["adaptive, busy but capped", { kind: "adaptive", minMs: 30_000, maxMs: 120_000 }, 50, 120_000],
  ] as const)("%s", (_name, policy, count, expected) => {
    expect(
      idleTimeoutMs(policy, { requestCount: count, firstUsed: start }, count === 0 ? start + 1000 : start + hour),
    ).toBe(expected);
  });
});
