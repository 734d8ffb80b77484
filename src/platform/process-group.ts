// A backend's process group: spawned with setsid (Bun's and Deno's `detached`), the child leads a group of its own,
// so one signal reaches what it started (sh -c → npx → node). node:fs and node:process exist under Bun and Deno.

import { existsSync, readdirSync, readFileSync } from "node:fs";
import process from "node:process";

/** Signals the group led by `pgid`; false when no process of it is left to signal. */
export function signalGroup(pgid: number, signal: "SIGTERM" | "SIGKILL"): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether a process of group `pgid` is still running. Linux: from /proc, not counting zombies (an orphan waits there
 * until whoever adopted it reaps it, which may be never in a container); elsewhere: whether the group exists at all.
 */
export function groupRunning(pgid: number): boolean {
  // The cheap answer first: no process of the group at all (the common case once it was stopped).
  try {
    process.kill(-pgid, 0);
  } catch {
    return false;
  }
  if (!existsSync("/proc/self/stat")) return true;
  for (const name of readdirSync("/proc")) {
    if (name.charCodeAt(0) > 57) continue; // not a pid
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // state ppid pgrp …
      if (Number(fields[2]) === pgid && fields[0] !== "Z") return true;
    } catch {
      // gone meanwhile
    }
  }
  return false;
}

/** The groups of children whose leader is still running (a pgid cannot be reused while its leader lives). */
const leaders = new Set<number>();

/** Remembers a child's group until the child exits, for killAllGroups(). */
export function trackGroup(pgid: number, exited: Promise<unknown>): void {
  leaders.add(pgid);
  void exited.finally(() => leaders.delete(pgid));
}

/** SIGKILL to every backend group still led by a running child: the way out when a clean stop is not awaited. */
export function killAllGroups(): number {
  let n = 0;
  for (const pgid of leaders) if (signalGroup(pgid, "SIGKILL")) n++;
  return n;
}
