// Sign-in methods through app.handle: an identity provider that is down gives a page quickly (never a hang or a 500),
// the chooser refuses an unknown method, kept upstream tokens are encrypted, and the config rules for logins.

import { afterEach, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { compactDecrypt } from "jose";
import { type ConfigError, parseConfig } from "../../src/config/load.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import { startGithubStandin } from "../fixtures/standins.ts";
import { type TestApp, testApp } from "../helpers/app.ts";
import { authorizeQuery, oauthConfig, pkce, register } from "../helpers/oauth-flow.ts";

let t: TestApp | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

async function consentForm(app: TestApp, clientId: string) {
  const page = await app.request(authorizeQuery(clientId, pkce().challenge), { headers: {} });
  const html = await page.text();
  return {
    status: page.status,
    html,
    post: (decision: string) =>
      app.request("/authorize", {
        method: "POST",
        headers: {
          cookie: (page.headers.get("set-cookie") ?? "").split(";")[0] as string,
          "content-type": "application/x-www-form-urlencoded",
        },
        body: new URLSearchParams({
          request_id: /name="request_id" value="([^"]+)"/.exec(html)?.[1] ?? "",
          csrf: /name="csrf" value="([^"]+)"/.exec(html)?.[1] ?? "",
          decision,
        }).toString(),
      }),
  };
}

describe("sign-in methods", () => {
  test("a provider that does not answer: an error page within the method's timeout", async () => {
    const silent = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Promise<Response>(() => {}) });
    t = await testApp({
      mcpServers: { s: { url: "http://127.0.0.1:1/mcp" } },
      serverAuth: {
        providers: ["oauth_as"],
        oauthAs: {
          issuerUrl: "https://gh.example",
          logins: [
            { type: "oidc", id: "corp", issuer: `http://127.0.0.1:${silent.port}`, clientId: "c", timeout: "300ms" },
          ],
        },
      },
    });
    const c = await register(t);
    const form = await consentForm(t, c.client_id);
    expect(form.status).toBe(200);
    const res = await form.post("approve:corp");
    expect(res.status).toBe(502);
    expect(await res.text()).toContain("did not answer within 300 ms");
    silent.stop(true);
  });

  test("the consent page's method must be one that is configured", async () => {
    const gh = startGithubStandin({ u: { login: "u", id: 1, emails: [], orgs: [], teams: [] } });
    t = await testApp({
      mcpServers: { s: { url: "http://127.0.0.1:1/mcp" } },
      serverAuth: {
        providers: ["oauth_as"],
        oauthAs: {
          issuerUrl: "https://gh.example",
          logins: [
            { type: "github", clientId: gh.clientId, clientSecret: gh.clientSecret, baseUrl: gh.url, apiUrl: gh.url },
            {
              type: "github",
              id: "ghe",
              clientId: gh.clientId,
              clientSecret: gh.clientSecret,
              baseUrl: gh.url,
              apiUrl: gh.url,
            },
          ],
        },
      },
    });
    const c = await register(t);
    const res = await (await consentForm(t, c.client_id)).post("approve:nonexistent");
    expect(res.status).toBe(400);
    const ok = await (await consentForm(t, c.client_id)).post("approve:ghe");
    expect(ok.status).toBe(303);
    expect(ok.headers.get("location")).toStartWith(`${gh.url}/login/oauth/authorize?`);
    expect(new URL(ok.headers.get("location") as string).searchParams.get("redirect_uri")).toBe(
      "https://gh.example/login/ghe/callback",
    );
    expect(ok.headers.get("set-cookie")).toContain("__Host-gatehouse-login=");
    gh.stop();
  });

  test("kept upstream tokens are stored encrypted with upstreamTokenKey", async () => {
    const gh = startGithubStandin({ u: { login: "u", id: 1, emails: [], orgs: [], teams: [] } });
    const store = new MemoryStore();
    const key = "k".repeat(32);
    t = await testApp(
      {
        mcpServers: { s: { url: "http://127.0.0.1:1/mcp" } },
        serverAuth: {
          providers: ["oauth_as"],
          oauthAs: {
            issuerUrl: "https://gh.example",
            upstreamTokenKey: key,
            logins: [
              {
                type: "github",
                clientId: gh.clientId,
                clientSecret: gh.clientSecret,
                baseUrl: gh.url,
                apiUrl: gh.url,
                keepUpstreamTokens: true,
              },
            ],
          },
        },
      },
      { deps: { store } },
    );
    const c = await register(t);
    const form = await consentForm(t, c.client_id);
    const upstream = await form.post("approve:github");
    const loginCookie = (upstream.headers.get("set-cookie") ?? "").split(";")[0] as string;
    const atGithub = await fetch(upstream.headers.get("location") as string, { redirect: "manual" });
    const callback = new URL(atGithub.headers.get("location") as string);
    const back = await t.request(`${callback.pathname}${callback.search}`, { headers: { cookie: loginCookie } });
    expect(back.status).toBe(303);
    const code = new URL(back.headers.get("location") as string).searchParams.get("code") as string;
    // The code's grant carries the sealed tokens once exchanged; peek at the code record instead.
    const consumed = await store.consumeCode(createHash("sha256").update(code).digest("hex"), "g");
    const sealed = consumed?.record.upstream_tokens as string;
    expect(sealed.split(".").length).toBe(5); // a compact JWE
    expect(sealed).not.toContain("gho_");
    const k = new Uint8Array(createHash("sha256").update(`gatehouse upstream tokens\u0000${key}`).digest());
    const plain = JSON.parse(new TextDecoder().decode((await compactDecrypt(sealed, k)).plaintext));
    expect(plain.access_token).toStartWith("gho_");
    gh.stop();
  });
});

describe("login configuration", () => {
  const load = (oauthAs: Record<string, unknown>) => {
    try {
      parseConfig(JSON.stringify(oauthConfig(oauthAs)), { source: "t", dir: "/", env: {} });
      return [];
    } catch (e) {
      return (e as ConfigError).problems;
    }
  };
  test("logins make trustedSourceCidrs optional; keys are checked", () => {
    expect(
      load({ trustedSourceCidrs: undefined, logins: [{ type: "github", clientId: "a", clientSecret: "b" }] }),
    ).toEqual([]);
    const problems = load({
      trustedSourceCidrs: undefined,
      upstreamTokenKey: "short",
      logins: [
        { type: "nope" },
        { type: "oidc", issuer: "http://idp.example", clientId: "c" },
        { type: "github", clientId: "a", clientSecret: "b", keepUpstreamTokens: true },
        { type: "github", clientId: "a", clientSecret: "b" },
        { type: "local", users: { a: { passwordHash: "plain" } } },
        { type: "google", clientId: "x", allow: { emailDomainPatterns: ["(["] } },
      ],
    });
    const text = problems.map((p) => `${p.path}: ${p.message}`).join("\n");
    expect(text).toContain("serverAuth.oauthAs.upstreamTokenKey: must be at least 32 bytes");
    expect(text).toContain('serverAuth.oauthAs.logins[0].type: found "nope", expected one of');
    expect(text).toContain("serverAuth.oauthAs.logins[1].issuer: found");
    expect(text).toContain('the login id "github" is used twice');
    expect(text).toContain("logins[4].users.a.passwordHash: expected an argon2id hash");
    expect(text).toContain("logins[5].allow.emailDomainPatterns[0]: not a valid regular expression");
  });
});
