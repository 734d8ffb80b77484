// The audit log of a real Gatehouse: every security decision of a client's life — registered, consent, tokens issued
// and refused, refresh reuse, revocation, introspection, calls allowed and denied, a key rotation, a reload — is one
// JSON record with its time, event, outcome, request id and source; and no secret the test used (tokens, codes,
// verifiers, client secrets, the bearer token) appears anywhere in the file.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type HttpBackend, startHttpBackend } from "../fixtures/http-backend.ts";
import { type Running, startGatehouse } from "../helpers/gatehouse-process.ts";
import { freePort } from "../helpers/net.ts";
import {
  authorizeQuery,
  authorizeTo,
  code,
  pkce,
  REDIRECT,
  type Requester,
  register,
  remote,
  tokenRequest,
} from "../helpers/oauth-flow.ts";
import { BUN, MAIN, ROOT } from "../helpers/paths.ts";
import { tempDir, writeConfig } from "../helpers/temp.ts";

let backend: HttpBackend;
let gh: Running;
let t: Requester;
let resource: string;
let auditPath: string;
let config: string;
const secrets: string[] = [];

beforeAll(async () => {
  backend = await startHttpBackend();
  const port = await freePort();
  resource = `http://127.0.0.1:${port}/mcp`;
  auditPath = join(tempDir(), "audit.jsonl");
  config = writeConfig({
    mcpServers: { web: { url: backend.url } },
    serverAuth: {
      providers: ["oauth_as", "bearer"],
      bearer: { tokens: { "bearer-secret-token-1": { subject: "robot", roles: ["robots"] } } },
      oauthAs: {
        issuerUrl: `http://127.0.0.1:${port}`,
        trustedSourceCidrs: ["127.0.0.1/32"],
        injectedRoles: ["users"],
        refreshReuseGraceSeconds: 0, // a repeat is reuse at once
      },
      acl: {
        default: "deny",
        roles: {
          users: [{ server: "web", access: "*" }],
          robots: [{ server: "web", access: "*", tools: ["echo"] }],
        },
      },
    },
    audit: { enabled: true, output: "file", path: auditPath },
  });
  gh = await startGatehouse({ config, port });
  t = remote(gh.url);
  secrets.push("bearer-secret-token-1");
}, 60_000);

afterAll(async () => {
  await gh?.stop();
  await backend?.stop();
});

async function mcp(token: string, body: unknown, session?: string): Promise<Response> {
  return fetch(`${gh.url}/mcp`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${token}`,
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      ...(session ? { "mcp-session-id": session } : {}),
    },
    body: JSON.stringify(body),
  });
}

function records(): Record<string, unknown>[] {
  return readFileSync(auditPath, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe("the audit log", () => {
  test("one record per decision, each with time, event, outcome, request id and source; never a secret", async () => {
    // A confidential client, registered.
    const client = await register(t, { token_endpoint_auth_method: "client_secret_basic", client_name: "Audited" });
    const secret = client.client_secret as string;
    secrets.push(secret);
    const basic = { authorization: `Basic ${btoa(`${client.client_id}:${secret}`)}` };
    // A registration refused.
    const refused = await t.request("/register", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ redirect_uris: ["javascript:alert(1)"] }),
    });
    expect(refused.status).toBe(400);

    // Consent denied, then granted; a code exchanged; a wrong verifier refused.
    const { verifier, challenge } = pkce();
    secrets.push(verifier);
    const denied = await authorizeTo(t, authorizeQuery(client.client_id, challenge, { resource }), {
      decision: "deny",
    });
    expect(denied.headers.get("location")).toContain("error=access_denied");
    const c1 = await code(t, client.client_id, challenge, { resource });
    secrets.push(c1);
    const bad = await tokenRequest(
      t,
      { grant_type: "authorization_code", code: c1, redirect_uri: REDIRECT, code_verifier: "x".repeat(43) },
      basic,
    );
    expect(bad.status).toBe(400);
    const c2 = await code(t, client.client_id, challenge, { resource });
    secrets.push(c2);
    const issued = await tokenRequest(
      t,
      { grant_type: "authorization_code", code: c2, redirect_uri: REDIRECT, code_verifier: verifier },
      basic,
    );
    const tokens = (await issued.json()) as { access_token: string; refresh_token: string };
    secrets.push(tokens.access_token, tokens.refresh_token);
    expect(issued.status).toBe(200);
    // A token request with no grant type and one with the wrong content type: refused, and recorded.
    expect((await tokenRequest(t, { grant_type: "password" }, basic)).status).toBe(400);
    expect(
      (await t.request("/token", { method: "POST", headers: { "content-type": "text/plain" }, body: "x" })).status,
    ).toBe(400);

    // A refresh, then the old refresh token again: reuse detected, the grant revoked.
    const refreshed = await tokenRequest(
      t,
      { grant_type: "refresh_token", refresh_token: tokens.refresh_token },
      basic,
    );
    const next = (await refreshed.json()) as { access_token: string; refresh_token: string };
    secrets.push(next.access_token, next.refresh_token);
    // Introspection by the client itself, then revocation.
    const intro = await t.request("/introspect", {
      method: "POST",
      headers: { ...basic, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token: next.access_token }).toString(),
    });
    expect(((await intro.json()) as { active: boolean }).active).toBe(true);

    // Calls: allowed for the user; the robot (bearer) allowed echo, denied add.
    const init = {
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "audit" } },
    };
    const userInit = await mcp(next.access_token, init);
    const userSession = userInit.headers.get("mcp-session-id") as string;
    await userInit.text();
    const call = (name: string) => ({
      jsonrpc: "2.0",
      id: 2,
      method: "tools/call",
      params: { name, arguments: { message: "m", a: 1, b: 2 } },
    });
    expect((await (await mcp(next.access_token, call("web__add"), userSession)).json()) as object).toHaveProperty(
      "result",
    );
    const robotInit = await mcp("bearer-secret-token-1", init);
    const robotSession = robotInit.headers.get("mcp-session-id") as string;
    await robotInit.text();
    expect(
      (await (await mcp("bearer-secret-token-1", call("web__echo"), robotSession)).json()) as object,
    ).toHaveProperty("result");
    expect(
      (await (await mcp("bearer-secret-token-1", call("web__add"), robotSession)).json()) as object,
    ).toHaveProperty("error");

    const reuse = await tokenRequest(t, { grant_type: "refresh_token", refresh_token: tokens.refresh_token }, basic);
    expect([reuse.status, await reuse.text()]).toEqual([400, expect.stringContaining("already used")]);
    const revoke = await t.request("/revoke", {
      method: "POST",
      headers: { ...basic, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token: next.refresh_token }).toString(),
    });
    expect(revoke.status).toBe(200);

    // A key rotation and a reload, through the CLI.
    expect(Bun.spawnSync([BUN, MAIN, "keys", "rotate", "--config", config], { cwd: ROOT }).exitCode).toBe(0);
    expect(Bun.spawnSync([BUN, MAIN, "reload", "--config", config], { cwd: ROOT }).exitCode).toBe(0);
    await gh.waitForLog("configuration reloaded");
    await Bun.sleep(300); // the audit file is written in batches

    const all = records();
    const events = new Set(all.map((r) => r.event));
    for (const e of [
      "client_registered",
      "client_registration_refused",
      "authorization_denied",
      "authorization_granted",
      "token_issued",
      "token_refused",
      "refresh_reuse_detected",
      "token_revoked",
      "token_introspected",
      "tool_call",
      "signing_key_rotated",
      "config_reloaded",
    ]) {
      expect([e, events.has(e)]).toEqual([e, true]);
    }
    for (const r of all) {
      expect(typeof r.timestamp).toBe("string");
      expect(typeof r.success).toBe("boolean");
      // Records made while serving a request say which, and from where.
      if (r.event !== "signing_key_rotated" && r.event !== "config_reloaded") {
        expect(typeof r.request_id).toBe("string");
        expect(r.source).toBe("127.0.0.1");
      }
    }
    const deniedCall = all.find((r) => r.event === "tool_call" && r.success === false) as Record<string, unknown>;
    expect(deniedCall).toMatchObject({ subject: "robot", name: "web__add", server: "web" });
    expect(typeof deniedCall.acl_rule).toBe("string");
    const tokenRefusals = all.filter((r) => r.event === "token_refused").map((r) => String(r.reason));
    expect(tokenRefusals.some((r) => r.includes("PKCE") || r.includes("verifier"))).toBe(true);
    expect(tokenRefusals.some((r) => r.startsWith("unsupported_grant_type"))).toBe(true);
    expect(tokenRefusals.some((r) => r.includes("x-www-form-urlencoded"))).toBe(true);
    expect(all.find((r) => r.event === "token_issued")).toMatchObject({
      client_id: client.client_id,
      subject: "alice",
    });

    // No secret the test used is in the file.
    const text = readFileSync(auditPath, "utf8");
    for (const s of secrets) expect(text.includes(s)).toBe(false);
    // Nor in the log.
    for (const s of secrets) expect(gh.logs().includes(s)).toBe(false);
  }, 60_000);
});
