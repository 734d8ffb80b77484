// The middle's own cost (issue 10's comparison), in one run: tools/call against the same fast SDK backend direct,
// through nginx (plain proxy_pass), through a bare Bun forwarder, and through Gatehouse with a static bearer token,
// with an external ES256 JWT, and with one of its own OAuth access tokens — plus Gatehouse on a stdio backend (no
// HTTP hop behind it). The backend and the middle share one core, wrk runs alone on the other (real-parts.md: "a
// proxy's own cost is its CPU per request"): the middle's CPU (utime+stime from /proc, children summed) divided by
// the calls it served is its cost per call. Rounds are interleaved; the median round is reported with the range.
// Then: aggregated tools/list over 10 backends and 500 tools from cache (p50), and the compiled binary's start to
// ready and idle RSS. Run: `bun bench/middle.ts [--duration 8s] [--rounds 3] [--connections 32]`.

import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import {
  accessToken,
  BINARY,
  BUN,
  callEcho,
  cpuSeconds,
  ensureBinary,
  errors,
  flags,
  freePort,
  HAS_TASKSET,
  MAIN,
  mb,
  mcpHeaders,
  median,
  openSession,
  type Proc,
  pinSelf,
  ROOT,
  rss,
  runWrk,
  start,
  startBareProxy,
  startFastBackend,
  stopAll,
  type Target,
  TOKEN,
  table,
  tempDir,
  verdict,
  type WrkResult,
} from "./lib.ts";

const flag = flags();
const opt = {
  duration: flag("duration", "8s"),
  warmup: flag("warmup", "2s"),
  rounds: Number(flag("rounds", "3")),
  connections: Number(flag("connections", "32")),
  /** The core the backend and the middle share. */
  sharedCpu: flag("shared-cpu", "1"),
  wrkCpu: flag("wrk-cpu", "0"),
  binary: flag("binary", "true") === "true",
};

const gatehouseCmd = () => (opt.binary ? [BINARY] : [BUN, MAIN]);

const ACL = {
  default: "deny",
  roles: {
    caller: [
      { server: "*", access: "*", tools: ["echo"] },
      { server: "*", access: "*", tools: ["admin_*"], deny: true },
    ],
  },
};

function writeConfig(config: Record<string, unknown>): string {
  const path = join(tempDir(), "servers.json");
  writeFileSync(path, JSON.stringify({ audit: { enabled: false }, ...config }, null, 2));
  return path;
}

async function gatehouse(name: string, config: string, port: number): Promise<Proc & { base: string }> {
  const base = `http://127.0.0.1:${port}`;
  const p = await start(name, [...gatehouseCmd(), "serve", "--config", config, "--bind", base.slice(7)], {
    cpus: opt.sharedCpu,
    env: { LOG_LEVEL: "warn" },
    ready: () =>
      fetch(`${base}/health`).then(
        (r) => r.ok,
        () => false,
      ),
  });
  return Object.assign(p, { base });
}

/** nginx with one worker in front of the backend: the plain proxy_pass hop, connections kept alive. */
async function startNginx(backendUrl: string): Promise<Proc & { url: string; workers: () => number[] }> {
  const dir = tempDir();
  const port = await freePort();
  const upstream = new URL(backendUrl);
  writeFileSync(
    join(dir, "nginx.conf"),
    `daemon off; worker_processes 1; pid ${dir}/nginx.pid; error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off; client_body_temp_path ${dir}; proxy_temp_path ${dir};
  fastcgi_temp_path ${dir}; uwsgi_temp_path ${dir}; scgi_temp_path ${dir};
  upstream backend { server ${upstream.host}; keepalive 64; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_buffering off; proxy_read_timeout 3600s;
    }
  }
}
`,
  );
  const p = await start("nginx", ["nginx", "-p", dir, "-c", join(dir, "nginx.conf")], {
    cpus: opt.sharedCpu,
    ready: async () => {
      try {
        return (await fetch(`http://127.0.0.1:${port}/`)).status > 0;
      } catch {
        return false;
      }
    },
  });
  const workers = () =>
    spawnSync("pgrep", ["-P", String(p.pid)])
      .stdout.toString()
      .trim()
      .split("\n")
      .filter(Boolean)
      .map(Number);
  return Object.assign(p, { url: `http://127.0.0.1:${port}${upstream.pathname}`, workers });
}

/** An ES256 issuer in this process: its JWKS served on loopback (fetched once by Gatehouse), tokens signed here. */
async function jwtIssuer(audience: string) {
  const { publicKey, privateKey } = await generateKeyPair("ES256");
  const jwk = { ...(await exportJWK(publicKey)), kid: "bench", alg: "ES256", use: "sig" };
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => Response.json({ keys: [jwk] }) });
  const issuer = `http://127.0.0.1:${server.port}`;
  const token = await new SignJWT({ scope: "mcp", roles: ["caller"] })
    .setProtectedHeader({ alg: "ES256", kid: "bench" })
    .setIssuer(issuer)
    .setAudience(audience)
    .setSubject("bench")
    .setIssuedAt()
    .setExpirationTime("2h")
    .sign(privateKey);
  return { issuer, jwksUri: `${issuer}/jwks`, token, stop: () => server.stop(true) };
}

/** The fast backend's echo tool as a stdio server (the SDK's StdioServerTransport), for the no-HTTP-hop path. */
function stdioBackend(tools = 1): Record<string, unknown> {
  return {
    command: BUN,
    args: [join(import.meta.dir, "stdio-backend.ts")],
    env: { TOOLS: String(tools) },
    idle_timeout: "never",
  };
}

/** CPU seconds of a set of processes (nginx: its workers). */
async function cpuOf(pids: number[]): Promise<number> {
  let n = 0;
  for (const pid of pids) n += await cpuSeconds(pid);
  return n;
}

interface Path extends Target {
  /** The processes whose CPU is the middle's. */
  middlePids?: () => number[];
  note: string;
}

type Measured = WrkResult & { middleUs?: number };

async function measure(p: Path, duration: string): Promise<Measured> {
  const pids = p.middlePids?.() ?? [];
  const before = await cpuOf(pids);
  const r = await runWrk(p, opt.connections, duration, [], { threads: 1, cpus: opt.wrkCpu });
  const used = (await cpuOf(pids)) - before;
  return Object.assign(r, pids.length > 0 ? { middleUs: (used * 1e6) / r.requests } : {});
}

async function main() {
  pinSelf(opt.wrkCpu);
  if (opt.binary) ensureBinary();
  console.log(
    `Pinning: ${HAS_TASKSET ? `backend and middle on CPU ${opt.sharedCpu}, wrk and this script on CPU ${opt.wrkCpu}` : "unpinned (no taskset)"}; ` +
      `${opt.connections} connections, ${opt.rounds} interleaved rounds of ${opt.duration}; Gatehouse ${opt.binary ? "dist/gatehouse" : "bun src/main.ts"}`,
  );
  const backend = await startFastBackend(opt.sharedCpu);
  const paths: Path[] = [];
  const directSession = await openSession(backend.url);
  paths.push({
    name: "direct",
    url: backend.url,
    tool: "echo",
    ...(directSession ? { session: directSession } : {}),
    note: "no middle",
  });

  const nginx = await startNginx(backend.url);
  const ns = await openSession(nginx.url);
  paths.push({
    name: "nginx",
    url: nginx.url,
    tool: "echo",
    ...(ns ? { session: ns } : {}),
    middlePids: nginx.workers,
    note: "proxy_pass, keepalive",
  });

  const bare = await startBareProxy(opt.sharedCpu, backend.url);
  const bs = await openSession(bare.url);
  paths.push({
    name: "bare forwarder",
    url: bare.url,
    tool: "echo",
    ...(bs ? { session: bs } : {}),
    middlePids: () => [bare.pid],
    note: "Bun.serve + fetch",
  });

  // Gatehouse, static bearer token + role ACL + names.
  // The same bearer set-up, with metrics on (the default) and off.
  const bearerConfig = (extra: Record<string, unknown> = {}) =>
    writeConfig({
      mcpServers: { fast: { url: backend.url, idle_timeout: "never" } },
      serverAuth: {
        providers: ["bearer"],
        bearer: { tokens: { [TOKEN]: { subject: "bench", roles: ["caller"] } } },
        acl: ACL,
      },
      ...extra,
    });
  const bearer = await gatehouse("gatehouse bearer", bearerConfig(), await freePort());
  const gb = `${bearer.base}/mcp`;
  paths.push({
    name: "gatehouse bearer",
    url: gb,
    tool: "fast__echo",
    session: (await openSession(gb, TOKEN)) as string,
    middlePids: () => [bearer.pid],
    note: "bearer + ACL + names",
  });

  // The same with metrics off (metrics.enabled: false), to show what counting costs.
  const quiet = await gatehouse(
    "gatehouse no metrics",
    bearerConfig({ metrics: { enabled: false } }),
    await freePort(),
  );
  const gq = `${quiet.base}/mcp`;
  paths.push({
    name: "gatehouse no metrics",
    url: gq,
    tool: "fast__echo",
    session: (await openSession(gq, TOKEN)) as string,
    middlePids: () => [quiet.pid],
    note: "bearer, metrics.enabled: false",
  });

  // Gatehouse, external ES256 JWT.
  const jwtPort = await freePort();
  const jwtResource = `http://127.0.0.1:${jwtPort}/mcp`;
  const issuer = await jwtIssuer(jwtResource);
  const jwt = await gatehouse(
    "gatehouse jwt",
    writeConfig({
      mcpServers: { fast: { url: backend.url, idle_timeout: "never" } },
      serverAuth: {
        providers: ["jwt"],
        jwt: {
          issuer: issuer.issuer,
          audience: jwtResource,
          jwksUri: issuer.jwksUri,
          algorithms: ["ES256"],
          discovery: { mode: "none" },
        },
        acl: ACL,
      },
    }),
    jwtPort,
  );
  paths.push({
    name: "gatehouse jwt",
    url: jwtResource,
    tool: "fast__echo",
    token: issuer.token,
    session: (await openSession(jwtResource, issuer.token)) as string,
    middlePids: () => [jwt.pid],
    note: "external ES256 JWT + ACL",
  });

  // Gatehouse, its own OAuth access token (ES256, issued by the code flow).
  const asPort = await freePort();
  const asBase = `http://127.0.0.1:${asPort}`;
  const own = await gatehouse(
    "gatehouse oauth",
    writeConfig({
      mcpServers: { fast: { url: backend.url, idle_timeout: "never" } },
      serverAuth: {
        providers: ["oauth_as"],
        oauthAs: { issuerUrl: asBase, trustedSourceCidrs: ["127.0.0.1/32"], injectedRoles: ["caller"] },
        acl: ACL,
      },
    }),
    asPort,
  );
  const ownToken = await accessToken(asBase);
  paths.push({
    name: "gatehouse oauth",
    url: `${asBase}/mcp`,
    tool: "fast__echo",
    token: ownToken,
    session: (await openSession(`${asBase}/mcp`, ownToken)) as string,
    middlePids: () => [own.pid],
    note: "its own access token + ACL",
  });

  // Gatehouse on a stdio backend (its child process; /proc's utime+stime of Gatehouse does not include it).
  const stdio = await gatehouse(
    "gatehouse stdio",
    writeConfig({
      mcpServers: { fast: stdioBackend() },
      serverAuth: {
        providers: ["bearer"],
        bearer: { tokens: { [TOKEN]: { subject: "bench", roles: ["caller"] } } },
        acl: ACL,
      },
    }),
    await freePort(),
  );
  const gs = `${stdio.base}/mcp`;
  const stdioSession = (await openSession(gs, TOKEN)) as string;
  paths.push({
    name: "gatehouse stdio",
    url: gs,
    tool: "fast__echo",
    session: stdioSession,
    middlePids: () => [stdio.pid],
    note: "stdio backend, no HTTP hop",
  });

  for (const p of paths) {
    const got = await callEcho(
      p.url,
      p.tool,
      p.session,
      p.token ?? (p.name === "direct" || p.name === "nginx" || p.name === "bare forwarder" ? undefined : TOKEN),
    );
    if (got !== "echo: hi") throw new Error(`${p.name}: unexpected answer ${got}`);
  }
  for (const p of paths) if (!p.token && p.name.startsWith("gatehouse")) p.token = TOKEN;
  for (const p of paths) if (!p.name.startsWith("gatehouse")) p.token = "";

  for (const p of paths) await measure(p, opt.warmup);
  const runs = new Map<string, Measured[]>();
  for (let round = 1; round <= opt.rounds; round++) {
    process.stdout.write(`round ${round}/${opt.rounds}: `);
    for (const p of paths) {
      const r = await measure(p, opt.duration);
      runs.set(p.name, [...(runs.get(p.name) ?? []), r]);
      process.stdout.write(`${p.name} ${r.rps.toFixed(0)}/s${r.middleUs ? ` ${r.middleUs.toFixed(0)} µs` : ""}; `);
    }
    console.log();
  }

  const directRps = median(runs.get("direct") ?? [])?.rps ?? 1;
  const bareUs = (median(runs.get("bare forwarder") ?? []) as Measured | undefined)?.middleUs ?? Number.NaN;
  console.log("\ntools/call through each middle (median round; CPU per call of the middle process itself)");
  const rows = paths.map((p) => {
    const all = runs.get(p.name) ?? [];
    const r = median(all) as Measured;
    const us = r.middleUs;
    const own = us;
    const range = all.map((x) => x.middleUs ?? 0);
    return [
      p.name,
      p.note,
      r.rps.toFixed(0),
      (r.rps / directRps).toFixed(2),
      (r.p50 / 1000).toFixed(2),
      own === undefined ? "-" : own.toFixed(0),
      us === undefined ? "-" : `${Math.min(...range).toFixed(0)}–${Math.max(...range).toFixed(0)}`,
      own === undefined || Number.isNaN(bareUs) ? "-" : (own / bareUs).toFixed(2),
      all.reduce((n, x) => n + errors(x), 0),
    ];
  });
  table(["path", "what", "req/s", "vs direct", "p50 ms", "middle µs/call", "µs range", "vs bare", "errors"], rows);
  console.log("(CPU of the middle process alone: a stdio backend is a child process, not counted)");
  const ratio = (name: string) => {
    const r = median(runs.get(name) ?? []) as Measured | undefined;
    const us = r?.middleUs ?? Number.NaN;
    return us / bareUs;
  };
  console.log(
    `target: gatehouse bearer ≤ 1.1× bare forwarder CPU/call: ${ratio("gatehouse bearer").toFixed(2)}× ${verdict(ratio("gatehouse bearer") <= 1.1)}`,
  );
  const metricsCost = ratio("gatehouse bearer") / ratio("gatehouse no metrics");
  console.log(`target: metrics on ≤ 1.05× metrics off: ${metricsCost.toFixed(2)}× ${verdict(metricsCost <= 1.05)}`);
  console.log(
    `target: gatehouse stdio ≤ 1.0× bare forwarder CPU/call: ${ratio("gatehouse stdio").toFixed(2)}× ${verdict(ratio("gatehouse stdio") <= 1.0)}`,
  );
  issuer.stop();
  await stopAll();

  await aggregatedList();
  await startup();
}

/** tools/list over 10 stdio backends of 50 tools each, from cache: p50 of 300 sequential calls. */
async function aggregatedList() {
  const servers = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`s${i}`, stdioBackend(50)]));
  const g = await gatehouse(
    "gatehouse list",
    writeConfig({
      mcpServers: servers,
      serverAuth: { providers: ["bearer"], bearer: { tokens: { [TOKEN]: "bench" } } },
    }),
    await freePort(),
  );
  const url = `${g.base}/mcp`;
  const session = await openSession(url, TOKEN);
  const list = async () => {
    const res = await fetch(url, {
      method: "POST",
      headers: mcpHeaders(session, TOKEN),
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
    });
    return ((await res.json()) as { result: { tools: unknown[] } }).result.tools.length;
  };
  const n = await list();
  for (let i = 0; i < 50; i++) await list();
  const times: number[] = [];
  for (let i = 0; i < 300; i++) {
    const t0 = performance.now();
    await list();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const p50 = times[Math.floor(times.length / 2)] as number;
  console.log(
    `\naggregated tools/list, 10 backends, ${n} tools, from cache: p50 ${p50.toFixed(2)} ms, p99 ${(times[Math.floor(times.length * 0.99)] as number).toFixed(2)} ms (target ≤ 1 ms p50: ${verdict(p50 <= 1)})`,
  );
  await stopAll();
}

/** dist/gatehouse: from exec to /health answering, and its RSS idle after that (one HTTP backend, never started). */
async function startup() {
  ensureBinary();
  const config = writeConfig({ mcpServers: { fast: { url: "http://127.0.0.1:9/mcp" } } });
  const times: number[] = [];
  let idle = 0;
  for (let i = 0; i < 5; i++) {
    const port = await freePort();
    const t0 = performance.now();
    const proc = Bun.spawn([BINARY, "serve", "--config", config, "--bind", `127.0.0.1:${port}`], {
      cwd: ROOT,
      env: { ...process.env, LOG_LEVEL: "warn" },
      stdout: "ignore",
      stderr: "ignore",
    });
    for (;;) {
      const ok = await fetch(`http://127.0.0.1:${port}/health`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      await Bun.sleep(2);
    }
    times.push(performance.now() - t0);
    if (i === 0) {
      await Bun.sleep(3000);
      idle = (await rss(proc.pid)).rss;
    }
    proc.kill("SIGTERM");
    await proc.exited;
  }
  times.sort((a, b) => a - b);
  const p50 = times[2] as number;
  console.log(
    `dist/gatehouse start to ready (exec → /health 200), median of 5: ${p50.toFixed(0)} ms (target ≤ 100 ms: ${verdict(p50 <= 100)})`,
  );
  console.log(`dist/gatehouse idle RSS: ${mb(idle)} (target ≤ 50 MB: ${verdict(idle <= 50)})`);
}

try {
  await main();
} finally {
  await stopAll();
}
