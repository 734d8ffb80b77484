// The authorization server's state on disk, with real processes: a restart keeps clients, refresh tokens, consents
// and signing keys (tokens issued before still work); `gatehouse keys rotate` and `gatehouse clients …` work on a
// running server and on a stopped one; kill -9 in the middle of a burst of grants loses nothing acknowledged; a
// damaged state file stops the start, untouched.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { type HttpBackend, startHttpBackend } from "../fixtures/http-backend.ts";
import { type Running, startGatehouse } from "../helpers/gatehouse-process.ts";
import { freePort } from "../helpers/net.ts";
import { code, pkce, REDIRECT, register, remote, tokenRequest, tokens, USER } from "../helpers/oauth-flow.ts";
import { BUN, MAIN, ROOT } from "../helpers/paths.ts";
import { tempDir, writeConfig } from "../helpers/temp.ts";

let backend: HttpBackend;
beforeAll(async () => {
  backend = await startHttpBackend();
}, 30_000);
afterAll(async () => {
  await backend?.stop();
});

async function server(): Promise<{ config: string; port: number; audit: string; start(): Promise<Running> }> {
  const port = await freePort();
  const audit = join(tempDir(), "audit.jsonl");
  const config = writeConfig({
    audit: { enabled: true, output: "file", path: audit },
    mcpServers: { web: { url: backend.url } },
    serverAuth: {
      providers: ["oauth_as"],
      oauthAs: {
        issuerUrl: `http://127.0.0.1:${port}`,
        trustedSourceCidrs: ["127.0.0.1/32"],
        introspectionClients: { rs: "resource-server-secret" },
      },
    },
  });
  return { config, port, audit, start: () => startGatehouse({ config, port }) };
}

const mcpStatus = async (base: string, token: string) =>
  (
    await fetch(`${base}/mcp`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${token}`,
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
      },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "initialize",
        params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "t", version: "1" } },
      }),
    })
  ).status;

function cli(args: string[]) {
  const p = Bun.spawnSync([BUN, MAIN, ...args], { cwd: ROOT, env: process.env, timeout: 20_000 });
  return { code: p.exitCode, out: p.stdout.toString(), err: p.stderr.toString() };
}

describe("state across restarts", () => {
  test("clients, refresh tokens, consents and keys survive; tokens issued before still work", async () => {
    const s = await server();
    let g = await s.start();
    const r = remote(g.url);
    const resource = `${g.url}/mcp`;
    const client = await register(r);
    const before = await tokens(r, client.client_id, resource);
    expect(await mcpStatus(g.url, before.access_token)).toBe(200);
    expect(await g.stop()).toBe(0);

    const state = JSON.parse(readFileSync(join(dirname(s.config), "auth_server.json"), "utf8"));
    expect(Object.keys(state.clients)).toContain(client.client_id);
    expect(JSON.stringify(state)).not.toContain(before.refresh_token); // only hashes are stored

    g = await s.start();
    expect(await mcpStatus(g.url, before.access_token)).toBe(200);
    const refreshed = await tokenRequest(r, {
      grant_type: "refresh_token",
      refresh_token: before.refresh_token,
      client_id: client.client_id,
    });
    expect(refreshed.status).toBe(200);
    // consent remembered: straight to a code
    const again = await r.request(
      `/authorize?${new URLSearchParams({ response_type: "code", client_id: client.client_id, redirect_uri: REDIRECT, code_challenge: pkce().challenge, code_challenge_method: "S256", resource })}`,
      { headers: USER },
    );
    expect(again.status).toBe(302);
    expect(again.headers.get("location")).toContain("code=");
    await g.stop();
  });

  test("keys rotate (CLI, on a running server): old tokens keep working, new ones use the new key", async () => {
    const s = await server();
    const g = await s.start();
    const r = remote(g.url);
    const client = await register(r);
    const old = await tokens(r, client.client_id, `${g.url}/mcp`);
    const rotated = cli(["keys", "rotate", "--config", s.config]);
    expect(rotated.code).toBe(0);
    expect(rotated.out).toContain("new signing key");
    const jwks = (await (await fetch(`${g.url}/jwks`)).json()) as { keys: { kid: string }[] };
    expect(jwks.keys.length).toBe(2);
    expect(await mcpStatus(g.url, old.access_token)).toBe(200);
    const fresh = await tokens(r, client.client_id, `${g.url}/mcp`);
    const kid = (t: string) => JSON.parse(Buffer.from(t.split(".")[0] as string, "base64url").toString()).kid;
    expect(kid(fresh.access_token)).not.toBe(kid(old.access_token));
    expect(kid(fresh.access_token)).toBe(jwks.keys[1]?.kid as string);
    expect(await mcpStatus(g.url, fresh.access_token)).toBe(200);
    await g.stop();
  });

  test("clients list/show/revoke, through the running server and on the file when it is stopped", async () => {
    const s = await server();
    const g = await s.start();
    const r = remote(g.url);
    const a = await register(r, { client_name: "Alpha" });
    const b = await register(r, { client_name: "Beta" });
    const t = await tokens(r, a.client_id, `${g.url}/mcp`);
    const list = cli(["clients", "list", "--config", s.config]);
    expect(list.code).toBe(0);
    expect(list.out).toContain("Alpha");
    expect(list.out).toContain("Beta");
    const shown = JSON.parse(cli(["clients", "show", a.client_id, "--config", s.config]).out);
    expect(shown.grants.length).toBe(1);
    expect(shown.grants[0].subject).toBe("alice");
    expect(cli(["clients", "revoke", a.client_id, "--config", s.config]).code).toBe(0);
    expect(await mcpStatus(g.url, t.access_token)).toBe(401);
    expect(
      (await tokenRequest(r, { grant_type: "refresh_token", refresh_token: t.refresh_token, client_id: a.client_id }))
        .status,
    ).toBe(401);
    await g.stop();
    // stopped: the CLI edits the file itself
    const json = JSON.parse(cli(["clients", "list", "--json", "--config", s.config]).out) as { client_id: string }[];
    expect(json.map((c) => c.client_id)).toEqual([b.client_id]);
    expect(cli(["clients", "revoke", b.client_id, "--config", s.config]).code).toBe(0);
    expect(cli(["clients", "show", b.client_id, "--config", s.config]).err).toContain(`no client ${b.client_id}`);
    expect(cli(["keys", "rotate", "--config", s.config]).code).toBe(0);
    // Each change is audited, by the running server or (stopped) by the CLI into audit.path's file.
    const records = readFileSync(s.audit, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const revoked = records.filter((r) => r.event === "client_revoked").map((r) => r.client_id);
    expect(revoked).toEqual([a.client_id, b.client_id]);
    expect(records.some((r) => r.event === "signing_key_rotated" && r.reason === "gatehouse keys rotate")).toBe(true);
  });

  test("kill -9 during a burst of grants: every acknowledged grant is there after restart", async () => {
    const s = await server();
    let g = await s.start();
    const r = remote(g.url);
    const client = await register(r);
    const resource = `${g.url}/mcp`;
    // Consent once so the burst only exercises codes and tokens.
    await tokens(r, client.client_id, resource);
    const acknowledged: string[] = [];
    let stop = false;
    const worker = async () => {
      while (!stop) {
        try {
          const { verifier, challenge } = pkce();
          const c = await code(r, client.client_id, challenge, { resource });
          const res = await tokenRequest(r, {
            grant_type: "authorization_code",
            code: c,
            redirect_uri: REDIRECT,
            code_verifier: verifier,
            client_id: client.client_id,
            resource,
          });
          if (res.status === 200) acknowledged.push(((await res.json()) as { refresh_token: string }).refresh_token);
        } catch {
          return; // the server died under us
        }
      }
    };
    const workers = Array.from({ length: 8 }, worker);
    while (acknowledged.length < 150) await Bun.sleep(5);
    g.proc.kill("SIGKILL");
    stop = true;
    await Promise.all(workers);
    await g.proc.exited;
    writeFileSync(`${join(dirname(s.config), "auth_server.json")}.lock`, "999999"); // what a killed process leaves behind
    g = await s.start();
    const check = (rt: string) =>
      r.request("/introspect", {
        method: "POST",
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          authorization: `Basic ${btoa("rs:resource-server-secret")}`,
        },
        body: new URLSearchParams({ token: rt }).toString(),
      });
    let active = 0;
    for (const rt of acknowledged) if (((await (await check(rt)).json()) as { active: boolean }).active) active++;
    expect(active).toBe(acknowledged.length);
    await g.stop();
  });

  test("a corrupt state file: Gatehouse refuses to start, names the file, leaves it untouched", async () => {
    const s = await server();
    const statePath = join(dirname(s.config), "auth_server.json");
    writeFileSync(statePath, '{"clients": [');
    const p = Bun.spawnSync([BUN, MAIN, "serve", "--config", s.config, "--bind", `127.0.0.1:${s.port}`], {
      cwd: ROOT,
      timeout: 20_000,
    });
    expect(p.exitCode).toBe(1);
    expect(p.stderr.toString()).toContain(`${statePath} is not a valid Gatehouse state file`);
    expect(readFileSync(statePath, "utf8")).toBe('{"clients": [');
  });
});
