// Gatehouse running the login itself, against a real OpenID provider on loopback (panva's oidc-provider): the SDK
// client → Gatehouse /authorize → consent → provider login → Gatehouse callback → Gatehouse token → tools/call.
// Also: allow rules, group → role mapping through the ACL, replayed or foreign callbacks, a wrong `iss`, the
// provider rotating its keys, and a browser session letting a second client in without the provider.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { type HttpBackend, startHttpBackend } from "../fixtures/http-backend.ts";
import { type OidcFixture, startOidcProvider } from "../fixtures/oidc-provider.ts";
import { type Running, startGatehouse } from "../helpers/gatehouse-process.ts";
import { freePort } from "../helpers/net.ts";
import { browse, HeadlessOAuthProvider } from "../helpers/oauth-client.ts";
import { BUN, MAIN, ROOT } from "../helpers/paths.ts";
import { writeConfig } from "../helpers/temp.ts";

let backend: HttpBackend;
let idp: OidcFixture;
let gh: Running;
let mcpUrl: URL;
let configPath: string;

beforeAll(async () => {
  backend = await startHttpBackend();
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  idp = await startOidcProvider({
    redirectUris: [`${issuer}/login/corp/callback`],
    accounts: {
      alice: {
        sub: "alice-sub",
        email: "alice@example.com",
        email_verified: true,
        name: "Alice",
        groups: ["engineers"],
      },
      bob: { sub: "bob-sub", email: "bob@elsewhere.example", email_verified: true, groups: ["engineers"] },
      carol: { sub: "carol-sub", email: "carol@example.com", email_verified: true, groups: ["sales"] },
    },
  });
  configPath = writeConfig({
    mcpServers: { web: { url: backend.url } },
    serverAuth: {
      providers: ["oauth_as"],
      oauthAs: {
        issuerUrl: issuer,
        logins: [
          {
            type: "oidc",
            id: "corp",
            label: "Corp SSO",
            issuer: idp.issuer,
            clientId: idp.clientId,
            clientSecret: idp.clientSecret,
            scopes: ["openid", "email", "profile", "groups"],
            groupRoles: { engineers: ["eng"] },
            allow: { emailDomains: ["example.com"] },
          },
        ],
      },
      acl: {
        default: "deny",
        roles: { eng: [{ server: "web", access: "*" }], sales: [{ server: "web", access: "read" }] },
      },
    },
  });
  gh = await startGatehouse({ config: configPath, port });
  mcpUrl = new URL(`${issuer}/mcp`);
}, 60_000);

afterAll(async () => {
  await gh?.stop();
  await idp?.stop();
  await backend?.stop();
});

async function connectAs(
  user: string,
  jar = new Map<string, string>(),
): Promise<{ client: Client; provider: HeadlessOAuthProvider }> {
  idp.nextUser = user;
  const provider = new HeadlessOAuthProvider(`http://127.0.0.1:${await freePort()}/callback`, { jar });
  const first = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider });
  await expect(new Client({ name: "t", version: "1" }).connect(first)).rejects.toThrow(UnauthorizedError);
  const code = provider.code();
  if (!code)
    throw new Error(
      `no code: ${provider.lastBrowse?.status} ${provider.lastBrowse?.page?.replace(/<[^>]+>/g, " ").slice(0, 400)}`,
    );
  await first.finishAuth(code);
  const client = new Client({ name: "t", version: "1" });
  await client.connect(new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider }));
  return { client, provider };
}

/** A fresh authorization request of a newly registered client, for tests that drive the browser by hand. */
async function authorizationUrl(): Promise<{ url: string; redirect: string }> {
  const redirect = `http://127.0.0.1:${await freePort()}/cb`;
  const reg = (await (
    await fetch(`${gh.url}/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ redirect_uris: [redirect], token_endpoint_auth_method: "none", client_name: "manual" }),
    })
  ).json()) as { client_id: string };
  const q = new URLSearchParams({
    response_type: "code",
    client_id: reg.client_id,
    redirect_uri: redirect,
    code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
    code_challenge_method: "S256",
    state: "s",
  });
  return { url: `${gh.url}/authorize?${q}`, redirect };
}

describe("login through an OpenID provider", () => {
  test("SDK client → consent → provider login → callback → token → tools/call; groups map to roles", async () => {
    const { client, provider } = await connectAs("alice");
    expect(provider.lastBrowse?.consentShown).toBe(true);
    expect(provider.lastBrowse?.visited.some((u) => u.startsWith(idp.issuer))).toBe(true);
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names).toContain("web__admin_reset"); // engineers → eng → access "*"
    expect(await client.callTool({ name: "web__echo", arguments: { message: "sso" } })).toMatchObject({
      content: [{ text: "echo: sso" }],
    });
    await client.close();
    const logs = await gh.waitForLog("login: signed in");
    expect(logs).toContain("subject=alice@example.com");
  });

  test("a group → role mapping changes what the ACL lets through", async () => {
    const { client } = await connectAs("carol");
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names).toContain("web__peek"); // sales → read only
    expect(names).not.toContain("web__admin_reset");
    await client.close();
  });

  test("a user outside the allow rules gets a page naming the account, no code, and a log line", async () => {
    idp.nextUser = "bob";
    const { url, redirect } = await authorizationUrl();
    const r = await browse(url, redirect);
    expect(r.landed).toBeUndefined();
    expect(r.status).toBe(403);
    expect(r.page).toContain("bob@elsewhere.example");
    await gh.waitForLog(/login refused: not allowed.*bob@elsewhere.example/);
  });

  test("a replayed callback (state used twice) and a callback in another browser are refused", async () => {
    idp.nextUser = "alice";
    const { url, redirect } = await authorizationUrl();
    const jar = new Map<string, string>();
    const callback = (u: string) => u.startsWith(`${gh.url}/login/corp/callback`);
    const stopped = await browse(url, redirect, { jar, stopAt: callback });
    const cb = stopped.stoppedAt as string;
    expect(cb).toContain("state=");
    // Another browser (no login cookie) brings the callback: refused, and the state stays usable by its owner.
    const foreign = await fetch(cb, { redirect: "manual" });
    expect(foreign.status).toBe(403);
    const done = await browse(cb, redirect, { jar });
    expect(done.landed?.searchParams.get("code")).toBeTruthy();
    // The same callback again: the state was single-use.
    const replay = await browse(cb, redirect, { jar });
    expect(replay.landed).toBeUndefined();
    expect(replay.status).toBe(400);
  });

  test("a callback whose iss is not the provider's is refused (RFC 9207)", async () => {
    idp.nextUser = "alice";
    const { url, redirect } = await authorizationUrl();
    const jar = new Map<string, string>();
    const stopped = await browse(url, redirect, { jar, stopAt: (u) => u.startsWith(`${gh.url}/login/corp/callback`) });
    const forged = new URL(stopped.stoppedAt as string);
    forged.searchParams.set("iss", "https://attacker.example");
    const r = await browse(forged.href, redirect, { jar });
    expect(r.landed).toBeUndefined();
    expect(r.status).toBe(502);
    expect(r.page).toContain("iss");
  });

  test("the provider rotates its signing key: the unknown kid is fetched and accepted", async () => {
    await idp.rotateKeys();
    const { client } = await connectAs("alice");
    expect((await client.listTools()).tools.length).toBeGreaterThan(0);
    await client.close();
  });

  test("a browser session lets a second client in without going back to the provider", async () => {
    const jar = new Map<string, string>();
    const first = await connectAs("alice", jar);
    await first.client.close();
    const second = await connectAs("alice", jar);
    expect(second.provider.lastBrowse?.consentShown).toBe(true); // a new client still needs the user's consent
    expect(second.provider.lastBrowse?.visited.some((u) => u.startsWith(idp.issuer))).toBe(false);
    await second.client.close();
  });

  test("gatehouse sessions list/revoke: a revoked session makes the browser sign in again", async () => {
    const jar = new Map<string, string>();
    const first = await connectAs("alice", jar);
    await first.client.close();
    const cli = (...args: string[]) =>
      Bun.spawnSync([BUN, MAIN, "sessions", ...args, "--config", configPath], { cwd: ROOT, timeout: 20_000 });
    const listed = cli("list");
    expect(listed.exitCode).toBe(0);
    expect(listed.stdout.toString()).toContain("alice@example.com");
    const revoked = cli("revoke", "subject:alice@example.com");
    expect(revoked.exitCode).toBe(0);
    expect(revoked.stdout.toString()).toMatch(/revoked [1-9]\d* session/);
    const again = await connectAs("alice", jar);
    expect(again.provider.lastBrowse?.visited.some((u) => u.startsWith(idp.issuer))).toBe(true);
    await again.client.close();
  });
});
