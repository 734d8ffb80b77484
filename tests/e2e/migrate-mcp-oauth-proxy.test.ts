// A container that ran allardy/mcp-oauth-proxy, switched to Gatehouse by changing only the image: Gatehouse runs as
// a process with no servers.json, only the variables of mcp-oauth-proxy's own documented examples, unchanged but for
// what must point at this machine — its Quick start, its "samsung-health-mcp behind Authentik" example and its "any
// MCP behind Auth0" example. The identity provider is real (panva's oidc-provider: Authentik's issuer path with its
// trailing slash, a fixed `aud` as Authentik's; an origin-only issuer as Auth0's), the backends are the SDK-built HTTP
// backend (spawned by Gatehouse as MCP_SPAWN_CMD, or reached at MCP_UPSTREAM_URL), and the official SDK client
// works through Gatehouse as Claude.ai would: discovery, the registration shim, the provider's login, the token,
// tools. Around it, what mcp-oauth-proxy's users relied on: /healthz, /oauth/register, discovery documents with
// SCOPES_SUPPORTED, every other path forwarded (SSE streamed), the audit line per request, no token to the backend.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { decodeJwt } from "jose";
import { type ExternalIssuer, startExternalIssuer } from "../fixtures/external-issuer.ts";
import { type HttpBackend, startHttpBackend } from "../fixtures/http-backend.ts";
import { onCleanup } from "../helpers/cleanup.ts";
import { connect } from "../helpers/client.ts";
import { type Running, startGatehouse } from "../helpers/gatehouse-process.ts";
import { freePort } from "../helpers/net.ts";
import { HeadlessOAuthProvider } from "../helpers/oauth-client.ts";
import { BINARY, BUN, ensureBinary, ROOT } from "../helpers/paths.ts";
import {
  cleanupContainer,
  cleanupImage,
  hostBaseImage,
  podman,
  podmanOk,
  removeCreated,
  requirePodman,
  uniqueName,
  waitForContainer,
} from "../helpers/podman.ts";

const HTTP_BACKEND = `${ROOT}/tests/fixtures/http-backend.ts`;
const DEFAULT_SCOPES = ["openid", "profile", "email", "offline_access"];

/** Gatehouse as the container ran it: `serve` with only the environment (the helper binds loopback). */
async function gatehouse(env: (base: string) => Record<string, string>): Promise<Running & { base: string }> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const gh = await startGatehouse({ port, env: { ...env(base), PORT: String(port), LOG_LEVEL: "info" } });
  onCleanup(async () => {
    await gh.stop();
  });
  return Object.assign(gh, { base });
}

/** The SDK client through the whole OAuth flow at `url`, as Claude.ai's "Add custom connector" runs it. */
async function signIn(url: string, oauth: HeadlessOAuthProvider): Promise<Client> {
  const first = new StreamableHTTPClientTransport(new URL(url), { authProvider: oauth });
  await expect(new Client({ name: "claude-ish", version: "1" }).connect(first)).rejects.toThrow(UnauthorizedError);
  const code = oauth.code();
  if (!code) throw new Error(`no code: ${oauth.lastBrowse?.status} ${oauth.lastBrowse?.page?.slice(0, 400)}`);
  await first.finishAuth(code);
  const client = new Client({ name: "claude-ish", version: "1" });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { authProvider: oauth }));
  return client;
}

async function text(client: Client, name: string, args: Record<string, unknown> = {}): Promise<string> {
  const r = (await client.callTool({ name, arguments: args })) as { content: { text: string }[] };
  return r.content[0]?.text as string;
}

describe("samsung-health-mcp behind Authentik (its example: spawn, MCP_UPSTREAM_PATH=/mcp, static client)", () => {
  let idp: ExternalIssuer;
  let gh: Running & { base: string };
  let redirect: string;
  let aliceToken = "";

  beforeAll(async () => {
    redirect = `http://127.0.0.1:${await freePort()}/api/mcp/auth_callback`;
    // Authentik: per-provider issuer …/application/o/<slug>/ (slash included in iss), aud the provider's.
    idp = await startExternalIssuer({
      redirectUris: [redirect],
      issuerPath: "/application/o/samsung-health-mcp/",
      audience: "samsung-health-mcp",
    });
    onCleanup(() => idp.stop());
    const spawnPort = await freePort();
    gh = await gatehouse((base) => ({
      OIDC_ISSUER_URL: idp.issuer,
      OIDC_AUDIENCE: "samsung-health-mcp",
      RESOURCE_URL: base,
      ALLOW_SUBS: "alice",
      // For "npx -y samsung-health-mcp-unofficial": an HTTP MCP server told its port by its own variable.
      MCP_SPAWN_CMD: `${BUN} ${HTTP_BACKEND}`,
      MCP_SPAWN_PORT: String(spawnPort),
      MCP_UPSTREAM_PATH: "/mcp",
      STATIC_CLIENT_ID: idp.app.clientId,
      STATIC_CLIENT_SECRET: idp.app.clientSecret,
      HTTP_BACKEND_PORT: String(spawnPort),
    }));
  }, 60_000);

  afterAll(async () => {
    await gh?.stop();
    await idp?.stop();
  });

  test("Claude.ai's flow at the bare URL: discovery via Gatehouse, /oauth/register's client, Authentik's login, tools", async () => {
    expect(idp.issuer).toEndWith("/application/o/samsung-health-mcp/");
    const oauth = new HeadlessOAuthProvider(redirect, {}, { token_endpoint_auth_method: "client_secret_post" });
    const client = await signIn(gh.base, oauth);
    try {
      expect(oauth.clientInformation()?.client_id).toBe(idp.app.clientId);
      const authorize = oauth.authorizationUrls[0] as URL;
      expect(authorize.href).toStartWith(`${idp.issuer}auth`);
      aliceToken = oauth.tokens()?.access_token as string;
      expect(decodeJwt(aliceToken)).toMatchObject({ iss: idp.issuer, aud: "samsung-health-mcp", sub: "alice" });

      expect((await client.listTools()).tools.map((t) => t.name)).toContain("echo");
      expect(await text(client, "echo", { message: "steps" })).toBe("echo: steps");
      // The provider's token stays at Gatehouse.
      const seen = JSON.parse(await text(client, "headers")) as Record<string, string>;
      expect(seen.authorization).toBeUndefined();
      expect(JSON.stringify(seen)).not.toContain(oauth.tokens()?.access_token as string);
    } finally {
      await client.close();
    }
    // mcp-oauth-proxy's audit line: every authenticated request, at info.
    await gh.waitForLog(/INFO {2}\[http\] request sub=alice method=POST path=\/ /);
  });

  test("the discovery documents: Gatehouse as the authorization server, SCOPES_SUPPORTED's default in both", async () => {
    const prm = (await (await fetch(`${gh.base}/.well-known/oauth-protected-resource`)).json()) as Record<
      string,
      unknown
    >;
    expect(prm).toMatchObject({
      resource: gh.base,
      authorization_servers: [gh.base],
      scopes_supported: DEFAULT_SCOPES,
    });
    const as = (await (await fetch(`${gh.base}/.well-known/oauth-authorization-server`)).json()) as Record<
      string,
      unknown
    >;
    expect(as.issuer).toBe(gh.base);
    expect(as.authorization_endpoint).toBe(`${idp.issuer}auth`);
    expect(as.token_endpoint).toBe(`${idp.issuer}token`);
    expect(as.scopes_supported).toEqual(DEFAULT_SCOPES);
    expect(as.registration_endpoint).toBe(`${gh.base}/register`);
  });

  test("POST /oauth/register hands out the static client; GET /healthz answers for the container's health check", async () => {
    const reg = await fetch(`${gh.base}/oauth/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ client_name: "Claude", redirect_uris: [redirect] }),
    });
    expect(reg.status).toBe(201);
    expect(await reg.json()).toMatchObject({ client_id: idp.app.clientId, client_secret: idp.app.clientSecret });
    const health = await fetch(`${gh.base}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: "ok" });
  });

  test("with MCP_UPSTREAM_PATH every other path reaches the upstream's /mcp, after the token check", async () => {
    const token = await idp.clientCredentials({ resource: gh.base });
    const init = {
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "1" } },
    };
    const post = (auth: Record<string, string>) =>
      fetch(`${gh.base}/some/other/path`, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...auth },
        body: JSON.stringify(init),
      });
    expect((await post({})).status).toBe(401);
    // The machine token's sub is not on ALLOW_SUBS: verified, then refused.
    expect((await post({ authorization: `Bearer ${token}` })).status).toBe(403);
    // Alice's: the upstream's own MCP endpoint answers (Gatehouse has nothing at /some/other/path).
    expect(aliceToken).not.toBe("");
    const res = await post({ authorization: `Bearer ${aliceToken}` });
    expect(res.status).toBe(200);
    expect(res.headers.get("mcp-session-id")).toBeTruthy();
    expect(await res.text()).toContain('"serverInfo":{"name":"http-backend"');
    await gh.waitForLog(/request sub=alice method=POST path=\/some\/other\/path /);
  });
});

describe("any MCP behind Auth0 (its example: MCP_UPSTREAM_URL, ALLOW_EMAILS, an issuer ending in /)", () => {
  let idp: ExternalIssuer;
  let backend: HttpBackend;
  let gh: Running & { base: string };
  let redirect: string;

  beforeAll(async () => {
    redirect = `http://127.0.0.1:${await freePort()}/api/mcp/auth_callback`;
    // Auth0's issuer is written https://tenant/ — this provider's iss is the bare origin: the slash is forgiven.
    idp = await startExternalIssuer({ redirectUris: [redirect] });
    onCleanup(() => idp.stop());
    backend = await startHttpBackend({ name: "behind-auth0" });
    onCleanup(() => backend.stop());
    gh = await gatehouse((base) => ({
      OIDC_ISSUER_URL: `${idp.issuer}/`,
      OIDC_AUDIENCE: base,
      RESOURCE_URL: base,
      ALLOW_EMAILS: "alice@example.com,colleague@example.com",
      MCP_UPSTREAM_URL: `http://127.0.0.1:${backend.port}`,
    }));
  }, 60_000);

  afterAll(async () => {
    await gh?.stop();
    await backend?.stop();
    await idp?.stop();
  });

  test("a pre-registered client (no registration at Auth0) signs in and uses the backend at /mcp", async () => {
    const oauth = new HeadlessOAuthProvider(redirect, {}, { token_endpoint_auth_method: "client_secret_post" });
    oauth.saveClientInformation({
      client_id: idp.app.clientId,
      client_secret: idp.app.clientSecret,
      redirect_uris: [redirect],
      token_endpoint_auth_method: "client_secret_post",
    });
    const client = await signIn(`${gh.base}/mcp`, oauth);
    try {
      const access = decodeJwt(oauth.tokens()?.access_token as string);
      expect(access.iss).toBe(idp.issuer); // without the slash OIDC_ISSUER_URL has
      expect(access.email).toBe("alice@example.com");
      expect(await text(client, "add", { a: 2, b: 3 })).toBe("5");
    } finally {
      await client.close();
    }
    expect(JSON.stringify(backend.seenHeaders)).not.toContain(oauth.tokens()?.access_token as string);
  });

  test("every other path is forwarded as it came — method, query, body — and never the token", async () => {
    const token = await idp.clientCredentials({ resource: gh.base });
    // The machine client has no email: verified, but not on ALLOW_EMAILS.
    expect((await fetch(`${gh.base}/echo/x`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(403);
    const alice = await aliceToken();
    const res = await fetch(`${gh.base}/echo/upload?kind=note`, {
      method: "PUT",
      headers: { authorization: `Bearer ${alice}`, "content-type": "text/plain", "x-trace": "t-1" },
      body: "a note",
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-backend")).toBe("http-backend");
    const seen = (await res.json()) as {
      method: string;
      path: string;
      query: string;
      body: string;
      headers: Record<string, string>;
    };
    expect(seen).toMatchObject({ method: "PUT", path: "/echo/upload", query: "?kind=note", body: "a note" });
    expect(seen.headers["x-trace"]).toBe("t-1");
    expect(seen.headers.authorization).toBeUndefined();
    // Without MCP_UPSTREAM_PATH, / is the upstream's / (mcp-oauth-proxy forwarded it there), not the MCP gateway.
    const root = await fetch(`${gh.base}/`, { headers: { authorization: `Bearer ${alice}` } });
    expect(root.status).toBe(404);
    expect(await root.text()).toBe("not found");
  });

  test("an SSE answer on another path streams through, event by event", async () => {
    const alice = await aliceToken();
    const started = Date.now();
    const res = await fetch(`${gh.base}/events?n=3&gap=400`, {
      headers: { authorization: `Bearer ${alice}`, accept: "text/event-stream" },
    });
    expect(res.headers.get("content-type")).toBe("text/event-stream");
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toContain("data: event 0");
    expect(Date.now() - started).toBeLessThan(400);
    let rest = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      rest += new TextDecoder().decode(value);
    }
    expect(rest).toContain("data: event 2");
    expect(Date.now() - started).toBeGreaterThanOrEqual(750);
  });

  /** A token of alice's through the provider's login (authorization code), for plain fetch. */
  let cached: string | undefined;
  async function aliceToken(): Promise<string> {
    if (cached) return cached;
    const oauth = new HeadlessOAuthProvider(redirect, {}, { token_endpoint_auth_method: "client_secret_post" });
    oauth.saveClientInformation({
      client_id: idp.app.clientId,
      client_secret: idp.app.clientSecret,
      redirect_uris: [redirect],
      token_endpoint_auth_method: "client_secret_post",
    });
    (await signIn(`${gh.base}/mcp`, oauth)).close();
    cached = oauth.tokens()?.access_token as string;
    return cached;
  }
});

describe("the Quick start (spawn with --port, no MCP_UPSTREAM_PATH), its issuer written without the slash", () => {
  let idp: ExternalIssuer;
  let gh: Running & { base: string };

  beforeAll(async () => {
    idp = await startExternalIssuer({ issuerPath: "/application/o/my-mcp/", audience: "my-mcp" });
    onCleanup(() => idp.stop());
    const spawnPort = await freePort();
    gh = await gatehouse((base) => ({
      // mcp-oauth-proxy 0.3.2's fix: the issuer copied without Authentik's trailing slash still matches its tokens.
      OIDC_ISSUER_URL: idp.issuer.replace(/\/$/, ""),
      OIDC_AUDIENCE: "my-mcp",
      RESOURCE_URL: base,
      ALLOW_SUBS: idp.machine.clientId,
      MCP_SPAWN_CMD: `${BUN} ${HTTP_BACKEND} --transport http --port ${spawnPort}`,
      MCP_SPAWN_PORT: String(spawnPort),
    }));
  }, 60_000);

  afterAll(async () => {
    await gh?.stop();
    await idp?.stop();
  });

  test("the SDK client with the provider's token: tools at /mcp; other paths reach the spawned server", async () => {
    const token = await idp.clientCredentials({ resource: gh.base });
    expect(decodeJwt(token).iss).toBe(idp.issuer);
    const client = await connect(`${gh.base}/mcp`, { token });
    try {
      expect(await text(client, "echo", { message: "quick" })).toBe("echo: quick");
    } finally {
      await client.close();
    }
    const echo = await fetch(`${gh.base}/echo/spawned?x=1`, { headers: { authorization: `Bearer ${token}` } });
    expect(echo.status).toBe(200);
    expect(await echo.json()).toMatchObject({ path: "/echo/spawned", query: "?x=1" });
    expect((await fetch(`${gh.base}/echo/x`, { headers: { authorization: "Bearer garbage" } })).status).toBe(401);
    await gh.waitForLog(/request sub=machine method=GET path=\/echo\/spawned /);
  });

  test("a browser Origin it does not list is refused, and the log names CORS_ALLOW_ORIGINS (there is no servers.json)", async () => {
    const res = await fetch(`${gh.base}/mcp`, {
      method: "POST",
      headers: { origin: "https://evil.example", "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
    });
    expect(res.status).toBe(403);
    await gh.waitForLog("Origin not allowed (add it to CORS_ALLOW_ORIGINS if it is yours)");
  });
});

describe("what Gatehouse refuses rather than guess", () => {
  test("a PORT the command line's --bind contradicts (the image's CMD binds 8080): refused, naming both", async () => {
    const port = await freePort();
    const err = (await startGatehouse({
      port,
      env: {
        OIDC_ISSUER_URL: "https://auth.example.com/application/o/my-mcp/",
        OIDC_AUDIENCE: "my-mcp",
        RESOURCE_URL: "https://mcp.example.com",
        ALLOW_SUBS: "someone",
        MCP_UPSTREAM_URL: "http://127.0.0.1:9",
        PORT: String(port === 65535 ? port - 1 : port + 1),
      },
    }).catch((e) => e)) as Error;
    expect(err.message).toContain("did not start");
    expect(err.message).toContain(`but --bind 127.0.0.1:${port} listens on port ${port}`);
    expect(err.message).toContain("-p <host port>:8080");
  });
});

// The same through the image: built from the Containerfile (on a base of this machine's own libc files, as
// tests/e2e/ship.test.ts builds it) and run with nothing but the variables — no command, no servers.json. Host
// network: the issuer must be https or loopback, and the container reaches this machine's loopback only so; the
// image's command then listens on port 8080 of this machine (all interfaces) for the few seconds the test runs.
describe("the container image, run with only mcp-oauth-proxy's variables (the Authentik example)", () => {
  const image = `localhost/${uniqueName("gatehouse-migrate")}:latest`;
  const base = "http://127.0.0.1:8080";
  let idp: ExternalIssuer;
  let backend: HttpBackend;
  let redirect: string;
  let name: string;

  beforeAll(async () => {
    requirePodman();
    const busy = await fetch(`${base}/`).then(
      () => true,
      () => false,
    );
    if (busy) throw new Error("port 8080 of this machine is taken: the image's command listens there (host network)");
    await ensureBinary();
    const from = await hostBaseImage(`localhost/${uniqueName("gatehouse-base")}:latest`, [
      BINARY,
      "/bin/sh",
      "/usr/bin/install",
      "/usr/bin/env",
    ]);
    cleanupImage(image);
    await podmanOk(
      [
        "build",
        "--format",
        "docker",
        "--layers=false",
        "--build-arg",
        `BASE=${from}`,
        "-f",
        "Containerfile",
        "-t",
        image,
        ".",
      ],
      { cwd: ROOT },
    );
    redirect = `http://127.0.0.1:${await freePort()}/api/mcp/auth_callback`;
    idp = await startExternalIssuer({
      redirectUris: [redirect],
      issuerPath: "/application/o/samsung-health-mcp/",
      audience: "samsung-health-mcp",
    });
    onCleanup(() => idp.stop());
    backend = await startHttpBackend({ name: "in-the-image" });
    onCleanup(() => backend.stop());
    name = cleanupContainer(uniqueName("gatehouse-migrate"));
    const vars = {
      OIDC_ISSUER_URL: idp.issuer,
      OIDC_AUDIENCE: "samsung-health-mcp",
      RESOURCE_URL: base,
      ALLOW_SUBS: "alice",
      MCP_UPSTREAM_URL: `http://127.0.0.1:${backend.port}`,
      MCP_UPSTREAM_PATH: "/mcp",
      STATIC_CLIENT_ID: idp.app.clientId,
      STATIC_CLIENT_SECRET: idp.app.clientSecret,
    };
    const env = Object.entries(vars).flatMap(([k, v]) => ["-e", `${k}=${v}`]);
    await podmanOk(["run", "-d", "--name", name, "--network", "host", ...env, image]);
    await waitForContainer(name, `${base}/healthz`);
  }, 240_000);

  afterAll(async () => {
    await removeCreated();
    await backend?.stop();
    await idp?.stop();
  }, 120_000);

  test("env-only mode from the image's own command; /healthz and the image's HEALTHCHECK answer", async () => {
    expect(await (await fetch(`${base}/healthz`)).json()).toEqual({ status: "ok" });
    expect((await podman(["healthcheck", "run", name])).code).toBe(0);
    const logs = await podman(["logs", name]);
    expect(logs.stdout + logs.stderr).toContain('config="environment (OIDC_ISSUER_URL …)"');
    expect(logs.stdout + logs.stderr).toContain("listening url=http://0.0.0.0:8080/mcp");
  });

  test("Claude.ai's flow at the bare URL through the container: shim, Authentik's login, tools", async () => {
    const oauth = new HeadlessOAuthProvider(redirect, {}, { token_endpoint_auth_method: "client_secret_post" });
    const client = await signIn(base, oauth);
    try {
      expect(oauth.clientInformation()?.client_id).toBe(idp.app.clientId);
      expect(decodeJwt(oauth.tokens()?.access_token as string)).toMatchObject({ iss: idp.issuer, sub: "alice" });
      expect(await text(client, "echo", { message: "contained" })).toBe("echo: contained");
    } finally {
      await client.close();
    }
    expect(JSON.stringify(backend.seenHeaders)).not.toContain(oauth.tokens()?.access_token as string);
    const logs = await podman(["logs", name]);
    expect(logs.stdout + logs.stderr).toMatch(/request sub=alice method=POST path=\/ /);
  });
});
