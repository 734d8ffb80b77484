// Local accounts driven in headless Chromium, with a second login method configured so the consent page is also the
// chooser: success, a wrong password, lockout after repeated failures; then logout.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Browser } from "playwright-core";
import { bunPasswords } from "../../src/platform/bun.ts";
import { type HttpBackend, startHttpBackend } from "../fixtures/http-backend.ts";
import { type Standin, startGithubStandin } from "../fixtures/standins.ts";
import { browserAvailable, launch } from "../helpers/browser.ts";
import { type Running, startGatehouse } from "../helpers/gatehouse-process.ts";
import { freePort } from "../helpers/net.ts";
import { pkce } from "../helpers/oauth-flow.ts";
import { writeConfig } from "../helpers/temp.ts";

const enabled = browserAvailable();
let backend: HttpBackend;
let github: Standin;
let gh: Running;
let browser: Browser;
let callback: ReturnType<typeof Bun.serve>;
let redirect = "";
/** The issuer's own origin (localhost: a secure context, so the __Host- cookies are real). */
let base = "";
let arrivals: ((u: URL) => void)[] = [];
const nextArrival = () => new Promise<URL>((r) => arrivals.push(r));

async function authorizeUrl(): Promise<string> {
  const reg = (await (
    await fetch(`${gh.url}/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        redirect_uris: [redirect],
        token_endpoint_auth_method: "none",
        client_name: "Browser App",
      }),
    })
  ).json()) as { client_id: string };
  return `${base}/authorize?${new URLSearchParams({
    response_type: "code",
    client_id: reg.client_id,
    redirect_uri: redirect,
    code_challenge: pkce().challenge,
    code_challenge_method: "S256",
    state: "st",
  })}`;
}

describe.skipIf(!enabled)("local accounts in Chromium", () => {
  beforeAll(async () => {
    backend = await startHttpBackend();
    github = startGithubStandin({ octocat: { login: "octocat", id: 1, emails: [], orgs: [], teams: [] } });
    callback = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: (req) => {
        const waiting = arrivals;
        arrivals = [];
        for (const w of waiting) w(new URL(req.url));
        return new Response("<p>back in the app</p>", { headers: { "content-type": "text/html" } });
      },
    });
    redirect = `http://127.0.0.1:${callback.port}/callback`;
    const port = await freePort();
    base = `http://localhost:${port}`;
    const config = writeConfig({
      mcpServers: { web: { url: backend.url } },
      serverAuth: {
        providers: ["oauth_as"],
        oauthAs: {
          issuerUrl: `http://localhost:${port}`,
          logins: [
            {
              type: "local",
              users: {
                alice: { passwordHash: await bunPasswords.hash("correct horse battery"), groups: ["admins"] },
                bob: { passwordHash: await bunPasswords.hash("bob's password"), groups: [] },
              },
              lockout: { maxAttempts: 3, baseLock: "5m" },
            },
            {
              type: "github",
              clientId: github.clientId,
              clientSecret: github.clientSecret,
              baseUrl: github.url,
              apiUrl: github.url,
            },
          ],
        },
      },
    });
    gh = await startGatehouse({ config, port });
    browser = await launch();
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await gh?.stop();
    callback?.stop(true);
    github?.stop();
    await backend?.stop();
  });

  test("the consent page is also the chooser; the right password signs in and the app gets its code", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.on("response", (r) => console.log("RES", r.status(), r.url().slice(0, 120)));
    await page.goto(await authorizeUrl());
    console.log("BODY", (await page.textContent("body"))?.slice(0, 300));
    await expect(page.getByRole("button", { name: "Allow and sign in with GitHub" }).count()).resolves.toBe(1);
    await page.getByRole("button", { name: "Allow and sign in with a local account" }).click();
    await page.waitForURL(/\/login\/local\?/);
    await page.getByLabel("Username").fill("alice");
    await page.getByLabel("Password").fill("correct horse battery");
    const landed = nextArrival();
    await page.getByRole("button", { name: "Sign in" }).click();
    const url = await landed;
    expect(url.searchParams.get("code")).toBeTruthy();
    expect(url.searchParams.get("state")).toBe("st");
    const cookies = await context.cookies(base);
    expect(cookies.find((c) => c.name === "__Host-gatehouse-session")).toMatchObject({
      httpOnly: true,
      secure: true,
      sameSite: "Lax",
    });
    await context.close();
  });

  test("a wrong password shows an error and keeps the form; repeated failures lock the username out", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(await authorizeUrl());
    await page.getByRole("button", { name: "Allow and sign in with a local account" }).click();
    await page.waitForURL(/\/login\/local\?/);
    for (let i = 1; i <= 3; i++) {
      await page.getByLabel("Username").fill("bob");
      await page.getByLabel("Password").fill(`guess ${i}`);
      const response = page.waitForResponse((r) => r.request().method() === "POST");
      await page.getByRole("button", { name: "Sign in" }).click();
      const status = (await response).status();
      const alert = await page.getByRole("alert").textContent();
      if (i < 3) {
        expect(status).toBe(401);
        expect(alert).toBe("Wrong username or password.");
      } else {
        expect(status).toBe(429);
        expect(alert).toContain("Too many failed attempts");
      }
    }
    // Locked: the right password does not get in now.
    await page.getByLabel("Username").fill("bob");
    await page.getByLabel("Password").fill("bob's password");
    const response = page.waitForResponse((r) => r.request().method() === "POST");
    await page.getByRole("button", { name: "Sign in" }).click();
    expect((await response).status()).toBe(429);
    await context.close();
  });

  test("an unknown username gets exactly the wrong-password answer", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(await authorizeUrl());
    await page.getByRole("button", { name: "Allow and sign in with a local account" }).click();
    await page.waitForURL(/\/login\/local\?/);
    await page.getByLabel("Username").fill("nobody-here");
    await page.getByLabel("Password").fill("whatever");
    const response = page.waitForResponse((r) => r.request().method() === "POST");
    await page.getByRole("button", { name: "Sign in" }).click();
    expect((await response).status()).toBe(401);
    expect(await page.getByRole("alert").textContent()).toBe("Wrong username or password.");
    await context.close();
  });

  test("logout ends the browser session: the next authorization asks to sign in again", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(await authorizeUrl());
    await page.getByRole("button", { name: "Allow and sign in with a local account" }).click();
    await page.getByLabel("Username").fill("alice");
    await page.getByLabel("Password").fill("correct horse battery");
    const landed = nextArrival();
    await page.getByRole("button", { name: "Sign in" }).click();
    await landed;
    // signed in: a new client's consent page names the user
    await page.goto(await authorizeUrl());
    expect(await page.textContent("body")).toContain("You are signed in as alice");
    await page.goto(`${base}/logout`);
    await page.getByRole("button", { name: "Sign out" }).click();
    expect(await page.textContent("h1")).toBe("You are signed out");
    await page.goto(await authorizeUrl());
    expect(await page.textContent("body")).not.toContain("You are signed in as");
    await expect(page.getByRole("button", { name: "Allow and sign in with a local account" }).count()).resolves.toBe(1);
    await context.close();
  });
});
