// Two Gatehouses sharing one store, in process: what a replica sees of another's work. A refresh repeated through
// the other process within the grace window gets the very tokens the first one issued (not a sibling pair); a
// consent page shown by one is answered through the other, once.

import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { MemoryStore } from "../../src/store/memory.ts";
import { type TestApp, testApp } from "../helpers/app.ts";
import { authorizeQuery, oauthConfig, pkce, register, tokenRequest, tokens, USER } from "../helpers/oauth-flow.ts";

let a: TestApp;
let b: TestApp;
let store: MemoryStore;

beforeEach(async () => {
  store = new MemoryStore();
  a = await testApp(oauthConfig(), { deps: { store } });
  b = await testApp(oauthConfig(), { deps: { store } });
});
afterEach(async () => {
  await a.close();
  await b.close();
});

describe("two processes, one store", () => {
  test("a refresh repeated through the other process within the grace window answers the same tokens", async () => {
    const c = await register(a);
    const t = await tokens(a, c.client_id);
    const form = { grant_type: "refresh_token", refresh_token: t.refresh_token, client_id: c.client_id };
    const first = await tokenRequest(a, form);
    expect(first.status).toBe(200);
    const repeat = await tokenRequest(b, form);
    expect(repeat.status).toBe(200);
    expect(await repeat.text()).toBe(await first.text());
  });

  test("a consent page shown by one process is approved through the other", async () => {
    const c = await register(a);
    const { challenge } = pkce();
    const page = await a.request(authorizeQuery(c.client_id, challenge), { headers: USER });
    const html = await page.text();
    const field = (name: string) => new RegExp(`name="${name}" value="([^"]+)"`).exec(html)?.[1] ?? "";
    const cookie = (page.headers.get("set-cookie") ?? "").split(";")[0] as string;
    const approved = await b.request("/authorize", {
      method: "POST",
      headers: { ...USER, cookie, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        request_id: field("request_id"),
        csrf: field("csrf"),
        decision: "approve",
      }).toString(),
    });
    expect(approved.status).toBe(303);
    const code = new URL(approved.headers.get("location") as string).searchParams.get("code");
    expect(code).toBeString();
    // and answered once only: the same form through the first process is refused
    const again = await a.request("/authorize", {
      method: "POST",
      headers: { ...USER, cookie, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        request_id: field("request_id"),
        csrf: field("csrf"),
        decision: "approve",
      }).toString(),
    });
    expect(again.status).toBe(403);
  });
});
