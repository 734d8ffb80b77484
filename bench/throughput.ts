// tools/call throughput and latency, in one run against the same fast backend: (a) direct, (b) through a bare
// forwarding proxy, (c) through Gatehouse (bearer token, role ACL, `fast__echo` → `echo`), and (d) Gatehouse with
// audit records written to a file. Load comes from wrk (bench/tools-call.lua): a loaded run (-c 50) for req/s and
// a light run (-c 1) for the latency a hop adds, repeated in interleaved rounds; the median round is reported.
// Run: `bun bench/throughput.ts [--duration 10s] [--rounds 3] …` (options in bench/README.md).

import { join } from "node:path";
import {
  type BackendMode,
  callEcho,
  ensureBinary,
  errors,
  flags,
  HAS_TASKSET,
  median,
  openSession,
  type Proc,
  pinSelf,
  runWrk,
  startBareProxy,
  startFastBackend,
  startGatehouse,
  stopAll,
  type Target,
  TOKEN,
  table,
  tempDir,
  verdict,
  type WrkResult,
  writeGatehouseConfig,
} from "./lib.ts";

const flag = flags();
const opt = {
  duration: flag("duration", "10s"),
  warmup: flag("warmup", "3s"),
  connections: Number(flag("connections", "50")),
  lightDuration: flag("light-duration", "5s"),
  rounds: Number(flag("rounds", "3")),
  threads: Number(flag("threads", "1")),
  backendCpu: flag("backend-cpu", "0"),
  middleCpu: flag("middle-cpu", "1"),
  wrkCpu: flag("wrk-cpu", "0"),
  backendMode: flag("backend-mode", "stateful") as BackendMode,
  audit: flag("audit", "true") !== "false",
  binary: flag("binary", "false") === "true",
};

const ms = (us: number) => (us / 1000).toFixed(2);

function report(title: string, targets: Target[], runs: Map<string, WrkResult[]>) {
  console.log(`\n${title}`);
  const rows = targets.flatMap((t) => {
    const all = runs.get(t.name) ?? [];
    const r = median(all);
    if (!r) return [];
    const cpu = (name: string) => (r.cpu[name] === undefined ? "-" : `${r.cpu[name]?.toFixed(0)}%`);
    const middleCpu = t.middle ? (r.cpu[t.middle.name] ?? 0) : undefined;
    const rpsAll = all.map((x) => x.rps);
    return [
      [
        t.name,
        r.rps.toFixed(0),
        `${Math.min(...rpsAll).toFixed(0)}–${Math.max(...rpsAll).toFixed(0)}`,
        ms(r.p50),
        ms(r.p90),
        ms(r.p99),
        ms(r.max),
        all.reduce((n, x) => n + errors(x), 0),
        cpu("backend"),
        t.middle ? cpu(t.middle.name) : "-",
        cpu("wrk"),
        middleCpu === undefined ? "-" : ((middleCpu * 1e4) / r.rps).toFixed(0),
      ],
    ];
  });
  const header = ["path", "req/s", "req/s range", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors"];
  table([...header, "cpu backend", "cpu middle", "cpu wrk", "middle µs cpu/req"], rows);
}

const wrk = (t: Target, connections: number, duration: string, watch: Proc[]) =>
  runWrk(t, connections, duration, watch, { threads: opt.threads, cpus: opt.wrkCpu });

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
  const targets: Target[] = [
    { name: "direct", url: backend.url, tool: "echo" },
    { name: "bare proxy", url: proxy.url, tool: "echo", middle: proxy },
    { name: "gatehouse", url: gatehouse.url, tool: "fast__echo", middle: gatehouse },
  ];
  const auditFile = join(tempDir(), "audit.jsonl");
  if (opt.audit) {
    const config = writeGatehouseConfig(backend.url, { auditFile });
    const name = "gatehouse+audit";
    const withAudit = await startGatehouse(config, { cpus: opt.middleCpu, binary: opt.binary, name });
    targets.push({ name, url: withAudit.url, tool: "fast__echo", middle: withAudit });
  }
  pinSelf(opt.wrkCpu); // this script is idle during a run; it sits with wrk

  const watch = (t: Target) => (t.middle ? [backend, t.middle] : [backend]);
  for (const t of targets) {
    process.stdout.write(`${t.name}: initialize, one checked tools/call, warm-up ${opt.warmup} … `);
    t.session = await openSession(t.url, TOKEN);
    const echoed = await callEcho(t.url, t.tool, t.session, TOKEN);
    if (echoed !== "echo: hi") throw new Error(`${t.name}: tools/call answered "${echoed}"`);
    await wrk(t, opt.connections, opt.warmup, watch(t));
    console.log("ok");
  }
  const loaded = new Map<string, WrkResult[]>(targets.map((t) => [t.name, []]));
  const light = new Map<string, WrkResult[]>(targets.map((t) => [t.name, []]));
  for (let round = 1; round <= opt.rounds; round++) {
    process.stdout.write(`round ${round}/${opt.rounds}:`);
    for (const t of targets) {
      process.stdout.write(` ${t.name}`);
      loaded.get(t.name)?.push(await wrk(t, opt.connections, opt.duration, watch(t)));
      light.get(t.name)?.push(await wrk(t, 1, opt.lightDuration, watch(t)));
    }
    console.log();
  }

  console.log(
    `\nPinning (2 cores, taskset -c${HAS_TASKSET ? "" : ": MISSING, nothing pinned"}): backend on CPU ${opt.backendCpu}; ` +
      `bare proxy and Gatehouse on CPU ${opt.middleCpu}, each alone there; wrk (${opt.threads} thread) and this ` +
      `script on CPU ${opt.wrkCpu}, sharing it with the backend as in every path.\nBackend: MCP SDK McpServer, ` +
      `web-standard Streamable HTTP transport, JSON responses, ${opt.backendMode}. Gatehouse: ` +
      `${opt.binary ? "dist/gatehouse" : "bun src/main.ts"}, LOG_LEVEL=warn. Median of ${opt.rounds} interleaved rounds.`,
  );
  report(`Loaded: ${opt.connections} connections, ${opt.duration} per round`, targets, loaded);
  report(`Light (latency): 1 connection, ${opt.lightDuration} per round`, targets, light);

  for (const [name, r] of [...loaded, ...light].flatMap(([n, runs]) => runs.map((x) => [n, x] as const))) {
    if (errors(r) === 0) continue;
    console.log(
      `!! ${name}: ${r.non2xx} non-2xx, ${r.rpcErrors} JSON-RPC errors, socket errors connect ${r.connect} read ` +
        `${r.read} write ${r.write} timeout ${r.timeout}; first bad answer: ${r.sample}`,
    );
  }
  if (opt.audit) {
    const text = await Bun.file(auditFile)
      .text()
      .catch(() => "");
    console.log(`\nAudit file: ${text.split("\n").filter(Boolean).length} records written by gatehouse+audit.`);
  }

  const rps = (m: Map<string, WrkResult[]>, n: string) => median(m.get(n) ?? [])?.rps ?? Number.NaN;
  const p50 = (m: Map<string, WrkResult[]>, n: string) => (median(m.get(n) ?? [])?.p50 ?? Number.NaN) / 1000;
  const ratio = rps(loaded, "gatehouse") / rps(loaded, "bare proxy");
  const added = (m: Map<string, WrkResult[]>) => p50(m, "gatehouse") - p50(m, "direct");
  console.log("\nTargets");
  const rows = [
    ["Gatehouse / bare proxy req/s", "≥ 0.90", ratio.toFixed(2), verdict(ratio >= 0.9)],
    [`Gatehouse p50 − direct p50, ${opt.connections} conns`, "≤ 1 ms", `${added(loaded).toFixed(2)} ms`],
    ["Gatehouse p50 − direct p50, 1 conn", "≤ 1 ms", `${added(light).toFixed(2)} ms`],
  ];
  rows[1]?.push(verdict(added(loaded) <= 1));
  rows[2]?.push(verdict(added(light) <= 1));
  if (opt.audit) {
    const auditRatio = rps(loaded, "gatehouse+audit") / rps(loaded, "bare proxy");
    rows.push(["(info) Gatehouse+audit / bare proxy", "≥ 0.90", auditRatio.toFixed(2), verdict(auditRatio >= 0.9)]);
  }
  table(["target", "goal", "measured", ""], rows);
  console.log(
    `(With ${opt.connections} connections p50 is mostly queueing: ≈ connections ÷ req/s. The 1-connection row is ` +
      "the latency the hop itself adds.)",
  );
}

try {
  await main();
} catch (e) {
  console.error(`\nthroughput benchmark failed: ${(e as Error).stack ?? e}`);
  process.exitCode = 1;
} finally {
  await stopAll();
}
