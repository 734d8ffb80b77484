// simple-rpc-ai-backend's MCP authentication, as its documentation configures and calls it, through a real Gatehouse:
// HS256 service tokens with a plain-name issuer and a `scopes` array, per-method scopes ("mcp:call"), its access
// control knobs, its rate limits (a window, requests and tool calls apart), limits on the authorization server's
// endpoints, and a trusted proxy's X-Forwarded-For as the client address.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { SignJWT } from "jose";
import { type HttpBackend, startHttpBackend } from "../fixtures/http-backend.ts";
import { connect } from "../helpers/client.ts";
import { type Running, startGatehouse } from "../helpers/gatehouse-process.ts";
import { freePort } from "../helpers/net.ts";
import { tempDir, writeConfig } from "../helpers/temp.ts";

const SECRET = "your-jwt-secret-that-is-at-least-32-bytes";
let backend: HttpBackend;

/** A token minted as the documentation's `jwt.sign(...)` example does: HS256, issuer "your-service", aud "mcp-api". */
function serviceToken(claims: Record<string, unknown>, exp = "1h"): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuer("your-service")
    .setAudience("mcp-api")
    .setIssuedAt()
    .setExpirationTime(exp)
    .sign(new TextEncoder().encode(SECRET));
}

beforeAll(async () => {
  backend = await startHttpBackend();
});
afterAll(async () => {
  await backend?.stop();
});

describe("JWT service tokens (authType jwt)", () => {
  let gh: Running;
  beforeAll(async () => {
    gh = await startGatehouse({
      config: writeConfig({
        mcpServers: { web: { url: backend.url } },
        serverAuth: {
          providers: ["jwt"],
          jwt: {
            secret: SECRET,
            issuer: "your-service",
            audience: "mcp-api",
            requiredScopes: ["mcp"],
            discovery: { mode: "none" },
          },
        },
        gateway: {
          route: {
            authType: "jwt",
            requireAuthForToolsList: true,
            requireAuthForToolsCall: true,
            methodScopes: { "tools/call": ["mcp:call"] },
          },
        },
      }),
    });
  }, 60_000);
  afterAll(async () => {
    await gh?.stop();
  });

  test("the documentation's token (scopes: [mcp, mcp:call]) lists and calls tools", async () => {
    const token = await serviceToken({ sub: "test-user", email: "test@example.com", scopes: ["mcp", "mcp:call"] });
    const client = await connect(`${gh.url}/mcp`, { token });
    expect((await client.listTools()).tools.map((t) => t.name)).toContain("web__echo");
    expect(await client.callTool({ name: "web__echo", arguments: { message: "svc" } })).toMatchObject({
      content: [{ text: "echo: svc" }],
    });
    await client.close();
  });

  test("without mcp:call the list works and a call is 403 insufficient_scope naming mcp:call", async () => {
    const token = await serviceToken({ sub: "lister", scopes: ["mcp"] });
    const client = await connect(`${gh.url}/mcp`, { token });
    expect((await client.listTools()).tools.length).toBeGreaterThan(0);
    await client.close();
    const init = await fetch(`${gh.url}/mcp`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "initialize",
        params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "t" } },
      }),
    });
    const sid = init.headers.get("mcp-session-id") as string;
    const call = await fetch(`${gh.url}/mcp`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${token}`,
        "content-type": "application/json",
        accept: "application/json",
        "mcp-session-id": sid,
      },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 2,
        method: "tools/call",
        params: { name: "web__echo", arguments: {} },
      }),
    });
    expect(call.status).toBe(403);
    expect(call.headers.get("www-authenticate")).toContain('error="insufficient_scope"');
    expect(call.headers.get("www-authenticate")).toContain("mcp:call");
    // securityLogging's record of the refusal: the audit (here in the log stream) names the call and the scope.
    await gh.waitForLog(/tool_call [^\n]*subject=lister[^\n]*success=false[^\n]*scope=mcp:call/);
  });

  test("without the required scope mcp, or expired, or from another issuer: refused", async () => {
    const statusOf = async (token: string) =>
      (
        await fetch(`${gh.url}/mcp`, {
          method: "POST",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          body: "{}",
        })
      ).status;
    expect(await statusOf(await serviceToken({ sub: "x", scopes: ["other"] }))).toBe(403);
    expect(await statusOf(await serviceToken({ sub: "x", scopes: ["mcp"] }, "-1h"))).toBe(401);
    const foreign = await new SignJWT({ sub: "x", scopes: ["mcp"] })
      .setProtectedHeader({ alg: "HS256" })
      .setIssuer("someone-else")
      .setAudience("mcp-api")
      .setExpirationTime("1h")
      .sign(new TextEncoder().encode(SECRET));
    expect(await statusOf(foreign)).toBe(401);
  });

  test("a plain-name issuer without a shared secret and discovery off is refused at start, saying what to set", () => {
    const r = Bun.spawnSync([
      process.execPath,
      "src/main.ts",
      "check",
      "--config",
      writeConfig({
        mcpServers: { web: { url: backend.url } },
        serverAuth: { providers: ["jwt"], jwt: { issuer: "your-service", audience: "mcp-api" } },
      }),
    ]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.toString()).toContain('accepted only with "secret" (HS256) and "discovery": {"mode": "none"}');
  });
});

describe("rate limits and the trusted proxy", () => {
  let gh: Running;
  let audit: string;
  beforeAll(async () => {
    audit = join(tempDir(), "audit.jsonl");
    const port = await freePort();
    gh = await startGatehouse({
      port,
      config: writeConfig({
        mcpServers: { web: { url: backend.url } },
        serverAuth: {
          providers: ["oauth_as", "bearer"],
          bearer: { tokens: { "svc-token": "svc" } },
          oauthAs: { issuerUrl: `http://127.0.0.1:${port}`, trustedSourceCidrs: ["127.0.0.1/32"] },
        },
        gateway: {
          rateLimit: { window: "60s", maxRequests: 100, maxToolCalls: 3 },
          trustedProxies: ["127.0.0.1/32"],
        },
        audit: { enabled: true, output: "file", path: audit },
      }),
    });
  }, 60_000);
  afterAll(async () => {
    await gh?.stop();
  });

  test("tool calls are limited apart from requests: past maxToolCalls 429, lists still answered", async () => {
    const client = await connect(`${gh.url}/mcp`, { token: "svc-token" });
    for (let i = 0; i < 3; i++) await client.callTool({ name: "web__echo", arguments: { message: String(i) } });
    await expect(client.callTool({ name: "web__echo", arguments: { message: "4" } })).rejects.toThrow(
      /429|maxToolCalls/,
    );
    expect((await client.listTools()).tools.length).toBeGreaterThan(0);
    await client.close();
  });

  test("100 bad token requests from one source: after 30 the source is refused (slow_down), another is not", async () => {
    const bad = (ip: string) =>
      fetch(`${gh.url}/token`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", "x-forwarded-for": ip },
        body: "grant_type=authorization_code&code=guess&client_id=nobody&redirect_uri=http://x/&code_verifier=v",
      });
    const statuses: number[] = [];
    for (let i = 0; i < 100; i++) statuses.push((await bad("198.51.100.7")).status);
    expect(statuses.slice(0, 30).every((s) => s === 400 || s === 401)).toBe(true);
    expect(statuses.slice(31).every((s) => s === 429)).toBe(true);
    const blocked = await bad("198.51.100.7");
    expect(blocked.headers.get("retry-after")).not.toBeNull();
    expect(((await blocked.json()) as { error: string }).error).toBe("slow_down");
    // Through the trusted proxy, another client address is another source — but the same client_id is blocked.
    expect((await bad("198.51.100.8")).status).toBe(429); // client_id "nobody" used up its failures
    const other = await fetch(`${gh.url}/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", "x-forwarded-for": "198.51.100.8" },
      body: "grant_type=authorization_code&code=guess&client_id=someone-else&redirect_uri=http://x/&code_verifier=v",
    });
    expect(other.status).not.toBe(429);
  });

  test("the audit records the forwarded client address as the source", async () => {
    const garbage = await fetch(`${gh.url}/mcp`, {
      method: "POST",
      headers: {
        authorization: "Bearer garbage",
        "content-type": "application/json",
        "x-forwarded-for": "198.51.100.9",
      },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
    });
    expect(garbage.status).toBe(401);
    await Bun.sleep(300);
    const records = readFileSync(audit, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const refused = records.filter((r) => r.event === "token_refused");
    expect(refused.some((r) => r.source === "198.51.100.7")).toBe(true);
    expect(refused.some((r) => r.source === "127.0.0.1")).toBe(false);
    // The tool call over maxToolCalls, and the refused credentials, are security decisions too.
    const limited = records.find((r) => r.event === "tool_call" && r.success === false);
    expect(limited).toMatchObject({ subject: "svc", name: "web__echo" });
    expect(String(limited?.error)).toContain("gateway.rateLimit.maxToolCalls");
    const denied = records.find((r) => r.event === "access_refused");
    expect(denied).toMatchObject({ success: false, status: 401, error: "invalid_token", source: "198.51.100.9" });
    expect(JSON.stringify(records)).not.toContain("garbage");
  });
});
