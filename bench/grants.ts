// Refresh-token grants per second at the token endpoint, with 1,000 and then 100,000 live refresh tokens in the
// state file: the cost of a grant (rotation journaled and fsync'd, a new ES256 access token) must not grow with
// the number of tokens stored. Target: ≥ 1,000 grants/s with 100,000 stored.
// Usage: bun bench/grants.ts [--duration 10s] [--concurrency 32] [--binary true] [--gatehouse-cpu 1 --client-cpu 0]

import { createHash, randomBytes } from "node:crypto";
import { statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  BINARY,
  BUN,
  ensureBinary,
  flags,
  freePort,
  HAS_TASKSET,
  MAIN,
  pinSelf,
  rss,
  start,
  stopAll,
  table,
  tempDir,
  verdict,
} from "./lib.ts";

const flag = flags();
const durationMs = (Number.parseFloat(flag("duration", "10s")) || 10) * 1000;
const warmupMs = (Number.parseFloat(flag("warmup", "2s")) || 2) * 1000;
const concurrency = Number(flag("concurrency", "32"));
const binary = flag("binary", "false") === "true";
const gatehouseCpu = flag("gatehouse-cpu", "1");
const clientCpu = flag("client-cpu", "0");
const sizes = flag("stored", "1000,100000").split(",").map(Number);

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");
const CLIENT = "bench-client";

/** A state file holding `stored` live grants, each with one refresh token; returns the tokens' clear text. */
function writeState(path: string, stored: number): string[] {
  const now = Date.now();
  const grants: Record<string, unknown> = {};
  const refresh: Record<string, unknown> = {};
  const tokens: string[] = [];
  for (let i = 0; i < stored; i++) {
    const token = randomBytes(32).toString("base64url");
    tokens.push(token);
    const id = `g${i}`;
    grants[id] = {
      id,
      client_id: CLIENT,
      subject: `user${i}`,
      groups: [],
      roles: [],
      scopes: ["mcp"],
      resource: "",
      created_at: now,
      expires_at: now + 86_400_000,
    };
    refresh[sha256(token)] = { grant_id: id, created_at: now, expires_at: now + 86_400_000 };
  }
  const clients = {
    [CLIENT]: {
      client_id: CLIENT,
      client_id_issued_at: 0,
      redirect_uris: ["http://127.0.0.1/cb"],
      token_endpoint_auth_method: "none",
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
    },
  };
  writeFileSync(
    path,
    JSON.stringify({
      version: 1,
      clients,
      consents: {},
      grants,
      refresh_tokens: refresh,
      keys: [],
      revoked_access_tokens: {},
    }),
  );
  return tokens;
}

async function run(stored: number) {
  const dir = tempDir();
  const statePath = join(dir, "auth_server.json");
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const tokens = writeState(statePath, stored);
  // The grants' resource must be the one the server serves.
  const text = (await Bun.file(statePath).text()).replaceAll('"resource":""', `"resource":"${issuer}/mcp"`);
  writeFileSync(statePath, text);
  const config = join(dir, "servers.json");
  writeFileSync(
    config,
    JSON.stringify({
      mcpServers: { none: { url: "http://127.0.0.1:1/mcp" } },
      serverAuth: { providers: ["oauth_as"], oauthAs: { issuerUrl: issuer, trustedSourceCidrs: ["127.0.0.1/32"] } },
      audit: { enabled: false },
    }),
  );
  const cmd = binary ? [BINARY] : [BUN, MAIN];
  const gh = await start("gatehouse", [...cmd, "serve", "--config", config, "--bind", `127.0.0.1:${port}`], {
    cpus: gatehouseCpu,
    env: { LOG_LEVEL: "warn" },
    ready: () =>
      fetch(`${issuer}/health`).then(
        (r) => r.ok,
        () => false,
      ),
  });

  const latencies: number[] = [];
  let errors = 0;
  let measuring = false;
  let stop = false;
  const chains = tokens.slice(0, concurrency);
  const worker = async (i: number) => {
    let token = chains[i] as string;
    while (!stop) {
      const t0 = performance.now();
      const res = await fetch(`${issuer}/token`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: `grant_type=refresh_token&client_id=${CLIENT}&refresh_token=${token}`,
      });
      const body = (await res.json()) as { refresh_token?: string };
      if (res.status !== 200 || !body.refresh_token) {
        errors++;
        return;
      }
      token = body.refresh_token;
      if (measuring) latencies.push(performance.now() - t0);
    }
  };
  const workers = Array.from({ length: concurrency }, (_, i) => worker(i));
  await Bun.sleep(warmupMs);
  measuring = true;
  const cpuStart = performance.now();
  await Bun.sleep(durationMs);
  measuring = false;
  const seconds = (performance.now() - cpuStart) / 1000;
  stop = true;
  await Promise.all(workers);
  const memory = await rss(gh.pid);
  await gh.stop();
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => (latencies[Math.floor((latencies.length - 1) * p)] ?? Number.NaN).toFixed(2);
  return {
    stored,
    rate: latencies.length / seconds,
    p50: pct(0.5),
    p99: pct(0.99),
    errors,
    rss: memory.rss,
    stateMb: statSync(statePath).size / 1e6,
  };
}

pinSelf(clientCpu);
if (binary) ensureBinary();
console.log(
  `refresh grants: ${concurrency} concurrent clients for ${durationMs / 1000} s after ${warmupMs / 1000} s warm-up; ` +
    `Gatehouse (${binary ? "dist/gatehouse" : "bun src/main.ts"}) ${HAS_TASKSET ? `pinned to CPU ${gatehouseCpu}, the client to CPU ${clientCpu}` : "unpinned (no taskset)"}`,
);
const results = [];
try {
  for (const n of sizes) results.push(await run(n));
} finally {
  await stopAll();
}
table(
  ["refresh tokens stored", "grants/s", "p50 ms", "p99 ms", "errors", "RSS MB", "state file MB", "target ≥ 1000/s"],
  results.map((r) => [
    r.stored,
    r.rate.toFixed(0),
    r.p50,
    r.p99,
    r.errors,
    r.rss.toFixed(1),
    r.stateMb.toFixed(1),
    verdict(r.rate >= 1000),
  ]),
);
if (results.length >= 2) {
  const first = results[0] as (typeof results)[number];
  const last = results.at(-1) as (typeof results)[number];
  console.log(
    `\ngrants/s with ${last.stored} stored vs ${first.stored} stored: ${(last.rate / first.rate).toFixed(2)}× (1.00 = no growth)`,
  );
}
