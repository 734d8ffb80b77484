// Idle memory: RSS of the compiled binary dist/gatehouse (built with `bun run build.ts` if missing) and, for
// comparison, of `bun src/main.ts`, each serving a small config (one HTTP backend, the fast backend): first after a
// few seconds without any request, then idle again after one session and one tools/call (backend connected).
// Run: `bun bench/idle.ts [--idle-ms 5000]` (see README.md).

import { statSync } from "node:fs";
import {
  BINARY,
  callEcho,
  ensureBinary,
  flags,
  HAS_TASKSET,
  mb,
  openSession,
  rss,
  startFastBackend,
  startGatehouse,
  stopAll,
  TOKEN,
  table,
  verdict,
  writeGatehouseConfig,
} from "./lib.ts";

const flag = flags();
const opt = {
  idleMs: Number(flag("idle-ms", "5000")),
  gatehouseCpu: flag("gatehouse-cpu", "1"),
  backendCpu: flag("backend-cpu", "0"),
};
const LIMIT_MB = 80;

async function measure(kind: "binary" | "source", config: string) {
  const gh = await startGatehouse(config, { cpus: opt.gatehouseCpu, binary: kind === "binary", name: kind });
  try {
    await Bun.sleep(opt.idleMs);
    const idle = await rss(gh.pid);
    const session = await openSession(gh.url, TOKEN);
    await callEcho(gh.url, "fast__echo", session, TOKEN);
    await Bun.sleep(opt.idleMs);
    const afterCall = await rss(gh.pid);
    return { kind, idle, afterCall };
  } finally {
    await gh.stop();
  }
}

async function main() {
  ensureBinary();
  const backend = await startFastBackend(opt.backendCpu);
  const config = writeGatehouseConfig(backend.url);
  const results = [await measure("binary", config), await measure("source", config)];

  console.log(
    `Pinning: ${HAS_TASKSET ? "taskset -c" : "NOT PINNED (taskset missing)"} — Gatehouse on CPU ${opt.gatehouseCpu}, ` +
      `fast backend on CPU ${opt.backendCpu} (pinning hardly matters for memory).`,
  );
  console.log(
    `Config: one HTTP backend, bearer token, role ACL, audit off, LOG_LEVEL=warn. Idle = ${opt.idleMs / 1000} s ` +
      `without requests. Binary: ${BINARY} (${(statSync(BINARY).size / 2 ** 20).toFixed(0)} MB on disk).\n`,
  );
  table(
    ["gatehouse", "RSS idle", "peak so far", "RSS idle after 1 call", "peak so far", `idle < ${LIMIT_MB} MB`],
    results.map((r) => [
      r.kind === "binary" ? "dist/gatehouse" : "bun src/main.ts",
      mb(r.idle.rss),
      mb(r.idle.peak),
      mb(r.afterCall.rss),
      mb(r.afterCall.peak),
      r.kind === "binary" ? verdict(r.idle.rss < LIMIT_MB && r.afterCall.rss < LIMIT_MB) : "(comparison)",
    ]),
  );
}

try {
  await main();
} catch (e) {
  console.error(`\nidle benchmark failed: ${(e as Error).stack ?? e}`);
  process.exitCode = 1;
} finally {
  await stopAll();
}
