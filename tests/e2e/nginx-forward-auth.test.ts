// Gatehouse as the forward-auth service of a real nginx (Debian's 1.22) that fronts an MCP server itself: nginx is the
// public host, passes /mcp to the MCP server behind `auth_request` → Gatehouse's /authenticate, and passes the OAuth
// endpoints to Gatehouse, whose issuer (and so the resource the client asks a token for) is nginx's URL. nginx runs
// examples/nginx.conf itself, with only its addresses, TLS lines and password file swapped for the test's, so the
// example cannot drift from what is tested. The sign-in at /authorize is nginx's: a password file names the user to
// Gatehouse through X-Forwarded-User (trusted from 127.0.0.1 only), over whatever the browser sent itself.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { type HeldBackend, startHeldBackend } from "../fixtures/held-backend.ts";
import { type Running, startGatehouse } from "../helpers/gatehouse-process.ts";
import { freePort } from "../helpers/net.ts";
import { type Nginx, nginxAvailable, startNginx } from "../helpers/nginx.ts";
import { HeadlessOAuthProvider } from "../helpers/oauth-client.ts";
import { authorizeQuery, authorizeTo, pkce, REDIRECT, register, remote, tokenRequest } from "../helpers/oauth-flow.ts";
import { ROOT } from "../helpers/paths.ts";
import { tempDir, writeConfig } from "../helpers/temp.ts";

const enabled = nginxAvailable();

const USER = "alice@example.com";
const PASSWORD = "correct horse battery staple";
/** The browser: nginx's password sign-in, plus a user header of its own choosing that nginx must overwrite. */
const BROWSER = {
  authorization: `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString("base64")}`,
  "x-forwarded-user": "mallory@evil.example",
  "x-forwarded-groups": "admins",
};

let backend: HeldBackend;
let gh: Running;
let nginx: Nginx;
let mcpUrl: URL;

/** examples/nginx.conf with the test's addresses: each replaced line must be there exactly once. */
function exampleConfig(gatehousePort: number, backendPort: number, htpasswd: string): string {
  let text = readFileSync(join(ROOT, "examples/nginx.conf"), "utf8");
  const swap = (from: RegExp, to: string) => {
    const found = text.match(new RegExp(from.source, "gm"))?.length ?? 0;
    if (found !== 1) throw new Error(`examples/nginx.conf: expected one ${from}, found ${found}`);
    text = text.replace(new RegExp(from.source, "m"), to);
  };
  swap(/^(\s*)server 127\.0\.0\.1:8080;/, `$1server 127.0.0.1:${gatehousePort};`);
  swap(/^(\s*)server 127\.0\.0\.1:3001;/, `$1server 127.0.0.1:${backendPort};`);
  swap(/^(\s*)listen 443 ssl;/, "$1listen {{listen}};");
  swap(/^\s*ssl_certificate .*\n/, "");
  swap(/^\s*ssl_certificate_key .*\n/, "");
  swap(/^(\s*)auth_basic_user_file \/etc\/nginx\/mcp\.htpasswd;/, `$1auth_basic_user_file ${htpasswd};`);
  return text;
}

beforeAll(async () => {
  if (!enabled) return;
  backend = await startHeldBackend();
  const port = await freePort();
  const config = writeConfig({
    mcpServers: { backend: { url: backend.url } },
    serverAuth: {
      providers: ["oauth_as"],
      oauthAs: {
        issuerUrl: `http://127.0.0.1:${port}`,
        trustedSourceCidrs: ["127.0.0.1/32"],
        injectedRoles: ["oauth-user"],
        // "reports" is optional: a refresh may narrow a token to it alone, which lacks the required "mcp" (a 403).
        scopesSupported: ["mcp", "reports"],
        requiredScopes: ["mcp"],
      },
    },
  });
  gh = await startGatehouse({ config });
  const htpasswd = join(tempDir("gatehouse-htpasswd-"), "mcp.htpasswd");
  writeFileSync(htpasswd, `${USER}:{PLAIN}${PASSWORD}\n`);
  nginx = await startNginx(exampleConfig(gh.port, backend.port, htpasswd), { port });
  mcpUrl = new URL(`${nginx.url}/mcp`);
}, 60_000);

afterAll(async () => {
  await nginx?.stop();
  await gh?.stop();
  await backend?.stop();
});

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(what)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

const INITIALIZE = JSON.stringify({
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "curl", version: "1" } },
});

function postMcp(headers: Record<string, string> = {}): Promise<Response> {
  return fetch(mcpUrl, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...headers },
    body: INITIALIZE,
  });
}

/** The SDK's whole flow through nginx: 401 → discovery → registration → authorize → token → connected again. */
async function signIn(
  redirect: string,
  headers: Record<string, string> = {},
): Promise<{ client: Client; transport: StreamableHTTPClientTransport; provider: HeadlessOAuthProvider }> {
  const provider = new HeadlessOAuthProvider(redirect, { headers: BROWSER });
  const requestInit = { headers };
  const first = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider, requestInit });
  await expect(new Client({ name: "nginx-test", version: "1" }).connect(first)).rejects.toThrow(UnauthorizedError);
  const code = provider.code();
  if (!code) throw new Error(`no code: ${provider.lastBrowse?.status} ${provider.lastBrowse?.page?.slice(0, 300)}`);
  await first.finishAuth(code);
  const transport = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider, requestInit });
  const client = new Client({ name: "nginx-test", version: "1" });
  await client.connect(transport);
  return { client, transport, provider };
}

function challengeOf(res: Response): string {
  return res.headers.get("www-authenticate") ?? "";
}

/**
 * The flow by hand through nginx: a token for "mcp reports", and from its refresh token one narrowed to "reports"
 * alone, which lacks the required "mcp".
 */
async function rawTokens(): Promise<{
  client_id: string;
  full: { access_token: string; refresh_token: string; scope: string };
  narrow: { access_token: string; scope: string };
}> {
  const t = remote(nginx.url);
  const { client_id } = await register(t);
  const { verifier, challenge } = pkce();
  const query = authorizeQuery(client_id, challenge, { resource: mcpUrl.href, scope: "mcp reports" });
  const approved = await authorizeTo(t, query, { headers: BROWSER });
  const code = new URL(approved.headers.get("location") ?? "http://x/").searchParams.get("code");
  if (!code) throw new Error(`no code: ${approved.status} ${await approved.text()}`);
  const issued = await tokenRequest(t, {
    grant_type: "authorization_code",
    code,
    redirect_uri: REDIRECT,
    code_verifier: verifier,
    client_id,
    resource: mcpUrl.href,
  });
  const full = (await issued.json()) as { access_token: string; refresh_token: string; scope: string };
  expect(full.scope).toBe("mcp reports");
  const refreshed = await tokenRequest(t, {
    grant_type: "refresh_token",
    refresh_token: full.refresh_token,
    client_id,
    scope: "reports",
  });
  const narrow = (await refreshed.json()) as { access_token: string; scope: string };
  expect(narrow.scope).toBe("reports");
  return { client_id, full, narrow };
}

describe.skipIf(!enabled)("nginx auth_request in front of an MCP server, Gatehouse deciding", () => {
  test("no token: nginx answers 401 with Gatehouse's RFC 9728 challenge, once, and the MCP server sees nothing", async () => {
    const seen = backend.seen.length;
    const res = await postMcp();
    expect(res.status).toBe(401);
    // Exactly this value: nginx copies a 401's challenge itself, so a second copy would show here.
    expect(challengeOf(res)).toBe(
      `Bearer resource_metadata="${nginx.url}/.well-known/oauth-protected-resource/mcp", scope="mcp"`,
    );
    expect(backend.seen.length).toBe(seen);

    // The challenge leads to Gatehouse's documents, served under nginx's name.
    const prm = await fetch(`${nginx.url}/.well-known/oauth-protected-resource/mcp`);
    expect(prm.status).toBe(200);
    expect(await prm.json()).toMatchObject({ resource: mcpUrl.href, authorization_servers: [nginx.url] });
    const as = await fetch(`${nginx.url}/.well-known/oauth-authorization-server`);
    expect(await as.json()).toMatchObject({
      issuer: nginx.url,
      authorization_endpoint: `${nginx.url}/authorize`,
      token_endpoint: `${nginx.url}/token`,
      registration_endpoint: `${nginx.url}/register`,
    });

    // Gatehouse's forward-auth endpoint itself stays private.
    expect((await fetch(`${nginx.url}/authenticate`)).status).toBe(404);
    expect((await fetch(`${nginx.url}/_gatehouse_authenticate`)).status).toBe(404);
  });

  test('a garbage token: 401 with error="invalid_token"', async () => {
    const seen = backend.seen.length;
    const res = await postMcp({ authorization: "Bearer not-a-token" });
    expect(res.status).toBe(401);
    const challenge = challengeOf(res);
    expect(challenge).toStartWith(
      `Bearer resource_metadata="${nginx.url}/.well-known/oauth-protected-resource/mcp", scope="mcp", error="invalid_token"`,
    );
    expect(challenge.match(/Bearer /g)?.length).toBe(1);
    expect(backend.seen.length).toBe(seen);
    await gh.waitForLog('forward auth: refused route=gatehouse status=401 reason="oauth_as: the token is not a JWT"');
  });

  test("the SDK client signs in through nginx, lists and calls tools; the MCP server gets the identity, never the token", async () => {
    // Identity headers the client makes up itself, which nginx must replace or drop.
    const spoofed = { "x-auth-request-user": "mallory", "x-auth-request-email": "mallory@evil.example" };
    const { client, transport, provider } = await signIn("http://127.0.0.1:33431/callback", spoofed);
    const authUrl = provider.authorizationUrls[0] as URL;
    expect(authUrl.origin).toBe(nginx.url);
    expect(authUrl.searchParams.get("resource")).toBe(mcpUrl.href);
    expect(provider.lastBrowse?.consentShown).toBe(true);
    expect(provider.lastBrowse?.landed?.searchParams.get("iss")).toBe(nginx.url);
    // nginx's sign-in named the user, not the header the browser sent.
    await gh.waitForLog(`authorize: code issued client_id=${provider.clientInformation()?.client_id} subject=${USER}`);
    expect(gh.logs()).not.toContain("mallory");

    expect((await client.listTools()).tools.map((t) => t.name).sort()).toEqual(["echo", "hold", "whoami"]);
    expect(await client.callTool({ name: "echo", arguments: { message: "through nginx" } })).toMatchObject({
      content: [{ type: "text", text: "echo: through nginx" }],
    });

    const who = await client.callTool({ name: "whoami", arguments: {} });
    const headers = JSON.parse((who.content as { text: string }[])[0]?.text ?? "{}") as Record<string, string>;
    expect(headers["x-auth-request-user"]).toBe(USER);
    expect(headers["x-auth-request-groups"]).toBe("engineers,admins");
    expect(headers["x-auth-request-roles"]?.split(",")).toContain("oauth-user");
    expect(headers["x-auth-request-scope"]).toBe("mcp");
    expect(headers["x-auth-request-client-id"]).toBe(provider.clientInformation()?.client_id as string);
    // Gatehouse's own tokens carry no email: the client's made-up one is dropped, not passed on.
    expect(headers["x-auth-request-email"]).toBeUndefined();
    expect(headers.authorization).toBeUndefined();

    // Every MCP request of this session passed the auth subrequest, DELETE included (nginx's subrequest is a GET).
    const sid = transport.sessionId as string;
    await transport.terminateSession();
    const session = backend.seen.filter((s) => s.headers["mcp-session-id"] === sid);
    expect(session.map((s) => s.method)).toContain("DELETE");
    for (const s of backend.seen) {
      expect(s.headers.authorization).toBeUndefined();
      expect(s.headers["x-auth-request-user"]).toBe(USER);
    }
    await client.close();
  });

  test("SSE streams through nginx: a progress notification arrives while the tool still runs", async () => {
    const { client } = await signIn("http://127.0.0.1:33432/callback");
    const progress: number[] = [];
    let firstProgress: () => void = () => {};
    const first = new Promise<void>((r) => {
      firstProgress = r;
    });
    let done = false;
    // `hold` sends one notification, then waits for release(): the notification can only reach the client now if
    // nginx hands the response on as it comes (a buffering proxy would keep it until the end, which never comes).
    const call = client
      .callTool({ name: "hold", arguments: {} }, undefined, {
        onprogress: (p) => {
          progress.push(p.progress);
          firstProgress();
        },
      })
      .finally(() => {
        done = true;
      });
    await withTimeout(backend.holding(), 15_000, "the hold tool never started");
    await withTimeout(first, 15_000, "no progress notification came through nginx while the tool ran: buffered?");
    expect(progress).toEqual([1]);
    expect(done).toBe(false);
    backend.release();
    expect(await call).toMatchObject({ content: [{ type: "text", text: "released" }] });
    expect(progress).toEqual([1, 2]);
    await client.close();
  });

  test("a token without the required scope: 403 with the insufficient_scope challenge; a revoked one: 401", async () => {
    const { client_id, full, narrow } = await rawTokens();
    const seen = backend.seen.length;
    const refused = await postMcp({ authorization: `Bearer ${narrow.access_token}` });
    expect(refused.status).toBe(403);
    const c = challengeOf(refused);
    expect(c).toStartWith(
      `Bearer error="insufficient_scope", scope="mcp", resource_metadata="${nginx.url}/.well-known/oauth-protected-resource/mcp"`,
    );
    expect(c.match(/Bearer /g)?.length).toBe(1);
    expect(backend.seen.length).toBe(seen);

    const ok = await postMcp({ authorization: `Bearer ${full.access_token}` });
    expect(ok.status).toBe(200);
    expect(ok.headers.get("mcp-session-id")).toBeString();
    await ok.body?.cancel();

    // Revoked at Gatehouse through nginx: the next request through nginx is refused.
    const revoked = await remote(nginx.url).request("/revoke", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token: full.access_token, client_id }).toString(),
    });
    expect(revoked.status).toBe(200);
    const after = await postMcp({ authorization: `Bearer ${full.access_token}` });
    expect(after.status).toBe(401);
    expect(challengeOf(after)).toContain('error="invalid_token", error_description="the token has been revoked"');
  });

  test("what nginx asks, asked directly: /authenticate answers with the identity; /authenticate/<server> wants that server's audience", async () => {
    const { full, narrow } = await rawTokens();
    const bearer = { authorization: `Bearer ${full.access_token}` };
    const ok = await fetch(`${gh.url}/authenticate`, { headers: { ...bearer, "x-original-uri": "/mcp" } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get("x-auth-request-user")).toBe(USER);
    expect(ok.headers.get("x-auth-request-groups")).toBe("engineers,admins");
    expect(ok.headers.get("x-auth-request-scope")).toBe("mcp reports");
    expect(ok.headers.get("cache-control")).toBe("no-store");
    expect(await ok.text()).toBe("");
    // HEAD and POST (Traefik and Caddy may forward the original method) decide the same.
    expect((await fetch(`${gh.url}/authenticate`, { method: "HEAD", headers: bearer })).status).toBe(200);
    expect((await fetch(`${gh.url}/authenticate`, { method: "POST", headers: bearer, body: "{}" })).status).toBe(200);
    expect(
      (await fetch(`${gh.url}/authenticate`, { headers: { authorization: `Bearer ${narrow.access_token}` } })).status,
    ).toBe(403);

    // /servers/backend/mcp is its own protected resource: a token for /mcp is not for it.
    const other = await fetch(`${gh.url}/authenticate/backend`, { headers: bearer });
    expect(other.status).toBe(401);
    expect(challengeOf(other)).toStartWith(
      `Bearer resource_metadata="${nginx.url}/.well-known/oauth-protected-resource/servers/backend/mcp"`,
    );
    expect(challengeOf(other)).toContain('error="invalid_token"');
    expect((await fetch(`${gh.url}/authenticate/nope`, { headers: bearer })).status).toBe(404);
  });

  test("nginx logged no error (a reused upstream connection that was closed would show here as a 502)", () => {
    const problems = nginx
      .errorLog()
      .split("\n")
      .filter((l) => /\[(error|crit|alert|emerg)\]/.test(l));
    expect(problems).toEqual([]);
  });
});
