// Resuming a POST response stream that the backend closed before answering (MCP 2025-11-25 basic/transports,
// "Resumability and Redelivery", SEP-1699): Gatehouse's HttpTransport reconnects with GET + Last-Event-ID and gets
// the answer there. Against the official SDK server (an event store, closeSSEStream mid-call) and against
// hand-written backends for the cases that must fail: no event id, a GET the backend refuses, a GET that keeps
// failing, and a transport closed while it waits to reconnect.

import { describe, expect, test } from "bun:test";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import {
  type EventStore,
  WebStandardStreamableHTTPServerTransport,
} from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";
import { memoryLogger } from "../../src/log.ts";
import { BackendClient, type RequestOwner } from "../../src/mcp/backends/backend-client.ts";
import { HttpTransport } from "../../src/mcp/backends/http-transport.ts";
import type { JsonRpcId, JsonRpcMessage } from "../../src/mcp/jsonrpc.ts";
import { systemClock } from "../../src/platform/types.ts";
import { onCleanup } from "../helpers/cleanup.ts";

const CLOSED_EARLY = "the backend closed its response stream before answering";

interface Seen {
  method: string;
  headers: Record<string, string>;
}

interface Backend {
  url: string;
  /** Every request the backend received, in order. */
  seen: Seen[];
  stop(): Promise<void>;
}

/** The GETs that resume a stream (the standalone GET carries no Last-Event-ID). */
const resumes = (b: Backend) => b.seen.filter((s) => s.method === "GET" && s.headers["last-event-id"]);

/** Serves on a free loopback port; stopped by the test, or by the cleanup after a failed one. */
function serve(fetch: (req: Request) => Response | Promise<Response>, onStop?: () => Promise<void>): Backend {
  const seen: Seen[] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    fetch(req) {
      seen.push({ method: req.method, headers: Object.fromEntries(req.headers) });
      return fetch(req);
    },
  });
  const stop = async () => {
    unregister();
    await onStop?.().catch(() => {});
    server.stop(true);
  };
  const unregister = onCleanup(stop);
  return { url: `http://127.0.0.1:${server.port}/mcp`, seen, stop };
}

/** A minimal event store: one ordered log, replayed per stream after the given event id. */
class MemoryEventStore implements EventStore {
  private readonly events: { id: string; streamId: string; message: JSONRPCMessage }[] = [];
  async storeEvent(streamId: string, message: JSONRPCMessage): Promise<string> {
    const id = `${streamId}_${this.events.length}`;
    this.events.push({ id, streamId, message });
    return id;
  }
  async getStreamIdForEventId(eventId: string): Promise<string | undefined> {
    return this.events.find((e) => e.id === eventId)?.streamId;
  }
  async replayEventsAfter(
    lastEventId: string,
    { send }: { send: (eventId: string, message: JSONRPCMessage) => Promise<void> },
  ): Promise<string> {
    const at = this.events.findIndex((e) => e.id === lastEventId);
    const streamId = this.events[at]?.streamId ?? "";
    for (const e of this.events.slice(at + 1)) if (e.streamId === streamId) await send(e.id, e.message);
    return streamId;
  }
}

/**
 * The official SDK server with resumability on. Tools: `drop_then_answer` closes its response stream, logs a line
 * and answers while the client is away (both are stored and replayed on resume, like the conformance suite's
 * test_reconnection); `poll` closes its stream `times` times, each time waiting for the client to come back and
 * logging a line on the resumed stream before closing it again.
 */
function startSdkBackend(options: { retryInterval?: number }): Backend {
  const sessions = new Map<string, WebStandardStreamableHTTPServerTransport>();
  let resumed = 0;
  const waiters: (() => void)[] = [];
  const resumedAtLeast = (n: number) =>
    new Promise<void>((resolve) => {
      const check = () => (resumed >= n ? resolve() : waiters.push(check));
      check();
    });

  const build = () => {
    const server = new McpServer({ name: "resumable", version: "1.0.0" }, { capabilities: { logging: {} } });
    server.registerTool("drop_then_answer", { description: "Closes its stream, then answers" }, async (extra) => {
      if (!extra.closeSSEStream) throw new Error("the SDK offered no closeSSEStream");
      extra.closeSSEStream();
      await extra.sendNotification({ method: "notifications/message", params: { level: "info", data: "while away" } });
      return { content: [{ type: "text", text: "answered after the stream closed" }] };
    });
    server.registerTool("poll", { description: "Closes its stream several times" }, async (extra) => {
      const times = 4;
      for (let i = 1; i <= times; i++) {
        if (!extra.closeSSEStream) throw new Error("the SDK offered no closeSSEStream");
        extra.closeSSEStream();
        await resumedAtLeast(resumed + 1);
        await extra.sendNotification({ method: "notifications/message", params: { level: "info", data: `poll ${i}` } });
      }
      return { content: [{ type: "text", text: `polled ${times} times` }] };
    });
    return server;
  };

  return serve(
    async (req) => {
      const sid = req.headers.get("mcp-session-id");
      if (sid) {
        const t = sessions.get(sid);
        if (!t) return new Response("unknown session", { status: 404 });
        const res = await t.handleRequest(req);
        if (req.method === "GET" && req.headers.get("last-event-id")) {
          // The resumed stream is registered once handleRequest returns: a polling tool may go on.
          resumed++;
          for (const w of waiters.splice(0)) w();
        }
        return res;
      }
      const transport = new WebStandardStreamableHTTPServerTransport({
        sessionIdGenerator: () => crypto.randomUUID(),
        eventStore: new MemoryEventStore(),
        ...(options.retryInterval !== undefined ? { retryInterval: options.retryInterval } : {}),
        onsessioninitialized: (id) => {
          sessions.set(id, transport);
        },
      });
      await build().connect(transport);
      return transport.handleRequest(req);
    },
    async () => {
      for (const t of sessions.values()) await t.close().catch(() => {});
    },
  );
}

/**
 * A hand-written Streamable HTTP backend: initialize and other requests are answered with JSON, except tools/call,
 * whose SSE response body is `callStream`; resuming GETs get `onResume`, the standalone GET a 405.
 */
function startScriptedBackend(callStream: string, onResume: () => Response): Backend {
  return serve(async (req) => {
    const headers = { "mcp-session-id": "s1" };
    if (req.method === "DELETE") return new Response(null, { status: 200 });
    if (req.method === "GET")
      return req.headers.get("last-event-id") ? onResume() : new Response(null, { status: 405 });
    const m = (await req.json()) as { id?: JsonRpcId; method: string };
    if (m.id === undefined) return new Response(null, { status: 202, headers });
    if (m.method === "tools/call") {
      return new Response(callStream.replaceAll("$ID", JSON.stringify(m.id)), {
        headers: { ...headers, "content-type": "text/event-stream" },
      });
    }
    const result =
      m.method === "initialize"
        ? { protocolVersion: "2025-11-25", capabilities: { tools: {} }, serverInfo: { name: "scripted" } }
        : {};
    return Response.json({ jsonrpc: "2.0", id: m.id, result }, { headers });
  });
}

function client(url: string) {
  const transport = new HttpTransport("b", { url, headers: {}, connectTimeoutMs: 5000 }, memoryLogger());
  return new BackendClient({
    name: "b",
    transport,
    clock: systemClock,
    log: memoryLogger(),
    version: "t",
    requestTimeoutMs: 20_000,
    startupTimeoutMs: 5_000,
    onBroadcast: () => {},
  });
}

function owner(): RequestOwner & { got: JsonRpcMessage[] } {
  const got: JsonRpcMessage[] = [];
  return { sessionId: "c1", got, deliver: (m) => got.push(m) };
}

/** The `data` of the log notifications an owner received. */
const logLines = (o: { got: JsonRpcMessage[] }) =>
  o.got.flatMap((m) => ("method" in m && m.method === "notifications/message" ? [m.params?.data] : []));

const text = (result: Record<string, unknown>) => (result.content as { text: string }[])[0]?.text;

const sse = (...events: string[]) => events.map((e) => `${e}\n\n`).join("");

describe("HttpTransport: resuming a response stream closed before the answer", () => {
  test("reconnects with GET + Last-Event-ID after the server's retry and gets the replayed answer (SDK server)", async () => {
    const backend = startSdkBackend({ retryInterval: 10 });
    const c = client(backend.url);
    try {
      const o = owner();
      const result = await c.request("tools/call", { name: "drop_then_answer", arguments: {} }, { owner: o });
      expect(text(result)).toBe("answered after the stream closed");
      expect(logLines(o)).toEqual(["while away"]);
      const [get] = resumes(backend);
      expect(get).toBeDefined();
      expect(get?.headers.accept).toContain("text/event-stream");
      expect(get?.headers["mcp-session-id"]).toBeTruthy();
      expect(get?.headers["mcp-protocol-version"]).toBe("2025-11-25");
      // The connection keeps working after a resumed call.
      const again = await c.request("tools/call", { name: "drop_then_answer", arguments: {} });
      expect(text(again)).toBe("answered after the stream closed");
    } finally {
      await c.stop();
      await backend.stop();
    }
  });

  test("follows a backend that closes the stream again and again while it works (polling)", async () => {
    const backend = startSdkBackend({ retryInterval: 10 });
    const c = client(backend.url);
    try {
      const o = owner();
      const result = await c.request("tools/call", { name: "poll", arguments: {} }, { owner: o });
      expect(text(result)).toBe("polled 4 times");
      expect(logLines(o)).toEqual(["poll 1", "poll 2", "poll 3", "poll 4"]);
      const ids = resumes(backend).map((s) => s.headers["last-event-id"]);
      expect(ids.length).toBe(4);
      expect(new Set(ids).size).toBe(4); // each reconnect resumes after the latest event, not the first
    } finally {
      await c.stop();
      await backend.stop();
    }
  });

  test("resumes after a default wait when the server sent no retry field", async () => {
    const backend = startSdkBackend({});
    const c = client(backend.url);
    try {
      const result = await c.request("tools/call", { name: "drop_then_answer", arguments: {} });
      expect(text(result)).toBe("answered after the stream closed");
      expect(resumes(backend).length).toBe(1);
    } finally {
      await c.stop();
      await backend.stop();
    }
  });

  test("a stream that ends without an event id still fails the call with the clear error", async () => {
    const note = `data: {"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"hi"}}`;
    const backend = startScriptedBackend(sse(note), () => new Response(null, { status: 500 }));
    const c = client(backend.url);
    try {
      const o = owner();
      const call = c.request("tools/call", { name: "x", arguments: {} }, { owner: o });
      await expect(call).rejects.toThrow(CLOSED_EARLY);
      await expect(call).rejects.not.toThrow("resuming");
      expect(logLines(o)).toEqual(["hi"]);
      expect(resumes(backend)).toEqual([]);
    } finally {
      await c.stop();
      await backend.stop();
    }
  });

  test("a backend that refuses the resuming GET fails the call at once, saying why", async () => {
    const backend = startScriptedBackend(sse("id: e1\nretry: 10\ndata:"), () => new Response(null, { status: 405 }));
    const c = client(backend.url);
    try {
      const call = c.request("tools/call", { name: "x", arguments: {} });
      await expect(call).rejects.toThrow(`${CLOSED_EARLY} (resuming it failed: HTTP 405 to the GET)`);
      expect(resumes(backend).map((s) => s.headers["last-event-id"])).toEqual(["e1"]);
    } finally {
      await c.stop();
      await backend.stop();
    }
  });

  test("reconnects that keep failing are bounded", async () => {
    const backend = startScriptedBackend(sse("id: e1\nretry: 10\ndata:"), () => new Response(null, { status: 503 }));
    const c = client(backend.url);
    try {
      const call = c.request("tools/call", { name: "x", arguments: {} });
      await expect(call).rejects.toThrow(`${CLOSED_EARLY} (resuming it failed: HTTP 503 to the GET (3 attempts))`);
      expect(resumes(backend).length).toBe(3);
    } finally {
      await c.stop();
      await backend.stop();
    }
  });

  test("a resumed stream that ends without the answer is resumed again from its latest event id", async () => {
    let n = 0;
    const backend = startScriptedBackend(sse("id: e1\nretry: 10\ndata:"), () => {
      n++;
      const body =
        n === 1 ? sse("id: e2\ndata:") : sse(`id: e3\ndata: {"jsonrpc":"2.0","id":$ID,"result":{"ok":true}}`);
      return new Response(body.replace("$ID", "2"), { headers: { "content-type": "text/event-stream" } });
    });
    const c = client(backend.url);
    try {
      // Request ids: 1 is initialize, so the call is 2.
      const result = await c.request("tools/call", { name: "x", arguments: {} });
      expect(result).toEqual({ ok: true });
      expect(resumes(backend).map((s) => s.headers["last-event-id"])).toEqual(["e1", "e2"]);
    } finally {
      await c.stop();
      await backend.stop();
    }
  });

  test("a transport closed while waiting to reconnect does not reconnect", async () => {
    const backend = startScriptedBackend(sse("id: e1\nretry: 100\ndata:"), () => new Response(null, { status: 503 }));
    const got: { m: JsonRpcMessage; related?: JsonRpcId }[] = [];
    const transport = new HttpTransport("b", { url: backend.url, headers: {}, connectTimeoutMs: 5000 }, memoryLogger());
    try {
      await transport.start({ onMessage: (m, related) => got.push({ m, related }), onClose: () => {} });
      await transport.send({ jsonrpc: "2.0", id: 1, method: "initialize", params: {} });
      await transport.send({ jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "x" } });
      await Bun.sleep(20); // the stream (one event with an id, then its end) is read meanwhile
      await transport.close();
      await Bun.sleep(400); // well past the 100 ms the backend asked to wait
      expect(resumes(backend)).toEqual([]);
      expect(got.filter((g) => g.related === 2)).toEqual([]);
    } finally {
      await transport.close();
      await backend.stop();
    }
  });
});
