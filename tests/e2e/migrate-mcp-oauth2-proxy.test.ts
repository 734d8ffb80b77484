// matheuscscp/mcp-oauth2-proxy, as its README describes it, through a real Gatehouse: the toolbox MCP server of its
// example advertises its scopes in tools/list `_meta.scopes` (unchanged), the user signs in with Google (a loopback
// stand-in) and must be in a Workspace group (read through a service account from a stand-in of the Admin SDK
// Directory API), the consent screen offers each scope with its description, a tool is open to any scope granting it,
// tokens are RS256 JWTs published at /openid/v1/jwks and rotated, redirect URLs are regular expressions, the email
// domain is a regular expression, `/authenticate` answers an ingress's auth-url for the host it names, and a backend
// that is down or slow does not hold the authorization up. The SDK client (with a headless browser) makes the calls
// that must succeed; plain fetch shows the answers the SDK turns into exceptions.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from "jose";
import { type HttpBackend, startHttpBackend } from "../fixtures/http-backend.ts";
import {
  type Standin,
  startGoogleStandin,
  startWorkspaceStandin,
  type WorkspaceStandin,
} from "../fixtures/standins.ts";
import { TOOLBOX_SCOPES } from "../fixtures/toolbox-scopes.ts";
import { type Running, startGatehouse } from "../helpers/gatehouse-process.ts";
import { freePort } from "../helpers/net.ts";
import { type BrowserOptions, HeadlessOAuthProvider, tokensByBrowser } from "../helpers/oauth-client.ts";
import { pkce } from "../helpers/oauth-flow.ts";
import { tempDir, writeConfig } from "../helpers/temp.ts";

let toolbox: HttpBackend;
let google: Standin;
let workspace: WorkspaceStandin;
let gh: Running;
let base: string;
let configPath: string;
let port: number;

/** The ingress host of mcp-oauth2-proxy's example (proxy.hosts[].host → gateway.hosts). */
const HOST = "my-mcp.example.com";

beforeAll(async () => {
  toolbox = await startHttpBackend({ toolbox: true, name: "toolbox" });
  google = await startGoogleStandin({
    ada: { sub: "2001", email: "ada@acme.com", email_verified: true, hd: "acme.com", name: "Ada" },
    eve: { sub: "2002", email: "eve@acme.com", email_verified: true, hd: "acme.com", name: "Eve" },
  });
  workspace = await startWorkspaceStandin({
    "ada@acme.com": ["mcp-users@acme.com", "eng@acme.com"],
    "eve@acme.com": ["sales@acme.com"],
  });
  const dir = tempDir();
  writeFileSync(join(dir, "google-credentials.json"), workspace.keyJson);
  port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const gone = await freePort(); // nothing listens there: a backend that is down
  configPath = join(dir, "servers.json");
  writeFileSync(
    configPath,
    JSON.stringify({
      mcpServers: {
        toolbox: { url: toolbox.url },
        gone: { url: `http://127.0.0.1:${gone}/mcp`, startup_timeout: "2s" },
      },
      serverAuth: {
        providers: ["oauth_as"],
        oauthAs: {
          issuerUrl: base,
          // mcp-oauth2-proxy signs RS256 and rotates hourly.
          signingAlgorithm: "RS256",
          signingKeyRotation: "1h",
          // proxy.hosts[].endpoint was where it listed the scopes for its consent screen: ask the backends, 3 s.
          offerBackendScopes: true,
          // proxy.allowedRedirectURLs (Go regular expressions) — anchored, as Gatehouse requires.
          redirectUriAllowlist: ["^http://127\\.0\\.0\\.1:[0-9]+/callback$"],
          // provider.allowedEmailDomains (regular expressions). Each allow block admits whoever matches one of its
          // lists, and a user must pass both the global block and the method's: domain AND group.
          allow: { emailDomainPatterns: ["^acme\\.com$"] },
          logins: [
            {
              type: "google",
              clientId: google.clientId,
              clientSecret: google.clientSecret,
              issuer: google.url,
              hostedDomain: "acme.com",
              workspace: { serviceAccountKeyFile: "google-credentials.json", directoryUrl: workspace.url },
              // The Workspace group that may use the tools.
              allow: { groups: ["mcp-users@acme.com"] },
            },
          ],
        },
      },
      gateway: { hosts: { [HOST]: "toolbox" } },
    }),
  );
  gh = await startGatehouse({ config: configPath, port });
}, 60_000);

afterAll(async () => {
  await gh?.stop();
  await toolbox?.stop();
  google?.stop();
  workspace?.stop();
});

const redirect = async () => `http://127.0.0.1:${await freePort()}/callback`;

/** The SDK's whole flow to /mcp; a client without refresh tokens, so a step-up goes through authorization again. */
async function signIn(browser: BrowserOptions) {
  const provider = new HeadlessOAuthProvider(await redirect(), browser, { grant_types: ["authorization_code"] });
  const mcp = new URL(`${base}/mcp`);
  const first = new StreamableHTTPClientTransport(mcp, { authProvider: provider });
  await expect(new Client({ name: "claude", version: "1" }).connect(first)).rejects.toThrow(UnauthorizedError);
  await first.finishAuth(provider.code() as string);
  const client = new Client({ name: "claude", version: "1" });
  await client.connect(new StreamableHTTPClientTransport(mcp, { authProvider: provider }));
  return { client, provider };
}

/** A checkbox of the consent page: whether it is there, and ticked. */
function checkbox(page: string, scope: string): "ticked" | "unticked" | "absent" {
  const m = new RegExp(`<input type="checkbox"[^>]*value="${scope.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}"[^>]*>`).exec(
    page,
  );
  if (!m) return "absent";
  return m[0].includes("checked") ? "ticked" : "unticked";
}

let adaToken = "";

describe("scopes from the MCP server's tools/list, on the consent screen", () => {
  test("the consent screen shows every advertised scope with its description, unticked; the user ticks one", async () => {
    google.nextUser = "ada";
    const { client, provider } = await signIn({ tick: ["toolbox:read_only"] });
    const page = provider.lastBrowse?.consentPage as string;
    for (const s of TOOLBOX_SCOPES) {
      expect(checkbox(page, s.name)).toBe("unticked");
      expect(page).toContain(s.description);
    }
    expect(page).toContain("tick what you want to grant");
    expect(provider.tokens()?.scope?.split(" ").sort()).toEqual(["toolbox:read_only"]);
    adaToken = provider.tokens()?.access_token as string;

    // toolbox:read_only grants get_resource and list_resources: those are listed and callable, nothing else.
    const names = (await client.listTools()).tools.map((t) => t.name).sort();
    expect(names).toEqual(["toolbox__get_resource", "toolbox__list_resources"]);
    expect(await client.callTool({ name: "toolbox__get_resource", arguments: {} })).toMatchObject({
      content: [{ text: "toolbox get_resource done" }],
    });
    await client.close();
    // The backend that is down did not hold the consent page up: it was left out, and said so.
    await gh.waitForLog(/consent: a backend could not list its tools.*backend=gone/);
  });

  test("a tool outside the granted scopes steps up to the narrowest scope that grants it", async () => {
    google.nextUser = "ada";
    const { client, provider } = await signIn({ tick: ["toolbox:list_resources"] });
    expect(provider.tokens()?.scope?.split(" ").sort()).toEqual(["toolbox:list_resources"]);
    let result: unknown;
    try {
      await client.callTool({ name: "toolbox__delete_resource", arguments: {} });
    } catch (e) {
      expect(e).toBeInstanceOf(UnauthorizedError);
      // The second authorization asks for what the token had plus toolbox:delete_resource — not read_write.
      const asked = (provider.authorizationUrls.at(-1) as URL).searchParams.get("scope")?.split(" ").sort();
      expect(asked).toEqual(["toolbox:delete_resource", "toolbox:list_resources"]);
      const page = provider.lastBrowse?.consentPage as string;
      expect(checkbox(page, "toolbox:delete_resource")).toBe("ticked");
      expect(checkbox(page, "toolbox:read_write")).toBe("unticked");
      await (client.transport as StreamableHTTPClientTransport).finishAuth(provider.code() as string);
      result = await client.callTool({ name: "toolbox__delete_resource", arguments: {} });
    }
    expect(result).toMatchObject({ content: [{ text: "toolbox delete_resource done" }] });
    await client.close();
  });

  test("the 403 names what would let the call through (insufficient_scope, with the resource metadata)", async () => {
    const headers = {
      authorization: `Bearer ${adaToken}`,
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
    };
    const init = await fetch(`${base}/mcp`, {
      method: "POST",
      headers,
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "initialize",
        params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "raw", version: "1" } },
      }),
    });
    const session = { ...headers, "mcp-session-id": init.headers.get("mcp-session-id") as string };
    const res = await fetch(`${base}/mcp`, {
      method: "POST",
      headers: session,
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 2,
        method: "tools/call",
        params: { name: "toolbox__create_resource", arguments: {} },
      }),
    });
    expect(res.status).toBe(403);
    const challenge = res.headers.get("www-authenticate") as string;
    expect(challenge).toContain('error="insufficient_scope"');
    expect(challenge).toContain('scope="toolbox:read_only toolbox:create_resource"');
    expect(challenge).toContain(`resource_metadata="${base}/.well-known/oauth-protected-resource/mcp"`);
  });
});

describe("Google sign-in with Workspace groups", () => {
  test("a user of the domain outside the required group is refused, and the service account acted as that user", async () => {
    google.nextUser = "eve";
    const before = workspace.impersonated.length;
    const provider = new HeadlessOAuthProvider(await redirect(), {}, { grant_types: ["authorization_code"] });
    const transport = new StreamableHTTPClientTransport(new URL(`${base}/mcp`), { authProvider: provider });
    await expect(new Client({ name: "t", version: "1" }).connect(transport)).rejects.toThrow(UnauthorizedError);
    expect(provider.code()).toBeUndefined();
    expect(provider.lastBrowse?.status).toBe(403);
    expect(provider.lastBrowse?.page).toContain("This account is not allowed here");
    expect(provider.lastBrowse?.page).toContain("eve@acme.com");
    expect(workspace.impersonated.slice(before)).toEqual(["eve@acme.com"]);
  });
});

describe("tokens: RS256 JWTs and their JWKS", () => {
  test("a resource server that accepts only RSA verifies Gatehouse's token with the published keys", async () => {
    expect(decodeProtectedHeader(adaToken)).toMatchObject({ alg: "RS256", typ: "at+jwt" });
    const oidc = (await (await fetch(`${base}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    expect(oidc).toMatchObject({
      issuer: base,
      jwks_uri: `${base}/jwks`,
      id_token_signing_alg_values_supported: ["RS256"],
    });
    // Where mcp-oauth2-proxy published its keys, the same set.
    const jwks = (await (await fetch(`${base}/openid/v1/jwks`)).json()) as { keys: Record<string, unknown>[] };
    expect(jwks.keys.length).toBeGreaterThan(0);
    for (const k of jwks.keys) expect(k).toMatchObject({ kty: "RSA", alg: "RS256", use: "sig" });
    const { payload } = await jwtVerify(adaToken, createRemoteJWKSet(new URL(`${base}/openid/v1/jwks`)), {
      algorithms: ["RS256"],
      issuer: base,
      audience: `${base}/mcp`,
    });
    expect(payload).toMatchObject({ sub: "ada@acme.com", groups: ["mcp-users@acme.com", "eng@acme.com"] });
  });
});

describe("the ingress auth-url (/authenticate) and host-based identification", () => {
  test("no token: 401 with the WWW-Authenticate pointing at the protected resource metadata", async () => {
    const res = await fetch(`${base}/authenticate`);
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toContain(
      `resource_metadata="${base}/.well-known/oauth-protected-resource/mcp"`,
    );
  });

  test("the MCP server named by the Host header is its own resource: its token passes, /mcp's does not", async () => {
    // A token for the host's resource, through the authorization endpoint as a client of that host would get it.
    google.nextUser = "ada";
    const resource = `http://${HOST}/mcp`;
    const token = await tokensByBrowser(base, { redirect: await redirect(), clientName: "Ingress client", resource });
    const asHost = (t: string) =>
      fetch(`${base}/authenticate`, { headers: { host: HOST, authorization: `Bearer ${t}` } });
    const ok = await asHost(token.access_token);
    expect(ok.status).toBe(200);
    expect(ok.headers.get("x-auth-request-user")).toBe("ada@acme.com");
    expect(ok.headers.get("x-auth-request-groups")).toBe("mcp-users@acme.com,eng@acme.com");
    // A token for /mcp is for another resource.
    expect((await asHost(adaToken)).status).toBe(401);
    expect((await fetch(`${base}/authenticate`, { headers: { authorization: `Bearer ${adaToken}` } })).status).toBe(
      200,
    );
  });
});

describe("redirect URLs as regular expressions", () => {
  test("a callback the expression matches registers; any other is refused (invalid_redirect_uri)", async () => {
    const register = (uri: string) =>
      fetch(`${base}/register`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ redirect_uris: [uri], token_endpoint_auth_method: "none" }),
      });
    expect((await register("http://127.0.0.1:5123/callback")).status).toBe(201);
    const refused = await register("http://127.0.0.1:5123/callback/../evil");
    expect(refused.status).toBe(400);
    const other = await register("http://127.0.0.1:5123/other");
    expect(other.status).toBe(400);
    expect(((await other.json()) as { error: string }).error).toBe("invalid_redirect_uri");
  });
});

describe("what differs on purpose", () => {
  test("a restart keeps the signing keys (mcp-oauth2-proxy's lived in memory: a restart logged everyone out)", async () => {
    await gh.stop();
    gh = await startGatehouse({ config: configPath, port });
    const res = await fetch(`${base}/authenticate`, { headers: { authorization: `Bearer ${adaToken}` } });
    expect(res.status).toBe(200);
  });

  test("an unanchored redirect expression (its allowedRedirectURLs) stops Gatehouse at start, naming the entry", async () => {
    const config = writeConfig({
      mcpServers: { toolbox: { url: toolbox.url } },
      serverAuth: {
        providers: ["oauth_as"],
        oauthAs: {
          issuerUrl: "http://127.0.0.1:1",
          trustedSourceCidrs: ["127.0.0.1/32"],
          redirectUriAllowlist: ["https://claude\\.ai/api/mcp/auth_callback"],
        },
      },
    });
    const check = Bun.spawnSync([process.execPath, "src/main.ts", "check", "--config", config], {
      cwd: join(import.meta.dir, "../.."),
    });
    expect(check.exitCode).toBe(1);
    const out = `${check.stdout}${check.stderr}`;
    expect(out).toContain("serverAuth.oauthAs.redirectUriAllowlist[0]");
    expect(out).toContain("looks like a regular expression");
  });
});

describe("a backend slower than oauthAs.offerBackendScopes", () => {
  let slow: ReturnType<typeof Bun.serve>;
  let g: Running;
  beforeAll(async () => {
    slow = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Promise<Response>(() => {}) });
    const p = await freePort();
    g = await startGatehouse({
      config: writeConfig({
        mcpServers: { toolbox: { url: toolbox.url }, slow: { url: `http://127.0.0.1:${slow.port}/mcp` } },
        serverAuth: {
          providers: ["oauth_as"],
          oauthAs: {
            issuerUrl: `http://127.0.0.1:${p}`,
            trustedSourceCidrs: ["127.0.0.1/32"],
            offerBackendScopes: "500ms",
          },
        },
      }),
      port: p,
    });
  }, 60_000);
  afterAll(async () => {
    await g?.stop();
    slow?.stop(true);
  });

  test("the consent page does not wait for it: the other backend's scopes are offered, and the wait is logged", async () => {
    const cb = await redirect();
    const reg = (await (
      await fetch(`${g.url}/register`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ redirect_uris: [cb], token_endpoint_auth_method: "none" }),
      })
    ).json()) as { client_id: string };
    const page = await (
      await fetch(
        `${g.url}/authorize?${new URLSearchParams({ response_type: "code", client_id: reg.client_id, redirect_uri: cb, code_challenge: pkce().challenge, code_challenge_method: "S256", scope: "mcp" })}`,
        { headers: { "x-forwarded-user": "ada@acme.com" } },
      )
    ).text();
    expect(checkbox(page, "toolbox:read_only")).toBe("unticked");
    await g.waitForLog(/consent: a backend did not list its tools in time.*backend=slow.*waited_ms=500/);
  });
});
