// Redis stopped under a running Gatehouse (SIGSTOP: it holds its connections and answers nothing), then shut down
// (SIGTERM) and restarted on the same data: every request gets its 503 within the bound instead of hanging, /health
// says degraded, the outage is one log line, nothing crashes — and once Redis is back everything works again without
// a restart, with every acknowledged record there and nothing the failed requests tried (the commands a stopped Redis
// ran late changed nothing: the refresh token that got a 503 still works even without a reuse grace).

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type HttpBackend, startHttpBackend } from "../fixtures/http-backend.ts";
import { type Running, startGatehouse } from "../helpers/gatehouse-process.ts";
import { freePort } from "../helpers/net.ts";
import { REDIRECT, register, remote, tokenRequest, tokens } from "../helpers/oauth-flow.ts";
import { BUN, MAIN, ROOT } from "../helpers/paths.ts";
import { type Redis, redisAvailable, startRedis } from "../helpers/redis.ts";
import { writeConfig } from "../helpers/temp.ts";

const enabled = redisAvailable();
let backend: HttpBackend;
let redis: Redis;
let g: Running;
let config: string;

beforeAll(async () => {
  if (!enabled) return;
  backend = await startHttpBackend();
  redis = await startRedis();
  const port = await freePort();
  config = writeConfig({
    mcpServers: { web: { url: backend.url } },
    serverAuth: {
      providers: ["oauth_as"],
      oauthAs: {
        issuerUrl: `http://127.0.0.1:${port}`,
        trustedSourceCidrs: ["127.0.0.1/32"],
        refreshReuseGraceSeconds: 0,
      },
    },
    state: { redis: { url: redis.url, timeout: "1s" } },
  });
  g = await startGatehouse({ config, port });
}, 60_000);

afterAll(async () => {
  await g?.stop();
  await backend?.stop();
  await redis?.kill();
});

const timed = async <T>(p: Promise<T>): Promise<{ value: T; ms: number }> => {
  const start = Date.now();
  const value = await p;
  return { value, ms: Date.now() - start };
};

const initialize = (token: string) =>
  fetch(`${g.url}/mcp`, {
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
  });

const clientIds = () => {
  const p = Bun.spawnSync([BUN, MAIN, "clients", "list", "--json", "--config", config], { cwd: ROOT });
  if (p.exitCode !== 0) throw new Error(p.stderr.toString());
  return (JSON.parse(p.stdout.toString()) as { client_id: string }[]).map((c) => c.client_id).sort();
};

describe.skipIf(!enabled)("Redis stopped, then restarted, under a running Gatehouse", () => {
  test("503 within the bound, degraded health, one log line; recovery by itself with nothing lost or half-done", async () => {
    const r = remote(g.url);
    const c = await register(r);
    const t = await tokens(r, c.client_id, `${g.url}/mcp`);
    expect((await initialize(t.access_token)).status).toBe(200);
    const before = clientIds();

    redis.pause();
    const [refresh, registration, mcp] = await Promise.all([
      timed(tokenRequest(r, { grant_type: "refresh_token", refresh_token: t.refresh_token, client_id: c.client_id })),
      timed(
        r.request("/register", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ redirect_uris: [REDIRECT], token_endpoint_auth_method: "none" }),
        }),
      ),
      timed(initialize(t.access_token)),
    ]);
    for (const x of [refresh, registration, mcp]) {
      expect(x.value.status).toBe(503);
      expect(x.value.headers.get("retry-after")).toMatch(/^\d+$/);
      expect(x.ms).toBeLessThan(2500);
    }
    expect(((await refresh.value.json()) as { error: string }).error).toBe("temporarily_unavailable");
    expect(((await registration.value.json()) as { error: string }).error).toBe("temporarily_unavailable");
    expect(((await mcp.value.json()) as { error: { code: number } }).error.code).toBe(-32603);
    const health = await timed(fetch(`${g.url}/health`));
    expect(health.ms).toBeLessThan(1000);
    expect(((await health.value.json()) as { status: string }).status).toBe("degraded");

    // SIGTERM: it resumes, runs what it was sent while stopped (every write too late: a no-op), and exits.
    await redis.stop();
    const down = await timed(
      tokenRequest(r, { grant_type: "refresh_token", refresh_token: t.refresh_token, client_id: c.client_id }),
    );
    expect(down.value.status).toBe(503);
    expect(down.ms).toBeLessThan(2500);
    expect(g.proc.exitCode).toBeNull();

    await redis.start();
    const deadline = Date.now() + 15_000;
    let again: Response;
    for (;;) {
      again = await tokenRequest(r, {
        grant_type: "refresh_token",
        refresh_token: t.refresh_token,
        client_id: c.client_id,
      });
      if (again.status !== 503 || Date.now() > deadline) break;
      await Bun.sleep(100);
    }
    // The token that got 503s was never rotated: it works now, though no reuse grace is allowed.
    expect(again.status).toBe(200);
    const next = (await again.json()) as { access_token: string };
    expect((await initialize(next.access_token)).status).toBe(200);
    expect((await initialize(t.access_token)).status).toBe(200); // issued before the outage
    // The registration that failed was not made; the ones acknowledged before are there.
    expect(clientIds()).toEqual(before);
    expect((await register(r)).client_id).toBeString();
    expect(((await (await fetch(`${g.url}/health`)).json()) as { status: string }).status).toBe("ok");

    await g.waitForLog("working again");
    const errors = g
      .logs()
      .split("\n")
      .filter((l) => l.includes("ERROR"));
    expect(errors.length).toBe(1);
    expect(errors[0]).toContain("state store redis 127.0.0.1");
    expect(g.logs()).not.toMatch(/\n\s+at /);
  }, 60_000);
});
