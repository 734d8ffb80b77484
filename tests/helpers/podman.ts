// Debian's podman (with runc) for tests, as real-parts.md describes it: no image registry (base images are made from
// this machine's own files and `podman import`ed), `--runtime runc` (crun refuses the hybrid cgroup layout here) and a
// test-local containers.conf with `default_ulimits = []` (setting rlimits is not permitted here). Everything a test
// creates — containers, volumes, images — is removed after the tests, also when one fails. Missing podman is a
// failure, never a skip: .ci/run installs it.

import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { onCleanup } from "./cleanup.ts";
import { tempDir } from "./temp.ts";

export const PODMAN = process.env.PODMAN_PATH ?? "/usr/bin/podman";

/** Throws, saying what to install, unless podman and runc are here. */
export function requirePodman(): void {
  if (process.getuid?.() !== 0) throw new Error("the container tests run podman as root (CI runs as root)");
  const runc = ["/usr/sbin/runc", "/usr/bin/runc"].some((p) => existsSync(p));
  if (!existsSync(PODMAN) || !runc) {
    throw new Error(
      `podman and runc are needed for the container tests (${existsSync(PODMAN) ? "runc" : PODMAN} is missing): ` +
        "apt-get install podman runc (.ci/run installs them)",
    );
  }
}

let conf: string | undefined;
/** The environment podman runs with: this test run's containers.conf. */
export function podmanEnv(): Record<string, string> {
  if (!conf) {
    conf = join(tempDir("gatehouse-podman-"), "containers.conf");
    writeFileSync(conf, "[containers]\ndefault_ulimits = []\n");
  }
  return { ...(process.env as Record<string, string>), CONTAINERS_CONF: conf };
}

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `podman --runtime runc ARGS…` without blocking the event loop (in-process backends keep answering). */
export async function podman(args: string[], options: { stdin?: string; cwd?: string } = {}): Promise<Result> {
  const proc = Bun.spawn([PODMAN, "--runtime", "runc", ...args], {
    env: podmanEnv(),
    cwd: options.cwd,
    stdin: options.stdin === undefined ? "ignore" : new TextEncoder().encode(options.stdin),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  return { code: await proc.exited, stdout, stderr };
}

/** Like podman(), but throws with podman's output unless it exits 0; returns stdout. */
export async function podmanOk(args: string[], options: { stdin?: string; cwd?: string } = {}): Promise<string> {
  const r = await podman(args, options);
  if (r.code !== 0) throw new Error(`podman ${args.join(" ")} exited ${r.code}:\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** A name no other test run uses, for containers, volumes and images. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

type Kind = "container" | "volume" | "image";
const created: { kind: Kind; name: string }[] = [];
let registered = false;

function track(kind: Kind, name: string): string {
  created.push({ kind, name });
  if (!registered) {
    registered = true;
    onCleanup(removeCreated); // in case a test file's own afterAll never ran
  }
  return name;
}

/** Removes the container (forcibly) with removeCreated(). Returns the name. */
export const cleanupContainer = (name: string) => track("container", name);
export const cleanupVolume = (name: string) => track("volume", name);
export const cleanupImage = (name: string) => track("image", name);

/**
 * Removes every container, then volume, then image registered so far, one at a time (parallel podman commands
 * contend for its locks). Call it from afterAll with a generous timeout: removing a container takes a second.
 */
export async function removeCreated(): Promise<void> {
  const order: Kind[] = ["container", "volume", "image"];
  const all = created.splice(0).sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind));
  for (const { kind, name } of all) {
    if (kind === "container") await podman(["rm", "-f", "-t", "0", name]);
    else if (kind === "volume") await podman(["volume", "rm", "-f", name]);
    else await podman(["rmi", "-f", name]);
  }
}

/** The shared libraries `ldd` lists for an executable (and the dynamic loader), as absolute paths. */
export function sharedLibraries(executable: string): string[] {
  const out = Bun.spawnSync(["ldd", executable]);
  if (out.exitCode !== 0) throw new Error(`ldd ${executable} failed: ${out.stderr.toString()}`);
  const libs: string[] = [];
  for (const line of out.stdout.toString().split("\n")) {
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)/.exec(line);
    if (m?.[1]) libs.push(m[1]);
  }
  return libs;
}

/**
 * A base image made of this machine's own files: the given executables and every library `ldd` lists for them,
 * tarred with symlinks followed and `podman import`ed under `tag`. Removed after the tests.
 */
export async function hostBaseImage(tag: string, executables: string[]): Promise<string> {
  const files = new Set<string>();
  for (const exe of executables) {
    files.add(exe);
    for (const lib of sharedLibraries(exe)) files.add(lib);
  }
  const tar = join(tempDir("gatehouse-base-"), "base.tar");
  const rel = [...files].map((f) => f.replace(/^\/+/, ""));
  const made = Bun.spawnSync(["tar", "-C", "/", "-chf", tar, ...rel]);
  if (made.exitCode !== 0) throw new Error(`tar of the base image failed: ${made.stderr.toString()}`);
  cleanupImage(tag);
  await podmanOk(["import", tar, tag]);
  return tag;
}

/** Waits until `url` answers 200 from the container `name` (30 s); else fails with the container's log. */
export async function waitForContainer(name: string, url: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const r = await fetch(url).catch(() => undefined);
    if (r?.status === 200) return;
    if (Date.now() > deadline) {
      const logs = await podman(["logs", name]);
      throw new Error(`container ${name} never answered ${url}:\n${logs.stdout}${logs.stderr}`);
    }
    await Bun.sleep(100);
  }
}
