// The same gateway in other shapes: the compiled single binary (dist/gatehouse, built here), and the whole gateway
// under Deno (`deno run -A src/main.ts serve`: stdio and HTTP backends, the state file, the CLI, OAuth).

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { auth, UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { type HttpBackend, startHttpBackend } from "../fixtures/http-backend.ts";
import { connect } from "../helpers/client.ts";
import { type Running, startGatehouse } from "../helpers/gatehouse-process.ts";
import { freePort } from "../helpers/net.ts";
import { HeadlessOAuthProvider } from "../helpers/oauth-client.ts";
import { BINARY, DENO, ensureBinary, everythingStdio, MAIN, ROOT } from "../helpers/paths.ts";
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

describe("Deno: deno run -A src/main.ts", () => {
  let gh: Running;
  let port: number;
  let config: string;
  const PROXY = { "x-forwarded-user": "dana@example.com" };

  const denoCli = (args: string[], stdin?: string) =>
    Bun.spawnSync([DENO, "run", "-A", MAIN, ...args], {
      cwd: ROOT,
      env: { ...process.env, NO_COLOR: "1" },
      ...(stdin === undefined ? {} : { stdin: new TextEncoder().encode(stdin) }),
    });

  beforeAll(async () => {
    port = await freePort();
    config = writeConfig({
      mcpServers: { local: everythingStdio(), web: { url: backend.url } },
      serverAuth: {
        providers: ["oauth_as"],
        oauthAs: { issuerUrl: `http://127.0.0.1:${port}`, trustedSourceCidrs: ["127.0.0.1/32"] },
      },
    });
    gh = await startGatehouse({ config, port, deno: true });
  }, 60_000);
  afterAll(async () => {
    await gh?.stop();
  });

  test("the SDK client's OAuth flow, stdio and HTTP backends, progress, refresh; the state file survives a restart", async () => {
    expect(gh.logs()).toContain('runtime="Deno ');
    const mcpUrl = new URL(`${gh.url}/mcp`);
    const provider = new HeadlessOAuthProvider("http://127.0.0.1:33419/callback", { headers: PROXY });
    const first = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider });
    await expect(new Client({ name: "deno-test", version: "1" }).connect(first)).rejects.toThrow(UnauthorizedError);
    await first.finishAuth(provider.code() as string);
    const client = new Client({ name: "deno-test", version: "1" });
    await client.connect(new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider }));
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names).toContain("local__echo");
    expect(names).toContain("web__echo");
    expect(await client.callTool({ name: "local__echo", arguments: { message: "deno stdio" } })).toMatchObject({
      content: [{ text: "Echo: deno stdio" }],
    });
    const progress: number[] = [];
    await client.callTool({ name: "web__progress", arguments: { steps: 3 } }, undefined, {
      onprogress: (p) => progress.push(p.progress),
    });
    expect(progress).toEqual([1, 2, 3]);
    expect(await auth(provider, { serverUrl: mcpUrl })).toBe("AUTHORIZED");
    await client.close();

    // The CLI under Deno asks the running server through its admin socket.
    const listed = denoCli(["clients", "list", "--config", config]);
    expect(listed.exitCode).toBe(0);
    expect(listed.stdout.toString()).toContain(provider.clientInformation()?.client_id as string);

    // Stopped and started again under Deno: the grant, the client and the signing keys were on disk.
    expect(await gh.stop()).toBe(0);
    gh = await startGatehouse({ config, port, deno: true });
    const again = new Client({ name: "deno-test", version: "1" });
    await again.connect(new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider }));
    expect(await again.callTool({ name: "web__echo", arguments: { message: "after restart" } })).toMatchObject({
      content: [{ text: "echo: after restart" }],
    });
    await again.close();
  }, 90_000);

  test("what only Bun has is refused, naming it: local accounts, hash-password, state.redis", () => {
    const local = writeConfig({
      mcpServers: { web: { url: backend.url } },
      serverAuth: {
        providers: ["oauth_as"],
        oauthAs: {
          issuerUrl: "http://127.0.0.1:1",
          logins: [{ type: "local", users: { alice: { passwordHash: "$argon2id$v=19$m=65536,t=2,p=1$x$y" } } }],
        },
      },
    });
    const checked = denoCli(["check", "--config", local]);
    expect(checked.exitCode).toBe(1);
    expect(checked.stderr.toString()).toContain("Bun.password");
    const hashed = denoCli(["hash-password", "secret"]);
    expect(hashed.exitCode).toBe(1);
    expect(hashed.stderr.toString()).toContain("argon2id (Bun.password)");
    const redis = writeConfig({
      mcpServers: { web: { url: backend.url } },
      serverAuth: {
        providers: ["oauth_as"],
        oauthAs: { issuerUrl: "http://127.0.0.1:1", trustedSourceCidrs: ["127.0.0.1/32"] },
      },
      state: { redis: { url: "redis://127.0.0.1:1" } },
    });
    const served = denoCli(["serve", "--config", redis, "--bind", "127.0.0.1:0"]);
    expect(served.exitCode).toBe(1);
    expect(served.stderr.toString()).toContain("Bun's built-in RedisClient");
    // Bun-independent commands work.
    const token = denoCli(["hash-token", "abc"]);
    expect(token.stdout.toString()).toContain("sha256:ba7816bf");
  }, 60_000);
});
