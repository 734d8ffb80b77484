// Google sign-in's Workspace groups (logins[].workspace): the service account key read and checked at load, the
// RFC 7523 assertion exchanged at its token_uri, and groups.list?userKey= of the Admin SDK Directory API — against a
// loopback stand-in serving the documented request and response formats (tests/fixtures/standins.ts), since Google
// cannot be reached from here.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, parseConfig } from "../../src/config/load.ts";
import type { OidcSettings, WorkspaceSettings } from "../../src/config/types.ts";
import { WorkspaceDirectory } from "../../src/login/google-workspace.ts";
import { UpstreamError } from "../../src/net/upstream.ts";
import { startWorkspaceStandin, type WorkspaceStandin } from "../fixtures/standins.ts";
import { tempDir } from "../helpers/temp.ts";

let ws: WorkspaceStandin;
let dir: string;

beforeAll(async () => {
  ws = await startWorkspaceStandin(
    {
      "ada@acme.com": ["mcp-users@acme.com", "eng@acme.com", "all@acme.com"],
      "bob@acme.com": [],
    },
    { pageSize: 2 },
  );
  dir = tempDir();
  writeFileSync(join(dir, "sa.json"), ws.keyJson);
});
afterAll(() => ws?.stop());

function google(workspace: Record<string, unknown>): OidcSettings | { path: string; message: string }[] {
  const config = {
    mcpServers: { s: { command: "x" } },
    serverAuth: {
      providers: ["oauth_as"],
      oauthAs: {
        issuerUrl: "https://mcp.example.com",
        logins: [{ type: "google", clientId: "c", clientSecret: "s", hostedDomain: "acme.com", workspace }],
      },
    },
  };
  try {
    const c = parseConfig(JSON.stringify(config), { source: "servers.json", dir, env: {} });
    const l = c.auth.oauthAs?.logins[0];
    return l?.type === "oidc" ? l.oidc : [];
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
}

function directory(extra: Partial<WorkspaceSettings> = {}) {
  const s = google({ serviceAccountKeyFile: "sa.json", directoryUrl: ws.url }) as OidcSettings;
  return new WorkspaceDirectory({ ...(s.workspace as WorkspaceSettings), ...extra }, "google", () => Date.now());
}

describe("google workspace groups: configuration", () => {
  test("a service account key file (relative to servers.json) or its text loads", () => {
    const fromFile = google({ serviceAccountKeyFile: "sa.json", directoryUrl: ws.url }) as OidcSettings;
    expect(fromFile.workspace).toMatchObject({
      clientEmail: ws.clientEmail,
      tokenUri: `${ws.url}/token`,
      directoryUrl: ws.url,
      timeoutMs: 5000,
    });
    const inline = google({ serviceAccountKey: ws.keyJson, adminEmail: "admin@acme.com" }) as OidcSettings;
    expect(inline.workspace).toMatchObject({
      adminEmail: "admin@acme.com",
      directoryUrl: "https://admin.googleapis.com",
    });
  });

  test("a missing file, a non-JSON key, or another kind of credential is refused at load, naming the key", () => {
    const path = "serverAuth.oauthAs.logins[0].workspace";
    expect(google({ serviceAccountKeyFile: "nope.json" })).toMatchObject([
      { path: `${path}.serviceAccountKeyFile`, message: expect.stringContaining("cannot read nope.json") },
    ]);
    expect(google({ serviceAccountKey: "{not json" })).toMatchObject([
      { path: `${path}.serviceAccountKey`, message: expect.stringContaining("is not JSON") },
    ]);
    const wif = JSON.stringify({ type: "external_account", audience: "//iam.googleapis.com/…" });
    expect(google({ serviceAccountKey: wif })).toMatchObject([
      { path: `${path}.serviceAccountKey`, message: expect.stringContaining("workload identity federation") },
    ]);
    expect(google({})).toMatchObject([{ path, message: expect.stringContaining("set one of") }]);
  });
});

describe("google workspace groups: the Directory API", () => {
  test("lists every group of the user across pages, by email; the service account acts as the user", async () => {
    const before = ws.impersonated.length;
    expect((await directory().groupsOf("ada@acme.com")).sort()).toEqual([
      "all@acme.com",
      "eng@acme.com",
      "mcp-users@acme.com",
    ]);
    expect(ws.impersonated.slice(before)).toEqual(["ada@acme.com"]);
    expect(await directory().groupsOf("bob@acme.com")).toEqual([]);
  });

  test("with adminEmail the service account acts as that admin; its token is reused until it expires", async () => {
    const d = directory({ adminEmail: "admin@acme.com" });
    const before = ws.impersonated.length;
    await d.groupsOf("ada@acme.com");
    await d.groupsOf("bob@acme.com");
    expect(ws.impersonated.slice(before)).toEqual(["admin@acme.com"]);
  });

  test("a directory that refuses (no delegation) fails the sign-in with what it said", async () => {
    ws.failWith = 403;
    try {
      await expect(directory().groupsOf("ada@acme.com")).rejects.toThrow(
        /the Workspace directory answered HTTP 403 \(Not Authorized to access this resource\/api\)/,
      );
    } finally {
      ws.failWith = undefined;
    }
  });

  test("a key the token endpoint does not accept fails with a hint at the delegation", async () => {
    const other = await startWorkspaceStandin({});
    try {
      const s = JSON.parse(other.keyJson) as { private_key: string };
      const d = directory({ privateKey: s.private_key }); // signed by another key than ws's service account
      const e = await d.groupsOf("ada@acme.com").catch((x) => x);
      expect(e).toBeInstanceOf(UpstreamError);
      expect((e as Error).message).toContain("could not get a token (HTTP 400: invalid_grant");
      expect((e as Error).message).toContain("domain-wide delegation");
    } finally {
      other.stop();
    }
  });

  test("a directory that does not answer in time fails within the login's timeout", async () => {
    const hang = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Promise<Response>(() => {}) });
    try {
      const d = directory({ directoryUrl: `http://127.0.0.1:${hang.port}`, timeoutMs: 200 });
      await expect(d.groupsOf("ada@acme.com")).rejects.toThrow(/did not answer within 200 ms/);
    } finally {
      hang.stop(true);
    }
  });
});
