// The Google and GitHub presets against loopback stand-ins of those services (the endpoint formats each relies on),
// through a real Gatehouse: the consent page offers both, the user picks one, the account's domain, organizations
// and teams decide who may in and with which roles.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { type HttpBackend, startHttpBackend } from "../fixtures/http-backend.ts";
import { type Standin, startGithubStandin, startGoogleStandin } from "../fixtures/standins.ts";
import { type Running, startGatehouse } from "../helpers/gatehouse-process.ts";
import { freePort } from "../helpers/net.ts";
import { HeadlessOAuthProvider } from "../helpers/oauth-client.ts";
import { writeConfig } from "../helpers/temp.ts";

let backend: HttpBackend;
let google: Standin;
let github: Standin;
let gh: Running;
let mcpUrl: URL;

beforeAll(async () => {
  backend = await startHttpBackend();
  google = await startGoogleStandin({
    ada: { sub: "1001", email: "ada@acme.com", email_verified: true, hd: "acme.com", name: "Ada" },
    eve: { sub: "1002", email: "eve@gmail.com", email_verified: true, name: "Eve" },
  });
  github = startGithubStandin({
    octocat: {
      login: "octocat",
      id: 1,
      name: "The Octocat",
      emails: [{ email: "octo@acme.example", primary: true, verified: true }],
      orgs: ["acme"],
      teams: ["acme/platform"],
    },
    mallory: {
      login: "mallory",
      id: 2,
      emails: [{ email: "m@evil.example", primary: true, verified: false }],
      orgs: ["evil"],
      teams: [],
    },
  });
  const port = await freePort();
  const config = writeConfig({
    mcpServers: { web: { url: backend.url } },
    serverAuth: {
      providers: ["oauth_as"],
      oauthAs: {
        issuerUrl: `http://127.0.0.1:${port}`,
        logins: [
          {
            type: "google",
            clientId: google.clientId,
            clientSecret: google.clientSecret,
            hostedDomain: "acme.com",
            issuer: google.url,
            injectedRoles: ["staff"],
          },
          {
            type: "github",
            clientId: github.clientId,
            clientSecret: github.clientSecret,
            baseUrl: github.url,
            apiUrl: github.url,
            allow: { githubTeams: ["acme/platform"] },
            groupRoles: { "acme/platform": ["eng"] },
          },
        ],
      },
      acl: {
        default: "deny",
        roles: { eng: [{ server: "web", access: "*" }], staff: [{ server: "web", access: "read" }] },
      },
    },
  });
  gh = await startGatehouse({ config, port });
  mcpUrl = new URL(`http://127.0.0.1:${port}/mcp`);
}, 60_000);

afterAll(async () => {
  await gh?.stop();
  google?.stop();
  github?.stop();
  await backend?.stop();
});

async function signIn(login: string): Promise<{ client?: Client; provider: HeadlessOAuthProvider }> {
  const provider = new HeadlessOAuthProvider(`http://127.0.0.1:${await freePort()}/callback`, { login });
  const first = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider });
  await expect(new Client({ name: "t", version: "1" }).connect(first)).rejects.toThrow(UnauthorizedError);
  const code = provider.code();
  if (!code) return { provider };
  await first.finishAuth(code);
  const client = new Client({ name: "t", version: "1" });
  await client.connect(new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider }));
  return { client, provider };
}

describe("Google preset", () => {
  test("a Workspace account of the configured domain signs in; injected roles reach the ACL", async () => {
    google.nextUser = "ada";
    const { client, provider } = await signIn("google");
    expect(provider.lastBrowse?.page).toBeUndefined();
    const names = (await client?.listTools())?.tools.map((t) => t.name) ?? [];
    expect(names).toContain("web__peek");
    expect(names).not.toContain("web__admin_reset");
    await client?.close();
    await gh.waitForLog("subject=ada@acme.com");
  });

  test("an account outside the hosted domain is refused", async () => {
    google.nextUser = "eve";
    const { client, provider } = await signIn("google");
    expect(client).toBeUndefined();
    expect(provider.lastBrowse?.status).toBe(403);
    expect(provider.lastBrowse?.page).toContain("eve@gmail.com");
  });
});

describe("GitHub preset", () => {
  test("a member of the allowed team signs in; the team maps to a role", async () => {
    github.nextUser = "octocat";
    const { client } = await signIn("github");
    const names = (await client?.listTools())?.tools.map((t) => t.name) ?? [];
    expect(names).toContain("web__admin_reset");
    await client?.close();
    const logs = await gh.waitForLog("subject=octocat");
    expect(logs).toContain("groups=acme,acme/platform");
  });

  test("a user outside the allowed teams is refused, named by login", async () => {
    github.nextUser = "mallory";
    const { client, provider } = await signIn("github");
    expect(client).toBeUndefined();
    expect(provider.lastBrowse?.status).toBe(403);
    expect(provider.lastBrowse?.page).toContain("mallory");
  });
});

describe("the consent page offers every method", () => {
  test("both buttons are there", async () => {
    const reg = (await (
      await fetch(`${gh.url}/register`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ redirect_uris: ["http://127.0.0.1:5555/cb"], token_endpoint_auth_method: "none" }),
      })
    ).json()) as { client_id: string };
    const page = await (
      await fetch(
        `${gh.url}/authorize?${new URLSearchParams({ response_type: "code", client_id: reg.client_id, redirect_uri: "http://127.0.0.1:5555/cb", code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", code_challenge_method: "S256" })}`,
      )
    ).text();
    expect(page).toContain("Allow and sign in with Google");
    expect(page).toContain("Allow and sign in with GitHub");
  });
});
