// Temporary directories and config files, removed after the tests (tests/setup.ts).

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { onCleanup } from "./cleanup.ts";

export function tempDir(prefix = "gatehouse-test-"): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  onCleanup(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** Writes a servers.json (object or raw text) into a fresh directory and returns its path. */
export function writeConfig(config: unknown, name = "servers.json"): string {
  const path = join(tempDir(), name);
  writeFileSync(path, typeof config === "string" ? config : JSON.stringify(config, null, 2));
  return path;
}
