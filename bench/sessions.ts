// Memory with many clients: opens 1,000 Gatehouse sessions (initialize, one tools/call) each holding a GET SSE
// stream open, and reports Gatehouse's RSS before, with everything open, its peak (VmHWM) and after the clients
// leave. Streams are raw sockets, so the client costs little; keep-alives (gateway.sseKeepalive) prove they live.
// Run: `bun bench/sessions.ts [--sessions 1000] [--target source|binary|both]` (see README.md).

import type { Socket } from "bun";
import {
  BINARY,
  callEcho,
  ensureBinary,
  flags,
  HAS_TASKSET,
  mb,
  openSession,
  pinSelf,
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
  sessions: Number(flag("sessions", "1000")),
  target: flag("target", "both"),
  concurrency: Number(flag("concurrency", "50")),
  holdMs: Number(flag("hold-ms", "6000")),
  keepalive: flag("keepalive", "5s"),
  backendCpu: flag("backend-cpu", "0"),
  gatehouseCpu: flag("gatehouse-cpu", "1"),
  clientCpu: flag("client-cpu", "0"),
};
const LIMIT_MB = 200;

interface StreamState {
  head: string;
  status: number;
  sentAt: number;
  /** When the response's status line and headers arrived (ms after the request was sent). */
  headersAfterMs?: number;
  keepalives: number;
  closed: boolean;
}

/** Sends GET /mcp (Accept: text/event-stream) on a raw socket; the socket then just counts what arrives. */
async function openStream(url: URL, session: string): Promise<{ socket: Socket<StreamState>; state: StreamState }> {
  const state: StreamState = { head: "", status: 0, sentAt: performance.now(), keepalives: 0, closed: false };
  const socket = await Bun.connect<StreamState>({
    hostname: url.hostname,
    port: Number(url.port),
    data: state,
    socket: {
      data(s, chunk) {
        const text = chunk.toString();
        if (s.data.status === 0) {
          s.data.head += text;
          const m = /^HTTP\/1\.1 (\d{3})/.exec(s.data.head);
          if (m && s.data.head.includes("\r\n\r\n")) {
            s.data.status = Number(m[1]);
            s.data.headersAfterMs = performance.now() - s.data.sentAt;
          }
        }
        s.data.keepalives += text.split(": keepalive").length - 1;
      },
      close(s) {
        s.data.closed = true;
      },
      error(s) {
        s.data.closed = true;
      },
    },
  });
  state.sentAt = performance.now();
  socket.write(
    `GET ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: Bearer ${TOKEN}\r\n` +
      `Accept: text/event-stream\r\nMcp-Session-Id: ${session}\r\nMCP-Protocol-Version: 2025-11-25\r\n\r\n`,
  );
  return { socket, state };
}

/** Runs `task` for 0…n-1 with at most `limit` at a time. */
async function pool<T>(n: number, limit: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, n) }, async () => {
      while (next < n) {
        const i = next++;
        out[i] = await task(i);
      }
    }),
  );
  return out;
}

function fdLimits(): { soft: string; hard: string } {
  const run = (flagName: string) =>
    Bun.spawnSync(["sh", "-c", `ulimit ${flagName}`])
      .stdout.toString()
      .trim() || "unknown";
  return { soft: run("-Sn"), hard: run("-Hn") };
}

async function measure(kind: "source" | "binary", backendUrl: string) {
  // sseKeepalive short enough that every stream gets a keep-alive while held: proof that it is alive.
  const config = writeGatehouseConfig(backendUrl, { gateway: { sseKeepalive: opt.keepalive } });
  const gh = await startGatehouse(config, {
    cpus: opt.gatehouseCpu,
    binary: kind === "binary",
    name: `gatehouse (${kind})`,
  });
  try {
    await Bun.sleep(2000);
    const before = await rss(gh.pid);
    const started = performance.now();
    const url = new URL(gh.url);
    const failures: string[] = [];
    const streams = await pool(opt.sessions, opt.concurrency, async () => {
      try {
        const session = await openSession(gh.url, TOKEN);
        if (!session) throw new Error("no Mcp-Session-Id");
        await callEcho(gh.url, "fast__echo", session, TOKEN);
        return await openStream(url, session);
      } catch (e) {
        failures.push((e as Error).message);
        return undefined;
      }
    });
    const openSeconds = (performance.now() - started) / 1000;
    const opened = await rss(gh.pid);
    await Bun.sleep(opt.holdMs);
    const held = await rss(gh.pid);
    const live = streams.filter((s) => s && !s.state.closed && s.state.status === 200);
    const pinged = live.filter((s) => (s?.state.keepalives ?? 0) > 0).length;
    for (const s of streams) {
      if (s && s.state.status !== 200)
        failures.push(`GET stream: ${s.state.head.split("\r\n")[0] || "no response headers"}`);
    }
    const waits = live.map((s) => s?.state.headersAfterMs ?? 0).sort((a, b) => a - b);
    const headersMs = { median: waits[Math.floor(waits.length / 2)] ?? 0, max: waits[waits.length - 1] ?? 0 };
    for (const s of streams) s?.socket?.end();
    await Bun.sleep(3000);
    const after = await rss(gh.pid);
    return {
      kind,
      before,
      opened,
      held,
      after,
      ok: live.length,
      pinged,
      failures,
      openSeconds,
      headersMs,
      log: gh.output(),
    };
  } finally {
    await gh.stop();
  }
}

async function main() {
  const kinds: ("source" | "binary")[] = opt.target === "both" ? ["source", "binary"] : [opt.target as "source"];
  if (kinds.includes("binary")) ensureBinary();
  const limits = fdLimits();
  const needed = opt.sessions + 256;
  console.log(`File descriptors: ulimit -n soft ${limits.soft}, hard ${limits.hard}; each side needs about ${needed}.`);
  if (Number(limits.soft) < needed) {
    console.log(
      `  The soft limit looks low: run \`ulimit -n ${Math.max(needed, 4096)}\` first (Bun raises its own soft`,
    );
    console.log("  limit to the hard one at start, so only a low hard limit is a real problem).");
  }
  const backend = await startFastBackend(opt.backendCpu);
  pinSelf(opt.clientCpu);
  const results = [];
  for (const kind of kinds) {
    process.stdout.write(`${kind}: opening ${opt.sessions} sessions + GET streams (${opt.concurrency} at a time) … `);
    const r = await measure(kind, backend.url);
    console.log(`opened in ${r.openSeconds.toFixed(1)} s`);
    results.push(r);
  }

  console.log(
    `\nPinning: ${HAS_TASKSET ? "taskset -c" : "NOT PINNED (taskset missing)"} — Gatehouse on CPU ${opt.gatehouseCpu}, ` +
      `fast backend on CPU ${opt.backendCpu}, this script (the client, raw sockets) on CPU ${opt.clientCpu}.`,
  );
  console.log(`Each session: initialize + notifications/initialized, one tools/call, then a GET SSE stream held open;`);
  console.log(`held ${opt.holdMs / 1000} s with gateway.sseKeepalive ${opt.keepalive}. Gatehouse binary: ${BINARY}.\n`);
  table(
    [
      "gatehouse",
      "RSS idle",
      "RSS all open",
      `RSS after ${opt.holdMs / 1000} s`,
      "peak (VmHWM)",
      "RSS after close",
      "streams open",
      "got keep-alive",
      `peak < ${LIMIT_MB} MB`,
    ],
    results.map((r) => [
      r.kind,
      mb(r.before.rss),
      mb(r.opened.rss),
      mb(r.held.rss),
      mb(Math.max(r.held.peak, r.opened.rss, r.held.rss)),
      mb(r.after.rss),
      `${r.ok}/${opt.sessions}`,
      `${r.pinged}/${r.ok}`,
      verdict(Math.max(r.held.peak, r.opened.rss) < LIMIT_MB && r.ok === opt.sessions),
    ]),
  );
  for (const r of results) {
    const per = ((r.held.rss - r.before.rss) * 1024) / Math.max(1, r.ok);
    console.log(`${r.kind}: ≈ ${per.toFixed(0)} KB of RSS per session with its stream.`);
    console.log(
      `${r.kind}: GET stream response headers arrived after ${(r.headersMs.median / 1000).toFixed(1)} s (median), ` +
        `${(r.headersMs.max / 1000).toFixed(1)} s (max)${r.headersMs.median > 1000 ? ": only with the first keep-alive" : ""}.`,
    );
    if (r.failures.length > 0)
      console.log(`!! ${r.kind}: ${r.failures.length} sessions failed; first: ${r.failures[0]}`);
    const problems = r.log.split("\n").filter((l) => /WARN|ERROR/.test(l));
    if (problems.length > 0)
      console.log(`!! ${r.kind}: Gatehouse logged ${problems.length} warnings/errors; first: ${problems[0]}`);
  }
}

try {
  await main();
} catch (e) {
  console.error(`\nsessions benchmark failed: ${(e as Error).stack ?? e}`);
  process.exitCode = 1;
} finally {
  await stopAll();
}
