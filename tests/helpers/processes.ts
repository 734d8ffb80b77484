// Real backend processes for end-to-end tests: server-everything over Streamable HTTP or the 2024-11-05 SSE
// transport, on a free port, stopped by the test (and killed after the tests if a test failed first).

import type { Subprocess } from "bun";
import { onCleanup } from "./cleanup.ts";
import { freePort } from "./net.ts";
import { BUN, EVERYTHING } from "./paths.ts";

export interface BackendProcess {
  url: string;
  proc: Subprocess;
  stop(): Promise<void>;
}

/** Descendant pids of a process (children first), from /proc. */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  const proc = Bun.spawnSync(["pgrep", "-P", String(pid)]);
  for (const line of proc.stdout.toString().split("\n")) {
    const child = Number(line.trim());
    if (child > 0) out.push(child, ...childPids(child));
  }
  return out;
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitFor(proc: Subprocess<"ignore", "pipe", "pipe">, pattern: RegExp, what: string): Promise<void> {
  let out = "";
  const d = new TextDecoder();
  const deadline = Date.now() + 20_000;
  const reader = proc.stderr.getReader();
  let pending = reader.read();
  while (!pattern.test(out)) {
    const r = await Promise.race([pending, Bun.sleep(200).then(() => null)]);
    if (r) {
      if (!r.done) out += d.decode(r.value);
      pending = reader.read();
    }
    if (Date.now() > deadline || proc.exitCode !== null) throw new Error(`${what} did not start:\n${out}`);
  }
  // The read still pending is abandoned (releaseLock rejects it); the rest of stderr is drained.
  pending.catch(() => {});
  reader.releaseLock();
  void proc.stderr.pipeTo(new WritableStream());
}

/** server-everything in `streamableHttp` (endpoint /mcp) or `sse` (endpoint /sse) mode. */
export async function startEverything(mode: "streamableHttp" | "sse"): Promise<BackendProcess> {
  const port = await freePort();
  const proc = Bun.spawn([BUN, EVERYTHING, mode], {
    env: { PATH: process.env.PATH ?? "", PORT: String(port) },
    stdin: "ignore",
    stdout: "ignore",
    stderr: "pipe",
  }) as unknown as Subprocess<"ignore", "pipe", "pipe">;
  const forget = onCleanup(() => {
    proc.kill("SIGKILL");
  });
  try {
    await waitFor(proc, /listening on port|running on port/i, `server-everything ${mode}`);
  } catch (e) {
    proc.kill("SIGKILL");
    throw e;
  }
  return {
    url: `http://127.0.0.1:${port}/${mode === "sse" ? "sse" : "mcp"}`,
    proc,
    async stop() {
      forget();
      proc.kill("SIGKILL");
      await proc.exited;
    },
  };
}
