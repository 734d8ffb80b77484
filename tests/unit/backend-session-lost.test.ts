// An HTTP backend's session going away, against the real HttpTransport and a scripted backend (its fetch): every
// call sent on the old session is sent once more on the new one (MCP Session Management: a 404 on the session means
// start a new one), a 404 about an old session never tears down the new one, and a request that cannot connect
// marks the backend unreachable without failing the other calls in flight.

import { expect, test } from "bun:test";
import { memoryLogger } from "../../src/log.ts";
import { BackendClient } from "../../src/mcp/backends/backend-client.ts";
import { HttpTransport } from "../../src/mcp/backends/http-transport.ts";
import { systemClock } from "../../src/platform/types.ts";

/** A backend whose sessions are numbered; `restart()` forgets them, `down` refuses connections. */
function scriptedBackend(requestTimeoutMs = 3000) {
  const b = {
    session: 1,
    initializes: 0,
    down: false,
    /** Milliseconds a tools/call takes before its answer. */
    callMs: 5,
    restart() {
      b.session++;
    },
  };
  const json = (body: unknown, headers: Record<string, string> = {}) =>
    new Response(JSON.stringify(body), { headers: { "content-type": "application/json", ...headers } });
  const fetchImpl = (async (_url: string, init: RequestInit) => {
    if (b.down) throw new TypeError("Unable to connect. Is the computer able to access the url?");
    if (init.method !== "POST") return new Response(null, { status: init.method === "DELETE" ? 200 : 405 });
    const msg = JSON.parse(String(init.body)) as { id?: number; method: string; params?: { name?: string } };
    const sid = (init.headers as Record<string, string>)["mcp-session-id"];
    if (msg.method === "initialize") {
      b.initializes++;
      const result = { protocolVersion: "2025-11-25", capabilities: { tools: {} }, serverInfo: { name: "s" } };
      return json({ jsonrpc: "2.0", id: msg.id, result }, { "mcp-session-id": `S${b.session}` });
    }
    if (sid !== `S${b.session}`) return new Response("no such session", { status: 404 });
    if (msg.method === "notifications/initialized") return new Response(null, { status: 202 });
    if (msg.params?.name === "hang") {
      // Taken, answered as an SSE stream that never sends the answer (until the request is aborted).
      const body = new ReadableStream({
        start(c) {
          init.signal?.addEventListener("abort", () => c.error(new Error("aborted")));
        },
      });
      return new Response(body, { headers: { "content-type": "text/event-stream" } });
    }
    const answeredBy = sid;
    await Bun.sleep(b.callMs);
    if (b.down) throw new TypeError("The socket connection was closed unexpectedly");
    return json({ jsonrpc: "2.0", id: msg.id, result: { name: msg.params?.name, session: answeredBy } });
  }) as unknown as typeof fetch;
  const log = memoryLogger();
  const transport = new HttpTransport(
    "web",
    { url: "http://backend/mcp", headers: {}, connectTimeoutMs: 2000, fetch: fetchImpl },
    log,
  );
  const client = new BackendClient({
    name: "web",
    transport,
    clock: systemClock,
    log,
    version: "test",
    requestTimeoutMs,
    startupTimeoutMs: 3000,
    onBroadcast() {},
  });
  return { b, client, log };
}

test("after a restart, every call in flight on the old session is sent again once, and one new session serves them", async () => {
  const { b, client } = scriptedBackend();
  await client.request("tools/call", { name: "first" });
  b.restart();
  const answers = await Promise.all(["a", "b", "c"].map((name) => client.request("tools/call", { name })));
  expect(answers.map((a) => a.session)).toEqual(["S2", "S2", "S2"]);
  expect(b.initializes).toBe(2); // not one per stale 404
  expect(client.connected).toBe(true);
});

test("a backend that cannot be reached is shown as not connected, without failing the calls that get through", async () => {
  const { b, client, log } = scriptedBackend();
  await client.request("tools/call", { name: "first" });
  b.callMs = 300;
  const slow = client.request("tools/call", { name: "slow" }); // on its way when the next one fails
  await Bun.sleep(20);
  b.down = true;
  await expect(client.request("tools/call", { name: "refused" })).rejects.toThrow(/could not reach/);
  expect(client.connected).toBe(false);
  expect(client.error).toContain("Unable to connect");
  b.down = false;
  expect((await slow).session).toBe("S1"); // not torn down with the session
  await client.request("tools/call", { name: "again" });
  expect(client.connected).toBe(true);
  expect(log.lines.some((l) => l.includes("the backend can be reached again"))).toBe(true);
});

test("a call the backend had taken when our session was lost fails then, not at its deadline, and is not resent", async () => {
  // Its deadline is far beyond the test's own timeout: only the lost session can end it in time.
  const { b, client } = scriptedBackend(600_000);
  await client.request("tools/call", { name: "first" });
  const hanging = client.request("tools/call", { name: "hang" });
  const settled = hanging.then(
    () => "answered",
    (e: Error) => e.message,
  );
  await Bun.sleep(20); // taken: its stream is open
  b.restart();
  expect((await client.request("tools/call", { name: "after" })).session).toBe("S2");
  const outcome = await settled;
  expect(outcome).toContain("lost our session");
  expect(outcome).toContain("tools/call");
}, 10_000);
