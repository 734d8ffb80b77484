// Reloading the configuration of a running Gatehouse without dropping anyone: an SDK client keeps calling tools and
// holds a progress stream while the configuration changes three times — a backend added (SIGHUP), a rule changed
// (`gatehouse reload`), a broken edit (refused: nothing changes) — and then once more by itself (gateway.watchConfig).

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { ToolListChangedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { type HttpBackend, startHttpBackend } from "../fixtures/http-backend.ts";
import { connect } from "../helpers/client.ts";
import { type Running, startGatehouse } from "../helpers/gatehouse-process.ts";
import { BUN, everythingStdio, MAIN, ROOT } from "../helpers/paths.ts";
import { tempDir } from "../helpers/temp.ts";

let backend: HttpBackend;
let gh: Running;
let dir: string;
let configPath: string;
let audit: string;

const base = () => ({
  mcpServers: { web: { url: backend.url } } as Record<string, unknown>,
  serverAuth: {
    providers: ["oauth_as", "bearer"],
    bearer: { tokens: { "alice-token": { subject: "alice", roles: ["staff"] } } },
    oauthAs: { issuerUrl: "http://127.0.0.1:1", trustedSourceCidrs: ["127.0.0.1/32"] },
    acl: { default: "deny", roles: { staff: [{ server: "*", access: "*" }] } } as Record<string, unknown>,
  },
  audit: { enabled: true, output: "file", path: "" },
  gateway: {} as Record<string, unknown>,
});

function write(config: ReturnType<typeof base> | string) {
  writeFileSync(configPath, typeof config === "string" ? config : JSON.stringify(config, null, 2));
}

const cli = (args: string[]) => Bun.spawnSync([BUN, MAIN, ...args], { cwd: ROOT, env: { ...process.env } });

async function reloads(n: number): Promise<void> {
  const re = /configuration reloaded|configuration reload refused/g;
  const deadline = Date.now() + 10_000;
  while ((gh.logs().match(re) ?? []).length < n) {
    if (Date.now() > deadline) throw new Error(`no reload #${n} in the log:\n${gh.logs().slice(-3000)}`);
    await Bun.sleep(20);
  }
}

beforeAll(async () => {
  backend = await startHttpBackend();
  dir = tempDir();
  configPath = join(dir, "servers.json");
  audit = join(dir, "audit.jsonl");
  const c = base();
  c.audit.path = audit;
  write(c);
  gh = await startGatehouse({ config: configPath });
}, 60_000);

afterAll(async () => {
  await gh?.stop();
  await backend?.stop();
});

describe("reload without dropping anyone", () => {
  test("a backend added, a rule changed, a broken edit refused — under load, the stream not cut", async () => {
    const client: Client = await connect(`${gh.url}/mcp`, { token: "alice-token" });
    let listChanged = 0;
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      listChanged++;
    });
    expect((await client.listTools()).tools.map((t) => t.name)).toContain("web__echo");

    // A long call with progress runs through every reload.
    const progress: number[] = [];
    const long = client.callTool({ name: "web__progress", arguments: { steps: 120 } }, undefined, {
      onprogress: (p) => progress.push(p.progress),
      timeout: 60_000,
    });
    // And calls keep coming: none may fail that should not.
    let stop = false;
    const failures: string[] = [];
    let calls = 0;
    const load = (async () => {
      while (!stop) {
        try {
          await client.callTool({ name: "web__add", arguments: { a: 1, b: 2 } });
          calls++;
        } catch (e) {
          failures.push((e as Error).message);
        }
      }
    })();

    // 1. A backend added, by SIGHUP.
    const one = base();
    one.audit.path = audit;
    one.mcpServers.local = everythingStdio();
    write(one);
    gh.proc.kill("SIGHUP");
    await reloads(1);
    expect(gh.logs()).toContain("added=local");
    await Bun.sleep(200);
    expect(listChanged).toBeGreaterThanOrEqual(1);
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names).toContain("local__echo");
    expect(names).toContain("web__add");
    expect(await client.callTool({ name: "local__echo", arguments: { message: "new" } })).toMatchObject({
      content: [{ text: "Echo: new" }],
    });

    // 2. A rule changed, through `gatehouse reload`.
    const two = structuredClone(one);
    two.serverAuth.acl = {
      default: "deny",
      roles: {
        staff: [
          { server: "*", access: "*" },
          { server: "local", access: "*", tools: ["echo"], deny: true },
        ],
      },
    };
    write(two);
    const reloaded = cli(["reload", "--config", configPath]);
    expect(reloaded.stderr.toString()).toBe("");
    expect(reloaded.exitCode).toBe(0);
    expect(reloaded.stdout.toString()).toContain("reloaded");
    await reloads(2);
    await expect(client.callTool({ name: "local__echo", arguments: { message: "x" } })).rejects.toThrow(
      "Unknown tool: local__echo",
    );
    expect((await client.listTools()).tools.map((t) => t.name)).not.toContain("local__echo");

    // 3. A broken edit: refused, everything as it was.
    write(`${readFileSync(configPath, "utf8").replace('"mcpServers"', '"mcpServerz"')}`);
    const refused = cli(["reload", "--config", configPath]);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr.toString()).toContain("the new configuration was refused");
    expect(refused.stderr.toString()).toContain("mcpServerz");
    gh.proc.kill("SIGHUP"); // the same by signal: logged, refused
    await reloads(4);
    expect(gh.logs()).toContain("configuration reload refused; the running configuration stays");
    expect((await client.listTools()).tools.map((t) => t.name)).toContain("local__get-sum");
    expect((await client.listTools()).tools.map((t) => t.name)).not.toContain("local__echo");

    stop = true;
    await load;
    expect(await long).toMatchObject({ content: [{ text: "done 120" }] });
    expect(progress.at(-1)).toBe(120);
    expect(failures).toEqual([]);
    expect(calls).toBeGreaterThan(10);
    expect(gh.proc.exitCode).toBeNull(); // SIGHUP never kills it
    await client.close();

    const records = readFileSync(audit, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records.filter((r) => r.event === "config_reloaded").length).toBe(2);
    expect(records.filter((r) => r.event === "config_reload_refused").length).toBeGreaterThanOrEqual(2);
  }, 90_000);

  test("gateway.watchConfig: a change of the file reloads it by itself", async () => {
    const on = base();
    on.audit.path = audit;
    on.gateway = { watchConfig: true };
    write(on);
    const before = (gh.logs().match(/configuration reloaded/g) ?? []).length;
    expect(cli(["reload", "--config", configPath]).exitCode).toBe(0);
    await gh.waitForLog("watching the configuration file");
    const next = structuredClone(on);
    next.mcpServers.local = everythingStdio();
    write(next);
    const deadline = Date.now() + 10_000;
    while ((gh.logs().match(/configuration reloaded/g) ?? []).length < before + 2) {
      if (Date.now() > deadline) throw new Error(`no reload after the file changed:\n${gh.logs().slice(-2000)}`);
      await Bun.sleep(50);
    }
    const client = await connect(`${gh.url}/mcp`, { token: "alice-token" });
    expect((await client.listTools()).tools.map((t) => t.name)).toContain("local__echo");
    await client.close();
  }, 60_000);
});
