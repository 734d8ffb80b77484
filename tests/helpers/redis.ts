// Debian's redis-server, started by a test on a free loopback port with its own data directory (append-only file,
// fsync on every write: nothing acknowledged is lost on a restart), stopped by the test or after the tests. It can be
// paused (SIGSTOP: a hung Redis), resumed, and restarted on the same data. When redis-server is missing the tests
// that need it are skipped — unless GATEHOUSE_REQUIRE_ALL is set (CI, whose .ci/run installs it), then they fail.

import type { Subprocess } from "bun";
import { onCleanup } from "./cleanup.ts";
import { installed } from "./installed.ts";
import { freePort } from "./net.ts";
import { tempDir } from "./temp.ts";

export const REDIS_SERVER = process.env.REDIS_SERVER_PATH ?? "/usr/bin/redis-server";

export function redisAvailable(): boolean {
  return installed(REDIS_SERVER, "Redis", "redis-server");
}

export interface Redis {
  url: string;
  port: number;
  dir: string;
  readonly pid: number;
  /** SIGSTOP: Redis keeps its connections but answers nothing. */
  pause(): void;
  resume(): void;
  /** SIGTERM (after SIGCONT if paused), waiting for it to exit. */
  stop(): Promise<void>;
  /** Starts again on the same port and data directory. */
  start(): Promise<void>;
  kill(): Promise<void>;
}

export async function startRedis(
  options: { password?: string; tls?: { cert: string; key: string } } = {},
): Promise<Redis> {
  const port = await freePort();
  const dir = tempDir("gatehouse-redis-");
  let proc: Subprocess | undefined;
  let paused = false;
  const args = [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--save",
    "",
    "--appendonly",
    "yes",
    "--appendfsync",
    "always",
    "--dir",
    dir,
    "--daemonize",
    "no",
    "--logfile",
    "",
    ...(options.password ? ["--requirepass", options.password] : []),
  ];
  if (options.tls) {
    args[1] = "0"; // TLS only: --port 0 --tls-port <port>
    args.push("--tls-port", String(port), "--tls-cert-file", options.tls.cert, "--tls-key-file", options.tls.key);
    args.push("--tls-auth-clients", "no");
  }
  const launch = async () => {
    proc = Bun.spawn([REDIS_SERVER, ...args], { stdout: "pipe", stderr: "pipe" });
    let out = "";
    const reader = (proc.stdout as ReadableStream<Uint8Array>).getReader();
    const d = new TextDecoder();
    const deadline = Date.now() + 10_000;
    while (!out.includes("Ready to accept connections")) {
      const r = await Promise.race([reader.read(), Bun.sleep(200).then(() => null)]);
      if (r && !r.done) out += d.decode(r.value);
      if (Date.now() > deadline || proc.exitCode !== null) throw new Error(`redis-server did not start:\n${out}`);
    }
    reader.releaseLock();
    void (proc.stdout as ReadableStream<Uint8Array>).pipeTo(new WritableStream());
  };
  await launch();
  const forget = onCleanup(() => {
    proc?.kill("SIGKILL");
  });
  const resume = () => {
    proc?.kill("SIGCONT");
    paused = false;
  };
  const auth = options.password ? `:${encodeURIComponent(options.password)}@` : "";
  return {
    url: `${options.tls ? "rediss" : "redis"}://${auth}127.0.0.1:${port}/0`,
    port,
    dir,
    get pid() {
      return proc?.pid ?? 0;
    },
    pause() {
      proc?.kill("SIGSTOP");
      paused = true;
    },
    resume,
    async stop() {
      if (!proc || proc.exitCode !== null) return;
      proc.kill("SIGTERM");
      if (paused) resume();
      await proc.exited;
    },
    start: launch,
    async kill() {
      forget();
      proc?.kill("SIGKILL");
      await proc?.exited;
    },
  };
}
