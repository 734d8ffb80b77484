// `bun run build.ts` compiles dist/gatehouse for this machine; `--all` also cross-compiles linux-arm64,
// darwin-arm64 and windows-x64 and writes SHA256SUMS. The version comes from package.json (embedded at build).

import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import pkg from "./package.json" with { type: "json" };

const root = import.meta.dir;
const dist = join(root, "dist");
mkdirSync(dist, { recursive: true });

const targets: { target?: string; out: string }[] = [{ out: "gatehouse" }];
if (process.argv.includes("--all")) {
  targets.push(
    { target: "bun-linux-x64", out: "gatehouse-linux-x64" },
    { target: "bun-linux-arm64", out: "gatehouse-linux-arm64" },
    { target: "bun-darwin-arm64", out: "gatehouse-darwin-arm64" },
    { target: "bun-windows-x64", out: "gatehouse-windows-x64.exe" },
  );
}
const unknown = process.argv.slice(2).filter((a) => a !== "--all");
if (unknown.length > 0) {
  console.error(`build.ts: unknown argument ${unknown[0]} (use --all to cross-compile)`);
  process.exit(2);
}

const sums: string[] = [];
for (const { target, out } of targets) {
  const outfile = join(dist, out);
  const args = ["build", "--compile", "--minify", "--sourcemap", join(root, "src/main.ts"), "--outfile", outfile];
  if (target) args.push(`--target=${target}`);
  const proc = Bun.spawnSync([process.execPath, ...args], { cwd: root, stdout: "inherit", stderr: "inherit" });
  if (proc.exitCode !== 0) {
    console.error(`build.ts: compiling ${out} failed`);
    process.exit(1);
  }
  if (target) sums.push(`${createHash("sha256").update(readFileSync(outfile)).digest("hex")}  ${basename(outfile)}`);
  console.log(`built ${outfile} (gatehouse ${pkg.version}${target ? `, ${target}` : ""})`);
}
if (sums.length > 0) {
  writeFileSync(join(dist, "SHA256SUMS"), `${sums.join("\n")}\n`);
  console.log(`wrote ${join(dist, "SHA256SUMS")}`);
}
