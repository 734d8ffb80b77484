// Shipping Gatehouse, as README's "Install and run" says, with real parts:
// - examples/gatehouse.service: `systemd-analyze verify` and `systemd-analyze security --offline=yes` on the file
//   (exposure ≤ 2.0); then for real under systemd — the host's own systemd booted as PID 1 in a podman container
//   (`--rootfs /:O`: this machine's file system under a throw-away overlay, a network namespace of its own) — where
//   README's install steps run line by line, and Gatehouse serves a tools/call to an HTTP and a stdio backend
//   inside the sandbox, reloads on `systemctl reload`, answers README's admin commands, and stops cleanly.
// - Containerfile: built with podman exactly as README says (the base image made from this machine's libc files,
//   passed as BASE), run the way examples/compose.yaml says (read-only, no capabilities, the config mounted
//   read-only, the state on a named volume, env_file), a tools/call through it with the official SDK client, its
//   HEALTHCHECK, SIGTERM, the state kept on the volume by the next container; and its default CMD on a published port.
// - build.ts --all: every artifact listed in SHA256SUMS with its right hash, each binary for the platform it names.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type HttpBackend, startHttpBackend } from "../fixtures/http-backend.ts";
import { connect } from "../helpers/client.ts";
import { freePort } from "../helpers/net.ts";
import { BINARY, BUN, ensureBinary, ROOT } from "../helpers/paths.ts";
import {
  cleanupContainer,
  cleanupImage,
  cleanupVolume,
  hostBaseImage,
  podman,
  podmanOk,
  removeCreated,
  requirePodman,
  uniqueName,
  waitForContainer,
} from "../helpers/podman.ts";
import { tempDir } from "../helpers/temp.ts";

const UNIT = join(ROOT, "examples/gatehouse.service");
const COMPOSE = join(ROOT, "examples/compose.yaml");
const readme = readFileSync(join(ROOT, "README.md"), "utf8");

/** README's "Install and run" section. */
const install = (() => {
  const start = readme.indexOf("\n## Install and run\n");
  if (start < 0) throw new Error('README.md has no "Install and run" section');
  const end = readme.indexOf("\n## ", start + 1);
  return readme.slice(start, end < 0 ? undefined : end);
})();

/** The one ```sh block of "Install and run" that contains `marker`. */
function shBlock(marker: string): string {
  const blocks = [...install.matchAll(/\n```sh\n([\s\S]*?)\n```\n/g)].map((m) => m[1] as string);
  const found = blocks.filter((b) => b.includes(marker));
  if (found.length !== 1) throw new Error(`"Install and run" has ${found.length} sh blocks with ${marker}, not one`);
  return found[0] as string;
}

/** A block's commands: comments and blank lines dropped. */
const commands = (block: string) =>
  block
    .split("\n")
    .map((l) => l.replace(/\s+#.*$/, "").trim())
    .filter((l) => l !== "" && !l.startsWith("#"));

/** The unit's settings: section/key → every value given (in order). */
function unitSettings(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let section = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const s = /^\[(.+)\]$/.exec(line);
    if (s) {
      section = s[1] as string;
      continue;
    }
    const eq = line.indexOf("=");
    const key = `${section}/${line.slice(0, eq)}`;
    out.set(key, [...(out.get(key) ?? []), line.slice(eq + 1)]);
  }
  return out;
}

function run(cmd: string[], options: { cwd?: string } = {}): { code: number; out: string } {
  const p = Bun.spawnSync(cmd, { cwd: options.cwd, stdout: "pipe", stderr: "pipe" });
  return { code: p.exitCode ?? -1, out: p.stdout.toString() + p.stderr.toString() };
}

function requireSystemdAnalyze(): string {
  const which = run(["sh", "-c", "command -v systemd-analyze"]);
  if (which.code !== 0) {
    throw new Error("systemd-analyze is missing: apt-get install systemd (.ci/run installs it)");
  }
  return which.out.trim();
}

describe("examples/gatehouse.service", () => {
  const text = readFileSync(UNIT, "utf8");
  const settings = unitSettings(text);
  const get = (key: string) => settings.get(key) ?? [];
  let dir: string;
  let analyze: string;

  beforeAll(async () => {
    analyze = requireSystemdAnalyze();
    await ensureBinary();
    // `verify` checks that ExecStart's binary exists: the copy it checks runs the binary just built instead of
    // /usr/local/bin/gatehouse — the only line that differs from the file README installs.
    dir = tempDir("gatehouse-unit-");
    const execStart = get("Service/ExecStart");
    expect(execStart).toHaveLength(1);
    expect(execStart[0]).toStartWith("/usr/local/bin/gatehouse ");
    const copy = text.replace(/^ExecStart=\/usr\/local\/bin\/gatehouse /m, `ExecStart=${BINARY} `);
    expect(copy.split("\n").filter((l, i) => l !== text.split("\n")[i])).toHaveLength(1);
    writeFileSync(join(dir, "gatehouse.service"), copy);
  }, 120_000);

  test("README installs this file, with the steps this test runs", () => {
    expect(install).toContain("[examples/gatehouse.service](examples/gatehouse.service)");
    expect(install).not.toMatch(/```ini\n\[Unit\]/); // no inline copy to drift from the file
    const steps = commands(shBlock("systemctl enable --now gatehouse"));
    for (const step of [
      "install -m 0755 dist/gatehouse /usr/local/bin/gatehouse",
      "install -m 0644 examples/gatehouse.service /etc/systemd/system/gatehouse.service",
      "systemctl daemon-reload",
      "systemctl enable --now gatehouse",
      "journalctl -u gatehouse -f",
      "systemctl reload gatehouse",
    ]) {
      expect(steps).toContain(step);
    }
  });

  test("has the sandbox README promises, and no MemoryDenyWriteExecute (JITs need W+X memory)", () => {
    const expected: Record<string, string> = {
      "Unit/Wants": "network-online.target",
      "Unit/After": "network-online.target",
      "Service/Type": "exec",
      "Service/DynamicUser": "yes",
      "Service/StateDirectory": "gatehouse",
      "Service/CacheDirectory": "gatehouse",
      "Service/ConfigurationDirectory": "gatehouse",
      "Service/Environment": "HOME=/var/cache/gatehouse",
      "Service/EnvironmentFile": "-/etc/gatehouse/env",
      "Service/ProtectSystem": "strict",
      "Service/ProtectHome": "yes",
      "Service/PrivateTmp": "yes",
      "Service/PrivateDevices": "yes",
      "Service/NoNewPrivileges": "yes",
      "Service/CapabilityBoundingSet": "",
      "Service/RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
      "Service/SystemCallFilter": "@system-service",
      "Service/UMask": "0077",
      "Service/Restart": "on-failure",
      "Service/ExecReload": "/bin/kill -HUP $MAINPID",
    };
    for (const [key, value] of Object.entries(expected))
      expect([key, get(key)]).toEqual([key, expect.arrayContaining([value])]);
    expect(get("Service/Environment")).toContain("MCP_AUTH_SERVER_PATH=/var/lib/gatehouse/auth_server.json");
    expect(get("Service/ExecStart")[0]).toContain("--config /etc/gatehouse/servers.json --bind 127.0.0.1:8080");
    expect(settings.has("Service/MemoryDenyWriteExecute")).toBe(false);
  });

  test("systemd-analyze verify finds nothing to complain about", () => {
    const r = run([analyze, "verify", join(dir, "gatehouse.service")], { cwd: dir });
    expect(r.out).toBe("");
    expect(r.code).toBe(0);
  });

  test("systemd-analyze security --offline=yes: exposure ≤ 2.0, the figure the unit and README give", () => {
    const r = run([analyze, "security", "--offline=yes", join(dir, "gatehouse.service")], { cwd: dir });
    const m = /Overall exposure level for gatehouse\.service: (\d+\.\d+)/.exec(r.out);
    if (!m) throw new Error(`no exposure level in:\n${r.out}`);
    const score = Number(m[1]);
    expect(score).toBeLessThanOrEqual(2.0);
    expect(text).toContain(`rates this unit ${m[1]}`);
    expect(install).toContain(`rates it ${m[1]}`);
  });
});

// The unit under a real systemd: the host's /lib/systemd/systemd as PID 1 of a podman container whose root is this
// machine's file system under an overlay (writes go to the overlay, never to the host), with tmpfs on /tmp, /run and
// the journal, and a network namespace of its own (only loopback: nothing it binds reaches the host). The repository
// is mounted read-only at its own path for the processes the test starts as root (the HTTP backend, the SDK client).
describe("examples/gatehouse.service under systemd", () => {
  const name = uniqueName("gatehouse-systemd");
  const TOKEN = "systemd-test-token";
  const BACKEND_PORT = 18931;
  let mainPid: string;
  let serviceUid: number;

  const exec = (cmd: string[], options: { workdir?: string } = {}) =>
    podman(["exec", ...(options.workdir ? ["-w", options.workdir] : []), name, ...cmd]);
  const sh = async (script: string, options: { workdir?: string } = {}) => {
    const r = await exec(["sh", "-c", script], options);
    if (r.code !== 0) throw new Error(`in the systemd container: ${script}\nexit ${r.code}\n${r.stderr}${r.stdout}`);
    return r.stdout;
  };
  const show = async (prop: string) => (await sh(`systemctl show -p ${prop} --value gatehouse`)).trim();
  const servers = (extra: Record<string, unknown> = {}) =>
    JSON.stringify({
      mcpServers: {
        web: { url: `http://127.0.0.1:${BACKEND_PORT}/mcp` },
        // A stdio backend with no dependency: the installed binary as plain Bun running a tiny MCP server.
        probe: { command: "/usr/bin/env", args: ["BUN_BE_BUN=1", "/usr/local/bin/gatehouse", "/opt/ship/probe.mjs"] },
        ...extra,
      },
      serverAuth: {
        providers: ["oauth_as", "bearer"],
        oauthAs: { issuerUrl: "http://127.0.0.1:8080", trustedSourceCidrs: ["127.0.0.1/32"] },
        bearer: { tokens: { "${SHIP_TOKEN}": { subject: "ops", roles: ["admin"] } } },
      },
    });
  /** The SDK client, run as root in the container: tools listed, web__echo and probe__probe called. */
  const callThrough = async (): Promise<{ tools: string[]; echo: string; probe: Record<string, unknown> }> => {
    const out = await sh(`${BUN} /opt/ship/client.ts`, { workdir: ROOT });
    return JSON.parse(out.trim().split("\n").pop() as string);
  };

  beforeAll(async () => {
    requirePodman();
    if (!existsSync("/lib/systemd/systemd"))
      throw new Error("/lib/systemd/systemd is missing: apt-get install systemd");
    await ensureBinary();
    const files = tempDir("gatehouse-systemd-");
    writeFileSync(
      join(files, "probe.mjs"),
      // An MCP server on stdin/stdout whose one tool reports the sandbox it runs in.
      `import { readFileSync, readdirSync, writeFileSync } from "node:fs";
const attempt = (f) => { try { f(); return "ok"; } catch (e) { return e.code ?? String(e); } };
const send = (m) => process.stdout.write(JSON.stringify({ jsonrpc: "2.0", ...m }) + "\\n");
let buf = "";
process.stdin.on("data", (chunk) => {
  buf += chunk;
  for (let i; (i = buf.indexOf("\\n")) >= 0; ) {
    const line = buf.slice(0, i);
    buf = buf.slice(i + 1);
    if (line.trim()) handle(JSON.parse(line));
  }
});
function handle(m) {
  if (m.id === undefined) return;
  if (m.method === "initialize")
    return send({ id: m.id, result: { protocolVersion: m.params.protocolVersion, capabilities: { tools: {} },
      serverInfo: { name: "probe", version: "1.0.0" } } });
  if (m.method === "tools/list")
    return send({ id: m.id, result: { tools: [{ name: "probe", description: "its sandbox", inputSchema: { type: "object" } }] } });
  if (m.method === "tools/call") {
    const status = readFileSync("/proc/self/status", "utf8");
    const field = (k) => new RegExp("^" + k + ":\\\\s*(\\\\S+)", "m").exec(status)?.[1];
    const report = { uid: process.getuid(), home: process.env.HOME, capEff: field("CapEff"), noNewPrivs: field("NoNewPrivs"),
      seccomp: field("Seccomp"), writeHome: attempt(() => writeFileSync(process.env.HOME + "/probe", "x")),
      writeUsr: attempt(() => writeFileSync("/usr/local/probe", "x")), listRoot: attempt(() => readdirSync("/root")) };
    return send({ id: m.id, result: { content: [{ type: "text", text: JSON.stringify(report) }] } });
  }
  if (m.method === "ping") return send({ id: m.id, result: {} });
  send({ id: m.id, error: { code: -32601, message: "unknown method" } });
}
`,
    );
    writeFileSync(
      join(files, "client.ts"),
      `import { connect } from ${JSON.stringify(join(ROOT, "tests/helpers/client.ts"))};
const deadline = Date.now() + 20_000;
let client;
for (;;) {
  try { client = await connect("http://127.0.0.1:8080/mcp", { token: ${JSON.stringify(TOKEN)} }); break; }
  catch (e) { if (Date.now() > deadline) throw e; await Bun.sleep(200); }
}
const tools = (await client.listTools()).tools.map((t) => t.name);
const text = (r) => r.content[0].text;
const echo = text(await client.callTool({ name: "web__echo", arguments: { message: "under systemd" } }));
const probe = JSON.parse(text(await client.callTool({ name: "probe__probe", arguments: {} })));
await client.close();
console.log(JSON.stringify({ tools, echo, probe }));
`,
    );
    writeFileSync(join(files, "servers.json"), servers());
    writeFileSync(join(files, "gatehouse.env"), `SHIP_TOKEN=${TOKEN}\n`);

    cleanupContainer(name);
    const tmpfs = ["/tmp", "/run", "/run/lock", "/var/log/journal"].flatMap((p) => ["--tmpfs", `${p}:rw,notmpcopyup`]);
    await podmanOk([
      "run",
      "-d",
      "--name",
      name,
      "--network",
      "none",
      "--systemd=always",
      ...tmpfs,
      "-v",
      `${ROOT}:${ROOT}:ro`,
      "--rootfs",
      "/:O",
      "/lib/systemd/systemd",
      "--unit=basic.target",
    ]);
    const deadline = Date.now() + 60_000;
    for (;;) {
      const state = (await exec(["systemctl", "is-system-running"])).stdout.trim();
      if (state === "running" || state === "degraded") break;
      if (Date.now() > deadline) throw new Error(`systemd in the container did not boot (state "${state}")`);
      await Bun.sleep(200);
    }
    // A clone as README's steps expect it: dist/gatehouse, examples/gatehouse.service, your servers.json and env.
    await sh("mkdir -p /srv/clone/dist /srv/clone/examples /opt/ship");
    await podmanOk(["cp", BINARY, `${name}:/srv/clone/dist/gatehouse`]);
    await podmanOk(["cp", UNIT, `${name}:/srv/clone/examples/gatehouse.service`]);
    for (const f of ["servers.json", "gatehouse.env"])
      await podmanOk(["cp", join(files, f), `${name}:/srv/clone/${f}`]);
    for (const f of ["probe.mjs", "client.ts"]) await podmanOk(["cp", join(files, f), `${name}:/opt/ship/${f}`]);
    await sh("chmod 0644 /opt/ship/probe.mjs");
    // The HTTP backend (the SDK's McpServer), as root beside the service, on the container's loopback.
    await podmanOk([
      "exec",
      "-d",
      "-e",
      `PORT=${BACKEND_PORT}`,
      name,
      BUN,
      join(ROOT, "tests/fixtures/http-backend.ts"),
    ]);
    await sh(
      `for i in $(seq 100); do ${BUN} -e "await fetch('http://127.0.0.1:${BACKEND_PORT}/')" 2>/dev/null && exit 0; sleep 0.1; done; exit 1`,
    );
  }, 180_000);
  afterAll(removeCreated, 120_000);

  test("README's steps install and start it; it serves an HTTP and a stdio backend inside its sandbox", async () => {
    for (const step of commands(shBlock("systemctl enable --now gatehouse"))) {
      if (step === "systemctl reload gatehouse") continue; // the next test, once servers.json changed
      const r = await exec(["sh", "-c", step.replace(/^journalctl (.*) -f$/, "journalctl $1 --no-pager")], {
        workdir: "/srv/clone",
      });
      if (r.code !== 0) throw new Error(`README step failed: ${step}\n${r.stderr}${r.stdout}`);
    }
    expect((await sh("systemctl is-enabled gatehouse")).trim()).toBe("enabled");
    const { tools, echo, probe } = await callThrough();
    expect(tools).toContain("web__echo");
    expect(tools).toContain("probe__probe");
    expect(echo).toBe("echo: under systemd");

    mainPid = await show("MainPID");
    const status = await sh(`cat /proc/${mainPid}/status`);
    const uid = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]);
    expect(uid).toBeGreaterThan(0); // DynamicUser: not root
    serviceUid = uid;
    expect((await sh(`ps -o user= -p ${mainPid}`)).trim()).toBe("gatehouse");
    expect(/^CapEff:\s+(\S+)/m.exec(status)?.[1]).toBe("0000000000000000");
    expect(/^NoNewPrivs:\s+(\S+)/m.exec(status)?.[1]).toBe("1");
    expect(/^Seccomp:\s+(\S+)/m.exec(status)?.[1]).toBe("2"); // the system call filter

    // The stdio backend runs as the same user in the same sandbox, with the writable HOME npx/uvx need.
    expect(probe).toMatchObject({
      uid,
      home: "/var/cache/gatehouse",
      capEff: "0000000000000000",
      noNewPrivs: "1",
      seccomp: "2",
      writeHome: "ok",
    });
    expect(probe.writeUsr).not.toBe("ok"); // ProtectSystem=strict
    expect(probe.listRoot).not.toBe("ok"); // ProtectHome=yes

    // The state: the dynamic user's, private; /var/lib/gatehouse links to systemd's private directory.
    const state = await sh("stat -L -c '%U %a %n' /var/lib/gatehouse /var/lib/gatehouse/auth_server.json*");
    const lines = state.trim().split("\n");
    expect(lines[0]).toBe("gatehouse 700 /var/lib/gatehouse");
    expect(lines.length).toBeGreaterThan(1);
    for (const l of lines.slice(1)) expect(l).toMatch(/^gatehouse 600 \/var\/lib\/gatehouse\/auth_server\.json/);
    expect(await sh("journalctl -u gatehouse --no-pager")).toContain("listening url=http://127.0.0.1:8080/mcp");
  }, 60_000);

  test("README's admin commands reach the running service as its own user", async () => {
    const block = shBlock("gatehouse_admin()");
    const out = await sh(`cd /srv/clone && ${block}`);
    expect(out).toContain("no registered clients");
    expect(out).toContain("new signing key");
    const exported = JSON.parse(await sh("cat /srv/clone/gatehouse-state.json")) as Record<string, unknown>;
    expect(Object.keys(exported).length).toBeGreaterThan(0);
    // Nothing the commands touched changed hands: every state file is still the service's, mode 0600.
    const owners = await sh("stat -L -c '%U %a' /var/lib/gatehouse/auth_server.json*");
    for (const l of owners.trim().split("\n")) expect(l).toBe("gatehouse 600");
    expect(await sh("journalctl -u gatehouse --no-pager")).toContain('reason="gatehouse keys rotate"');
  }, 60_000);

  test("systemctl reload (SIGHUP) applies a changed servers.json without a restart", async () => {
    const changed = join(tempDir("gatehouse-systemd-"), "servers.json");
    writeFileSync(changed, servers({ more: { url: `http://127.0.0.1:${BACKEND_PORT}/mcp` } }));
    await podmanOk(["cp", changed, `${name}:/etc/gatehouse/servers.json`]);
    await sh("chmod 0644 /etc/gatehouse/servers.json");
    await sh("systemctl reload gatehouse");
    const deadline = Date.now() + 20_000;
    let tools: string[] = [];
    while (!tools.includes("more__echo")) {
      if (Date.now() > deadline) throw new Error(`the reload never showed more__echo: ${tools.join(", ")}`);
      tools = (await callThrough()).tools;
    }
    expect(await show("MainPID")).toBe(mainPid);
    expect(await show("ActiveState")).toBe("active");
  }, 60_000);

  test("systemctl stop: SIGTERM, exit 0, nothing left running", async () => {
    await sh("systemctl stop gatehouse");
    expect(await show("ActiveState")).toBe("inactive");
    expect(await show("Result")).toBe("success");
    expect(await show("ExecMainStatus")).toBe("0");
    expect(await sh("journalctl -u gatehouse --no-pager")).toContain("stopped");
    const left = await exec(["pgrep", "-U", String(serviceUid)]); // neither Gatehouse nor a backend
    expect([left.code, left.stdout.trim()]).toEqual([1, ""]);
  }, 60_000);
});

/** examples/compose.yaml's service, turned into `podman run` arguments (ports aside: each run picks its own). */
function composeRunArgs(paths: { config: string; env: string; volume: string }): {
  args: string[];
  stopSeconds: number;
} {
  const compose = Bun.YAML.parse(readFileSync(COMPOSE, "utf8")) as {
    services: Record<string, Record<string, unknown>>;
    volumes: Record<string, unknown>;
  };
  const svc = compose.services.gatehouse;
  if (!svc) throw new Error("examples/compose.yaml has no gatehouse service");
  const args: string[] = [];
  let stopSeconds = 10;
  for (const [key, value] of Object.entries(svc)) {
    switch (key) {
      case "image":
      case "build":
      case "ports":
      case "healthcheck": // checked against the image's own below
        break;
      case "restart":
        args.push("--restart", String(value));
        break;
      case "volumes":
        for (const v of value as string[]) {
          const [src, dst, mode] = v.split(":") as [string, string, string | undefined];
          const host =
            src === "./servers.json" ? paths.config : src in compose.volumes ? paths.volume : `unknown volume ${src}`;
          args.push("-v", [host, dst, ...(mode ? [mode] : [])].join(":"));
        }
        break;
      case "env_file":
        for (const f of value as string[]) {
          if (f !== "gatehouse.env") throw new Error(`compose.yaml env_file ${f}: the test knows gatehouse.env`);
          args.push("--env-file", paths.env);
        }
        break;
      case "read_only":
        // Docker's read_only adds no tmpfs; podman's --read-only does unless told not to.
        if (value === true) args.push("--read-only", "--read-only-tmpfs=false");
        break;
      case "tmpfs":
        for (const t of value as string[]) args.push("--tmpfs", t);
        break;
      case "cap_drop":
        for (const c of value as string[]) args.push("--cap-drop", c);
        break;
      case "security_opt":
        for (const o of value as string[])
          args.push("--security-opt", o.replace("no-new-privileges:true", "no-new-privileges"));
        break;
      case "stop_grace_period":
        stopSeconds = Number(/^(\d+)s$/.exec(String(value))?.[1] ?? Number.NaN);
        break;
      default:
        throw new Error(`examples/compose.yaml: the test does not know "${key}" — teach composeRunArgs`);
    }
  }
  return { args, stopSeconds };
}

describe("Containerfile and examples/compose.yaml", () => {
  const TOKEN = "container-test-token";
  const image = `localhost/${uniqueName("gatehouse-test")}:latest`;
  let backend: HttpBackend;
  let dir: string;
  let volume: string;
  let runArgs: string[];
  let stopSeconds: number;

  beforeAll(async () => {
    requirePodman();
    await ensureBinary();
    backend = await startHttpBackend();
    dir = tempDir("gatehouse-container-");
    // The servers.json the container reads: the HTTP backend on this machine's loopback (host network), the bearer
    // token from the env_file, and the authorization server (so there is state to keep on the volume).
    writeFileSync(join(dir, "servers.json"), "{}");
    writeFileSync(join(dir, "gatehouse.env"), `SHIP_TOKEN=${TOKEN}\n`);
    volume = cleanupVolume(uniqueName("gatehouse-state"));
    ({ args: runArgs, stopSeconds } = composeRunArgs({
      config: join(dir, "servers.json"),
      env: join(dir, "gatehouse.env"),
      volume,
    }));

    // The base: this machine's own files — what `ldd dist/gatehouse` lists, and the tools the Containerfile's
    // RUN (sh, install) and HEALTHCHECK (env) use.
    const base = await hostBaseImage(`localhost/${uniqueName("gatehouse-base")}:latest`, [
      BINARY,
      "/bin/sh",
      "/usr/bin/install",
      "/usr/bin/env",
    ]);
    // README's build command, with this base and this test's tag (and no cached layers left behind).
    const build = commands(shBlock("podman build")).find((l) => l.startsWith("podman build")) as string;
    const words = build.split(/\s+/).slice(2);
    const tag = words.indexOf("-t");
    expect(words[tag + 1]).toBe("gatehouse");
    words[tag + 1] = image;
    cleanupImage(image);
    await podmanOk(["build", "--layers=false", "--build-arg", `BASE=${base}`, ...words], { cwd: ROOT });
  }, 180_000);
  afterAll(async () => {
    await removeCreated();
    await backend?.stop();
  }, 120_000);

  test("the image: non-root numeric user, state volume, config path, port, entrypoint and command", async () => {
    const [info] = JSON.parse(await podmanOk(["image", "inspect", image])) as {
      Config: Record<string, unknown>;
      Healthcheck?: Record<string, unknown>;
    }[];
    const config = info?.Config ?? {};
    expect(config.User).toBe("10001:10001");
    expect(Object.keys(config.Volumes as object)).toEqual(["/var/lib/gatehouse"]);
    expect(config.Env).toContain("MCP_AUTH_SERVER_PATH=/var/lib/gatehouse/auth_server.json");
    expect(Object.keys(config.ExposedPorts as object)).toEqual(["8080/tcp"]);
    expect(config.Entrypoint).toEqual(["/usr/local/bin/gatehouse"]);
    // No --config: ./servers.json in /etc/gatehouse, or env-only mode when OIDC_ISSUER_URL is set (mcp-oauth-proxy's).
    expect(config.WorkingDir).toBe("/etc/gatehouse");
    expect(config.Cmd).toEqual(["serve", "--bind", "0.0.0.0:8080", "--insecure"]);
    // compose.yaml states the image's own healthcheck.
    const compose = Bun.YAML.parse(readFileSync(COMPOSE, "utf8")) as {
      services: {
        gatehouse: {
          image: string;
          build: { context: string; dockerfile: string };
          healthcheck: Record<string, unknown>;
        };
      };
    };
    const svc = compose.services.gatehouse;
    expect(svc.image).toBe("gatehouse:latest"); // README's `-t gatehouse`
    expect(join(ROOT, "examples", svc.build.context, svc.build.dockerfile)).toBe(join(ROOT, "Containerfile"));
    const hc = info?.Healthcheck ?? {};
    expect(svc.healthcheck.test).toEqual(hc.Test);
    const seconds = (s: unknown) => Number(/^(\d+)s$/.exec(String(s))?.[1]) * 1e9;
    expect(seconds(svc.healthcheck.interval)).toBe(hc.Interval as number);
    expect(seconds(svc.healthcheck.timeout)).toBe(hc.Timeout as number);
    expect(seconds(svc.healthcheck.start_period)).toBe(hc.StartPeriod as number);
    expect(svc.healthcheck.retries).toBe(hc.Retries as number);
    expect(install).toContain("[examples/compose.yaml](examples/compose.yaml)");
  });

  test("run as compose.yaml says: a tools/call through it, HEALTHCHECK, SIGTERM, state kept on the volume", async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    writeFileSync(
      join(dir, "servers.json"),
      JSON.stringify({
        mcpServers: { web: { url: backend.url } },
        serverAuth: {
          providers: ["oauth_as", "bearer"],
          oauthAs: { issuerUrl: url, trustedSourceCidrs: ["127.0.0.1/32"] },
          bearer: { tokens: { "${SHIP_TOKEN}": { subject: "ops", roles: ["admin"] } } },
        },
      }),
    );
    // Host network (the backend is on this machine's loopback), so the bind moves to a free loopback port and the
    // HEALTHCHECK is told where (GATEHOUSE_LIVEZ); everything else is the image's and compose.yaml's.
    const start = async () => {
      const name = cleanupContainer(uniqueName("gatehouse-run"));
      await podmanOk([
        "run",
        "-d",
        "--name",
        name,
        "--network",
        "host",
        ...runArgs,
        "-e",
        `GATEHOUSE_LIVEZ=${url}/livez`,
        image,
        "serve",
        "--config",
        "/etc/gatehouse/servers.json",
        "--bind",
        `127.0.0.1:${port}`,
      ]);
      await waitForContainer(name, `${url}/health`);
      return name;
    };

    const first = await start();
    const client = await connect(`${url}/mcp`, { token: TOKEN });
    expect(await client.callTool({ name: "web__echo", arguments: { message: "in a container" } })).toMatchObject({
      content: [{ text: "echo: in a container" }],
    });
    await client.close();
    expect((await podman(["healthcheck", "run", first])).code).toBe(0);
    expect((await podmanOk(["inspect", "--format", "{{.State.Health.Status}}", first])).trim()).toBe("healthy");

    // It runs as 10001, and its state is on the volume, owned by it and private.
    const pid = (await podmanOk(["inspect", "--format", "{{.State.Pid}}", first])).trim();
    expect(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]).toBe("10001");
    const data = (await podmanOk(["volume", "inspect", "--format", "{{.Mountpoint}}", volume])).trim();
    const stateFiles = readdirSync(data).filter((f) => f.startsWith("auth_server.json"));
    expect(stateFiles.length).toBeGreaterThan(0);
    for (const f of stateFiles.filter((f) => !f.endsWith(".sock"))) {
      const st = statSync(join(data, f));
      expect([f, st.uid, st.mode & 0o777]).toEqual([f, 10001, 0o600]);
    }
    const keys = (await (await fetch(`${url}/jwks`)).json()) as { keys: { kid: string }[] };
    expect(keys.keys.length).toBeGreaterThan(0);

    // `podman stop` sends SIGTERM: it stops cleanly, exit 0, well within compose's stop_grace_period.
    const t0 = Date.now();
    await podmanOk(["stop", "-t", String(stopSeconds), first]);
    expect(Date.now() - t0).toBeLessThan(stopSeconds * 1000);
    expect((await podmanOk(["inspect", "--format", "{{.State.ExitCode}}", first])).trim()).toBe("0");
    const logs = await podman(["logs", first]);
    expect(logs.stdout + logs.stderr).toContain("stopped");
    await podmanOk(["rm", first]);

    // A new container on the same volume keeps the signing keys: the state lives on the volume, not in the image.
    const second = await start();
    const again = (await (await fetch(`${url}/jwks`)).json()) as { keys: { kid: string }[] };
    expect(again.keys.map((k) => k.kid)).toEqual(keys.keys.map((k) => k.kid));
    await podmanOk(["stop", "-t", String(stopSeconds), second]);
  }, 120_000);

  test("the default CMD on a published port: 0.0.0.0:8080 inside, /livez outside, the built-in HEALTHCHECK", async () => {
    const port = await freePort();
    // Bridge network: the container cannot reach this machine's loopback, so the backend is simply down.
    writeFileSync(
      join(dir, "servers.json"),
      JSON.stringify({
        mcpServers: { web: { url: "http://127.0.0.1:9/mcp" } },
        serverAuth: { providers: ["bearer"], bearer: { tokens: { "${SHIP_TOKEN}": "ops" } } },
      }),
    );
    const name = cleanupContainer(uniqueName("gatehouse-cmd"));
    const ownVolume = cleanupVolume(uniqueName("gatehouse-state"));
    const args = runArgs.map((a) => (a.startsWith(`${volume}:`) ? a.replace(volume, ownVolume) : a));
    await podmanOk(["run", "-d", "--name", name, "-p", `127.0.0.1:${port}:8080`, ...args, image]);
    await waitForContainer(name, `http://127.0.0.1:${port}/livez`);
    expect((await podman(["healthcheck", "run", name])).code).toBe(0);
    const logs = await podman(["logs", name]);
    expect(logs.stdout + logs.stderr).toContain("listening url=http://0.0.0.0:8080/mcp");
    await podmanOk(["stop", "-t", "20", name]);
    expect((await podmanOk(["inspect", "--format", "{{.State.ExitCode}}", name])).trim()).toBe("0");
  }, 90_000);
});

/** What a binary is for, from its header: ELF machine and interpreter, Mach-O CPU, PE machine. */
function platformOf(path: string): string {
  const b = readFileSync(path).subarray(0, 1 << 16);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (b[0] === 0x7f && b[1] === 0x45 && b[2] === 0x4c && b[3] === 0x46) {
    const machine = { 62: "x64", 183: "arm64" }[v.getUint16(0x12, true)] ?? "unknown";
    const phoff = Number(v.getBigUint64(0x20, true));
    const phentsize = v.getUint16(0x36, true);
    let interp = "";
    for (let i = 0; i < v.getUint16(0x38, true); i++) {
      const ph = phoff + i * phentsize;
      if (v.getUint32(ph, true) !== 3) continue; // PT_INTERP
      const off = Number(v.getBigUint64(ph + 8, true));
      const size = Number(v.getBigUint64(ph + 32, true));
      interp = new TextDecoder().decode(readFileSync(path).subarray(off, off + size - 1));
    }
    return `linux-${machine}${interp.includes("musl") ? "-musl" : ""}`;
  }
  if (v.getUint32(0, true) === 0xfeedfacf) return v.getUint32(4, true) === 0x0100000c ? "darwin-arm64" : "darwin-?";
  if (b[0] === 0x4d && b[1] === 0x5a) {
    const pe = v.getUint32(0x3c, true);
    return v.getUint16(pe + 4, true) === 0x8664 ? "windows-x64" : "windows-?";
  }
  return "unknown";
}

describe("release binaries: build.ts --all", () => {
  let out: string;
  beforeAll(() => {
    // Into a directory of its own, not the dist/ other tests run the binary from (same build, --outdir aside).
    out = tempDir("gatehouse-release-");
    const build = Bun.spawnSync([BUN, "run", "build.ts", "--all", "--outdir", out], { cwd: ROOT, stderr: "pipe" });
    if (build.exitCode !== 0) throw new Error(`build.ts --all failed:\n${build.stderr.toString()}`);
  }, 300_000);

  test("README lists what it builds", () => {
    expect(install).toContain("npx bun run build.ts --all");
    for (const name of ["linux-x64-baseline", "linux-x64-musl", "linux-arm64", "darwin-arm64", "windows-x64.exe"]) {
      expect(install).toContain(`gatehouse-${name}`);
    }
  });

  test("SHA256SUMS covers every artifact with its hash, and each binary is for the platform it names", () => {
    const expected = {
      gatehouse: `linux-${process.arch === "arm64" ? "arm64" : "x64"}`,
      "gatehouse-linux-x64": "linux-x64",
      "gatehouse-linux-x64-baseline": "linux-x64",
      "gatehouse-linux-x64-musl": "linux-x64-musl",
      "gatehouse-linux-arm64": "linux-arm64",
      "gatehouse-darwin-arm64": "darwin-arm64",
      "gatehouse-windows-x64.exe": "windows-x64",
    };
    const artifacts = readdirSync(out).filter((f) => f !== "SHA256SUMS");
    const binaries = Object.keys(expected);
    expect(artifacts.sort()).toEqual([...binaries, ...binaries.map((b) => `${b}.map`)].sort());
    const lines = readFileSync(join(out, "SHA256SUMS"), "utf8").trimEnd().split("\n");
    const listed = new Map(lines.map((l) => [l.slice(66), l.slice(0, 64)]));
    expect(lines.every((l) => /^[0-9a-f]{64} {2}\S+$/.test(l))).toBe(true);
    expect([...listed.keys()].sort()).toEqual(artifacts.sort());
    for (const f of artifacts) {
      const hash = new Bun.CryptoHasher("sha256").update(readFileSync(join(out, f))).digest("hex");
      expect(`${f} ${listed.get(f)}`).toBe(`${f} ${hash}`);
    }
    // What a user runs to check a download.
    expect(run(["sha256sum", "-c", "SHA256SUMS"], { cwd: out }).code).toBe(0);
    for (const [bin, platform] of Object.entries(expected))
      expect(`${bin}: ${platformOf(join(out, bin))}`).toBe(`${bin}: ${platform}`);
  });

  test("the binaries for this machine run: --version", () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string };
    const here = [
      "gatehouse",
      ...(process.arch === "x64" ? ["gatehouse-linux-x64", "gatehouse-linux-x64-baseline"] : []),
    ];
    for (const bin of here)
      expect(`${bin} ${run([join(out, bin), "--version"]).out.trim()}`).toBe(`${bin} ${pkg.version}`);
  });
});
