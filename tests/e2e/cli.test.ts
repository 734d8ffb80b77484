// The command line as a user meets it: help, version, check, hash-token, and serve refusing unsafe or broken
// set-ups before it listens.

import { describe, expect, test } from "bun:test";
import { existsSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { sha256Hex } from "../../src/crypto.ts";
import { BUN, MAIN, ROOT } from "../helpers/paths.ts";
import { tempDir, writeConfig } from "../helpers/temp.ts";

function run(args: string[], options: { env?: Record<string, string>; stdin?: string } = {}) {
  const p = Bun.spawnSync([BUN, MAIN, ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...options.env },
    stdin: options.stdin === undefined ? "ignore" : new TextEncoder().encode(options.stdin),
    timeout: 20_000,
  });
  return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
}

const good = { mcpServers: { s: { command: "true" } } };

describe("gatehouse CLI", () => {
  test("--help lists the commands; each command has its own --help", () => {
    const main = run(["--help"]);
    expect(main.code).toBe(0);
    for (const c of ["serve", "check", "hash-token", "--version"]) expect(main.out).toContain(c);
    const serve = run(["serve", "--help"]);
    expect(serve.code).toBe(0);
    expect(serve.out).toContain("--bind HOST:PORT");
    expect(run(["check", "--help"]).out).toContain("Exits 0");
    for (const c of ["reload", "doctor"]) {
      expect(main.out).toContain(`gatehouse ${c}`);
      const help = run([c, "--help"]);
      expect(help.code).toBe(0);
      expect(help.out).toContain(`Usage: gatehouse ${c}`);
    }
  });

  test("doctor against nothing listening: exit 1, a FAIL line with the reason, no stack", () => {
    const r = run(["doctor", "http://127.0.0.1:9/mcp", "--timeout", "2"]);
    expect(r.code).toBe(1);
    expect(r.out).toContain("FAIL");
    expect(`${r.out}${r.err}`).not.toContain("    at ");
  });

  test("an admin command that finds no state never starts an empty one: it says where it looked; --state points it", () => {
    const config = writeConfig({
      mcpServers: { s: { command: "x" } },
      serverAuth: {
        providers: ["oauth_as"],
        oauthAs: { issuerUrl: "https://gh.example", trustedSourceCidrs: ["127.0.0.1/32"] },
      },
    });
    const missing = run(["clients", "list", "--config", config]);
    expect(missing.code).toBe(1);
    expect(missing.err).toContain("no state file at");
    expect(missing.err).toContain("--state PATH");
    expect(existsSync(join(dirname(config), "auth_server.json"))).toBe(false);
    expect(run(["state", "export", "--config", config]).err).toContain("no state file at");
    // Pointed at a state that exists, it works.
    const elsewhere = join(tempDir(), "auth_server.json");
    writeFileSync(elsewhere, JSON.stringify({ version: 1, clients: {} }));
    const found = run(["clients", "list", "--config", config, "--state", elsewhere]);
    expect(found.err).toBe("");
    expect(found.code).toBe(0);
    expect(run(["clients", "show", "nobody", "--config", config, "--state", elsewhere])).toMatchObject({ code: 1 });
    // A --state that names nothing is named as the place looked at.
    const wrong = run(["keys", "rotate", "--config", config, "--state", "/nonexistent/x.json"]);
    expect(wrong.code).toBe(1);
    expect(wrong.err).toContain("no state file at /nonexistent/x.json (the path given with --state");
  });

  test("offline admin commands: HS256 has no key to rotate (exit 1, no stack); an audit file not there yet is a warning", () => {
    const audit = join(tempDir(), "no-such-dir", "audit.jsonl");
    const config = writeConfig({
      mcpServers: { s: { command: "x" } },
      serverAuth: {
        providers: ["oauth_as"],
        oauthAs: { issuerUrl: "https://gh.example", trustedSourceCidrs: ["127.0.0.1/32"], jwtSecret: "s".repeat(32) },
      },
      audit: { enabled: true, output: "file", path: audit },
    });
    const state = join(tempDir(), "auth_server.json");
    writeFileSync(state, JSON.stringify({ version: 1, clients: {} }));
    const r = run(["keys", "rotate", "--config", config, "--state", state]);
    expect(r.code).toBe(1);
    expect(r.err).toContain("jwtSecret");
    expect(r.err).not.toContain("    at ");
    const s = run(["sessions", "revoke", "subject:nobody", "--config", config, "--state", state]);
    expect(s.code).toBe(1); // nothing to revoke, nothing audited
    // A change made while the audit file is not there: done, and said that its record could not be written.
    const es256 = writeConfig({
      mcpServers: { s: { command: "x" } },
      serverAuth: {
        providers: ["oauth_as"],
        oauthAs: { issuerUrl: "https://gh.example", trustedSourceCidrs: ["127.0.0.1/32"] },
      },
      audit: { enabled: true, output: "file", path: audit },
    });
    const rotated = run(["keys", "rotate", "--config", es256, "--state", state]);
    expect(rotated.code).toBe(0);
    expect(rotated.err).toContain("warning: the audit record was not written");
    expect(existsSync(audit)).toBe(false);
  });

  test("reload without a running server says how else to reload, exit 1 (nothing wrong with the command line)", () => {
    const r = run(["reload", "--config", "/nonexistent/servers.json"]);
    expect(r.code).toBe(1);
    expect(r.err).toContain("SIGHUP");
  });

  test("unknown flags and commands are errors", () => {
    const r = run(["serve", "--cofnig", "x.json"]);
    expect(r.code).toBe(2);
    expect(r.err).toContain("unknown flag --cofnig");
    expect(run(["frobnicate"]).err).toContain('unknown command "frobnicate"');
  });

  test("check: a valid config exits 0 and summarises it", () => {
    const path = writeConfig(good);
    const r = run(["check", "--config", path]);
    expect(r.code).toBe(0);
    expect(r.out).toContain(`configuration: ${path} (found through --config)`);
    expect(r.out).toContain("ok — 1 server (s), providers:");
  });

  test("check: every problem printed with its path, after the file it read, exit 1", () => {
    const path = writeConfig({ mcpServers: { a: { command: 1 }, b: { url: "x" } }, typo: 1 });
    const r = run(["check", "--config", path]);
    expect(r.code).toBe(1);
    expect(r.out).toContain(`configuration: ${path} (found through --config)`);
    expect(r.err).toContain("mcpServers.a.command: found 1, expected string");
    expect(r.err).toContain("mcpServers.b.url");
    expect(r.err).toContain("typo: unknown key");
    expect(r.err).toContain("3 problems; nothing was started");
  });

  test("check: the config comes from MCP_CONFIG_PATH, or inline from MCP_SERVERS_CONFIG", () => {
    expect(run(["check"], { env: { MCP_CONFIG_PATH: writeConfig(good) } }).code).toBe(0);
    expect(run(["check"], { env: { MCP_SERVERS_CONFIG: JSON.stringify(good) } }).out).toContain(
      "MCP_SERVERS_CONFIG: ok",
    );
    const missing = run(["check", "--config", "/nonexistent/servers.json"]);
    expect(missing.code).toBe(1);
    expect(missing.err).toContain("cannot read the configuration (no such file)");
  });

  test("serve: a broken config exits 1 before listening", () => {
    const r = run(["serve", "--config", writeConfig({ mcpServers: { a: { command: 1 } } }), "--bind", "127.0.0.1:0"]);
    expect(r.code).toBe(1);
    expect(r.err).toContain("mcpServers.a.command: found 1, expected string");
  });

  test("serve: a non-loopback bind without --insecure is refused, saying why", () => {
    const r = run(["serve", "--config", writeConfig(good), "--bind", "0.0.0.0:0"]);
    expect(r.code).toBe(2);
    expect(r.err).toContain("refusing to listen on 0.0.0.0:0");
    expect(r.err).toContain("--insecure");
  });

  test("serve: forwarded identities without trustedSourceCidrs are refused on a non-loopback bind", () => {
    const config = writeConfig({ ...good, serverAuth: { providers: ["forwarded"], forwarded: {} } });
    const r = run(["serve", "--config", config, "--bind", "0.0.0.0:0", "--insecure"]);
    expect(r.code).toBe(1);
    expect(r.err).toContain("serverAuth.forwarded.trustedSourceCidrs is required");
  });

  test("hash-token: from an argument, from stdin, or a new random token", () => {
    expect(run(["hash-token", "s3cret"]).out.trim()).toBe(`sha256:${sha256Hex("s3cret")}`);
    expect(run(["hash-token"], { stdin: "s3cret\n" }).out.trim()).toBe(`sha256:${sha256Hex("s3cret")}`);
  });

  test("hash-password prints an argon2id hash that verifies", async () => {
    const r = run(["hash-password", "s3cret pass"]);
    expect(r.code).toBe(0);
    expect(r.out).toStartWith("$argon2id$");
    expect(await Bun.password.verify("s3cret pass", r.out.trim())).toBe(true);
  });
});
