// `bun run build.ts` compiles dist/gatehouse for this machine; `--all` also cross-compiles the release binaries
// (linux-x64, linux-x64-baseline for CPUs without AVX2, linux-x64-musl for Alpine, linux-arm64, darwin-arm64,
// windows-x64) and writes SHA256SUMS over every file the run wrote. `--outdir DIR` writes into DIR instead of dist/.
// The version comes from package.json (embedded at build).

import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import pkg from "./package.json" with { type: "json" };

const root = import.meta.dir;

const args = process.argv.slice(2);
const all = args.includes("--all");
let dist = join(root, "dist");
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === "--all") continue;
  if (a === "--outdir" && args[i + 1]) {
    dist = resolve(args[++i] as string);
    continue;
  }
  console.error(`build.ts: unknown argument ${a} (use --all to cross-compile, --outdir DIR to write elsewhere)`);
  process.exit(2);
}
mkdirSync(dist, { recursive: true });

const targets: { target?: string; out: string }[] = [{ out: "gatehouse" }];
if (all) {
  targets.push(
    { target: "bun-linux-x64", out: "gatehouse-linux-x64" },
    { target: "bun-linux-x64-baseline", out: "gatehouse-linux-x64-baseline" },
    { target: "bun-linux-x64-musl", out: "gatehouse-linux-x64-musl" },
    { target: "bun-linux-arm64", out: "gatehouse-linux-arm64" },
    { target: "bun-darwin-arm64", out: "gatehouse-darwin-arm64" },
    { target: "bun-windows-x64", out: "gatehouse-windows-x64.exe" },
  );
  // Checksums are only ever of this run's files: an old list is removed before anything is rebuilt.
  rmSync(join(dist, "SHA256SUMS"), { force: true });
}

const sha256 = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

const written: string[] = [];
for (const { target, out } of targets) {
  const outfile = join(dist, out);
  // The source map lands beside the binary, named after the entry point's output (`<out>.map`).
  const map = `${outfile}.map`;
  rmSync(map, { force: true });
  const cmd = ["build", "--compile", "--minify", "--sourcemap", join(root, "src/main.ts"), "--outfile", outfile];
  if (target) cmd.push(`--target=${target}`);
  const proc = Bun.spawnSync([process.execPath, ...cmd], { cwd: root, stdout: "inherit", stderr: "inherit" });
  if (proc.exitCode !== 0) {
    console.error(`build.ts: compiling ${out} failed`);
    process.exit(1);
  }
  written.push(outfile);
  if (existsSync(map)) written.push(map);
  console.log(`built ${outfile} (gatehouse ${pkg.version}${target ? `, ${target}` : ""})`);
}
if (all) {
  const sums = written.map((f) => `${sha256(f)}  ${basename(f)}`);
  writeFileSync(join(dist, "SHA256SUMS"), `${sums.join("\n")}\n`);
  console.log(
    `wrote ${join(dist, "SHA256SUMS")} (${sums.length} files; check with: cd ${dist} && sha256sum -c SHA256SUMS)`,
  );
}
