// Paths to the real parts the tests run: the repository, Bun, and the MCP reference server.

import { join, resolve } from "node:path";

export const ROOT = resolve(import.meta.dir, "../..");
export const BUN = process.execPath;
export const EVERYTHING = join(ROOT, "node_modules/@modelcontextprotocol/server-everything/dist/index.js");
export const MAIN = join(ROOT, "src/main.ts");
export const BINARY = join(ROOT, "dist/gatehouse");
export const DENO = join(ROOT, "node_modules/.bin/deno");

/** A server-everything stdio entry for servers.json (run with Bun: faster start than Node). */
export function everythingStdio(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { command: BUN, args: [EVERYTHING, "stdio"], ...extra };
}

let built: Promise<void> | undefined;

/** Builds dist/gatehouse once per test run (`bun run build.ts`), for the tests that run the compiled binary. */
export function ensureBinary(): Promise<void> {
  built ??= (async () => {
    const build = Bun.spawn([BUN, "run", "build.ts"], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
    if ((await build.exited) !== 0) throw new Error(`build failed:\n${await new Response(build.stderr).text()}`);
  })();
  return built;
}
