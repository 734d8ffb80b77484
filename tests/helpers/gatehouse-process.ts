// Starts Gatehouse as a real process (from source with Bun, or the compiled binary) on a free loopback port, waits
// until it listens, and stops it (SIGTERM, then SIGKILL) — also when a test fails.

import type { Subprocess } from "bun";
import { onCleanup } from "./cleanup.ts";
import { freePort } from "./net.ts";
import { BINARY, BUN, DENO, MAIN, ROOT } from "./paths.ts";

export interface Running {
  url: string;
  port: number;
  proc: Subprocess<"ignore", "pipe", "pipe">;
  /** Everything the process logged so far. */
  logs(): string;
  /** Resolves with the logs once they contain `text` (its stderr arrives asynchronously); throws after 10 s. */
  waitForLog(text: string | RegExp): Promise<string>;
  stop(signal?: "SIGTERM" | "SIGINT"): Promise<number | null>;
}

export async function startGatehouse(options: {
  /** servers.json to load; omitted: none (env-only mode, from options.env). */
  config?: string;
  /** Listen on this port (default: a free one). */
  port?: number;
  binary?: boolean;
  /** Run `deno run -A src/main.ts` instead of Bun. */
  deno?: boolean;
  env?: Record<string, string>;
  args?: string[];
  /** What to wait for in the log before returning (default: the "listening" line). */
  ready?: RegExp;
}): Promise<Running> {
  const port = options.port ?? (await freePort());
  const base = options.binary ? [BINARY] : options.deno ? [DENO, "run", "-A", MAIN] : [BUN, MAIN];
  const config = options.config === undefined ? [] : ["--config", options.config];
  const cmd = [...base, "serve", ...config, "--bind", `127.0.0.1:${port}`, ...(options.args ?? [])];
  const proc = Bun.spawn(cmd, {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: "debug", ...options.env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  let out = "";
  const pump = async (s: ReadableStream<Uint8Array>) => {
    const d = new TextDecoder();
    for await (const chunk of s) out += d.decode(chunk);
  };
  void pump(proc.stdout);
  void pump(proc.stderr);
  const forget = onCleanup(() => {
    proc.kill("SIGKILL");
  });
  const ready = options.ready ?? /listening/;
  const deadline = Date.now() + 20_000;
  while (!ready.test(out)) {
    if (proc.exitCode !== null || Date.now() > deadline) {
      proc.kill("SIGKILL");
      throw new Error(`gatehouse did not start (exit ${proc.exitCode}):\n${out}`);
    }
    await Bun.sleep(25);
  }
  const r: Running = {
    url: `http://127.0.0.1:${port}`,
    port,
    proc,
    logs: () => out,
    async waitForLog(text) {
      const deadline = Date.now() + 10_000;
      const found = () => (typeof text === "string" ? out.includes(text) : text.test(out));
      while (!found()) {
        if (Date.now() > deadline) throw new Error(`the log never showed ${text}:\n${out.slice(-3000)}`);
        await Bun.sleep(20);
      }
      return out;
    },
    async stop(signal = "SIGTERM") {
      forget();
      if (proc.exitCode !== null) return proc.exitCode;
      proc.kill(signal);
      const timer = setTimeout(() => proc.kill("SIGKILL"), 15_000);
      const code = await proc.exited;
      clearTimeout(timer);
      return code;
    },
  };
  return r;
}
