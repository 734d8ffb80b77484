// Backends that are old, down or slow: the 2024-11-05 SSE transport upstream, a backend that does not answer,
// one that is too slow — each fails alone while the others keep serving.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type HttpBackend, startHttpBackend } from "../fixtures/http-backend.ts";
import { connect } from "../helpers/client.ts";
import { type Running, startGatehouse } from "../helpers/gatehouse-process.ts";
import { freePort } from "../helpers/net.ts";
import { type BackendProcess, startEverything } from "../helpers/processes.ts";
import { writeConfig } from "../helpers/temp.ts";

let legacy: BackendProcess;
let web: HttpBackend;
let gh: Running;

beforeAll(async () => {
  legacy = await startEverything("sse");
  web = await startHttpBackend();
  const deadPort = await freePort();
  const config = writeConfig({
    mcpServers: {
      old: { url: legacy.url }, // auto: Streamable HTTP refused → falls back to HTTP+SSE
      oldexplicit: { type: "sse", url: legacy.url },
      web: { url: web.url, timeout: "1s" },
      down: { url: `http://127.0.0.1:${deadPort}/mcp`, startup_timeout: "2s" },
    },
  });
  gh = await startGatehouse({ config });
}, 60_000);

afterAll(async () => {
  await gh?.stop();
  await legacy?.stop();
  await web?.stop();
});

describe("backends", () => {
  test("a 2024-11-05 SSE backend is reached by fallback and when configured as type sse", async () => {
    const client = await connect(`${gh.url}/mcp`);
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names).toContain("old__echo");
    expect(names).toContain("oldexplicit__echo");
    expect(await client.callTool({ name: "old__echo", arguments: { message: "sse" } })).toMatchObject({
      content: [{ text: "Echo: sse" }],
    });
    await gh.waitForLog("trying the 2024-11-05 HTTP+SSE transport");
    await client.close();
  });

  test("a backend that is down is left out of lists, and a call to it names it", async () => {
    const client = await connect(`${gh.url}/mcp`);
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names.some((n) => n.startsWith("down__"))).toBe(false);
    expect(names).toContain("web__echo");
    await expect(client.callTool({ name: "down__anything", arguments: {} })).rejects.toThrow(/backend "down"/);
    await gh.waitForLog(/tools\/list failed on a backend.*backend=down/);
    await client.close();
  });

  test("a call slower than the backend's timeout fails naming it; the backend keeps serving", async () => {
    const client = await connect(`${gh.url}/mcp`);
    await expect(client.callTool({ name: "web__slow", arguments: { ms: 3000 } })).rejects.toThrow(
      'backend "web" did not answer tools/call within 1 s',
    );
    expect(await client.callTool({ name: "web__echo", arguments: { message: "still here" } })).toMatchObject({
      content: [{ text: "echo: still here" }],
    });
    await client.close();
  });
});
