// End to end, with real processes: Gatehouse started from source (`bun src/main.ts serve`) in front of
// server-everything over stdio and over Streamable HTTP, driven by the official MCP SDK client.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { CreateMessageRequestSchema, ElicitRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import { connect } from "../helpers/client.ts";
import { type Running, startGatehouse } from "../helpers/gatehouse-process.ts";
import { requestFrom } from "../helpers/net.ts";
import { everythingStdio } from "../helpers/paths.ts";
import { type BackendProcess, childPids, pidAlive, startEverything } from "../helpers/processes.ts";
import { writeConfig } from "../helpers/temp.ts";

let gh: Running;
let remote: BackendProcess;
let mcpUrl: string;

beforeAll(async () => {
  remote = await startEverything("streamableHttp");
  const config = writeConfig({
    mcpServers: { local: everythingStdio(), remote: { url: remote.url } },
    serverAuth: {
      providers: ["bearer", "forwarded"],
      bearer: {
        tokens: {
          "tok-admin": { subject: "ada", roles: ["admin"] },
          "tok-reader": { subject: "rex", roles: ["reader"] },
        },
      },
      forwarded: { trustedSourceCidrs: ["127.0.0.1/32"] },
      acl: {
        default: "deny",
        roles: {
          admin: [{ server: "*", access: "*" }],
          reader: [{ server: "remote", access: "read" }],
        },
      },
    },
  });
  gh = await startGatehouse({ config });
  mcpUrl = `${gh.url}/mcp`;
}, 60_000);

afterAll(async () => {
  await gh?.stop();
  await remote?.stop();
});

describe("the SDK client through Gatehouse", () => {
  let client: Client;
  beforeAll(async () => {
    client = await connect(mcpUrl, { token: "tok-admin", capabilities: { sampling: {}, elicitation: {} } });
  }, 30_000);
  afterAll(async () => {
    await client?.close();
  });

  test("lists the tools of both backends, prefixed", async () => {
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names).toContain("local__echo");
    expect(names).toContain("remote__echo");
    expect(names).toContain("local__trigger-long-running-operation");
  });

  test("calls tools on each backend", async () => {
    expect(await client.callTool({ name: "local__get-sum", arguments: { a: 2, b: 3 } })).toMatchObject({
      content: [{ type: "text", text: expect.stringContaining("5") }],
    });
    expect(await client.callTool({ name: "remote__echo", arguments: { message: "over http" } })).toMatchObject({
      content: [{ type: "text", text: "Echo: over http" }],
    });
  });

  test("progress notifications of a long-running tool arrive while it runs", async () => {
    for (const backend of ["local", "remote"]) {
      const events: string[] = [];
      const result = client.callTool(
        { name: `${backend}__trigger-long-running-operation`, arguments: { duration: 2, steps: 4 } },
        undefined,
        { onprogress: (p) => events.push(`progress ${p.progress}/${p.total}`) },
      );
      void result.then(() => events.push("result"));
      await result;
      expect(events).toEqual(["progress 1/4", "progress 2/4", "progress 3/4", "progress 4/4", "result"]);
    }
  });

  test("a sampling request from a backend reaches this client and its answer goes back", async () => {
    client.setRequestHandler(CreateMessageRequestSchema, async (req) => ({
      model: "test-model",
      role: "assistant",
      content: { type: "text", text: `sampled: ${JSON.stringify(req.params.messages[0]?.content)}` },
    }));
    for (const backend of ["local", "remote"]) {
      const r = await client.callTool({
        name: `${backend}__trigger-sampling-request`,
        arguments: { prompt: "hi", maxTokens: 5 },
      });
      expect(JSON.stringify(r)).toContain("test-model");
    }
  });

  test("an elicitation request from a backend reaches this client and its answer goes back", async () => {
    client.setRequestHandler(ElicitRequestSchema, async () => ({
      action: "accept",
      content: {
        name: "Ada",
        check: true,
        color: "blue",
        email: "ada@example.com",
        homepage: "https://example.com",
        birthdate: "1815-12-10",
        integer: 3,
        number: 3.5,
        untitledSingleSelectEnum: "option1",
        titledSingleSelectEnum: "value1",
        legacyTitledEnum: "opt1",
        untitledMultipleSelectEnum: ["option1"],
        titledMultipleSelectEnum: ["value1"],
      },
    }));
    const r = await client.callTool({ name: "local__trigger-elicitation-request", arguments: {} });
    expect(JSON.stringify(r)).toContain("accept");
  });

  test("resources are readable through their prefixed URI", async () => {
    const { resources } = await client.listResources();
    const first = resources.find((r) => r.uri.startsWith("local+"));
    expect(first).toBeDefined();
    const read = await client.readResource({ uri: first!.uri });
    expect(read.contents[0]?.uri).toBe(first!.uri);
  });
});

describe("identity and access", () => {
  test("two tokens, two views: the reader sees only read-only tools of one backend", async () => {
    const reader = await connect(mcpUrl, { token: "tok-reader" });
    const names = (await reader.listTools()).tools.map((t) => t.name);
    expect(names.length).toBeGreaterThan(0);
    expect(names.every((n) => n.startsWith("remote__"))).toBe(true);
    expect(names).toContain("remote__get-sum"); // readOnlyHint: true in server-everything
    expect(names).not.toContain("remote__toggle-simulated-logging"); // no readOnlyHint: counts as write
    await expect(reader.callTool({ name: "local__echo", arguments: { message: "x" } })).rejects.toThrow(
      "Unknown tool: local__echo",
    );
    await reader.close();
  });

  test("an unknown token gets 401 and the client cannot connect", async () => {
    await expect(connect(mcpUrl, { token: "wrong" })).rejects.toThrow();
    const res = await fetch(mcpUrl, {
      method: "POST",
      headers: { authorization: "Bearer wrong", "content-type": "application/json" },
      body: "{}",
    });
    expect(res.status).toBe(401);
  });

  test("forwarded headers count from a trusted source and are ignored from 127.0.0.2", async () => {
    const init = JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "raw", version: "1" } },
    });
    const headers = {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      "x-forwarded-user": "ada",
      "x-forwarded-groups": "admin",
    };
    const trusted = await requestFrom("127.0.0.1", mcpUrl, { method: "POST", headers, body: init });
    expect(trusted.status).toBe(200);
    const forged = await requestFrom("127.0.0.2", mcpUrl, { method: "POST", headers, body: init });
    expect(forged.status).toBe(401);
    await gh.waitForLog("peer 127.0.0.2");
  });
});

describe("backend failures", () => {
  test("killing the stdio backend mid-call: that call fails naming the backend, the next call succeeds", async () => {
    const client = await connect(mcpUrl, { token: "tok-admin" });
    await client.callTool({ name: "local__echo", arguments: { message: "warm up" } });
    const before = childPids(gh.proc.pid);
    expect(before.length).toBeGreaterThan(0);
    const pending = client.callTool({
      name: "local__trigger-long-running-operation",
      arguments: { duration: 5, steps: 5 },
    });
    await Bun.sleep(300);
    for (const pid of before) process.kill(pid, "SIGKILL");
    await expect(pending).rejects.toThrow(/backend "local"/);
    const again = await client.callTool({ name: "local__echo", arguments: { message: "back" } });
    expect(again).toMatchObject({ content: [{ text: "Echo: back" }] });
    // the other backend was never affected
    expect(await client.callTool({ name: "remote__echo", arguments: { message: "fine" } })).toMatchObject({
      content: [{ text: "Echo: fine" }],
    });
    await client.close();
  });
});

describe("the 2024-11-05 HTTP+SSE transport", () => {
  test("an old client lists and calls tools through /mcp/sse", async () => {
    const client = await connect(`${gh.url}/mcp/sse`, { token: "tok-admin", sse: true });
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names).toContain("local__echo");
    expect(await client.callTool({ name: "remote__echo", arguments: { message: "legacy" } })).toMatchObject({
      content: [{ text: "Echo: legacy" }],
    });
    await client.close();
  });
});

describe("shutdown", () => {
  test("SIGTERM: exit 0, every backend process gone", async () => {
    const config = writeConfig({ mcpServers: { a: everythingStdio(), b: everythingStdio() } });
    const g = await startGatehouse({ config });
    const client = await connect(`${g.url}/mcp`);
    await client.listTools(); // starts both backends
    const children = childPids(g.proc.pid);
    expect(children.length).toBeGreaterThanOrEqual(2);
    expect(await g.stop("SIGTERM")).toBe(0);
    await Bun.sleep(100);
    expect(children.filter(pidAlive)).toEqual([]);
    await g.waitForLog("stopped");
  });
});
