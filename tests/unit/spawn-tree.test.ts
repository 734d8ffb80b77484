// Stopping a backend process stops what it started: a backend command is often a wrapper (sh -c, npx) whose server
// runs as its child, and README promises that on shutdown every child is stopped (SIGTERM, then SIGKILL).

import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { reapDescendants, stopChild } from "../../src/mcp/backends/stdio-transport.ts";
import { bunSpawner } from "../../src/platform/bun.ts";

/** Running (a zombie waiting for whoever adopted it to reap it is not). */
function alive(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.[0] !== "Z";
  } catch {
    return false;
  }
}

/** Whether `pid` stops running within a second (a signal is delivered asynchronously). */
async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 20 && alive(pid); i++) await Bun.sleep(50);
  return !alive(pid);
}

/** Spawns `sh -c script`, where the script prints its grandchild's pid first; returns both. */
async function spawnTree(script: string) {
  const child = bunSpawner.spawn({ command: "/bin/sh", args: ["-c", script], env: { PATH: process.env.PATH ?? "" } });
  const reader = child.stdout.getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return { child, grandchild: Number(text.trim()) };
}

test("the server a wrapper started is stopped with it", async () => {
  const { child, grandchild } = await spawnTree("sleep 300 & echo $!; wait");
  expect(alive(grandchild)).toBe(true);
  await stopChild(child);
  expect(await gone(grandchild)).toBe(true);
});

test("a descendant that ignores SIGTERM is killed once the grace period is over", async () => {
  // The descendant prints its pid once it ignores SIGTERM (so the signal cannot arrive before the trap is set).
  const { child, grandchild } = await spawnTree(`sh -c 'trap "" TERM; echo $$; exec sleep 300' & wait`);
  process.kill(grandchild, "SIGTERM");
  await Bun.sleep(100);
  expect(alive(grandchild)).toBe(true); // SIGTERM alone does not stop it
  await stopChild(child);
  expect(await gone(grandchild)).toBe(true);
});

test("a wrapper that exits on its own leaves nothing running: what it started is stopped after it", async () => {
  const { child, grandchild } = await spawnTree("sleep 300 & echo $!");
  await child.exited;
  expect(alive(grandchild)).toBe(true); // orphaned, still holding whatever it held
  await reapDescendants(child);
  expect(await gone(grandchild)).toBe(true);
});
