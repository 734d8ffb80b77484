// Two Gatehouse replicas (the compiled binary) on one Redis, behind real nginx doing plain round robin with
// examples/nginx-replicas.conf. The official SDK client registers, signs in (a local account: the consent page, the
// password form and the code each served by whichever replica nginx picks), gets and refreshes tokens, lists and
// calls tools, receives a progress stream and answers a sampling request whose answer reaches the replica waiting for
// it through Redis — and keeps working after one replica is killed with kill -9. A refresh raced on both replicas is
// answered as one replica answers a refresh raced on itself; a key rotation is honoured by both; a revocation through
// one (token, grant, client) is refused by the other within 1 s.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { CreateMessageRequestSchema, ToolListChangedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { bunPasswords } from "../../src/platform/bun.ts";
import { type HttpBackend, startHttpBackend } from "../fixtures/http-backend.ts";
import { type Running, startGatehouse } from "../helpers/gatehouse-process.ts";
import { freePort } from "../helpers/net.ts";
import { type Nginx, nginxAvailable, startNginx } from "../helpers/nginx.ts";
import { browse, HeadlessOAuthProvider } from "../helpers/oauth-client.ts";
import { pkce } from "../helpers/oauth-flow.ts";
import { BINARY, ensureBinary, everythingStdio, ROOT } from "../helpers/paths.ts";
import { type Redis, redisAvailable, startRedis } from "../helpers/redis.ts";
import { writeConfig } from "../helpers/temp.ts";

const enabled = nginxAvailable() && redisAvailable();
const PASSWORD = "correct horse battery staple";
const CALLBACK = "http://127.0.0.1:33419/callback";

let redis: Redis;
let web: HttpBackend;
let nginx: Nginx;
let config: string;
const replicas: { port: number; g: Running }[] = [];
let base: string;

/** examples/nginx-replicas.conf with the test's addresses; each replaced line must be there exactly once. */
function exampleConfig(a: number, b: number): string {
  let text = readFileSync(join(ROOT, "examples/nginx-replicas.conf"), "utf8");
  const swap = (from: RegExp, to: string) => {
    const found = text.match(new RegExp(from.source, "gm"))?.length ?? 0;
    if (found !== 1) throw new Error(`examples/nginx-replicas.conf: expected one ${from}, found ${found}`);
    text = text.replace(new RegExp(from.source, "m"), to);
  };
  swap(/^(\s*)server 127\.0\.0\.1:8081;/, `$1server 127.0.0.1:${a};`);
  swap(/^(\s*)server 127\.0\.0\.1:8082;/, `$1server 127.0.0.1:${b};`);
  swap(/^(\s*)listen 443 ssl;/, "$1listen {{listen}};");
  swap(/^\s*ssl_certificate .*\n/, "");
  swap(/^\s*ssl_certificate_key .*\n/, "");
  // Which replica answered, for the test to see the round robin.
  swap(
    /^(\s*)proxy_pass http:\/\/gatehouse;/,
    "$1proxy_pass http://gatehouse;\n$1add_header X-Replica $upstream_addr always;",
  );
  return text;
}

const startReplica = (port: number) => startGatehouse({ config, port, binary: true, env: { LOG_LEVEL: "debug" } });

beforeAll(async () => {
  if (!enabled) return;
  await ensureBinary();
  redis = await startRedis();
  web = await startHttpBackend();
  const [pa, pb, pn] = [await freePort(), await freePort(), await freePort()];
  base = `http://127.0.0.1:${pn}`;
  config = writeConfig({
    // Each replica runs its own server-everything (stdio) and has its own connection to the HTTP backend.
    mcpServers: { everything: everythingStdio(), web: { url: web.url } },
    serverAuth: {
      providers: ["oauth_as"],
      oauthAs: {
        issuerUrl: base,
        logins: [{ type: "local", users: { alice: { passwordHash: await bunPasswords.hash(PASSWORD), groups: [] } } }],
      },
    },
    state: { redis: { url: redis.url, timeout: "1s" } },
  });
  for (const port of [pa, pb]) replicas.push({ port, g: await startReplica(port) });
  nginx = await startNginx(exampleConfig(pa, pb), { port: pn });
}, 180_000);

afterAll(async () => {
  if (process.env.SHOW_LOG)
    for (const r of replicas)
      console.log(
        r.g
          ?.logs()
          .split("\n")
          .filter((l) => /WARN|ERROR|continued|answer passed|session/.test(l))
          .join("\n"),
      );
  if (process.env.SHOW_LOG) console.log(nginx?.errorLog());
  await nginx?.stop();
  for (const r of replicas) await r.g?.stop();
  await web?.stop();
  await redis?.kill();
});

/** Every request of the client and its browser, with the replica that answered it. */
const seen: { method: string; path: string; replica: string }[] = [];
const record = (url: string, method: string, res: { headers: Headers }) => {
  seen.push({ method, path: new URL(url).pathname, replica: res.headers.get("x-replica") ?? "?" });
};
const recordingFetch = (async (input: string | URL | Request, init?: RequestInit) => {
  const url = input instanceof Request ? input.url : String(input);
  const res = await fetch(input, init);
  record(url, init?.method ?? "GET", res);
  return res;
}) as typeof fetch;

const jar = new Map<string, string>();
const provider = new HeadlessOAuthProvider(CALLBACK, {
  login: "local",
  credentials: { username: "alice", password: PASSWORD },
  jar,
  fetchImpl: async (url, init) => {
    const res = await fetch(url, { ...init, redirect: "manual" });
    record(url, init.method, res);
    return { status: res.status, headers: res.headers, text: await res.text() };
  },
});

const direct = (i: number) => `http://127.0.0.1:${replicas[i]?.port}`;
const replicaOf = (i: number) => `127.0.0.1:${replicas[i]?.port}`;

async function refreshAt(url: string, refreshToken: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`${url}/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "refresh_token",
      refresh_token: refreshToken,
      client_id: provider.clientInformation()?.client_id as string,
    }).toString(),
  });
  return { status: res.status, body: await res.text() };
}

async function mcpStatus(url: string, token: string): Promise<number> {
  const res = await fetch(`${url}/mcp`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${token}`,
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
    },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "probe", version: "1" } },
    }),
  });
  await res.body?.cancel();
  return res.status;
}

/** A grant of its own (the browser is signed in and the client approved: straight to a code), through nginx. */
async function anotherGrant(): Promise<{ access_token: string; refresh_token: string }> {
  const { verifier, challenge } = pkce();
  const clientId = provider.clientInformation()?.client_id as string;
  const q = new URLSearchParams({
    response_type: "code",
    client_id: clientId,
    redirect_uri: CALLBACK,
    code_challenge: challenge,
    code_challenge_method: "S256",
    resource: `${base}/mcp`,
  });
  const r = await browse(`${base}/authorize?${q}`, CALLBACK, { jar });
  const code = r.landed?.searchParams.get("code");
  if (!code) throw new Error(`no code: ${r.status} ${r.page?.slice(0, 300)}`);
  const res = await fetch(`${base}/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code,
      redirect_uri: CALLBACK,
      code_verifier: verifier,
      client_id: clientId,
    }).toString(),
  });
  if (res.status !== 200) throw new Error(`token: ${res.status} ${await res.text()}`);
  return (await res.json()) as { access_token: string; refresh_token: string };
}

/**
 * Resolves once `check` holds; fails after 3 s — far less than the replicas' local cache age (60 s), so what it
 * waits for came through Redis pub/sub, not a cache expiring. (No wall-clock figure is asserted beyond that bound.)
 */
async function within(check: () => Promise<boolean>): Promise<number> {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > 3000) throw new Error("never happened");
    await Bun.sleep(10);
  }
  return Date.now() - start;
}

/** Resolves once `count()` reaches `n`; fails after `ms`. */
async function reaches(count: () => number, n: number, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (count() < n) {
    if (Date.now() > deadline) throw new Error(`${what}: ${count()} of ${n}`);
    await Bun.sleep(10);
  }
}

describe.skipIf(!enabled)("two replicas on one Redis behind nginx round robin", () => {
  let client: Client;
  let transport: StreamableHTTPClientTransport;
  let listChanged = 0;

  test("the SDK client's OAuth flow, each step landing on alternating replicas", async () => {
    const mcpUrl = new URL(`${base}/mcp`);
    const first = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider, fetch: recordingFetch });
    const c1 = new Client({ name: "replicas", version: "1" }, { capabilities: { sampling: {} } });
    await expect(c1.connect(first)).rejects.toThrow();
    const code = provider.code();
    if (!code) throw new Error(`no code: ${provider.lastBrowse?.status} ${provider.lastBrowse?.page?.slice(0, 300)}`);
    await first.finishAuth(code);
    client = new Client({ name: "replicas", version: "1" }, { capabilities: { sampling: {} } });
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      listChanged++;
    });
    transport = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider, fetch: recordingFetch });
    await client.connect(transport);

    const flow = seen.filter((s) => /^\/(register|authorize|login|token)/.test(s.path));
    const steps = flow.map((s) => s.path);
    // registration, the consent page and its answer, the password form and its answer, the code exchange
    expect(steps).toEqual(["/register", "/authorize", "/authorize", "/login/local", "/login/local", "/token"]);
    const answering = flow.map((s) => s.replica);
    expect(new Set(answering)).toEqual(new Set([replicaOf(0), replicaOf(1)]));
    for (let i = 1; i < answering.length; i++) expect(answering[i]).not.toBe(answering[i - 1]);
  }, 60_000);

  test("tools are listed and called, whichever replica each request reaches", async () => {
    seen.length = 0;
    for (let i = 0; i < 4; i++) {
      expect((await client.listTools()).tools.map((t) => t.name)).toContain("everything__echo");
      const r = await client.callTool({ name: "everything__echo", arguments: { message: `hi ${i}` } });
      expect(JSON.stringify(r)).toContain(`hi ${i}`);
    }
    const posts = seen.filter((s) => s.path === "/mcp").map((s) => s.replica);
    expect(new Set(posts)).toEqual(new Set([replicaOf(0), replicaOf(1)]));
  });

  test("a notification outside any call reaches the client on its GET stream, whichever replica holds it", async () => {
    await reaches(() => seen.filter((s) => s.method === "GET" && s.path === "/mcp").length, 1, 5000, "GET stream");
    const holder = seen.filter((s) => s.method === "GET" && s.path === "/mcp").at(-1)?.replica;
    seen.length = 0;
    // `grow` adds a tool on the replica's own connection to the backend, which announces tools/list_changed there:
    // from the replica that ran the call to the one holding the stream, through Redis.
    for (let i = 1; i <= 4; i++) {
      await client.callTool({ name: "web__grow", arguments: {} });
      await reaches(() => listChanged, i, 3000, "tools/list_changed");
    }
    const ran = seen.filter((s) => s.method === "POST" && s.path === "/mcp").map((s) => s.replica);
    expect(ran.some((r) => r !== holder)).toBe(true);
  });

  test("the SDK refreshes through nginx when its access token is refused", async () => {
    const tokens = provider.tokens();
    provider.saveTokens({ ...(tokens as NonNullable<typeof tokens>), access_token: "expired-or-garbage" });
    seen.length = 0;
    expect((await client.listTools()).tools.length).toBeGreaterThan(0);
    expect(seen.some((s) => s.path === "/token")).toBe(true);
    expect(provider.tokens()?.access_token).not.toBe("expired-or-garbage");
  });

  test("a progress stream arrives while the tool runs", async () => {
    const events: string[] = [];
    const result = client.callTool(
      { name: "everything__trigger-long-running-operation", arguments: { duration: 1, steps: 3 } },
      undefined,
      { onprogress: (p) => events.push(`progress ${p.progress}/${p.total}`) },
    );
    void result.then(() => events.push("result"));
    await result;
    expect(events).toEqual(["progress 1/3", "progress 2/3", "progress 3/3", "result"]);
  });

  test("sampling requests are answered, the answer reaching the replica that waits for it through Redis", async () => {
    client.setRequestHandler(CreateMessageRequestSchema, async () => ({
      model: "test-model",
      role: "assistant",
      content: { type: "text", text: "sampled" },
    }));
    for (let i = 0; i < 4; i++) {
      const r = await client.callTool({
        name: "everything__trigger-sampling-request",
        arguments: { prompt: "hi", maxTokens: 5 },
      });
      expect(JSON.stringify(r)).toContain("test-model");
    }
    // With round robin, some answers were POSTed to the replica that was not waiting for them.
    const routed = replicas.some((r) => r.g.logs().includes("client's answer passed to replica"));
    expect(routed).toBe(true);
  }, 30_000);

  test("a refresh raced on both replicas is answered as one replica answers a race on itself: the same answer twice", async () => {
    const r0 = provider.tokens()?.refresh_token as string;
    const [a, b] = await Promise.all([refreshAt(direct(0), r0), refreshAt(direct(1), r0)]);
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(a.body).toBe(b.body);
    const r1 = JSON.parse(a.body) as { refresh_token: string; access_token: string };
    const [c, d] = await Promise.all([refreshAt(direct(0), r1.refresh_token), refreshAt(direct(0), r1.refresh_token)]);
    expect([c.status, d.status]).toEqual([200, 200]);
    expect(c.body).toBe(d.body);
    provider.saveTokens({
      ...(JSON.parse(c.body) as { access_token: string; refresh_token: string }),
      token_type: "Bearer",
    });
    // the answers keep the client going, through either replica
    expect(await mcpStatus(direct(1), provider.tokens()?.access_token as string)).toBe(200);
  });

  test("a key rotation (gatehouse keys rotate on the shared state) is used and honoured by both replicas", async () => {
    const kid = (t: string) => JSON.parse(Buffer.from(t.split(".")[0] as string, "base64url").toString()).kid as string;
    const before = kid(provider.tokens()?.access_token as string);
    const rotate = Bun.spawnSync([BINARY, "keys", "rotate", "--config", config], { cwd: ROOT });
    expect(rotate.exitCode).toBe(0);
    const fresh = rotate.stdout.toString().match(/new signing key (\S+);/)?.[1] as string;
    expect(fresh).not.toBe(before);
    for (const i of [0, 1]) {
      await within(async () => {
        const jwks = (await (await fetch(`${direct(i)}/jwks`)).json()) as { keys: { kid: string }[] };
        return jwks.keys.some((k) => k.kid === fresh);
      });
    }
    // Each replica signs with the new key, and the other accepts what it signed; old tokens keep working.
    for (const [signer, checker] of [
      [0, 1],
      [1, 0],
    ] as const) {
      const r = await refreshAt(direct(signer), provider.tokens()?.refresh_token as string);
      expect(r.status).toBe(200);
      const t = JSON.parse(r.body) as { access_token: string; refresh_token: string };
      provider.saveTokens({ ...t, token_type: "Bearer" });
      expect(kid(t.access_token)).toBe(fresh);
      expect(await mcpStatus(direct(checker), t.access_token)).toBe(200);
    }
  });

  test("a revoked access token and a revoked grant are refused by the other replica without waiting out its cache", async () => {
    const byToken = await anotherGrant();
    const byGrant = await anotherGrant();
    for (const t of [byToken, byGrant]) expect(await mcpStatus(direct(1), t.access_token)).toBe(200);
    const revoke = (token: string, hint: string) =>
      fetch(`${direct(0)}/revoke`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({
          token,
          token_type_hint: hint,
          client_id: provider.clientInformation()?.client_id as string,
        }).toString(),
      });
    expect((await revoke(byToken.access_token, "access_token")).status).toBe(200);
    await within(async () => (await mcpStatus(direct(1), byToken.access_token)) === 401);
    expect((await revoke(byGrant.refresh_token, "refresh_token")).status).toBe(200);
    await within(async () => (await mcpStatus(direct(1), byGrant.access_token)) === 401);
    // the client's own grant is untouched
    expect(await mcpStatus(direct(1), provider.tokens()?.access_token as string)).toBe(200);
  });

  test("the replica that opened the session killed with kill -9: the client keeps working through the other", async () => {
    // The session was opened by one replica; that one dies, and the session goes on at the other.
    const opened = `session opened session=${transport.sessionId?.slice(0, 8)}`;
    const victimIndex = replicas.findIndex((r) => r.g.logs().includes(opened));
    expect(victimIndex).toBeGreaterThanOrEqual(0);
    if (victimIndex === 1) replicas.reverse();
    const victim = replicas[0] as { port: number; g: Running };
    victim.g.proc.kill("SIGKILL");
    await victim.g.proc.exited;
    seen.length = 0;
    for (let i = 0; i < 3; i++) {
      expect((await client.listTools()).tools.length).toBeGreaterThan(0);
      const r = await client.callTool({ name: "everything__echo", arguments: { message: `after ${i}` } });
      expect(JSON.stringify(r)).toContain(`after ${i}`);
    }
    const events: string[] = [];
    await client.callTool(
      { name: "everything__trigger-long-running-operation", arguments: { duration: 1, steps: 2 } },
      undefined,
      { onprogress: (p) => events.push(`progress ${p.progress}`) },
    );
    expect(events).toEqual(["progress 1", "progress 2"]);
    // The GET stream, if it was on the dead replica, is back (the SDK reconnects it) on the living one.
    const before = listChanged;
    await client.callTool({ name: "web__grow", arguments: {} });
    await reaches(() => listChanged, before + 1, 8000, "tools/list_changed after the kill");
    expect(seen.filter((s) => s.path === "/mcp").every((s) => s.replica.endsWith(`:${replicas[1]?.port}`))).toBe(true);
  }, 30_000);

  test("the replica comes back; a client revoked through the CLI is refused by both without waiting out their caches", async () => {
    const back = replicas[0] as { port: number; g: Running };
    back.g = await startReplica(back.port);
    const token = provider.tokens()?.access_token as string;
    for (const i of [0, 1]) expect(await mcpStatus(direct(i), token)).toBe(200);
    const clientId = provider.clientInformation()?.client_id as string;
    const revoked = Bun.spawnSync([BINARY, "clients", "revoke", clientId, "--config", config], { cwd: ROOT });
    expect(revoked.exitCode).toBe(0);
    for (const i of [0, 1]) await within(async () => (await mcpStatus(direct(i), token)) === 401);
    await client.close().catch(() => {});
  }, 60_000);
});
