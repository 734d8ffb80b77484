// A long call that sends nothing still keeps its connection alive: after gateway.sseKeepalive the answer switches to
// SSE, so comments flow until the result (proxies cut silent connections, often after 60 s).

import { afterAll, beforeAll, expect, test } from "bun:test";
import { type HttpBackend, startHttpBackend } from "../fixtures/http-backend.ts";
import { type TestApp, testApp } from "../helpers/app.ts";

let web: HttpBackend;
let t: TestApp;
beforeAll(async () => {
  web = await startHttpBackend();
  t = await testApp({ mcpServers: { web: { url: web.url } }, gateway: { sseKeepalive: "200ms" } });
}, 30_000);
afterAll(async () => {
  await t.close();
  await web.stop();
});

test("a silent call longer than sseKeepalive is answered as SSE with keep-alives, then the result", async () => {
  const sid = await t.session();
  const res = await t.rpc(
    { jsonrpc: "2.0", id: 5, method: "tools/call", params: { name: "web__slow", arguments: { ms: 900 } } },
    { "mcp-session-id": sid },
  );
  expect(res.headers.get("content-type")).toContain("text/event-stream");
  const text = await res.text();
  expect(text).toContain(": keepalive");
  const result = text
    .split("\n")
    .filter((l) => l.startsWith("data: {"))
    .map((l) => JSON.parse(l.slice(6)))
    .at(-1);
  expect(result).toMatchObject({ id: 5, result: { content: [{ text: "slept 900" }] } });
});

test("a client that accepts only JSON still gets JSON, however long it takes", async () => {
  const sid = await t.session();
  const res = await t.rpc(
    { jsonrpc: "2.0", id: 6, method: "tools/call", params: { name: "web__slow", arguments: { ms: 400 } } },
    { "mcp-session-id": sid, accept: "application/json" },
  );
  expect(res.headers.get("content-type")).toContain("application/json");
});
