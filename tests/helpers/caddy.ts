// Debian's Caddy, started by a test with a Caddyfile in a temporary directory: its data (the local CA, certificates)
// and config (autosave) under that directory through XDG_DATA_HOME/XDG_CONFIG_HOME/HOME, admin endpoint off,
// certificates from its own internal CA (never installed into the system's trust store), every listener on
// 127.0.0.1 with free ports. Stopped by the test, or after the tests if one failed first. When caddy is missing the
// tests that need it are skipped — unless GATEHOUSE_REQUIRE_ALL is set (CI, whose .ci/run installs it), then they fail.

import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { onCleanup } from "./cleanup.ts";
import { installed } from "./installed.ts";
import { freePort } from "./net.ts";
import { tempDir } from "./temp.ts";

export const CADDY = process.env.CADDY_PATH ?? "/usr/bin/caddy";

export function caddyAvailable(): boolean {
  return installed(CADDY, "Caddy", "caddy");
}

export interface Caddy {
  /** The https port every site of the Caddyfile is served on. */
  port: number;
  /** The root certificate of Caddy's internal CA (PEM): what a client must trust. */
  rootCa(): string;
  log(): string;
  stop(): Promise<void>;
}

/**
 * Runs `caddyfile` (without a global options block: this one is prepended) with Caddy's internal CA on free
 * loopback ports, and waits until `host` answers over TLS.
 */
export async function startCaddy(caddyfile: string, host: string): Promise<Caddy> {
  const [httpPort, port] = [await freePort(), await freePort()];
  const dir = tempDir("gatehouse-caddy-");
  const config = join(dir, "Caddyfile");
  // admin off: no admin endpoint on localhost:2019. local_certs: the internal CA for every site (`tls internal`).
  // skip_install_trust: as root Caddy would otherwise add its root to the system's trust store. No HTTP→HTTPS
  // redirect listener, and the ports and bind address the test chose.
  writeFileSync(
    config,
    `# Written by tests/helpers/caddy.ts
{
	admin off
	local_certs
	skip_install_trust
	auto_https disable_redirects
	default_bind 127.0.0.1
	http_port ${httpPort}
	https_port ${port}
}

${caddyfile}`,
  );
  const env = { ...process.env, HOME: dir, XDG_DATA_HOME: join(dir, "data"), XDG_CONFIG_HOME: join(dir, "config") };
  const proc: Subprocess<"ignore", "pipe", "pipe"> = Bun.spawn(
    [CADDY, "run", "--config", config, "--adapter", "caddyfile"],
    { cwd: dir, env, stdin: "ignore", stdout: "pipe", stderr: "pipe" },
  );
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
  const root = join(dir, "data/caddy/pki/authorities/local/root.crt");
  const deadline = Date.now() + 15_000;
  for (;;) {
    const up =
      existsSync(root) &&
      (await fetch(`https://${host}:${port}/`, { redirect: "manual", tls: { ca: readFileSync(root, "utf8") } }).then(
        () => true,
        () => false,
      ));
    if (up) break;
    if (proc.exitCode !== null || Date.now() > deadline) {
      proc.kill("SIGKILL");
      throw new Error(`caddy did not start (exit ${proc.exitCode}):\n${out}`);
    }
    await Bun.sleep(50);
  }
  return {
    port,
    rootCa: () => readFileSync(root, "utf8"),
    log: () => out,
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
