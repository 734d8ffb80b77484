// What clients see when the authorization server's state cannot be written (a full disk, an I/O error): 503
// temporarily_unavailable with Retry-After and no-store on OAuth endpoints, a page on the browser steps — and, once
// the disk works again, the very request that failed succeeds, because it left nothing behind: the code can still
// be redeemed, the refresh token still works, the client still registers.

import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { memoryLogger } from "../../src/log.ts";
import { JsonFileStore } from "../../src/store/json-file.ts";
import { type TestApp, testApp } from "../helpers/app.ts";
import {
  authorizeQuery,
  code,
  oauthConfig,
  pkce,
  REDIRECT,
  RESOURCE,
  register,
  tokenRequest,
  tokens,
  USER,
} from "../helpers/oauth-flow.ts";
import { tempDir } from "../helpers/temp.ts";
import { FaultyFiles } from "../store/faulty-files.ts";

let t: TestApp;
let files: FaultyFiles;
let store: JsonFileStore;
let storeLog: ReturnType<typeof memoryLogger>;
let statePath: string;

beforeEach(async () => {
  files = new FaultyFiles();
  storeLog = memoryLogger();
  statePath = join(tempDir(), "auth_server.json");
  store = JsonFileStore.open(statePath, { files, log: storeLog });
  t = await testApp(oauthConfig(), { deps: { store } });
});
afterEach(async () => {
  files.heal();
  await t.close();
});

const full = () => {
  files.writeFault = { kind: "error", code: "ENOSPC" };
};

async function expectUnavailable(res: Response): Promise<void> {
  expect(res.status).toBe(503);
  expect(res.headers.get("retry-after")).toMatch(/^\d+$/);
  expect(res.headers.get("cache-control")).toBe("no-store");
  const body = (await res.json()) as { error: string; error_description: string };
  expect(body.error).toBe("temporarily_unavailable");
  expect(body.error_description).not.toContain("ENOSPC"); // the cause is for the log, not the wire
  expect(body.error_description).not.toContain("/");
}

describe("the state store cannot write", () => {
  test("registration: 503 temporarily_unavailable (RFC 6749 §4.1.2.1 code), and no client is left behind", async () => {
    full();
    const res = await t.request("/register", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ redirect_uris: [REDIRECT], token_endpoint_auth_method: "none" }),
    });
    await expectUnavailable(res);
    expect((await store.stats()).clients).toBe(0);
    // The refusal is in the log and the audit, as any other refused registration.
    expect(
      t.lines.some((l) => l.includes("client_registration_refused") && l.includes("temporarily_unavailable")),
    ).toBe(true);
    files.heal();
    expect((await register(t)).client_id).toBeString();
  });

  test("code exchange: 503, and the same code is redeemed once the disk works again", async () => {
    const c = await register(t);
    const { verifier, challenge } = pkce();
    const theCode = await code(t, c.client_id, challenge);
    const exchange = () =>
      tokenRequest(t, {
        grant_type: "authorization_code",
        code: theCode,
        redirect_uri: REDIRECT,
        code_verifier: verifier,
        client_id: c.client_id,
        resource: RESOURCE,
      });
    full();
    await expectUnavailable(await exchange());
    expect((await store.stats()).grants).toBe(0);
    files.heal();
    const ok = await exchange();
    expect(ok.status).toBe(200);
    // and only once
    const again = await exchange();
    expect(again.status).toBe(400);
    expect(((await again.json()) as { error: string }).error).toBe("invalid_grant");
  });

  test("refresh: 503, and the same refresh token still works afterwards (no 'already used', no logout)", async () => {
    const c = await register(t);
    const first = await tokens(t, c.client_id);
    const refresh = () =>
      tokenRequest(t, { grant_type: "refresh_token", refresh_token: first.refresh_token, client_id: c.client_id });
    full();
    await expectUnavailable(await refresh());
    files.heal();
    const ok = await refresh();
    expect(ok.status).toBe(200);
    const next = (await ok.json()) as { refresh_token: string; access_token: string };
    expect(next.refresh_token).not.toBe(first.refresh_token);
    const mcp = await t.request("/mcp", {
      method: "POST",
      headers: {
        authorization: `Bearer ${next.access_token}`,
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
      },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "initialize",
        params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "t", version: "1" } },
      }),
    });
    expect(mcp.status).toBe(200);
  });

  test("revocation: 503, and the token is still live until a revocation succeeds", async () => {
    const c = await register(t);
    const tk = await tokens(t, c.client_id);
    const revoke = () =>
      t.request("/revoke", {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ token: tk.refresh_token, client_id: c.client_id }).toString(),
      });
    full();
    await expectUnavailable(await revoke());
    files.heal();
    expect(
      (await tokenRequest(t, { grant_type: "refresh_token", refresh_token: tk.refresh_token, client_id: c.client_id }))
        .status,
    ).toBe(200);
  });

  test("the consent page's approval: a 503 page, and the same page can be approved once the disk works", async () => {
    const c = await register(t);
    const { challenge } = pkce();
    const page = await t.request(authorizeQuery(c.client_id, challenge), { headers: USER });
    expect(page.status).toBe(200);
    const html = await page.text();
    const field = (name: string) => new RegExp(`name="${name}" value="([^"]+)"`).exec(html)?.[1] ?? "";
    const cookie = (page.headers.get("set-cookie") ?? "").split(";")[0] as string;
    const approve = () =>
      t.request("/authorize", {
        method: "POST",
        headers: { ...USER, cookie, "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({
          request_id: field("request_id"),
          csrf: field("csrf"),
          decision: "approve",
        }).toString(),
      });
    full();
    const refused = await approve();
    expect(refused.status).toBe(503);
    expect(refused.headers.get("content-type")).toContain("text/html");
    expect(refused.headers.get("retry-after")).toMatch(/^\d+$/);
    expect(await refused.text()).toContain("try again");
    expect(await store.getConsent("alice", c.client_id)).toBeUndefined();
    files.heal();
    // the consent request was taken by the failed attempt; a new one goes through
    const res = await t.request(authorizeQuery(c.client_id, challenge), { headers: USER });
    expect(res.status).toBe(200);
  });

  test("/health says degraded while the store cannot write, ok once it can", async () => {
    await register(t);
    full();
    await t
      .request("/register", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ redirect_uris: [REDIRECT] }),
      })
      .catch(() => {});
    const degraded = (await (await t.request("/health")).json()) as Record<string, unknown>;
    expect(degraded.status).toBe("degraded");
    expect(degraded.state_store).toBe("unavailable");
    // Not ready (a load balancer takes it out), still alive (nothing should restart it).
    const notReady = await t.request("/readyz");
    expect(notReady.status).toBe(503);
    expect(await notReady.json()).toEqual({ status: "not ready", reason: "the state store cannot be written" });
    expect((await t.request("/livez")).status).toBe(200);
    files.heal();
    await register(t);
    expect(((await (await t.request("/health")).json()) as Record<string, unknown>).status).toBe("ok");
    expect((await t.request("/readyz")).status).toBe(200);
  });

  test("the log has one line for the outage, naming the file and ENOSPC, and no stack", async () => {
    full();
    for (let i = 0; i < 3; i++) {
      await t.request("/register", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ redirect_uris: [REDIRECT] }),
      });
    }
    const lines = storeLog.lines.filter((l) => l.includes("ERROR"));
    expect(lines.length).toBe(1);
    expect(lines[0]).toContain(`${statePath}.journal`);
    expect(lines[0]).toContain("ENOSPC (no space left on device)");
    expect([...t.lines, ...storeLog.lines].some((l) => /unhandled error|\n\s+at /.test(l))).toBe(false);
  });
});
