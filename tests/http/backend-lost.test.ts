// An HTTP backend that was up and goes away: health says degraded naming it and its metrics say down (not "ok" with
// the backend gone); when it comes back with no memory of our session (HTTP 404), the next call opens a new session
// and goes through — MCP transports, Session Management: a client MUST start a new session on 404.

import { afterEach, expect, test } from "bun:test";
import { GatehouseMetrics } from "../../src/gatehouse-metrics.ts";
import { type HttpBackend, startHttpBackend } from "../fixtures/http-backend.ts";
import { type TestApp, testApp } from "../helpers/app.ts";

let t: TestApp | undefined;
let backend: HttpBackend | undefined;
afterEach(async () => {
  await t?.close();
  await backend?.stop();
});

test("a lost HTTP backend shows in /health and the metrics; back, it is used again at the first call", async () => {
  backend = await startHttpBackend();
  const port = backend.port;
  const metrics = new GatehouseMetrics("0.0.0-test", "bun");
  t = await testApp({ mcpServers: { web: { url: backend.url } } }, { deps: { metrics } });
  const session = await t.session();
  const call = async (id: number) =>
    (await (
      await t?.rpc(
        { jsonrpc: "2.0", id, method: "tools/call", params: { name: "web__echo", arguments: { message: "m" } } },
        { "mcp-session-id": session },
      )
    )?.json()) as { result?: { content: { text: string }[] }; error?: { message: string } };
  expect((await call(1)).result?.content[0]?.text).toBe("echo: m");

  await backend.stop();
  backend = undefined;
  const failed = await call(2);
  expect(failed.error?.message).toContain('backend "web"');
  const health = (await (await t.request("/health")).json()) as Record<string, unknown>;
  expect(health).toMatchObject({ status: "degraded", backends_failing: ["web"] });
  expect(metrics.render()).toContain('gatehouse_backend_up{server="web"} 0');
  expect(t.lines.some((l) => l.includes("the backend cannot be reached") && l.includes("backend=web"))).toBe(true);

  // Back on the same port, a new process: it knows no session of ours.
  backend = await startHttpBackend({ port });
  // Its first restart attempt may still be in backoff from the failed reconnect: wait that out, then one call works.
  let answer = await call(3);
  for (let i = 4; answer.error?.message.includes("next restart attempt") && i < 40; i++) {
    await Bun.sleep(250);
    answer = await call(i);
  }
  expect(answer.result?.content[0]?.text).toBe("echo: m");
  expect((await (await t.request("/health")).json()) as Record<string, unknown>).toMatchObject({ status: "ok" });
});

test("a backend that restarted behind our back (404 on our session): the call is sent again on a new session", async () => {
  backend = await startHttpBackend();
  const port = backend.port;
  t = await testApp({ mcpServers: { web: { url: backend.url } } });
  const session = await t.session();
  const call = async (id: number) =>
    (await (
      await t?.rpc(
        { jsonrpc: "2.0", id, method: "tools/call", params: { name: "web__echo", arguments: { message: "x" } } },
        { "mcp-session-id": session },
      )
    )?.json()) as { result?: { content: { text: string }[] }; error?: { message: string } };
  expect((await call(1)).result?.content[0]?.text).toBe("echo: x");
  // Restarted between two calls: no failed call in between to notice it.
  await backend.stop();
  backend = await startHttpBackend({ port });
  expect((await call(2)).result?.content[0]?.text).toBe("echo: x");
  expect(t.lines.some((l) => l.includes("reconnecting to backend") && l.includes("session lost"))).toBe(true);
});

test("a call to a backend that cannot be reached counts as an error in the metrics, not as denied", async () => {
  const metrics = new GatehouseMetrics("0.0.0-test", "bun");
  t = await testApp({ mcpServers: { dead: { url: "http://127.0.0.1:9/mcp" } } }, { deps: { metrics } });
  const session = await t.session();
  const res = await t.rpc(
    { jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "dead__x", arguments: {} } },
    { "mcp-session-id": session },
  );
  expect(((await res.json()) as { error?: { message: string } }).error?.message).toContain("dead");
  const text = metrics.render();
  expect(text).toMatch(/gatehouse_mcp_requests_total\{method="tools\/call",server="dead",tool="",outcome="error"\} 1/);
  expect(text).not.toContain('outcome="denied"');
});
