// A user of `mcp serve` (avelino/mcp) switching to Gatehouse, with real parts: each example of mcp serve's
// configuration reference (docs/reference/config-file.md, as tests/fixtures/mcp-serve-docs.ts holds them, text
// unchanged) loaded by a real Gatehouse process and doing what that reference says, through the official MCP SDK
// client; then the state mcp serve wrote (auth_server.json in its format, tests/fixtures/mcp-serve-state.ts) taken
// over — its clients known, its refresh tokens redeemed and rotated, its access tokens accepted until they expire —
// with the requests its OAuth how-to (docs/howto/oauth-as.md) documents.
//
// The commands the examples name (npx, mcp-grafana, …) are stand-ins on PATH that start the MCP reference server
// (server-everything) and note their arguments, so the examples run unchanged; URLs on hosts the test cannot reach
// (example.com, mcp.sentry.io) stay as they are, except where a request must be seen: then the URL alone points at
// a local server, said so in the test.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { type HttpBackend, startHttpBackend } from "../fixtures/http-backend.ts";
import { docExample } from "../fixtures/mcp-serve-docs.ts";
import {
  type McpServeRefreshToken,
  mcpServeAccessToken,
  mcpServeClient,
  mcpServeRefreshToken,
  mcpServeState,
  mcpServeStateFile,
} from "../fixtures/mcp-serve-state.ts";
import { connect } from "../helpers/client.ts";
import { type Running, startGatehouse } from "../helpers/gatehouse-process.ts";
import { freePort } from "../helpers/net.ts";
import { HeadlessOAuthProvider } from "../helpers/oauth-client.ts";
import { BUN, EVERYTHING, MAIN, ROOT } from "../helpers/paths.ts";
import { tempDir } from "../helpers/temp.ts";

const SECRET = "a-secret-of-at-least-thirty-two-bytes!";
const ISSUER = "https://mcp.example.com";

/** A directory of stand-in commands: each starts server-everything (stdio) and appends its argv to $SHIM_LOG. */
function standIns(...names: string[]): { path: string; log: string } {
  const dir = tempDir("gatehouse-shims-");
  const log = join(dir, "argv.log");
  for (const name of names) {
    const file = join(dir, name);
    writeFileSync(file, `#!/bin/sh\necho "${name} $*" >> "$SHIM_LOG"\nexec "${BUN}" "${EVERYTHING}" stdio\n`);
    chmodSync(file, 0o755);
  }
  return { path: `${dir}:${process.env.PATH ?? ""}`, log };
}

/** servers.json in a fresh directory (the text as given), and its path. */
function configFile(text: string, dir = tempDir()): string {
  const path = join(dir, "servers.json");
  writeFileSync(path, text);
  return path;
}

function cli(args: string[], env: Record<string, string> = {}) {
  const p = Bun.spawnSync([BUN, MAIN, ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...env },
    timeout: 20_000,
  });
  return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
}

const toolNames = async (c: Client) => (await c.listTools()).tools.map((t) => t.name);

/** The HTTP status of an initialize on /mcp with these headers (a refusal is 401, whatever its message). */
async function initStatus(url: string, headers: Record<string, string> = {}): Promise<number> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...headers },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "t", version: "1" } },
    }),
  });
  await res.body?.cancel();
  return res.status;
}
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const text = (r: unknown) => ((r as { content: { text: string }[] }).content[0] as { text: string }).text;

let backend: HttpBackend;
beforeAll(async () => {
  backend = await startHttpBackend();
}, 30_000);
afterAll(async () => {
  await backend?.stop();
});

describe("config-file.md, each example on a real Gatehouse", () => {
  test("Location: MCP_CONFIG_PATH, else ~/.config/mcp/servers.json ($MCP_CONFIG_DIR); check and serve say which", async () => {
    const good = `{"mcpServers": {"web": {"url": "${backend.url}"}}}`;
    const home = tempDir("gatehouse-home-");
    mkdirSync(join(home, ".config", "mcp"), { recursive: true });
    const inHome = configFile(good, join(home, ".config", "mcp"));
    const elsewhere = configFile(good);
    const dir = tempDir();
    const inDir = configFile(good, dir);

    const byDefault = cli(["check"], { HOME: home });
    expect(byDefault.code).toBe(0);
    expect(byDefault.out).toContain(`configuration: ${inHome} (found through ~/.config/mcp/servers.json`);
    expect(cli(["check"], { HOME: home, MCP_CONFIG_PATH: elsewhere }).out).toContain(
      `configuration: ${elsewhere} (found through MCP_CONFIG_PATH)`,
    );
    expect(cli(["check"], { HOME: home, MCP_CONFIG_DIR: dir }).out).toContain(
      `configuration: ${inDir} (found through MCP_CONFIG_DIR)`,
    );
    // serve, with no flag at all: the listening line names the file and how it was found.
    const gh = await startGatehouse({ env: { HOME: home } });
    try {
      expect(gh.logs()).toContain(`config=${inHome}`);
      expect(gh.logs()).toMatch(/config_from="~\/\.config\/mcp\/servers\.json/);
      const c = await connect(`${gh.url}/mcp`);
      expect(await toolNames(c)).toContain("web__echo");
      await c.close();
    } finally {
      await gh.stop();
    }
  });

  test("Schema: an empty mcpServers boots (mcp serve boots with no server), with a warning", async () => {
    const ex = docExample("config-file.md › Schema, with no server yet");
    const check = cli(["check", "--config", configFile(ex.config)]);
    expect(check.code).toBe(0);
    expect(check.out).toContain("warning: mcpServers: is empty");
    const gh = await startGatehouse({ config: configFile(ex.config) });
    try {
      expect(gh.logs()).toContain("configuration: mcpServers: is empty");
      const c = await connect(`${gh.url}/mcp`);
      expect(await toolNames(c)).toEqual([]);
      await c.close();
    } finally {
      await gh.stop();
    }
  });

  test("ServerConfig › Stdio server: the command runs with its args and env", async () => {
    const ex = docExample("config-file.md › ServerConfig › Stdio server");
    const shims = standIns("npx");
    const gh = await startGatehouse({ config: configFile(ex.config), env: { PATH: shims.path, SHIM_LOG: shims.log } });
    try {
      const c = await connect(`${gh.url}/mcp`);
      expect(await toolNames(c)).toContain("pkg__echo");
      const env = JSON.parse(text(await c.callTool({ name: "pkg__get-env", arguments: {} })));
      expect(env.KEY).toBe("value");
      expect(readFileSync(shims.log, "utf8")).toContain("npx -y package-name");
      await c.close();
    } finally {
      await gh.stop();
    }
  });

  test("ServerConfig › HTTP server: its headers go with every request (url pointed at a local server)", async () => {
    const ex = docExample("config-file.md › ServerConfig › HTTP server");
    const config = ex.config.replace("https://example.com/mcp", backend.url);
    const gh = await startGatehouse({ config: configFile(config) });
    try {
      const c = await connect(`${gh.url}/mcp`, { token: "the client's own token, never forwarded" });
      const seen = JSON.parse(text(await c.callTool({ name: "remote__headers", arguments: {} })));
      expect(seen.authorization).toBe("Bearer token");
      await c.close();
    } finally {
      await gh.stop();
    }
  });

  test("Idle timeout › Examples: every policy accepted; the stdio ones serve, the unreachable URL is named", async () => {
    const ex = docExample("config-file.md › Idle timeout › Examples");
    const check = cli(["check", "--config", configFile(ex.config)]);
    expect(check.out).toContain("ok — 3 servers");
    const shims = standIns("npx");
    const gh = await startGatehouse({ config: configFile(ex.config), env: { PATH: shims.path, SHIM_LOG: shims.log } });
    try {
      const c = await connect(`${gh.url}/mcp`);
      const names = await toolNames(c);
      expect(names).toContain("slack__echo");
      expect(names).toContain("github__echo");
      expect(names.some((n) => n.startsWith("sentry__"))).toBe(false);
      const refused = await c.callTool({ name: "sentry__anything", arguments: {} }).catch((e: Error) => e);
      expect(String(refused instanceof Error ? refused.message : JSON.stringify(refused))).toContain("sentry");
      expect(readFileSync(shims.log, "utf8")).toContain("npx @anthropic/mcp-slack");
      await c.close();
    } finally {
      await gh.stop();
    }
  });

  test("Tool ACL overrides: loaded at start (the servers' commands are stand-ins)", async () => {
    const ex = docExample("config-file.md › Tool ACL overrides");
    const shims = standIns("mcp-grafana", "databricks-mcp");
    const gh = await startGatehouse({ config: configFile(ex.config), env: { PATH: shims.path, SHIM_LOG: shims.log } });
    try {
      const c = await connect(`${gh.url}/mcp`);
      const names = await toolNames(c);
      expect(names).toContain("grafana__echo");
      expect(names).toContain("databricks__echo");
      await c.close();
    } finally {
      await gh.stop();
    }
    // "The same pattern string may not appear in both read and write … fails loudly at load time."
    const both = ex.config.replace('"write": ["execute_sql"]', '"write": ["execute_sql", "poll_sql_result"]');
    expect(cli(["check", "--config", configFile(both)]).err).toContain('appears in both "read" and "write"');
  });

  test("Environment variable substitution: ${VAR} replaced in env, headers, url; an unset one is refused", async () => {
    const ex = docExample("config-file.md › Environment variable substitution");
    const shims = standIns("x");
    const gh = await startGatehouse({
      config: configFile(ex.config),
      env: { ...ex.env, PATH: shims.path, SHIM_LOG: shims.log },
    });
    try {
      const c = await connect(`${gh.url}/mcp`);
      const env = JSON.parse(text(await c.callTool({ name: "y__get-env", arguments: {} })));
      expect(env.TOKEN).toBe("s");
      await c.close();
    } finally {
      await gh.stop();
    }
    // mcp serve substitutes "" for a missing variable; Gatehouse stops, naming it (README "Differences").
    const unset = cli(["check", "--config", configFile(ex.config)], { HOST: "h", API_KEY: "k" });
    expect(unset.code).toBe(1);
    expect(unset.err).toContain("environment variable MY_SECRET is not set");
  });

  test("Server authentication › Bearer config: both token shapes, each its subject", async () => {
    const ex = docExample("config-file.md › Server authentication › Bearer config");
    const gh = await startGatehouse({ config: configFile(ex.config) });
    try {
      for (const [token, subject] of [
        ["secret-abc", "alice"],
        ["secret-def", "bob"],
      ] as const) {
        const c = await connect(`${gh.url}/mcp`, { token });
        await gh.waitForLog(new RegExp(`session opened .*subject=${subject} provider=bearer`));
        await c.close();
      }
      expect(await initStatus(`${gh.url}/mcp`, bearer("wrong"))).toBe(401);
    } finally {
      await gh.stop();
    }
  });

  test("Server authentication › Forwarded config: the user and groups headers (and the block is optional)", async () => {
    for (const source of [
      "config-file.md › Server authentication › Forwarded config",
      "config-file.md › Server authentication › Forwarded config, listed without its block (it is optional)",
    ]) {
      const gh = await startGatehouse({ config: configFile(docExample(source).config) });
      try {
        const c = await connect(`${gh.url}/mcp`, {
          headers: { "x-forwarded-user": "alice", "x-forwarded-groups": " dev , oncall ," },
        });
        await gh.waitForLog(/session opened .*subject=alice provider=forwarded/);
        await c.close();
        expect(await initStatus(`${gh.url}/mcp`)).toBe(401);
      } finally {
        await gh.stop();
      }
    }
  });

  test("ACL config (legacy schema): bob with role viewer loses sentry__*; the others keep everything", async () => {
    const ex = docExample("config-file.md › Server authentication › ACL config");
    const config = JSON.parse(ex.config.replace('"https://mcp.sentry.dev/sse"', JSON.stringify(backend.url)));
    config.serverAuth.providers = ["bearer"];
    config.serverAuth.bearer = {
      tokens: {
        "tok-bob": { subject: "bob", roles: ["viewer"] },
        "tok-alice": { subject: "alice", roles: ["viewer"] },
      },
    };
    const gh = await startGatehouse({ config: configFile(JSON.stringify(config)) });
    try {
      const bob = await connect(`${gh.url}/mcp`, { token: "tok-bob" });
      expect((await toolNames(bob)).filter((n) => n.startsWith("sentry__"))).toEqual([]);
      const alice = await connect(`${gh.url}/mcp`, { token: "tok-alice" });
      expect(await toolNames(alice)).toContain("sentry__echo");
      await bob.close();
      await alice.close();
    } finally {
      await gh.stop();
    }
  });

  test("ACL config › Role-based schema: subjects' roles, read/write access, extra grants, default deny", async () => {
    const ex = docExample("config-file.md › Server authentication › ACL config › Role-based schema (recommended)");
    const config = JSON.parse(ex.config);
    const shims = standIns("npx");
    // The example's servers (github, grafana, sentry) and a bearer token per subject it names.
    config.mcpServers = {
      github: { command: "npx", args: ["github"] },
      grafana: { command: "npx", args: ["grafana"] },
      sentry: { command: "npx", args: ["sentry"] },
    };
    config.serverAuth.providers = ["bearer"];
    config.serverAuth.bearer = { tokens: { "tok-alice": "alice", "tok-bob": "bob", "tok-charlie": "charlie" } };
    const gh = await startGatehouse({
      config: configFile(JSON.stringify(config)),
      env: { PATH: shims.path, SHIM_LOG: shims.log },
    });
    try {
      const seen = async (token: string) => {
        const c = await connect(`${gh.url}/mcp`, { token });
        const names = await toolNames(c);
        await c.close();
        return names;
      };
      // server-everything's get-env is read-only (readOnlyHint), toggle-simulated-logging is not: write.
      const write = "toggle-simulated-logging";
      const alice = await seen("tok-alice"); // admin: everything
      for (const s of ["github", "grafana", "sentry"]) {
        expect(alice).toContain(`${s}__get-env`);
        expect(alice).toContain(`${s}__${write}`);
      }
      const bob = await seen("tok-bob"); // dev: github and grafana read, github write for gh_pr/gh_issue only
      expect(bob).toContain("github__get-env");
      expect(bob).toContain("grafana__get-env");
      expect(bob).not.toContain(`github__${write}`);
      expect(bob.some((n) => n.startsWith("sentry__"))).toBe(false);
      const charlie = await seen("tok-charlie"); // readonly everywhere (and sentry read, extra)
      expect(charlie).toContain("sentry__get-env");
      expect(charlie.some((n) => n.endsWith(`__${write}`))).toBe(false);
    } finally {
      await gh.stop();
    }
  });

  test("OAuth AS config: its ChatGPT pattern with a '*' mid-URL is refused (mcp serve refuses it too)", () => {
    const ex = docExample(
      "config-file.md › OAuth AS config (oauthAs) (its ChatGPT pattern has a '*' mid-URL, which mcp serve also refuses)",
    );
    const r = cli(["check", "--config", configFile(ex.config)], ex.env);
    expect(r.code).toBe(1);
    expect(r.err).toContain(
      'serverAuth.oauthAs.redirectUriAllowlist[1]: found "https://chat.openai.com/aip/*/oauth/callback"',
    );
  });

  test('Schema change: the single "provider" string is refused with what to write, never booted anonymous', () => {
    const ex = docExample("config-file.md › Server authentication (serverAuth) — the single provider string");
    const r = cli(["serve", "--config", configFile(ex.config)]);
    expect(r.code).toBe(1);
    expect(r.err).toContain('write "providers": ["bearer"] instead');
  });
});

// ---------------------------------------------------------------------------------------------------------------
// The authorization server: mcp serve's state and tokens taken over (oauth-as.md; the configuration is the
// example of proxy-mode.md › OAuth Authorization Server, unchanged: issuer https://mcp.example.com, reached here
// directly on loopback as the reverse proxy would).

interface Migration {
  dir: string;
  state: string;
  original: string;
  claude: ReturnType<typeof mcpServeClient>;
  alice: McpServeRefreshToken;
  bob: McpServeRefreshToken;
}

/** mcp serve's configuration directory as it leaves it: servers.json and auth_server.json side by side. */
function mcpServeDir(): Migration {
  const dir = tempDir("gatehouse-mcp-serve-");
  configFile(
    docExample("proxy-mode.md › Authentication › OAuth Authorization Server").config.replace(
      '"https://mcp.sentry.dev/sse"',
      JSON.stringify(backend.url),
    ),
    dir,
  );
  const now = Math.floor(Date.now() / 1000);
  const claude = mcpServeClient(["https://claude.ai/api/mcp/auth_callback"]);
  const alice = mcpServeRefreshToken(claude.client_id, "alice@example.com", ["engineers"], now + 20 * 86_400);
  const bob = mcpServeRefreshToken(claude.client_id, "bob@example.com", [], now + 86_400);
  const stale = mcpServeRefreshToken(claude.client_id, "carol@example.com", [], now - 60);
  const original = mcpServeStateFile(mcpServeState([claude], [alice, bob, stale]));
  const state = join(dir, "auth_server.json");
  writeFileSync(state, original, { mode: 0o600 });
  return { dir, state, original, claude, alice, bob };
}

const form = (fields: Record<string, string>) => ({
  method: "POST",
  headers: { "content-type": "application/x-www-form-urlencoded" },
  body: new URLSearchParams(fields).toString(),
});

describe("mcp serve's auth_server.json and tokens, taken over", () => {
  let m: Migration;
  let gh: Running;
  const env = () => ({ MCP_CONFIG_DIR: m.dir, MCP_OAUTH_AS_JWT_SECRET: SECRET });
  beforeAll(async () => {
    m = mcpServeDir();
    // As mcp serve is started: nothing but its configuration directory.
    gh = await startGatehouse({ env: env() });
  }, 60_000);
  afterAll(async () => {
    await gh?.stop();
  });

  test("starts on it: the file converted, the original kept beside it, the log says so", async () => {
    expect(gh.logs()).toContain(`config=${join(m.dir, "servers.json")}`);
    await gh.waitForLog(
      "converted mcp serve's state: 1 client and 2 refresh tokens (dropped: 1 expired refresh token)",
    );
    expect(gh.logs()).toContain(`the original is kept at ${m.state}.mcp-serve.bak`);
    expect(readFileSync(`${m.state}.mcp-serve.bak`, "utf8")).toBe(m.original);
    const converted = readFileSync(m.state, "utf8");
    expect(JSON.parse(converted).version).toBe(1);
    for (const t of [m.alice, m.bob]) expect(converted).not.toContain(t.token);
  });

  test("oauth-as.md › Run it: both discovery documents answer JSON", async () => {
    for (const path of ["/.well-known/oauth-authorization-server", "/.well-known/oauth-protected-resource"]) {
      const res = await fetch(`${gh.url}${path}`);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toContain("application/json");
    }
    const as = (await (await fetch(`${gh.url}/.well-known/oauth-authorization-server`)).json()) as Record<
      string,
      unknown
    >;
    expect(as).toMatchObject({ issuer: ISSUER, code_challenge_methods_supported: ["S256"], scopes_supported: [] });
  });

  test("its client is known; oauth-as.md › Troubleshooting: /authorize from outside trustedSourceCidrs is 403", async () => {
    const list = cli(["clients", "list", "--config", join(m.dir, "servers.json")], env());
    expect(list.out).toContain(m.claude.client_id);
    const badCode = await fetch(
      `${gh.url}/token`,
      form({
        grant_type: "authorization_code",
        code: "x",
        code_verifier: "v".repeat(43),
        client_id: m.claude.client_id,
        redirect_uri: "https://claude.ai/api/mcp/auth_callback",
      }),
    );
    expect(((await badCode.json()) as { error: string }).error).toBe("invalid_grant"); // not invalid_client
    const q = new URLSearchParams({
      response_type: "code",
      client_id: m.claude.client_id,
      redirect_uri: "https://claude.ai/api/mcp/auth_callback",
      code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
      code_challenge_method: "S256",
      state: "s",
    });
    // The example trusts 10.0.0.0/8 only: from 127.0.0.1 the header is never believed.
    const res = await fetch(`${gh.url}/authorize?${q}`, {
      headers: { "x-forwarded-user": "mallory" },
      redirect: "manual",
    });
    expect(res.status).toBe(403);
    expect(await res.text()).toContain("not in oauthAs.trustedSourceCidrs");
  });

  test("an access token mcp serve minted (same jwtSecret) works on /mcp until it expires; forged variants do not", async () => {
    const now = Math.floor(Date.now() / 1000);
    const minted = (o: Partial<Parameters<typeof mcpServeAccessToken>[0]> = {}) =>
      mcpServeAccessToken({
        secret: SECRET,
        issuerUrl: ISSUER,
        clientId: m.claude.client_id,
        subject: "alice@example.com",
        groups: ["engineers", "oauth-user"],
        now: now - 600,
        ...o,
      });
    const c = await connect(`${gh.url}/mcp`, { token: minted() });
    expect(await toolNames(c)).toContain("sentry__echo");
    await c.close();
    await gh.waitForLog(/accepted an access token mcp serve issued .*subject=alice@example.com/);
    const status = (token: string) => initStatus(`${gh.url}/mcp`, bearer(token));
    expect(await status(minted({ now: now - 7200 }))).toBe(401); // expired
    expect(await status(minted({ secret: "another-secret-of-at-least-thirty-two-bytes" }))).toBe(401);
    expect(await status(minted({ issuerUrl: "https://attacker.example.com" }))).toBe(401);
    expect(await status(minted({ clientId: "mcp_unknown" }))).toBe(401);
    // Minted after the takeover, or living longer than accessTokenTtlSeconds: not mcp serve's.
    expect(await status(minted({ now: now - 5, iat: now + 60 }))).toBe(401);
    expect(await status(minted({ ttlSeconds: 7 * 86_400 }))).toBe(401);
    await gh.waitForLog("minted after its state was taken over");
  });

  test("a refresh token of mcp serve works and rotates (oauth-as.md: one use at most), then lives on as Gatehouse's", async () => {
    const first = await fetch(
      `${gh.url}/token`,
      form({ grant_type: "refresh_token", refresh_token: m.alice.token, client_id: m.claude.client_id }),
    );
    expect(first.status).toBe(200);
    const t = (await first.json()) as { access_token: string; refresh_token: string; expires_in: number };
    expect(t.refresh_token).not.toBe(m.alice.token);
    expect(t.expires_in).toBe(3600);
    const c = await connect(`${gh.url}/mcp`, { token: t.access_token });
    expect(await toolNames(c)).toContain("sentry__echo");
    await c.close();
    await gh.waitForLog(/session opened .*subject=alice@example.com provider=oauth_as/);
    // Refreshed by a client that names mcp serve's resource (its metadata said the issuer): the same /mcp.
    const again = await fetch(
      `${gh.url}/token`,
      form({
        grant_type: "refresh_token",
        refresh_token: t.refresh_token,
        client_id: m.claude.client_id,
        resource: ISSUER,
      }),
    );
    expect(again.status).toBe(200);
    // Another client may not use it (mcp serve: "refresh token does not match client_id").
    const other = await fetch(
      `${gh.url}/token`,
      form({ grant_type: "refresh_token", refresh_token: m.bob.token, client_id: "mcp_someone_else" }),
    );
    expect(other.status).toBeGreaterThanOrEqual(400);
  });

  test("a restart: nothing converted twice, the other user's refresh token still works", async () => {
    expect(await gh.stop()).toBe(0);
    gh = await startGatehouse({ env: env() });
    expect(gh.logs()).not.toContain("converted mcp serve's state");
    const r = await fetch(
      `${gh.url}/token`,
      form({ grant_type: "refresh_token", refresh_token: m.bob.token, client_id: m.claude.client_id }),
    );
    expect(r.status).toBe(200);
  });
});

describe("mcp serve's state where mcp serve keeps it, servers.json elsewhere (MCP_CONFIG_PATH)", () => {
  test("serve stops, naming the MCP_AUTH_SERVER_PATH to set; with it, the state is taken over", async () => {
    const m = mcpServeDir();
    const config = configFile(readFileSync(join(m.dir, "servers.json"), "utf8"));
    const refused = cli(["serve", "--bind", "127.0.0.1:0"], {
      MCP_CONFIG_PATH: config,
      MCP_CONFIG_DIR: m.dir,
      MCP_OAUTH_AS_JWT_SECRET: SECRET,
    });
    expect(refused.code).toBe(1);
    expect(refused.err).toContain(`set MCP_AUTH_SERVER_PATH=${m.state} to take it over`);
    expect(readFileSync(m.state, "utf8")).toBe(m.original);
    const gh = await startGatehouse({
      env: { MCP_CONFIG_PATH: config, MCP_AUTH_SERVER_PATH: m.state, MCP_OAUTH_AS_JWT_SECRET: SECRET },
    });
    try {
      await gh.waitForLog("converted mcp serve's state");
      const r = await fetch(
        `${gh.url}/token`,
        form({ grant_type: "refresh_token", refresh_token: m.alice.token, client_id: m.claude.client_id }),
      );
      expect(r.status).toBe(200);
    } finally {
      await gh.stop();
    }
    expect(existsSync(`${m.state}.mcp-serve.bak`)).toBe(true);
  });
});

describe("gatehouse state import of mcp serve's auth_server.json", () => {
  test("converted on the way in (into the JSON file here, Redis alike); refresh tokens only as hashes", () => {
    const m = mcpServeDir();
    const config = configFile(readFileSync(join(m.dir, "servers.json"), "utf8"));
    const imported = Bun.spawnSync([BUN, MAIN, "state", "import", "--config", config], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? "", HOME: "/nonexistent", MCP_OAUTH_AS_JWT_SECRET: SECRET },
      stdin: Buffer.from(m.original),
    });
    expect(imported.exitCode).toBe(0);
    expect(imported.stderr.toString()).toContain(
      "standard input is mcp serve's state: converted 1 client and 2 refresh tokens (dropped: 1 expired refresh token)",
    );
    const exported = cli(["state", "export", "--config", config], { MCP_OAUTH_AS_JWT_SECRET: SECRET });
    expect(Object.keys(JSON.parse(exported.out).clients)).toEqual([m.claude.client_id]);
    expect(exported.out).not.toContain(m.alice.token);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// The OAuth flow as Claude.ai runs it against the example (its issuer and addresses swapped for the test's own:
// a local issuer, 127.0.0.1 as the trusted proxy, the SDK client's loopback callback).

async function oauthGatehouse(extra: Record<string, unknown>): Promise<Running> {
  const port = await freePort();
  const config = JSON.parse(
    docExample("proxy-mode.md › Authentication › OAuth Authorization Server").config.replace(
      '"https://mcp.sentry.dev/sse"',
      JSON.stringify(backend.url),
    ),
  );
  Object.assign(config.serverAuth.oauthAs, {
    issuerUrl: `http://127.0.0.1:${port}`,
    trustedSourceCidrs: ["127.0.0.1/32"],
    redirectUriAllowlist: ["http://127.0.0.1/*"],
    ...extra,
  });
  return startGatehouse({ config: configFile(JSON.stringify(config)), port, env: { MCP_OAUTH_AS_JWT_SECRET: SECRET } });
}

async function signIn(gh: Running): Promise<{ provider: HeadlessOAuthProvider; client: Client }> {
  const mcpUrl = new URL(`${gh.url}/mcp`);
  const provider = new HeadlessOAuthProvider("http://127.0.0.1:33419/callback", {
    headers: { "x-forwarded-user": "alice@example.com", "x-forwarded-groups": "engineers" },
  });
  const first = new Client({ name: "migrate-test", version: "1" });
  await expect(first.connect(new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider }))).rejects.toThrow(
    UnauthorizedError,
  );
  const code = provider.code();
  if (!code) throw new Error(`no code: ${provider.lastBrowse?.status} ${provider.lastBrowse?.page?.slice(0, 300)}`);
  const transport = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider });
  await transport.finishAuth(code);
  const client = new Client({ name: "migrate-test", version: "1" });
  await client.connect(new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider }));
  return { provider, client };
}

describe('the consent page, and oauthAs.consent: "skip" (mcp serve\'s flow)', () => {
  test("by default a client that registered itself gets the consent page; no scope asked, none needed", async () => {
    const gh = await oauthGatehouse({});
    try {
      const { provider, client } = await signIn(gh);
      expect(provider.lastBrowse?.consentShown).toBe(true);
      expect(provider.authorizationUrls[0]?.searchParams.get("scope")).toBeNull();
      expect(provider.tokens()?.scope ?? "").toBe("");
      expect(await toolNames(client)).toContain("sentry__echo");
      await client.close();
    } finally {
      await gh.stop();
    }
  });

  test('consent: "skip": straight from the trusted header to the code, with a warning at start naming the risk', async () => {
    const gh = await oauthGatehouse({ consent: "skip" });
    try {
      expect(gh.logs()).toContain("a malicious client can obtain a code for any signed-in user who follows its link");
      const { provider, client } = await signIn(gh);
      expect(provider.lastBrowse?.consentShown).toBe(false);
      expect(await toolNames(client)).toContain("sentry__echo");
      await client.close();
    } finally {
      await gh.stop();
    }
  });
});
