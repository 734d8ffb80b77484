// The cost of shared state, in one run: refresh grants per second and the CPU one tools/call costs Gatehouse, with
// the state in the JSON file (the baseline) and in Redis — one replica, then two replicas on the same Redis.
// Targets: a refresh grant on Redis ≥ 2,000/s with 100,000 live refresh tokens stored; a tools/call with Redis-backed
// state ≤ 1.1× the CPU of one on the JSON file (its token already seen: no Redis round trip on the hot path).
// Redis runs as the README recommends for no acknowledged loss: appendonly yes, appendfsync always.
// Usage: bun bench/state.ts [--stored 100000] [--duration 10s] [--rounds 3] [--concurrency 32] [--binary true]

import { createHash, randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  accessToken,
  BINARY,
  BUN,
  callEcho,
  ensureBinary,
  errors,
  flags,
  freePort,
  HAS_TASKSET,
  MAIN,
  median,
  openSession,
  type Proc,
  pinSelf,
  runWrk,
  start,
  startFastBackend,
  stopAll,
  table,
  tempDir,
  verdict,
  type WrkResult,
} from "./lib.ts";

const flag = flags();
const opt = {
  stored: Number(flag("stored", "100000")),
  duration: flag("duration", "10s"),
  warmup: flag("warmup", "3s"),
  rounds: Number(flag("rounds", "3")),
  concurrency: Number(flag("concurrency", "32")),
  connections: Number(flag("connections", "32")),
  binary: flag("binary", "false") === "true",
  gatehouseCpu: flag("gatehouse-cpu", "1"),
  otherCpu: flag("other-cpu", "0"),
};
const seconds = (d: string) => (Number.parseFloat(d) || 10) * (d.endsWith("ms") ? 0.001 : 1);

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");
const CLIENT = "bench-client";
const REDIRECT = "http://127.0.0.1:1/cb";

// --- the parts ---------------------------------------------------------------------------------------------------

async function startRedis(): Promise<Proc & { url: string }> {
  const port = await freePort();
  const dir = tempDir();
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes"];
  args.push("--appendfsync", "always", "--dir", dir, "--daemonize", "no", "--logfile", "");
  const p = await start("redis", ["redis-server", ...args], { cpus: opt.otherCpu, ready: /Ready to accept/ });
  return Object.assign(p, { url: `redis://127.0.0.1:${port}/0` });
}

/** A state holding `stored` live grants of one client, each with one refresh token; returns the tokens. */
function snapshot(stored: number, resource: string): { json: string; tokens: string[] } {
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
      resource,
      created_at: now,
      expires_at: now + 86_400_000,
    };
    refresh[sha256(token)] = { grant_id: id, created_at: now, expires_at: now + 86_400_000 };
  }
  const clients = {
    [CLIENT]: {
      client_id: CLIENT,
      client_id_issued_at: 0,
      redirect_uris: [REDIRECT],
      token_endpoint_auth_method: "none",
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
    },
  };
  const s = { version: 1, clients, consents: {}, grants, refresh_tokens: refresh, keys: [], revoked_access_tokens: {} };
  return { json: JSON.stringify(s), tokens };
}

interface Setup {
  name: string;
  replicas: (Proc & { base: string })[];
  tokens: string[];
}

/**
 * One configuration (the JSON file, or Redis), its state seeded with opt.stored refresh tokens, served by `count`
 * replicas (all on the Gatehouse CPU: the same budget whatever the count).
 */
async function setup(name: string, backendUrl: string, redis: string | undefined, count: number): Promise<Setup> {
  const dir = tempDir();
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`; // the first replica's URL; the others serve the same issuer
  const config = join(dir, "servers.json");
  writeFileSync(
    config,
    JSON.stringify({
      mcpServers: { fast: { url: backendUrl, idle_timeout: "never" } },
      serverAuth: {
        providers: ["oauth_as"],
        oauthAs: { issuerUrl: issuer, trustedSourceCidrs: ["127.0.0.1/32"] },
      },
      audit: { enabled: false },
      ...(redis ? { state: { redis: { url: redis, keyPrefix: `${name.replace(/\W/g, "")}:` } } } : {}),
    }),
  );
  const seed = snapshot(opt.stored, `${issuer}/mcp`);
  const cmd = opt.binary ? [BINARY] : [BUN, MAIN];
  process.stdout.write(`${name}: seeding ${opt.stored} refresh tokens … `);
  const t0 = performance.now();
  if (redis) {
    const imported = Bun.spawnSync([...cmd, "state", "import", "--config", config], {
      stdin: new TextEncoder().encode(seed.json),
      stderr: "pipe",
    });
    if (imported.exitCode !== 0) throw new Error(`state import failed: ${imported.stderr.toString()}`);
  } else writeFileSync(join(dir, "auth_server.json"), seed.json);
  console.log(`${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const replicas: Setup["replicas"] = [];
  for (let i = 0; i < count; i++) {
    const p = i === 0 ? port : await freePort();
    const base = `http://127.0.0.1:${p}`;
    const proc = await start(`${name} #${i + 1}`, [...cmd, "serve", "--config", config, "--bind", base.slice(7)], {
      cpus: opt.gatehouseCpu,
      env: { LOG_LEVEL: "warn" },
      ready: () =>
        fetch(`${base}/health`).then(
          (r) => r.ok,
          () => false,
        ),
    });
    replicas.push(Object.assign(proc, { base }));
  }
  return { name, replicas, tokens: seed.tokens };
}

// --- refresh grants ----------------------------------------------------------------------------------------------

async function grants(s: Setup, chains: string[]): Promise<{ rate: number; p50: number; p99: number; bad: number }> {
  const latencies: number[] = [];
  let bad = 0;
  let measuring = false;
  let stop = false;
  const worker = async (i: number) => {
    const base = (s.replicas[i % s.replicas.length] as Setup["replicas"][number]).base;
    while (!stop) {
      const t0 = performance.now();
      const res = await fetch(`${base}/token`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: `grant_type=refresh_token&client_id=${CLIENT}&refresh_token=${chains[i]}`,
      });
      const body = (await res.json()) as { refresh_token?: string };
      if (res.status !== 200 || !body.refresh_token) {
        bad++;
        return;
      }
      chains[i] = body.refresh_token;
      if (measuring) latencies.push(performance.now() - t0);
    }
  };
  const workers = chains.map((_, i) => worker(i));
  await Bun.sleep(seconds(opt.warmup) * 1000);
  measuring = true;
  const t0 = performance.now();
  await Bun.sleep(seconds(opt.duration) * 1000);
  measuring = false;
  const elapsed = (performance.now() - t0) / 1000;
  stop = true;
  await Promise.all(workers);
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.floor((latencies.length - 1) * p)] ?? Number.NaN;
  return { rate: latencies.length / elapsed, p50: pct(0.5), p99: pct(0.99), bad };
}

// --- tools/call ------------------------------------------------------------------------------------------------------

interface CallTarget {
  name: string;
  /** One wrk per replica, started together. */
  parts: { url: string; session: string; token: string; proc: Proc }[];
}

async function callRun(t: CallTarget, duration: string, backend: Proc): Promise<WrkResult> {
  const connections = Math.max(1, Math.floor(opt.connections / t.parts.length));
  const runs = await Promise.all(
    t.parts.map((p) =>
      runWrk(
        { name: t.name, url: p.url, tool: "fast__echo", session: p.session, token: p.token },
        connections,
        duration,
        [backend, p.proc],
        { threads: 1, cpus: opt.otherCpu },
      ),
    ),
  );
  const first = runs[0] as WrkResult;
  const total: WrkResult = { ...first, cpu: { ...first.cpu }, cpuSeconds: {} };
  total.requests = runs.reduce((n, r) => n + r.requests, 0);
  total.rps = runs.reduce((n, r) => n + r.rps, 0);
  for (const k of ["non2xx", "rpcErrors", "connect", "read", "write", "timeout"] as const) {
    total[k] = runs.reduce((n, r) => n + r[k], 0);
  }
  // The CPU the replicas (together) spent per call.
  total.cpuSeconds.gatehouse = runs.reduce((n, r, i) => n + (r.cpuSeconds[t.parts[i]?.proc.name ?? ""] ?? 0), 0);
  return total;
}

// --- main -----------------------------------------------------------------------------------------------------------

async function main() {
  if (!Bun.which("wrk")) throw new Error("wrk is not installed: apt-get install -y wrk (see bench/README.md)");
  if (!Bun.which("redis-server")) throw new Error("redis-server is not installed: apt-get install -y redis-server");
  if (opt.binary) ensureBinary();
  pinSelf(opt.otherCpu);
  const backend = await startFastBackend(opt.otherCpu);
  const redis = await startRedis();
  const setups = [
    await setup("json file", backend.url, undefined, 1),
    await setup("redis, 1 replica", backend.url, redis.url, 1),
    await setup("redis, 2 replicas", backend.url, redis.url, 2),
  ];

  console.log(`\nrefresh grants: ${opt.concurrency} concurrent chains, ${opt.duration} per round after ${opt.warmup}`);
  const grantRuns = new Map<string, Awaited<ReturnType<typeof grants>>[]>(setups.map((s) => [s.name, []]));
  const chains = new Map(setups.map((s) => [s.name, s.tokens.slice(0, opt.concurrency)]));
  for (let round = 1; round <= opt.rounds; round++) {
    process.stdout.write(`round ${round}/${opt.rounds}:`);
    for (const s of setups) {
      process.stdout.write(` ${s.name}`);
      grantRuns.get(s.name)?.push(await grants(s, chains.get(s.name) as string[]));
    }
    console.log();
  }

  const calls: CallTarget[] = [];
  for (const s of setups) {
    const parts = [];
    for (const r of s.replicas) {
      const token = await accessToken(r.base, CLIENT, REDIRECT);
      const url = `${r.base}/mcp`;
      const session = (await openSession(url, token)) as string;
      if ((await callEcho(url, "fast__echo", session, token)) !== "echo: hi") throw new Error(`${s.name}: bad echo`);
      parts.push({ url, session, token, proc: r });
    }
    calls.push({ name: s.name, parts });
  }
  console.log(`\ntools/call: ${opt.connections} connections in all, ${opt.duration} per round after ${opt.warmup}`);
  for (const t of calls) await callRun(t, opt.warmup, backend);
  const callRuns = new Map<string, WrkResult[]>(calls.map((t) => [t.name, []]));
  for (let round = 1; round <= opt.rounds; round++) {
    process.stdout.write(`round ${round}/${opt.rounds}:`);
    for (const t of calls) {
      process.stdout.write(` ${t.name}`);
      callRuns.get(t.name)?.push(await callRun(t, opt.duration, backend));
    }
    console.log();
  }

  console.log(
    `\nPinning (taskset${HAS_TASKSET ? "" : ": MISSING, nothing pinned"}): every Gatehouse replica on CPU ` +
      `${opt.gatehouseCpu} (two replicas share it: the same CPU budget as one); the backend, Redis, wrk and the ` +
      `refresh clients on CPU ${opt.otherCpu}. Gatehouse: ${opt.binary ? "dist/gatehouse" : "bun src/main.ts"}, ` +
      `LOG_LEVEL=warn, audit off. Redis: appendonly yes, appendfsync always. Medians of ${opt.rounds} interleaved rounds.`,
  );
  console.log(
    `\nRefresh grants (${opt.stored} live refresh tokens stored; each grant rotates one and signs an ES256 token)`,
  );
  const gm = (name: string) =>
    [...(grantRuns.get(name) ?? [])].sort((a, b) => a.rate - b.rate)[Math.floor(opt.rounds / 2)] as Awaited<
      ReturnType<typeof grants>
    >;
  table(
    ["state", "grants/s", "range", "p50 ms", "p99 ms", "errors"],
    setups.map((s) => {
      const all = grantRuns.get(s.name) ?? [];
      const m = gm(s.name);
      const rates = all.map((r) => r.rate);
      return [
        s.name,
        m.rate.toFixed(0),
        `${Math.min(...rates).toFixed(0)}–${Math.max(...rates).toFixed(0)}`,
        m.p50.toFixed(2),
        m.p99.toFixed(2),
        all.reduce((n, r) => n + r.bad, 0),
      ];
    }),
  );

  console.log("\ntools/call with a Gatehouse access token (fast SDK backend)");
  const perCall = (name: string) => {
    const m = median(callRuns.get(name) ?? []) as WrkResult;
    return ((m.cpuSeconds.gatehouse ?? 0) * 1e6) / m.requests;
  };
  table(
    ["state", "req/s", "p50 ms", "p99 ms", "errors", "Gatehouse µs cpu/call"],
    calls.map((t) => {
      const m = median(callRuns.get(t.name) ?? []) as WrkResult;
      const all = callRuns.get(t.name) ?? [];
      return [
        t.name,
        m.rps.toFixed(0),
        (m.p50 / 1000).toFixed(2),
        (m.p99 / 1000).toFixed(2),
        all.reduce((n, r) => n + errors(r), 0),
        perCall(t.name).toFixed(0),
      ];
    }),
  );

  const redisGrants = gm("redis, 1 replica").rate;
  const ratio1 = perCall("redis, 1 replica") / perCall("json file");
  const ratio2 = perCall("redis, 2 replicas") / perCall("json file");
  console.log("\nTargets");
  table(
    ["target", "goal", "measured", ""],
    [
      [
        `refresh grants on Redis, ${opt.stored} stored`,
        "≥ 2000/s",
        redisGrants.toFixed(0),
        verdict(redisGrants >= 2000),
      ],
      ["tools/call CPU, Redis (1 replica) / JSON file", "≤ 1.10", ratio1.toFixed(2), verdict(ratio1 <= 1.1)],
      ["(info) tools/call CPU, Redis (2 replicas) / JSON file", "≤ 1.10", ratio2.toFixed(2), verdict(ratio2 <= 1.1)],
    ],
  );
}

try {
  await main();
} catch (e) {
  console.error(`\nstate benchmark failed: ${(e as Error).stack ?? e}`);
  process.exitCode = 1;
} finally {
  await stopAll();
}
