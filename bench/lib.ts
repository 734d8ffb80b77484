// Shared parts of the benchmarks: flags, CPU pinning with taskset, starting the fast backend, the bare proxy and
// Gatehouse as real processes (and stopping them, also on failure), an MCP session handshake, RSS and CPU time from
// /proc, and printing tables.

import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";

export const ROOT = resolve(import.meta.dir, "..");
export const BUN = process.execPath;
export const MAIN = join(ROOT, "src/main.ts");
export const BINARY = join(ROOT, "dist/gatehouse");
export const TOKEN = "bench-token-0123456789abcdef";
export const PROTOCOL_VERSION = "2025-11-25";

// --- flags -----------------------------------------------------------------------------------------------------

/** `--name value`, `--name=value` and bare `--flag` (→ "true"); BENCH_NAME in the environment is the fallback. */
export function flags(argv = process.argv.slice(2)): (name: string, fallback: string) => string {
  const out = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (!a.startsWith("--")) continue;
    const eq = a.indexOf("=");
    if (eq > 0) out.set(a.slice(2, eq), a.slice(eq + 1));
    else if (argv[i + 1] !== undefined && !argv[i + 1]?.startsWith("--")) out.set(a.slice(2), argv[++i] as string);
    else out.set(a.slice(2), "true");
  }
  return (name, fallback) => out.get(name) ?? process.env[`BENCH_${name.toUpperCase().replace(/-/g, "_")}`] ?? fallback;
}

// --- processes ---------------------------------------------------------------------------------------------------

export const HAS_TASKSET = Bun.which("taskset") !== null;

/** The command prefixed with `taskset -c <cpus>` (unchanged when cpus is "" or "none", or taskset is missing). */
export function pinned(cmd: string[], cpus: string): string[] {
  return HAS_TASKSET && cpus !== "" && cpus !== "none" ? ["taskset", "-c", cpus, ...cmd] : cmd;
}

/** Pins this process (every thread) to `cpus`, for benchmarks whose client runs in-process. */
export function pinSelf(cpus: string): void {
  if (!HAS_TASKSET || cpus === "" || cpus === "none") return;
  Bun.spawnSync(["taskset", "-a", "-p", "-c", cpus, String(process.pid)], { stdout: "ignore" });
}

export interface Proc {
  name: string;
  pid: number;
  proc: Subprocess;
  /** Everything it printed so far (stdout and stderr). */
  output(): string;
  stop(): Promise<void>;
}

const live = new Set<Proc>();
const tempDirs: string[] = [];
function killAll() {
  for (const p of live) p.proc.kill("SIGKILL");
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
}
process.on("exit", killAll);
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    killAll();
    process.exit(130);
  });
}

/** Stops every process this benchmark started (SIGTERM, then SIGKILL after 5 s). */
export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((p) => p.stop()));
}

/** Spawns a process and waits until its output matches `ready` (taskset execs, so the pid is the command's). */
export async function start(
  name: string,
  cmd: string[],
  options: {
    cpus: string;
    /** Output to wait for, or a probe that resolves true once the process serves. */
    ready: RegExp | (() => Promise<boolean>);
    env?: Record<string, string | undefined>;
  },
): Promise<Proc> {
  const proc = Bun.spawn(pinned(cmd, options.cpus), {
    cwd: ROOT,
    env: { ...process.env, ...options.env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  let out = "";
  const pump = async (s: ReadableStream<Uint8Array>) => {
    const d = new TextDecoder();
    for await (const chunk of s) out = (out + d.decode(chunk)).slice(-200_000);
  };
  void pump(proc.stdout);
  void pump(proc.stderr);
  const p: Proc = {
    name,
    pid: proc.pid,
    proc,
    output: () => out,
    async stop() {
      live.delete(p);
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), 5000);
      await proc.exited;
      clearTimeout(timer);
    },
  };
  live.add(p);
  const ready = options.ready;
  const isReady = async () => (ready instanceof RegExp ? ready.test(out) : await ready());
  const deadline = Date.now() + 30_000;
  while (!(await isReady())) {
    if (proc.exitCode !== null || Date.now() > deadline) {
      await p.stop();
      throw new Error(`${name} did not start (exit ${proc.exitCode}):\n${out}`);
    }
    await Bun.sleep(20);
  }
  return p;
}

export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolvePort(port));
    });
  });
}

export function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "gatehouse-bench-"));
  tempDirs.push(d);
  return d;
}

// --- the parts under test --------------------------------------------------------------------------------------

export type BackendMode = "stateful" | "stateless";

export async function startFastBackend(cpus: string, mode: BackendMode = "stateful"): Promise<Proc & { url: string }> {
  const port = await freePort();
  const p = await start("backend", [BUN, join(import.meta.dir, "fast-backend.ts")], {
    cpus,
    ready: /listening/,
    env: { PORT: String(port), MODE: mode },
  });
  return Object.assign(p, { url: `http://127.0.0.1:${port}/mcp` });
}

export async function startBareProxy(cpus: string, target: string): Promise<Proc & { url: string }> {
  const port = await freePort();
  const p = await start("bare proxy", [BUN, join(import.meta.dir, "bare-proxy.ts")], {
    cpus,
    ready: /listening/,
    env: { PORT: String(port), TARGET: target },
  });
  return Object.assign(p, { url: `http://127.0.0.1:${port}/mcp` });
}

/**
 * A servers.json with one HTTP backend `fast`, a bearer token and a role ACL (deny by default, `echo` granted,
 * `admin_*` denied), so a call is authenticated, authorised and renamed (`fast__echo` → `echo`).
 * `auditFile` turns audit on, writing JSON lines there (the log output would be filtered out at LOG_LEVEL=warn);
 * `gateway` is the config's gateway block.
 */
export function writeGatehouseConfig(
  backendUrl: string,
  options: { auditFile?: string; gateway?: Record<string, unknown> } = {},
): string {
  const { auditFile, gateway } = options;
  const config = {
    mcpServers: { fast: { url: backendUrl, idle_timeout: "never" } },
    serverAuth: {
      providers: ["bearer"],
      bearer: { tokens: { [TOKEN]: { subject: "bench", roles: ["caller"] } } },
      acl: {
        default: "deny",
        roles: {
          caller: [
            { server: "fast", access: "*", tools: ["echo"] },
            { server: "*", access: "*", tools: ["admin_*"], deny: true },
          ],
        },
      },
    },
    audit: auditFile ? { enabled: true, output: "file", path: auditFile } : { enabled: false },
    ...(gateway ? { gateway } : {}),
  };
  const path = join(tempDir(), "servers.json");
  writeFileSync(path, JSON.stringify(config, null, 2));
  return path;
}

export async function startGatehouse(
  config: string,
  options: { cpus: string; binary?: boolean; name?: string },
): Promise<Proc & { url: string }> {
  const port = await freePort();
  const base = options.binary ? [BINARY] : [BUN, MAIN];
  const url = `http://127.0.0.1:${port}`;
  // At LOG_LEVEL=warn (info would log every session) the "listening" line is not printed: /health is polled.
  const healthy = () =>
    fetch(`${url}/health`).then(
      (r) => r.ok,
      () => false,
    );
  const p = await start(options.name ?? "gatehouse", [...base, "serve", "--config", config, "--bind", url.slice(7)], {
    cpus: options.cpus,
    ready: healthy,
    env: { LOG_LEVEL: "warn" },
  });
  return Object.assign(p, { url: `${url}/mcp` });
}

/** Builds dist/gatehouse with `bun run build.ts` when it is missing. */
export function ensureBinary(): void {
  if (existsSync(BINARY)) return;
  console.log("dist/gatehouse is missing: building it with `bun run build.ts` …");
  const r = Bun.spawnSync([BUN, "run", join(ROOT, "build.ts")], { cwd: ROOT, stdout: "inherit", stderr: "inherit" });
  if (r.exitCode !== 0) throw new Error("bun run build.ts failed");
}

// --- MCP client bits ---------------------------------------------------------------------------------------------

export function mcpHeaders(session?: string, token?: string): Record<string, string> {
  const h: Record<string, string> = {
    "content-type": "application/json",
    accept: "application/json, text/event-stream",
    "mcp-protocol-version": PROTOCOL_VERSION,
  };
  if (session) h["mcp-session-id"] = session;
  if (token) h.authorization = `Bearer ${token}`;
  return h;
}

/** initialize + notifications/initialized; returns the Mcp-Session-Id (undefined from a stateless server). */
export async function openSession(url: string, token?: string): Promise<string | undefined> {
  const res = await fetch(url, {
    method: "POST",
    headers: mcpHeaders(undefined, token),
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 0,
      method: "initialize",
      params: { protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: "bench", version: "1" } },
    }),
  });
  if (res.status !== 200) throw new Error(`initialize at ${url}: HTTP ${res.status} ${await res.text()}`);
  await res.text();
  const session = res.headers.get("mcp-session-id") ?? undefined;
  const ack = await fetch(url, {
    method: "POST",
    headers: mcpHeaders(session, token),
    body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }),
  });
  await ack.text();
  return session;
}

/** One tools/call; returns the text of its first content item, or throws with what came back instead. */
export async function callEcho(url: string, tool: string, session?: string, token?: string): Promise<string> {
  const res = await fetch(url, {
    method: "POST",
    headers: mcpHeaders(session, token),
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "tools/call",
      params: { name: tool, arguments: { message: "hi" } },
    }),
  });
  const text = await res.text();
  const body = JSON.parse(text) as { result?: { content?: { text?: string }[] } };
  const out = body.result?.content?.[0]?.text;
  if (res.status !== 200 || out === undefined)
    throw new Error(`tools/call ${tool} at ${url}: HTTP ${res.status} ${text}`);
  return out;
}

// --- OAuth ---

/** A public client registered at /register (RFC 7591), for the code flow below. */
export async function registerClient(base: string, redirect: string): Promise<string> {
  const res = await fetch(`${base}/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ client_name: "bench", redirect_uris: [redirect], token_endpoint_auth_method: "none" }),
  });
  const body = (await res.json()) as { client_id?: string };
  if (!body.client_id) throw new Error(`registration at ${base}: ${res.status} ${JSON.stringify(body)}`);
  return body.client_id;
}

/** An access token for /mcp: the authorization code flow, the user named by the trusted header (X-Forwarded-User). */
export async function accessToken(base: string, client?: string, redirect = "http://127.0.0.1:1/cb"): Promise<string> {
  const CLIENT = client ?? (await registerClient(base, redirect));
  const REDIRECT = redirect;
  const verifier = randomBytes(32).toString("base64url");
  const challenge = createHash("sha256").update(verifier).digest("base64url");
  const q = new URLSearchParams({
    response_type: "code",
    client_id: CLIENT,
    redirect_uri: REDIRECT,
    code_challenge: challenge,
    code_challenge_method: "S256",
    scope: "mcp",
  });
  const user = { "x-forwarded-user": "bench" };
  const page = await fetch(`${base}/authorize?${q}`, { headers: user, redirect: "manual" });
  const html = await page.text();
  const field = (n: string) => new RegExp(`name="${n}" value="([^"]+)"`).exec(html)?.[1] ?? "";
  // Consent given before (through another replica of the same shared state) goes straight to the code.
  const answer =
    page.status === 302
      ? page
      : await fetch(`${base}/authorize`, {
          method: "POST",
          redirect: "manual",
          headers: {
            ...user,
            cookie: (page.headers.get("set-cookie") ?? "").split(";")[0] as string,
            "content-type": "application/x-www-form-urlencoded",
          },
          body: new URLSearchParams({
            request_id: field("request_id"),
            csrf: field("csrf"),
            decision: "approve",
          }).toString(),
        });
  const code = new URL(answer.headers.get("location") ?? "http://x/").searchParams.get("code");
  if (!code) throw new Error(`no code from ${base}: ${answer.status}`);
  const res = await fetch(`${base}/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code,
      redirect_uri: REDIRECT,
      code_verifier: verifier,
      client_id: CLIENT,
    }).toString(),
  });
  const t = (await res.json()) as { access_token?: string };
  if (!t.access_token) throw new Error(`no token from ${base}: ${res.status}`);
  return t.access_token;
}

// --- wrk ---------------------------------------------------------------------------------------------------------

/** What tools-call.lua prints (latencies in µs), plus CPU use (% of one core) of each process during the run. */
export interface WrkResult {
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
  rps: number;
  cpu: Record<string, number>;
  /** CPU seconds each watched process used during the run. */
  cpuSeconds: Record<string, number>;
}

export interface Target {
  name: string;
  url: string;
  tool: string;
  session?: string;
  /** The bearer token to send (default TOKEN). */
  token?: string;
  /** The process between wrk and the backend (none for direct). */
  middle?: Proc;
}

/** Runs wrk with tools-call.lua against a target, reading the CPU time of `watch` before and after from /proc. */
export async function runWrk(
  t: Target,
  connections: number,
  duration: string,
  watch: Proc[],
  o: { threads: number; cpus: string },
): Promise<WrkResult> {
  const cmd = ["wrk", "--latency", `-t${Math.min(o.threads, connections)}`, `-c${connections}`, `-d${duration}`];
  cmd.push("--timeout", "10s", "-s", join(import.meta.dir, "tools-call.lua"), t.url);
  const before = await Promise.all(watch.map((p) => cpuSeconds(p.pid)));
  const started = performance.now();
  const proc = Bun.spawn(pinned(cmd, o.cpus), {
    env: { ...process.env, TOOL: t.tool, SESSION: t.session ?? "", TOKEN: t.token ?? TOKEN },
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
  r.rps = r.requests / r.seconds;
  r.cpu = { wrk: ((Number(proc.resourceUsage()?.cpuTime.total ?? 0) / 1e6) * 100) / wall };
  r.cpuSeconds = {};
  watch.forEach((p, i) => {
    const used = (after[i] ?? 0) - (before[i] ?? 0);
    r.cpuSeconds[p.name] = used;
    r.cpu[p.name] = (used * 100) / wall;
  });
  return r;
}

export const errors = (r: WrkResult) => r.non2xx + r.rpcErrors + r.connect + r.read + r.write + r.timeout;
/** The round with the median req/s (its latencies and CPU figures come with it). */
export const median = (runs: WrkResult[]) => [...runs].sort((a, b) => a.rps - b.rps)[Math.floor(runs.length / 2)];

// --- /proc -------------------------------------------------------------------------------------------------------

/** VmRSS and VmHWM (peak RSS) of a process, in MB. */
export async function rss(pid: number): Promise<{ rss: number; peak: number }> {
  const status = await Bun.file(`/proc/${pid}/status`).text();
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? Number.NaN);
  return { rss: kb("VmRSS") / 1024, peak: kb("VmHWM") / 1024 };
}

const CLK_TCK = Number(Bun.spawnSync(["getconf", "CLK_TCK"]).stdout.toString().trim()) || 100;

/** CPU seconds (user + system, every thread) a process has used so far. */
export async function cpuSeconds(pid: number): Promise<number> {
  try {
    const stat = await Bun.file(`/proc/${pid}/stat`).text();
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return Number.NaN;
  }
}

// --- output ------------------------------------------------------------------------------------------------------

export const verdict = (ok: boolean) => (ok ? "PASS" : "MISS");
export const mb = (n: number) => `${n.toFixed(1)} MB`;

/** Prints rows under a header, columns aligned (numbers right, text left). */
export function table(header: string[], rows: (string | number)[][]): void {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (/^-?[\d.]+( \w+|%|x)?$/.test(c) ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
      .join("  ");
  console.log(line(header));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const r of cells.slice(1)) console.log(line(r));
}
