// Debian's nginx, started by a test with its own configuration in a temporary directory: `daemon off` and one
// process, pid file, logs and temp paths all in that directory, listening on a free loopback port; stopped by the
// test, or after the tests if one failed first. When nginx is missing the tests that need it are skipped — unless
// GATEHOUSE_REQUIRE_ALL is set (CI, whose .ci/run installs it), then they fail.

import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { onCleanup } from "./cleanup.ts";
import { installed } from "./installed.ts";
import { freePort } from "./net.ts";
import { tempDir } from "./temp.ts";

export const NGINX = process.env.NGINX_PATH ?? "/usr/sbin/nginx";

export function nginxAvailable(): boolean {
  return installed(NGINX, "nginx", "nginx");
}

export interface Nginx {
  url: string;
  port: number;
  dir: string;
  /** The configuration file nginx runs. */
  config: string;
  errorLog(): string;
  accessLog(): string;
  stop(): Promise<void>;
}

/**
 * Starts nginx with `http` as the body of its http block. `{{listen}}` in it is replaced by `127.0.0.1:<port>`
 * (the port nginx's URL uses), `{{dir}}` by the temporary directory.
 */
export async function startNginx(http: string, options: { port?: number } = {}): Promise<Nginx> {
  const port = options.port ?? (await freePort());
  const dir = tempDir("gatehouse-nginx-");
  const config = join(dir, "nginx.conf");
  const errorLog = join(dir, "error.log");
  const accessLog = join(dir, "access.log");
  const body = http.replaceAll("{{listen}}", `127.0.0.1:${port}`).replaceAll("{{dir}}", dir);
  writeFileSync(
    config,
    `# Written by tests/helpers/nginx.ts
daemon off;
# One process: no master/worker split, so no user switch when the tests run as root.
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${errorLog} info;
events { worker_connections 256; }
http {
  access_log ${accessLog};
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
${body}
}
`,
  );
  const read = (path: string) => (existsSync(path) ? readFileSync(path, "utf8") : "");
  // -e: the error log from the start (else nginx first opens the compiled-in /var/log/nginx/error.log).
  const proc: Subprocess<"ignore", "pipe", "pipe"> = Bun.spawn([NGINX, "-p", dir, "-e", errorLog, "-c", config], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  let out = "";
  const pump = async (s: ReadableStream<Uint8Array>) => {
    const d = new TextDecoder();
    for await (const chunk of s) out += d.decode(chunk);
  };
  void pump(proc.stdout);
  void pump(proc.stderr);
  const forget = onCleanup(() => {
    proc.kill("SIGKILL");
  });
  const deadline = Date.now() + 10_000;
  for (;;) {
    const up = await fetch(`http://127.0.0.1:${port}/`, { redirect: "manual" }).then(
      () => true,
      () => false,
    );
    if (up) break;
    if (proc.exitCode !== null || Date.now() > deadline) {
      proc.kill("SIGKILL");
      throw new Error(`nginx did not start (exit ${proc.exitCode}):\n${out}\n${read(errorLog)}`);
    }
    await Bun.sleep(25);
  }
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    dir,
    config,
    errorLog: () => read(errorLog),
    accessLog: () => read(accessLog),
    async stop() {
      forget();
      if (proc.exitCode !== null) return;
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), 5_000);
      await proc.exited;
      clearTimeout(timer);
    },
  };
}
