// The consent page in a real browser (headless Chromium): approve, deny, and a cross-site form POST that must be
// refused. The browser plays the user behind a reverse proxy: the proxy's user header is added to its requests.
// The issuer is http://localhost, which browsers treat as a secure context, so the real `__Host-` cookie is used.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Browser, BrowserContext } from "playwright-core";
import { type HttpBackend, startHttpBackend } from "../fixtures/http-backend.ts";
import { browserAvailable, launch } from "../helpers/browser.ts";
import { type Running, startGatehouse } from "../helpers/gatehouse-process.ts";
import { freePort } from "../helpers/net.ts";
import { pkce } from "../helpers/oauth-flow.ts";
import { writeConfig } from "../helpers/temp.ts";

const enabled = browserAvailable();
/** The client's redirect URI: a real server on loopback, as a native app would run. */
let REDIRECT = "";
let callback: ReturnType<typeof Bun.serve>;
let arrivals: ((url: URL) => void)[] = [];

/** Resolves with the next URL the browser brings to the client's redirect URI. */
function nextArrival(): Promise<URL> {
  return new Promise((resolve) => arrivals.push(resolve));
}

let backend: HttpBackend;
let gh: Running;
let browser: Browser;
let issuer: string;
let attacker: ReturnType<typeof Bun.serve>;

async function registerClient(name: string): Promise<string> {
  const res = await fetch(`${issuer}/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ redirect_uris: [REDIRECT], token_endpoint_auth_method: "none", client_name: name }),
  });
  return ((await res.json()) as { client_id: string }).client_id;
}

function authorizeUrl(clientId: string): string {
  return `${issuer}/authorize?${new URLSearchParams({
    response_type: "code",
    client_id: clientId,
    redirect_uri: REDIRECT,
    code_challenge: pkce().challenge,
    code_challenge_method: "S256",
    state: "browser-state",
    scope: "mcp",
  })}`;
}

/** A browser context whose requests to Gatehouse carry the reverse proxy's identity header. */
async function userContext(user: string): Promise<{ context: BrowserContext; landed: Promise<URL> }> {
  const context = await browser.newContext();
  await context.route(`${issuer}/**`, (route) =>
    route.continue({ headers: { ...route.request().headers(), "x-forwarded-user": user } }),
  );
  return { context, landed: nextArrival() };
}

describe.skipIf(!enabled)("the consent page in Chromium", () => {
  beforeAll(async () => {
    backend = await startHttpBackend();
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
    REDIRECT = `http://127.0.0.1:${callback.port}/callback`;
    const port = await freePort();
    issuer = `http://localhost:${port}`;
    const config = writeConfig({
      mcpServers: { web: { url: backend.url } },
      serverAuth: {
        providers: ["oauth_as"],
        oauthAs: {
          issuerUrl: issuer,
          trustedSourceCidrs: ["127.0.0.1/32", "::1/128"],
          scopesSupported: ["mcp"],
          requiredScopes: ["mcp"],
        },
        toolScopes: { "tools:write": ["web__admin_*"] },
      },
    });
    gh = await startGatehouse({ config, port });
    browser = await launch();
    attacker = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: (req) => {
        const u = new URL(req.url);
        const fields = ["request_id", "csrf"]
          .filter((f) => u.searchParams.has(f))
          .map((f) => `<input type="hidden" name="${f}" value="${u.searchParams.get(f)}">`)
          .join("");
        return new Response(
          `<html><body><form id="f" method="post" action="${issuer}/authorize">${fields}<input type="hidden" name="decision" value="approve"></form><script>document.getElementById("f").submit()</script></body></html>`,
          { headers: { "content-type": "text/html" } },
        );
      },
    });
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    attacker?.stop(true);
    callback?.stop(true);
    await gh?.stop();
    await backend?.stop();
  });

  test("approve: the page names the app and where it returns; Allow sends a code back with state and iss", async () => {
    const clientId = await registerClient("Browser Test App");
    const { context, landed } = await userContext("alice");
    const page = await context.newPage();
    const response = await page.goto(authorizeUrl(clientId));
    expect(response?.status()).toBe(200);
    expect(await page.textContent("h1")).toContain("Browser Test App");
    expect(await page.textContent("body")).toContain(new URL(REDIRECT).host);
    expect(await page.textContent("body")).toContain("alice");
    const cookies = await context.cookies(issuer);
    expect(cookies.find((c) => c.name === "__Host-gatehouse-consent")).toMatchObject({
      httpOnly: true,
      sameSite: "Lax",
      secure: true,
      path: "/",
    });
    await page.getByRole("button", { name: "Allow" }).click();
    const url = await landed;
    expect(url.searchParams.get("code")).toBeTruthy();
    expect(url.searchParams.get("state")).toBe("browser-state");
    expect(url.searchParams.get("iss")).toBe(issuer);
    await context.close();
  });

  test("the user unticks a scope the app asked for: the token has only what was left ticked", async () => {
    const clientId = await registerClient("Greedy App");
    const { context, landed } = await userContext("dave");
    const page = await context.newPage();
    const { verifier, challenge } = pkce();
    const url = new URL(authorizeUrl(clientId));
    url.searchParams.set("scope", "mcp tools:write");
    url.searchParams.set("code_challenge", challenge);
    await page.goto(url.href);
    // The required scope has no checkbox; the tool scope has one, ticked, described by the tools it opens.
    const box = page.getByLabel(/tools:write/);
    expect(await box.isChecked()).toBe(true);
    expect(await page.textContent("body")).toContain("call the tools web__admin_*");
    expect(await page.locator('input[type="checkbox"]').count()).toBe(1);
    await box.uncheck();
    await page.getByRole("button", { name: "Allow" }).click();
    const back = await landed;
    const res = await fetch(`${issuer}/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "authorization_code",
        code: back.searchParams.get("code") as string,
        redirect_uri: REDIRECT,
        client_id: clientId,
        code_verifier: verifier,
      }),
    });
    expect(((await res.json()) as { scope: string }).scope).toBe("mcp");
    await context.close();
  });

  test("deny: the app gets access_denied", async () => {
    const clientId = await registerClient("Denied App");
    const { context, landed } = await userContext("bob");
    const page = await context.newPage();
    await page.goto(authorizeUrl(clientId));
    await page.getByRole("button", { name: "Deny" }).click();
    const url = await landed;
    expect(url.searchParams.get("error")).toBe("access_denied");
    expect(url.searchParams.get("code")).toBeNull();
    await context.close();
  });

  test("a cross-site POST is refused — without the CSRF token, and even with it (the cookie stays home)", async () => {
    const clientId = await registerClient("Targeted App");
    const { context } = await userContext("carol");
    const page = await context.newPage();
    await page.goto(authorizeUrl(clientId));
    const requestId = (await page.getAttribute('input[name="request_id"]', "value")) as string;
    const csrf = (await page.getAttribute('input[name="csrf"]', "value")) as string;

    const evil = await context.newPage();
    const first = evil.waitForResponse(
      (r) => r.url().startsWith(`${issuer}/authorize`) && r.request().method() === "POST",
    );
    await evil.goto(`http://127.0.0.1:${attacker.port}/?request_id=${requestId}`);
    expect((await first).status()).toBe(403);

    const evil2 = await context.newPage();
    const second = evil2.waitForResponse(
      (r) => r.url().startsWith(`${issuer}/authorize`) && r.request().method() === "POST",
    );
    await evil2.goto(`http://127.0.0.1:${attacker.port}/?request_id=${requestId}&csrf=${csrf}`);
    expect((await second).status()).toBe(403);
    await evil2.waitForURL(`${issuer}/authorize`);
    expect(await evil2.textContent("h1")).toContain("could not be verified");

    // The genuine page still works: nothing was approved by the forged posts.
    const landed = nextArrival();
    await page.getByRole("button", { name: "Allow" }).click();
    expect((await landed).searchParams.get("code")).toBeTruthy();
    await context.close();
  });

  test("error pages are plain HTML that cannot be framed", async () => {
    const { context } = await userContext("dave");
    const page = await context.newPage();
    const res = await page.goto(`${issuer}/authorize?client_id=nobody&response_type=code`);
    expect(res?.status()).toBe(400);
    expect(await page.textContent("h1")).toBe("Unknown app");
    expect(res?.headers()["x-frame-options"]).toBe("DENY");
    await context.close();
  });
});
