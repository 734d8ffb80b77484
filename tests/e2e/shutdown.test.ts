// Stopping Gatehouse stops every backend with what it started, even one that ignores SIGTERM under a wrapper
// (`sh -c …`, as `npx -y …` is): SIGTERM to its process group, SIGKILL after the grace period; and a second signal
// while stopping (Ctrl-C twice) stops at once, killing the backends' groups rather than leaving them running.

import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { connect } from "../helpers/client.ts";
import { startGatehouse } from "../helpers/gatehouse-process.ts";
import { freePort } from "../helpers/net.ts";
import { BUN, ROOT } from "../helpers/paths.ts";
import { writeConfig } from "../helpers/temp.ts";

/** Running, not a zombie waiting to be reaped. */
function alive(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.[0] !== "Z";
  } catch {
    return false;
  }
}

/** The pids whose command line names `marker`. */
function pidsOf(marker: string): number[] {
  const r = Bun.spawnSync(["pgrep", "-f", marker]);
  return r.stdout.toString().split("\n").filter(Boolean).map(Number);
}

async function gone(pids: number[]): Promise<boolean> {
  for (let i = 0; i < 40 && pids.some(alive); i++) await Bun.sleep(100);
  return !pids.some(alive);
}

async function withStubbornBackend() {
  const port = await freePort();
  // The server ignores SIGTERM (inherited through exec), under a shell that stays its parent.
  const script = `trap '' TERM; ${BUN} ${ROOT}/tests/fixtures/http-backend.ts --port ${port}; true`;
  const gh = await startGatehouse({
    config: writeConfig({ mcpServers: { s: { command: "/bin/sh", args: ["-c", script], port } } }),
  });
  const client = await connect(`${gh.url}/mcp`);
  expect((await client.listTools()).tools.map((t) => t.name)).toContain("s__echo");
  await client.close();
  const pids = pidsOf(`http-backend.ts --port ${port}`);
  expect(pids.length).toBeGreaterThan(0);
  return { gh, pids };
}

test("SIGTERM: a backend that ignores SIGTERM under a wrapper is killed after the grace period; exit 0", async () => {
  const { gh, pids } = await withStubbornBackend();
  expect(await gh.stop("SIGTERM")).toBe(0);
  expect(await gone(pids)).toBe(true);
}, 30_000);

test("a second signal while stopping: exit 1 at once, the backends' groups killed", async () => {
  const { gh, pids } = await withStubbornBackend();
  gh.proc.kill("SIGTERM");
  await gh.waitForLog("shutting down");
  gh.proc.kill("SIGINT");
  expect(await gh.proc.exited).toBe(1);
  await gh.waitForLog(/second signal: stopping now .*backend_groups_killed=1/);
  expect(await gone(pids)).toBe(true);
}, 30_000);
