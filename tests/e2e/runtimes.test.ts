// The same gateway in other shapes: the compiled single binary (dist/gatehouse, built here), and
// createApp(...).fetch served by Deno.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type HttpBackend, startHttpBackend } from "../fixtures/http-backend.ts";
import { connect } from "../helpers/client.ts";
import { type Running, startGatehouse } from "../helpers/gatehouse-process.ts";
import { BINARY, ensureBinary, everythingStdio, ROOT } from "../helpers/paths.ts";
import { writeConfig } from "../helpers/temp.ts";

let backend: HttpBackend;
beforeAll(async () => {
  backend = await startHttpBackend();
}, 30_000);
afterAll(async () => {
  await backend?.stop();
});

describe("the compiled binary", () => {
  let gh: Running;
  beforeAll(async () => {
    await ensureBinary();
    const config = writeConfig({
      mcpServers: { local: everythingStdio(), web: { url: backend.url } },
      serverAuth: { providers: ["bearer"], bearer: { tokens: { "bin-token": "binary-user" } } },
    });
    gh = await startGatehouse({ config, binary: true });
  }, 120_000);
  afterAll(async () => {
    await gh?.stop();
  });

  test("--version prints the version from package.json", async () => {
    const pkg = (await Bun.file(`${ROOT}/package.json`).json()) as { version: string };
    const out = Bun.spawnSync([BINARY, "--version"]);
    expect(out.stdout.toString().trim()).toBe(pkg.version);
  });

  test("the SDK client lists and calls tools through it, with progress", async () => {
    const client = await connect(`${gh.url}/mcp`, { token: "bin-token" });
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names).toContain("local__echo");
    expect(names).toContain("web__echo");
    expect(await client.callTool({ name: "web__echo", arguments: { message: "compiled" } })).toMatchObject({
      content: [{ text: "echo: compiled" }],
    });
    const progress: number[] = [];
    await client.callTool({ name: "web__progress", arguments: { steps: 3 } }, undefined, {
      onprogress: (p) => progress.push(p.progress),
    });
    expect(progress).toEqual([1, 2, 3]);
    await client.close();
  });

  test("SIGINT stops it with exit code 0", async () => {
    const config = writeConfig({ mcpServers: { web: { url: backend.url } } });
    const g = await startGatehouse({ config, binary: true });
    expect(await g.stop("SIGINT")).toBe(0);
  });
});

describe("Deno", () => {
  test("serves createApp(...).fetch unchanged; the SDK client lists tools through it", async () => {
    const deno = Bun.spawn(
      [`${ROOT}/node_modules/.bin/deno`, "run", "-A", "tests/fixtures/deno-serve.ts", backend.url, "deno-token"],
      {
        cwd: ROOT,
        stdout: "pipe",
        stderr: "pipe",
        env: { ...process.env, NO_COLOR: "1" },
      },
    );
    try {
      let out = "";
      const reader = deno.stdout.getReader();
      const deadline = Date.now() + 30_000;
      while (!/listening (\d+)/.test(out)) {
        const { value, done } = await reader.read();
        if (done || Date.now() > deadline)
          throw new Error(`deno did not start: ${out}${await new Response(deno.stderr).text()}`);
        out += new TextDecoder().decode(value);
      }
      const port = /listening (\d+)/.exec(out)?.[1];
      const client = await connect(`http://127.0.0.1:${port}/mcp`, { token: "deno-token" });
      const names = (await client.listTools()).tools.map((t) => t.name);
      expect(names).toContain("remote__echo");
      expect(await client.callTool({ name: "remote__add", arguments: { a: 1, b: 2 } })).toMatchObject({
        content: [{ text: "3" }],
      });
      await client.close();
      const unauthorized = await fetch(`http://127.0.0.1:${port}/mcp`, { method: "POST", body: "{}" });
      expect(unauthorized.status).toBe(401);
    } finally {
      deno.kill("SIGKILL");
      await deno.exited;
    }
  }, 60_000);
});
