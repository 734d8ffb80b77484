// Env-only quick mode as a container user of allardy/mcp-oauth-proxy would run it: no servers.json, only its
// variables — an OIDC issuer (panva's oidc-provider on loopback) minting the access tokens, an allow-list, and
// server-everything started by Gatehouse (MCP_SPAWN_CMD + MCP_SPAWN_PORT). The official SDK client works through it.
// (--bind keeps the test on loopback; without it env-only mode listens on 0.0.0.0:$PORT as the container did.)

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { type ExternalIssuer, startExternalIssuer } from "../fixtures/external-issuer.ts";
import { type Running, startGatehouse } from "../helpers/gatehouse-process.ts";
import { freePort } from "../helpers/net.ts";
import { BUN, EVERYTHING, ROOT } from "../helpers/paths.ts";

let issuer: ExternalIssuer;
let gh: Running;
let base: string;

beforeAll(async () => {
  issuer = await startExternalIssuer();
  const port = await freePort();
  const spawnPort = await freePort();
  base = `http://127.0.0.1:${port}`;
  gh = await startGatehouse({
    port,
    env: {
      OIDC_ISSUER_URL: issuer.issuer,
      OIDC_AUDIENCE: base,
      RESOURCE_URL: base,
      ALLOW_SUBS: issuer.machine.clientId,
      MCP_SPAWN_CMD: `PORT=${spawnPort} exec ${BUN} --preload ${ROOT}/tests/fixtures/loopback-only.ts ${EVERYTHING} streamableHttp`,
      MCP_SPAWN_PORT: String(spawnPort),
      PORT: String(port),
      LOG_LEVEL: "debug",
    },
  });
}, 60_000);

afterAll(async () => {
  await gh?.stop();
  await issuer?.stop();
});

async function connect(url: string, token: string): Promise<Client> {
  const client = new Client({ name: "env-mode", version: "1" });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { authorization: `Bearer ${token}` } } }),
  );
  return client;
}

describe("env-only mode", () => {
  test("the SDK client lists and calls server-everything's tools, unprefixed, at /mcp", async () => {
    const token = await issuer.clientCredentials({ resource: base });
    for (const url of [`${base}/mcp`]) {
      const client = await connect(url, token);
      expect(client.getServerVersion()?.name).toContain("everything");
      const names = (await client.listTools()).tools.map((t) => t.name);
      expect(names).toContain("echo");
      expect(await client.callTool({ name: "echo", arguments: { message: "env" } })).toMatchObject({
        content: [{ text: "Echo: env" }],
      });
      await client.close();
    }
    const logs = await gh.waitForLog("waiting for its port");
    expect(logs).toContain('config="environment (OIDC_ISSUER_URL …)"');
  });

  test("every other path, / included, is forwarded raw to the spawned server, as mcp-oauth-proxy did", async () => {
    // Without MCP_UPSTREAM_PATH, mcp-oauth-proxy sent / to the upstream's / (server-everything has nothing there).
    const token = await issuer.clientCredentials({ resource: base });
    const res = await fetch(`${base}/`, { headers: { authorization: `Bearer ${token}` } });
    const text = await res.text();
    expect(res.status).toBe(404);
    expect(text).not.toContain("no such endpoint"); // the upstream's 404, not Gatehouse's
    await gh.waitForLog(/request sub=\S+ method=GET path=\/ /);
    expect((await fetch(`${base}/`)).status).toBe(401);
  });

  test("without a token: 401 pointing at the metadata, which names Gatehouse (as mcp-oauth-proxy did)", async () => {
    const res = await fetch(`${base}/mcp`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping" }),
    });
    expect(res.status).toBe(401);
    const challenge = res.headers.get("www-authenticate") as string;
    const metadataUrl = /resource_metadata="([^"]+)"/.exec(challenge)?.[1] as string;
    expect(metadataUrl).toBe(`${base}/.well-known/oauth-protected-resource`);
    const prm = (await (await fetch(metadataUrl)).json()) as { resource: string; authorization_servers: string[] };
    expect(prm.resource).toBe(base);
    expect(prm.authorization_servers).toEqual([base]);
  });

  test("a token for another audience, or garbage, is refused", async () => {
    const other = await issuer.clientCredentials({ resource: "https://other.example/mcp" });
    for (const token of [other, "not-a-token"]) {
      const res = await fetch(`${base}/mcp`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping" }),
      });
      expect(res.status).toBe(401);
      expect(res.headers.get("www-authenticate")).toContain('error="invalid_token"');
    }
  });
});
