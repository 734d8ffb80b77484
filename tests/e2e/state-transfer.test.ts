// `gatehouse state export` / `import` with real processes: a home server's JSON file moved into Redis (clients,
// grants, refresh tokens and signing keys: tokens issued before keep working), and back into a new file; an import
// into a store that already holds state is refused, changing nothing.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { type HttpBackend, startHttpBackend } from "../fixtures/http-backend.ts";
import { startGatehouse } from "../helpers/gatehouse-process.ts";
import { freePort } from "../helpers/net.ts";
import { register, remote, tokenRequest, tokens } from "../helpers/oauth-flow.ts";
import { BUN, MAIN, ROOT } from "../helpers/paths.ts";
import { type Redis, redisAvailable, startRedis } from "../helpers/redis.ts";
import { writeConfig } from "../helpers/temp.ts";

const enabled = redisAvailable();
let backend: HttpBackend;
let redis: Redis;

beforeAll(async () => {
  if (!enabled) return;
  backend = await startHttpBackend();
  redis = await startRedis();
}, 30_000);
afterAll(async () => {
  await backend?.stop();
  await redis?.kill();
});

function cli(args: string[], stdin?: string) {
  const p = Bun.spawnSync([BUN, MAIN, ...args], {
    cwd: ROOT,
    stdin: stdin === undefined ? "ignore" : new TextEncoder().encode(stdin),
    timeout: 20_000,
  });
  return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
}

const initialize = async (base: string, token: string) =>
  (
    await fetch(`${base}/mcp`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${token}`,
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
      },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "initialize",
        params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "t", version: "1" } },
      }),
    })
  ).status;

describe.skipIf(!enabled)("state export and import", () => {
  test("file → Redis → file: clients, grants, refresh tokens and keys move; nothing is overwritten", async () => {
    const port = await freePort();
    const oauthAs = { issuerUrl: `http://127.0.0.1:${port}`, trustedSourceCidrs: ["127.0.0.1/32"] };
    const server = (extra: Record<string, unknown> = {}) =>
      writeConfig({
        mcpServers: { web: { url: backend.url } },
        serverAuth: { providers: ["oauth_as"], oauthAs },
        ...extra,
      });
    const fileConfig = server();
    const redisConfig = server({ state: { redis: { url: redis.url, keyPrefix: "moved:" } } });

    // A home server on its JSON file.
    let g = await startGatehouse({ config: fileConfig, port });
    const client = await register(remote(g.url));
    const issued = await tokens(remote(g.url), client.client_id, `${g.url}/mcp`);
    // export is safe while the server runs
    const exported = cli(["state", "export", "--config", fileConfig]);
    expect(exported.code).toBe(0);
    expect(exported.err).toContain("1 clients");
    await g.stop();
    const dump = JSON.parse(exported.out) as { clients: Record<string, unknown>; keys: unknown[] };
    expect(Object.keys(dump.clients)).toEqual([client.client_id]);
    expect(exported.out).not.toContain(issued.refresh_token); // hashes only

    // Into Redis: the same tokens keep working, on a server that now shares its state.
    const imported = cli(["state", "import", "--config", redisConfig], exported.out);
    expect(imported.code).toBe(0);
    expect(imported.err).toContain("into redis 127.0.0.1");
    g = await startGatehouse({ config: redisConfig, port });
    expect(await initialize(g.url, issued.access_token)).toBe(200);
    const refreshed = await tokenRequest(remote(g.url), {
      grant_type: "refresh_token",
      refresh_token: issued.refresh_token,
      client_id: client.client_id,
    });
    expect(refreshed.status).toBe(200);
    const latest = (await refreshed.json()) as { refresh_token: string; access_token: string };
    // a second import would overwrite: refused
    const again = cli(["state", "import", "--config", redisConfig], exported.out);
    expect(again.code).toBe(1);
    expect(again.err).toContain("already holds");
    const back = cli(["state", "export", "--config", redisConfig]);
    expect(back.code).toBe(0);
    await g.stop();

    // And back into a new file.
    const fresh = server();
    expect(existsSync(join(dirname(fresh), "auth_server.json"))).toBe(false);
    expect(cli(["state", "import", "--config", fresh], back.out).code).toBe(0);
    g = await startGatehouse({ config: fresh, port });
    expect(await initialize(g.url, latest.access_token)).toBe(200);
    expect(
      (
        await tokenRequest(remote(g.url), {
          grant_type: "refresh_token",
          refresh_token: latest.refresh_token,
          client_id: client.client_id,
        })
      ).status,
    ).toBe(200);
    await g.stop();
    // into the old, non-empty file: refused, the file untouched
    const statePath = join(dirname(fileConfig), "auth_server.json");
    const beforeText = readFileSync(statePath, "utf8");
    const refused = cli(["state", "import", "--config", fileConfig], back.out);
    expect(refused.code).toBe(1);
    expect(refused.err).toContain("already holds");
    expect(readFileSync(statePath, "utf8")).toBe(beforeText);
  }, 60_000);

  test("an import that is not a Gatehouse state is refused with the reason", () => {
    const config = writeConfig({
      mcpServers: { web: { url: "http://127.0.0.1:1/mcp" } },
      serverAuth: {
        providers: ["oauth_as"],
        oauthAs: { issuerUrl: "https://gh.example", trustedSourceCidrs: ["127.0.0.1/32"] },
      },
    });
    const r = cli(["state", "import", "--config", config], '{"clients": []}');
    expect(r.code).toBe(1);
    expect(r.err).toContain('not a Gatehouse state ("clients" is not an object)');
    expect(existsSync(join(dirname(config), "auth_server.json"))).toBe(false);
  });
});
