// tools/call throughput and latency, in one run against the same fast backend: (a) direct, (b) through a bare
// forwarding proxy, (c) through Gatehouse (bearer token, role ACL, `fast__echo` → `echo`), and (d) Gatehouse with
// audit records written to a file. Load comes from wrk (bench/tools-call.lua): a loaded run (-c 50) for req/s and
// a light run (-c 1) for the latency a hop adds. Run: `bun bench/throughput.ts [--duration 10s] …` (see README.md).

import { join } from "node:path";
import {
  type BackendMode,
  callEcho,
  cpuSeconds,
  ensureBinary,
  flags,
  HAS_TASKSET,
  openSession,
  type Proc,
  pinned,
  pinSelf,
  startBareProxy,
  startFastBackend,
  startGatehouse,
  stopAll,
  TOKEN,
  table,
  tempDir,
  verdict,
  writeGatehouseConfig,
} from "./lib.ts";

const flag = flags();
const opt = {
  duration: flag("duration", "10s"),
  warmup: flag("warmup", "3s"),
  connections: Number(flag("connections", "50")),
  lightDuration: flag("light-duration", "5s"),
  threads: Number(flag("threads", "1")),
  backendCpu: flag("backend-cpu", "0"),
  middleCpu: flag("middle-cpu", "1"),
  wrkCpu: flag("wrk-cpu", "0"),
  backendMode: flag("backend-mode", "stateful") as BackendMode,
  audit: flag("audit", "true") !== "false",
  binary: flag("binary", "false") === "true",
};

interface WrkResult {
  requests: number;
  seconds: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  non2xx: number;
  rpcErrors: number;
  connect: number;
  read: number;
  write: number;
  timeout: number;
  sample: string;
  /** CPU use (% of one core) of each process during the run. */
  cpu: Record<string, number>;
}

interface Target {
  name: string;
  url: string;
  tool: string;
  /** The process between wrk and the backend (none for direct). */
  middle?: Proc;
}

async function wrk(t: Target, session: string, connections: number, duration: string, watch: Proc[]) {
  const cmd = ["wrk", "--latency", `-t${Math.min(opt.threads, connections)}`, `-c${connections}`, `-d${duration}`];
  cmd.push("--timeout", "10s", "-s", join(import.meta.dir, "tools-call.lua"), t.url);
  const before = await Promise.all(watch.map((p) => cpuSeconds(p.pid)));
  const started = performance.now();
  const proc = Bun.spawn(pinned(cmd, opt.wrkCpu), {
    env: { ...process.env, TOOL: t.tool, SESSION: session, TOKEN },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  await proc.exited;
  const wall = (performance.now() - started) / 1000;
  const after = await Promise.all(watch.map((p) => cpuSeconds(p.pid)));
  const line = out.split("\n").find((l) => l.startsWith("BENCH "));
  if (proc.exitCode !== 0 || !line) throw new Error(`wrk failed (exit ${proc.exitCode}):\n${out}\n${err}`);
  const r = JSON.parse(line.slice(6)) as WrkResult;
  r.cpu = { wrk: ((Number(proc.resourceUsage()?.cpuTime.total ?? 0) / 1e6) * 100) / wall };
  watch.forEach((p, i) => {
    r.cpu[p.name] = (((after[i] ?? 0) - (before[i] ?? 0)) * 100) / wall;
  });
  return r;
}

const ms = (us: number) => (us / 1000).toFixed(2);
const errors = (r: WrkResult) => r.non2xx + r.rpcErrors + r.connect + r.read + r.write + r.timeout;

async function main() {
  if (!Bun.which("wrk")) {
    console.error("wrk is not installed: apt-get install -y wrk (see bench/README.md)");
    process.exit(2);
  }
  if (opt.binary) ensureBinary();
  const backend = await startFastBackend(opt.backendCpu, opt.backendMode);
  const proxy = await startBareProxy(opt.middleCpu, backend.url);
  const gatehouse = await startGatehouse(writeGatehouseConfig(backend.url), {
    cpus: opt.middleCpu,
    binary: opt.binary,
  });
  const auditFile = join(tempDir(), "audit.jsonl");
  const targets: Target[] = [
    { name: "direct", url: backend.url, tool: "echo" },
    { name: "bare proxy", url: proxy.url, tool: "echo", middle: proxy },
    { name: "gatehouse", url: gatehouse.url, tool: "fast__echo", middle: gatehouse },
  ];
  if (opt.audit) {
    const config = writeGatehouseConfig(backend.url, { auditFile });
    const withAudit = await startGatehouse(config, {
      cpus: opt.middleCpu,
      binary: opt.binary,
      name: "gatehouse+audit",
    });
    targets.push({ name: "gatehouse+audit", url: withAudit.url, tool: "fast__echo", middle: withAudit });
  }

  pinSelf(opt.wrkCpu); // this script is idle during a run; it sits with wrk
  const loaded = new Map<string, WrkResult>();
  const light = new Map<string, WrkResult>();
  for (const t of targets) {
    process.stdout.write(`${t.name}: initialize, check, warm-up ${opt.warmup}, ${opt.duration} × ${opt.connections} `);
    process.stdout.write(`connections, ${opt.lightDuration} × 1 connection … `);
    const session = (await openSession(t.url, TOKEN)) ?? "";
    const echoed = await callEcho(t.url, t.tool, session, TOKEN);
    if (echoed !== "echo: hi") throw new Error(`${t.name}: tools/call answered "${echoed}"`);
    const watch = t.middle ? [backend, t.middle] : [backend];
    await wrk(t, session, opt.connections, opt.warmup, watch);
    loaded.set(t.name, await wrk(t, session, opt.connections, opt.duration, watch));
    light.set(t.name, await wrk(t, session, 1, opt.lightDuration, watch));
    console.log("done");
  }

  console.log(
    `\nPinning (2 cores): ${HAS_TASKSET ? "taskset -c" : "NOT PINNED (taskset missing)"} — backend on CPU ` +
      `${opt.backendCpu}, bare proxy and Gatehouse on CPU ${opt.middleCpu}, wrk (${opt.threads} thread) and this ` +
      `script on CPU ${opt.wrkCpu}.\nBackend: MCP SDK McpServer, web-standard Streamable HTTP transport, JSON ` +
      `responses, ${opt.backendMode}. Gatehouse: ${opt.binary ? "dist/gatehouse" : "bun src/main.ts"}, LOG_LEVEL=warn.`,
  );
  for (const [title, runs, conns] of [
    ["Loaded", loaded, opt.connections],
    ["Light (latency)", light, 1],
  ] as const) {
    console.log(
      `\n${title}: ${conns} connection${conns === 1 ? "" : "s"}, ${title === "Loaded" ? opt.duration : opt.lightDuration}`,
    );
    const rows = targets.flatMap((t) => {
      const r = runs.get(t.name);
      if (!r) return [];
      const cpu = (name: string) => (r.cpu[name] === undefined ? "-" : `${r.cpu[name]?.toFixed(0)}%`);
      return [
        [
          t.name,
          (r.requests / r.seconds).toFixed(0),
          ms(r.p50),
          ms(r.p90),
          ms(r.p99),
          ms(r.max),
          errors(r),
          cpu("backend"),
          t.middle ? cpu(t.middle.name) : "-",
          cpu("wrk"),
        ],
      ];
    });
    table(
      ["path", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors", "cpu backend", "cpu middle", "cpu wrk"],
      rows,
    );
  }

  for (const [name, r] of [...loaded, ...light]) {
    if (errors(r) > 0) {
      console.log(
        `\n!! ${name}: ${r.non2xx} non-2xx, ${r.rpcErrors} JSON-RPC errors, socket errors connect ` +
          `${r.connect} read ${r.read} write ${r.write} timeout ${r.timeout}; first bad answer: ${r.sample}`,
      );
    }
  }
  if (opt.audit) {
    const lines = (
      await Bun.file(auditFile)
        .text()
        .catch(() => "")
    )
      .split("\n")
      .filter(Boolean).length;
    console.log(`\nAudit file: ${lines} records written by gatehouse+audit.`);
  }

  const rps = (m: Map<string, WrkResult>, n: string) => ((r) => (r ? r.requests / r.seconds : Number.NaN))(m.get(n));
  const p50 = (m: Map<string, WrkResult>, n: string) => (m.get(n)?.p50 ?? Number.NaN) / 1000;
  const ratio = rps(loaded, "gatehouse") / rps(loaded, "bare proxy");
  const addedLoaded = p50(loaded, "gatehouse") - p50(loaded, "direct");
  const addedLight = p50(light, "gatehouse") - p50(light, "direct");
  console.log("\nTargets");
  const rows = [
    ["Gatehouse / bare proxy req/s", "≥ 0.90", ratio.toFixed(2), verdict(ratio >= 0.9)],
    [
      `Gatehouse p50 − direct p50, ${opt.connections} connections`,
      "≤ 1 ms",
      `${addedLoaded.toFixed(2)} ms`,
      verdict(addedLoaded <= 1),
    ],
    ["Gatehouse p50 − direct p50, 1 connection", "≤ 1 ms", `${addedLight.toFixed(2)} ms`, verdict(addedLight <= 1)],
  ];
  if (opt.audit) {
    const auditRatio = rps(loaded, "gatehouse+audit") / rps(loaded, "bare proxy");
    rows.push([
      "(info) Gatehouse+audit / bare proxy req/s",
      "≥ 0.90",
      auditRatio.toFixed(2),
      verdict(auditRatio >= 0.9),
    ]);
  }
  table(["target", "goal", "measured", ""], rows);
}

try {
  await main();
} catch (e) {
  console.error(`\nthroughput benchmark failed: ${(e as Error).stack ?? e}`);
  process.exitCode = 1;
} finally {
  await stopAll();
}
