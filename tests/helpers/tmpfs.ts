// A small real filesystem that can be filled up: a tmpfs mounted by the test (root only; `.ci/run` runs as root),
// unmounted after the tests even when one fails. Where mounting is impossible the tests that need it are skipped —
// unless GATEHOUSE_REQUIRE_ALL is set (CI), then they fail.

import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { onCleanup } from "./cleanup.ts";
import { tempDir } from "./temp.ts";

export interface SmallDisk {
  dir: string;
  /** Fills the disk with a file until no byte fits. */
  fill(): void;
  /** Frees what fill() took. */
  free(): void;
  unmount(): void;
}

export function mountTmpfs(sizeKb: number): SmallDisk | undefined {
  const dir = tempDir("gatehouse-tmpfs-");
  const r = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", `size=${sizeKb}k,mode=0700`, "tmpfs", dir]);
  if (r.exitCode !== 0) {
    const why = `cannot mount a tmpfs (${r.stderr.toString().trim() || `exit ${r.exitCode}`}): run the tests as root`;
    if (process.env.GATEHOUSE_REQUIRE_ALL) throw new Error(why);
    console.warn(`skipping full-disk tests: ${why}`);
    return undefined;
  }
  let mounted = true;
  const unmount = () => {
    if (!mounted) return;
    mounted = false;
    Bun.spawnSync(["umount", "-l", dir]);
  };
  const forget = onCleanup(unmount);
  const filler = join(dir, "filler");
  return {
    dir,
    fill() {
      // dd stops at ENOSPC; then the last partial block is used up byte by byte.
      Bun.spawnSync(["dd", "if=/dev/zero", `of=${filler}`, "bs=4096"], { stderr: "ignore" });
      for (let i = 0; i < 64; i++) {
        try {
          writeFileSync(join(dir, `crumb${i}`), "x".repeat(64));
        } catch {
          break;
        }
      }
    },
    free() {
      rmSync(filler, { force: true });
      for (let i = 0; i < 64; i++) rmSync(join(dir, `crumb${i}`), { force: true });
    },
    unmount() {
      forget();
      unmount();
    },
  };
}
