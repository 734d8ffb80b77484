// A real full disk under a real Gatehouse: the state lives on a small tmpfs that the test fills while registrations
// and refresh grants are in flight. Refused changes are 503 temporarily_unavailable with Retry-After and leave no
// trace (the refresh token that got a 503 still works, even with no reuse grace); once space is freed writes work
// again by themselves; after kill -9 and a restart every acknowledged registration and refresh is there.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { type HttpBackend, startHttpBackend } from "../fixtures/http-backend.ts";
import { type Running, startGatehouse } from "../helpers/gatehouse-process.ts";
import { freePort } from "../helpers/net.ts";
import { REDIRECT, register, remote, tokenRequest, tokens } from "../helpers/oauth-flow.ts";
import { BUN, MAIN, ROOT } from "../helpers/paths.ts";
import { writeConfig } from "../helpers/temp.ts";
import { mountTmpfs, type SmallDisk } from "../helpers/tmpfs.ts";

const disk: SmallDisk | undefined = mountTmpfs(64 * 1024);
let backend: HttpBackend;
beforeAll(async () => {
  backend = await startHttpBackend();
}, 30_000);
afterAll(async () => {
  await backend?.stop();
  disk?.unmount();
});

describe.skipIf(!disk)("a full disk under a running Gatehouse", () => {
  test("503s that leave nothing behind, recovery by itself, and every acknowledged write after kill -9", async () => {
    const d = disk as SmallDisk;
    const port = await freePort();
    const statePath = join(d.dir, "auth_server.json");
    const config = writeConfig({
      mcpServers: { web: { url: backend.url } },
      serverAuth: {
        providers: ["oauth_as"],
        oauthAs: {
          issuerUrl: `http://127.0.0.1:${port}`,
          trustedSourceCidrs: ["127.0.0.1/32"],
          // No grace: a rotation that was half-saved would show as "already used" on the retry.
          refreshReuseGraceSeconds: 0,
        },
      },
    });
    const env = { MCP_AUTH_SERVER_PATH: statePath };
    let g: Running = await startGatehouse({ config, port, env });
    const r = remote(g.url);
    const resource = `${g.url}/mcp`;

    // Refresh chains: each keeps the last refresh token it was given.
    const chains: { client: string; token: string; inFlight: boolean; acked: number }[] = [];
    for (let i = 0; i < 4; i++) {
      const c = await register(r);
      chains.push({
        client: c.client_id,
        token: (await tokens(r, c.client_id, resource)).refresh_token,
        inFlight: false,
        acked: 0,
      });
    }
    const registered: string[] = [];
    const seen = { refresh503: 0, register503: 0, okAfterFree: 0, unexpected: [] as string[] };
    let freed = false;
    let running = true;

    const refresher = async (chain: (typeof chains)[number]) => {
      while (running) {
        chain.inFlight = true;
        let res: Response;
        try {
          res = await tokenRequest(r, {
            grant_type: "refresh_token",
            refresh_token: chain.token,
            client_id: chain.client,
          });
        } catch {
          return; // the server was killed under us: the request stays in flight
        }
        chain.inFlight = false;
        if (res.status === 200) {
          chain.token = ((await res.json()) as { refresh_token: string }).refresh_token;
          chain.acked++;
          if (freed) seen.okAfterFree++;
        } else if (res.status === 503) {
          if (!/^\d+$/.test(res.headers.get("retry-after") ?? "")) seen.unexpected.push("503 without Retry-After");
          const body = (await res.json()) as { error: string };
          if (body.error !== "temporarily_unavailable") seen.unexpected.push(`503 ${body.error}`);
          seen.refresh503++;
          await Bun.sleep(5);
        } else seen.unexpected.push(`refresh: ${res.status} ${await res.text()}`);
      }
    };
    let registrationInFlight = false;
    const registrar = async () => {
      // /register allows 60 a minute: pace them so the run stays under that.
      for (let n = 0; running && n < 48; n++) {
        registrationInFlight = true;
        let res: Response;
        try {
          res = await r.request("/register", {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({
              redirect_uris: [REDIRECT],
              token_endpoint_auth_method: "none",
              client_name: `n${n}`,
            }),
          });
        } catch {
          return;
        }
        registrationInFlight = false;
        if (res.status === 201) registered.push(((await res.json()) as { client_id: string }).client_id);
        else if (res.status === 503) seen.register503++;
        else seen.unexpected.push(`register: ${res.status} ${await res.text()}`);
        await Bun.sleep(60);
      }
    };
    const workers = [...chains.map(refresher), registrar()];
    const until = async (cond: () => boolean, what: string) => {
      const deadline = Date.now() + 15_000;
      while (!cond()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(seen)}`);
        await Bun.sleep(10);
      }
    };

    await Bun.sleep(300);
    d.fill();
    await until(() => seen.refresh503 >= 20 && seen.register503 >= 3, "503s on the full disk");
    expect(((await (await fetch(`${g.url}/health`)).json()) as { status: string }).status).toBe("degraded");
    d.free();
    freed = true;
    await until(() => seen.okAfterFree >= 20, "refreshes after space came back");
    expect(((await (await fetch(`${g.url}/health`)).json()) as { status: string }).status).toBe("ok");
    // The end of the outage is logged once writes have worked for a while (a nearly full disk flaps).
    await g.waitForLog("working again");

    g.proc.kill("SIGKILL");
    running = false;
    await g.proc.exited;
    await Promise.all(workers);
    expect(seen.unexpected).toEqual([]);
    const log = g.logs();
    if (process.env.SHOW_LOG)
      console.log(
        log
          .split("\n")
          .filter((l) => /state|ERROR|WARN/.test(l))
          .join("\n"),
      );
    const errors = log.split("\n").filter((l) => l.includes("ERROR"));
    expect(errors.length).toBe(1);
    expect(errors[0]).toContain(`${statePath}.journal`);
    expect(errors[0]).toMatch(/ENOSPC \(no space left on device\)/);
    expect(log).not.toContain("unhandled error");
    expect(log).not.toMatch(/\n\s+at /);
    expect(log.split("working again").length).toBe(2);

    g = await startGatehouse({ config, port, env });
    // Every acknowledged registration is there (and at most the one in flight at the kill besides).
    const list = Bun.spawnSync([BUN, MAIN, "clients", "list", "--json", "--config", config], {
      cwd: ROOT,
      env: { ...process.env, ...env },
    });
    const ids = new Set((JSON.parse(list.stdout.toString()) as { client_id: string }[]).map((c) => c.client_id));
    for (const id of registered) expect(ids.has(id)).toBe(true);
    expect(ids.size - chains.length - registered.length).toBeLessThanOrEqual(registrationInFlight ? 1 : 0);
    expect(ids.size - chains.length - registered.length).toBeGreaterThanOrEqual(0);
    // Every chain's last acknowledged refresh token works (one killed in flight may have been used by then).
    for (const c of chains) {
      const res = await tokenRequest(remote(g.url), {
        grant_type: "refresh_token",
        refresh_token: c.token,
        client_id: c.client,
      });
      if (c.inFlight) expect([200, 400]).toContain(res.status);
      else expect(res.status).toBe(200);
    }
    expect(chains.every((c) => c.acked > 0)).toBe(true);
    await g.stop();
  }, 60_000);
});
