// Runs the Store contract and the fault contract against every store, then what only the JSON file store promises:
// durability across restarts and crashes, refusal of damaged files, file modes, the single-process lock, and what
// it does with each way a disk fails.

import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { sha256Hex } from "../../src/crypto.ts";
import { memoryLogger } from "../../src/log.ts";
import { inlineStore, JsonFileStore } from "../../src/store/json-file.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import { type Store, StoreUnavailableError } from "../../src/store/types.ts";
import { mcpServeClient, mcpServeRefreshToken, mcpServeState, mcpServeStateFile } from "../fixtures/mcp-serve-state.ts";
import { tempDir } from "../helpers/temp.ts";
import { client, grant, refreshRecord, storeContract } from "./contract.ts";
import { faultContract } from "./fault-contract.ts";
import { FaultyFiles } from "./faulty-files.ts";

storeContract("memory", async () => new MemoryStore());
storeContract("json-file", async () => JsonFileStore.open(join(tempDir(), "auth_server.json")));

/** A JSON-file store on faulty files, and how its process "dies" (no close; its lock left behind). */
function fileHarness() {
  const files = new FaultyFiles();
  const paths = new WeakMap<Store, string>();
  const open = (path: string, faulty = true) => {
    const s = JsonFileStore.open(path, { files: faulty ? files : undefined, log: memoryLogger() });
    paths.set(s, path);
    return s;
  };
  const abandon = (s: Store) => {
    // The dead process's descriptor goes away with it; its lock file stays.
    (s as unknown as { journal: { close(): void } }).journal.close();
    writeFileSync(`${paths.get(s)}.lock`, "999999");
  };
  return { files, paths, open, abandon };
}

{
  const h = fileHarness();
  faultContract("json-file", {
    open: async () => h.open(join(tempDir(), "auth_server.json")),
    async crashAndReopen(s) {
      const path = h.paths.get(s) as string;
      h.abandon(s);
      return h.open(path, false);
    },
    close: (s) => s.close(),
    readsDuringFaults: true,
    scenarios: [
      {
        name: "no space left (ENOSPC)",
        inject: () => (h.files.writeFault = { kind: "error", code: "ENOSPC" }),
        heal: () => h.files.heal(),
      },
      {
        name: "a short write, then no space",
        inject: () => (h.files.writeFault = { kind: "short-then-error", code: "ENOSPC" }),
        heal: () => h.files.heal(),
      },
      { name: "fsync fails (EIO)", inject: () => (h.files.fsyncFault = "EIO"), heal: () => h.files.heal() },
      {
        name: "read-only filesystem (EROFS)",
        inject: () => (h.files.writeFault = { kind: "error", code: "EROFS" }),
        heal: () => h.files.heal(),
      },
      {
        name: "a torn write whose cut-back fails too (EIO on truncate)",
        inject: () => {
          h.files.writeFault = { kind: "short-then-error", code: "ENOSPC" };
          h.files.truncateFault = "EIO";
        },
        heal: () => h.files.heal(),
      },
    ],
  });
}

describe("JsonFileStore", () => {
  test("a reopened store has everything that was acknowledged; files are mode 0600", async () => {
    const path = join(tempDir(), "auth_server.json");
    const a = JsonFileStore.open(path);
    await a.putClient(client("c1"));
    await a.putGrant(grant("g1", "c1"));
    await a.putRefreshToken("r1", refreshRecord("g1"));
    await a.putConsent({ subject: "alice", client_id: "c1", scopes: ["mcp"], granted_at: 3 });
    await a.close();
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(`${path}.journal`).mode & 0o777).toBe(0o600);
    const b = JsonFileStore.open(path);
    expect(await b.getClient("c1")).toBeDefined();
    expect(await b.getRefreshToken("r1")).toBeDefined();
    expect(await b.getConsent("alice", "c1")).toBeDefined();
    await b.close();
  });

  test("without a clean close (a crash), the journal alone restores every acknowledged change", async () => {
    const path = join(tempDir(), "auth_server.json");
    const a = JsonFileStore.open(path);
    for (let i = 0; i < 50; i++) await a.putRefreshToken(`r${i}`, refreshRecord("g", { created_at: i }));
    await a.rotateRefreshToken("r1", "r1b", refreshRecord("g"), 60);
    // no close(): simulate the process dying, and its lock being left behind
    writeFileSync(`${path}.lock`, "999999");
    const b = JsonFileStore.open(path);
    expect((await b.stats()).refreshTokens).toBe(51);
    expect((await b.getRefreshToken("r1"))?.rotated_at).toBe(60);
    await b.close();
  });

  test("a torn last journal line (death mid-write) is dropped; everything before it loads", async () => {
    const path = join(tempDir(), "auth_server.json");
    const a = JsonFileStore.open(path);
    await a.putClient(client("kept"));
    writeFileSync(`${path}.journal`, `${readFileSync(`${path}.journal`, "utf8")}[{"t":"client","k":"torn","v":{"cli`);
    writeFileSync(`${path}.lock`, "999999");
    const b = JsonFileStore.open(path);
    expect(await b.getClient("kept")).toBeDefined();
    expect(await b.getClient("torn")).toBeUndefined();
    await b.putClient(client("after"));
    await b.close();
    const c = JsonFileStore.open(path);
    expect(await c.getClient("after")).toBeDefined();
    await c.close();
  });

  test("a last line without its newline was never acknowledged: dropped even when it parses", async () => {
    const path = join(tempDir(), "auth_server.json");
    const line = JSON.stringify([{ t: "client", k: "unacked", v: client("unacked") }]);
    writeFileSync(`${path}.journal`, `${JSON.stringify([{ t: "client", k: "acked", v: client("acked") }])}\n${line}`);
    const s = JsonFileStore.open(path);
    expect(await s.getClient("acked")).toBeDefined();
    expect(await s.getClient("unacked")).toBeUndefined();
    await s.close();
  });

  test("a corrupt state file is refused, naming the file, and left untouched", () => {
    const path = join(tempDir(), "auth_server.json");
    writeFileSync(path, '{"clients": {"x": {"redirect_uris": 5}}');
    expect(() => JsonFileStore.open(path)).toThrow(`${path} is not a valid Gatehouse state file`);
    expect(readFileSync(path, "utf8")).toBe('{"clients": {"x": {"redirect_uris": 5}}');
    expect(existsSync(`${path}.lock`)).toBe(false);
  });

  test("a corrupt line in the middle of the journal is refused", () => {
    const path = join(tempDir(), "auth_server.json");
    writeFileSync(`${path}.journal`, 'garbage\n[{"t":"jti","k":"a","v":1}]\n');
    expect(() => JsonFileStore.open(path)).toThrow("line 1 is corrupt");
  });

  test("a second process cannot open the same state (the lock names the holder)", async () => {
    const path = join(tempDir(), "auth_server.json");
    const a = JsonFileStore.open(path);
    writeFileSync(`${path}.lock`, String(process.ppid)); // a live process that is not us
    expect(() => JsonFileStore.open(path)).toThrow(`in use by another Gatehouse process (pid ${process.ppid})`);
    writeFileSync(`${path}.lock`, String(process.pid));
    await a.close();
  });

  test("a lock left by a killed process never stops the next start: a dead pid, or a pid reused since", async () => {
    const path = join(tempDir(), "auth_server.json");
    // A pid that is gone.
    const gone = Bun.spawn(["true"]);
    await gone.exited;
    writeFileSync(`${path}.lock`, String(gone.pid));
    await JsonFileStore.open(path).close();
    // A pid now used by a process that started after the lock was written (a restarted container: same pid).
    writeFileSync(`${path}.lock`, "0");
    const reused = Bun.spawn(["sleep", "30"]);
    try {
      writeFileSync(`${path}.lock`, String(reused.pid));
      const past = new Date(Date.now() - 60_000);
      utimesSync(`${path}.lock`, past, past);
      const b = JsonFileStore.open(path);
      expect(readFileSync(`${path}.lock`, "utf8")).toBe(String(process.pid));
      await b.close();
      // The same process holding a lock written after it started does keep others out.
      writeFileSync(`${path}.lock`, String(reused.pid));
      expect(() => JsonFileStore.open(path)).toThrow(`in use by another Gatehouse process (pid ${reused.pid})`);
    } finally {
      reused.kill("SIGKILL");
      await reused.exited;
    }
  });

  test("compaction folds the journal into the snapshot", async () => {
    const path = join(tempDir(), "auth_server.json");
    const a = JsonFileStore.open(path);
    await a.putClient(client("c"));
    a.compact();
    expect(readFileSync(`${path}.journal`, "utf8")).toBe("");
    expect(JSON.parse(readFileSync(path, "utf8")).clients.c.client_id).toBe("c");
    await a.close();
  });

  test("the state of mcp serve is converted: clients, live refresh tokens (hashed, each its grant), a copy kept", async () => {
    const dir = tempDir();
    const path = join(dir, "auth_server.json");
    const now = Date.now();
    const claude = mcpServeClient(["https://claude.ai/api/mcp/auth_callback"], { grantTypes: ["authorization_code"] });
    const cursor = mcpServeClient(["cursor://anysphere.cursor-mcp/oauth/callback"], { name: null });
    const live = mcpServeRefreshToken(claude.client_id, "alice", ["dev"], Math.floor(now / 1000) + 86_400);
    const expired = mcpServeRefreshToken(claude.client_id, "bob", [], Math.floor(now / 1000) - 1);
    const orphan = mcpServeRefreshToken("mcp_gone", "carol", [], Math.floor(now / 1000) + 86_400);
    const text = mcpServeStateFile(mcpServeState([claude, cursor], [live, expired, orphan]));
    writeFileSync(path, text);
    const log = memoryLogger();
    const ctx = { now, resource: "https://mcp.example.com/mcp", injectedRoles: ["oauth-user"], scopes: [] };
    const s = JsonFileStore.open(path, { log, mcpServe: ctx });
    expect(await s.getClient(claude.client_id)).toMatchObject({
      client_name: "Claude",
      token_endpoint_auth_method: "none",
      // mcp serve issued refresh tokens whatever the client registered: both grants, so they keep working.
      grant_types: ["authorization_code", "refresh_token"],
      client_id_issued_at: claude.created_at_unix,
    });
    expect((await s.getClient(cursor.client_id))?.client_name).toBeUndefined();
    const record = await s.getRefreshToken(sha256Hex(live.token));
    expect(record?.expires_at).toBe(live.expires_at_unix * 1000);
    expect(await s.getGrant(record?.grant_id as string)).toMatchObject({
      client_id: claude.client_id,
      subject: "alice",
      groups: ["dev"],
      roles: ["dev", "oauth-user"],
      resource: ctx.resource,
      expires_at: live.expires_at_unix * 1000,
      migrated_from: "mcp-serve",
    });
    expect((await s.stats()).refreshTokens).toBe(1);
    // The original, byte for byte, beside it; the file itself now in Gatehouse's format, without a token in clear.
    expect(readFileSync(`${path}.mcp-serve.bak`, "utf8")).toBe(text);
    expect(statSync(`${path}.mcp-serve.bak`).mode & 0o777).toBe(0o600);
    const converted = readFileSync(path, "utf8");
    expect(JSON.parse(converted).version).toBe(1);
    expect(converted).not.toContain(live.token);
    expect(log.lines.join("\n")).toContain(
      `converted mcp serve's state: 2 clients and 1 refresh token (dropped: 1 expired refresh token, 1 refresh token of unknown clients); the original is kept at ${path}.mcp-serve.bak`,
    );
    await s.close();
    // Opened again: Gatehouse's own file, nothing converted twice.
    const again = JsonFileStore.open(path, { log: memoryLogger(), mcpServe: ctx });
    expect((await again.stats()).refreshTokens).toBe(1);
    await again.close();
    expect(readdirSync(dir).filter((f) => f.includes("mcp-serve"))).toEqual(["auth_server.json.mcp-serve.bak"]);
  });

  test("mcp serve's refresh tokens without an authorization server to convert them for: refused, untouched", () => {
    const path = join(tempDir(), "auth_server.json");
    const c = mcpServeClient(["https://claude.ai/api/mcp/auth_callback"]);
    const text = mcpServeStateFile(
      mcpServeState([c], [mcpServeRefreshToken(c.client_id, "alice", [], Math.floor(Date.now() / 1000) + 60)]),
    );
    writeFileSync(path, text);
    expect(() => JsonFileStore.open(path)).toThrow(
      "only `gatehouse serve` with serverAuth.oauthAs configured converts",
    );
    expect(readFileSync(path, "utf8")).toBe(text);
    expect(existsSync(`${path}.mcp-serve.bak`)).toBe(false);
    // Its clients alone need nothing of the configuration.
    writeFileSync(path, mcpServeStateFile(mcpServeState([c], [])));
    const s = JsonFileStore.open(path);
    return s.getClient(c.client_id).then(async (got) => {
      expect(got?.redirect_uris).toEqual(c.redirect_uris);
      await s.close();
    });
  });
});

describe("JsonFileStore when the disk fails", () => {
  test("short writes are continued: the change is acknowledged whole", async () => {
    const h = fileHarness();
    const path = join(tempDir(), "auth_server.json");
    const s = h.open(path);
    h.files.writeFault = { kind: "short", bytes: 7 };
    await s.putClient(client("in-pieces", { client_name: "x".repeat(300) }));
    expect(h.files.calls.write).toBeGreaterThan(40);
    h.abandon(s);
    const r = h.open(path, false);
    expect((await r.getClient("in-pieces"))?.client_name).toBe("x".repeat(300));
    await r.close();
  });

  test("the failure is logged once for the outage, naming the file and the cause, without a stack", async () => {
    const files = new FaultyFiles();
    const log = memoryLogger();
    const path = join(tempDir(), "auth_server.json");
    const s = JsonFileStore.open(path, { files, log, recoveryQuietMs: 0 });
    files.writeFault = { kind: "error", code: "ENOSPC" };
    for (let i = 0; i < 5; i++) await s.putClient(client(`x${i}`)).catch(() => {});
    const errors = log.lines.filter((l) => l.includes("ERROR"));
    expect(errors.length).toBe(1);
    expect(errors[0]).toContain(`${path}.journal`);
    expect(errors[0]).toContain("ENOSPC (no space left on device)");
    expect(errors[0]).not.toContain("    at ");
    expect(s.health()).toMatchObject({ ok: false });
    files.heal();
    await s.putClient(client("back"));
    expect(log.lines.filter((l) => l.includes("working again")).length).toBe(1);
    expect(s.health()).toEqual({ ok: true });
    await s.close();
  });

  test("a journal that cannot be cut back refuses writes until it can, then resumes", async () => {
    const h = fileHarness();
    const path = join(tempDir(), "auth_server.json");
    const s = h.open(path);
    await s.putClient(client("a"));
    h.files.writeFault = { kind: "short-then-error", code: "ENOSPC" };
    h.files.truncateFault = "EIO";
    await expect(s.putClient(client("torn"))).rejects.toBeInstanceOf(StoreUnavailableError);
    h.files.writeFault = undefined; // space is back, but the cut still fails
    await expect(s.putClient(client("refused"))).rejects.toThrow("cannot cut");
    h.files.heal();
    await s.putClient(client("b"));
    h.abandon(s);
    const r = h.open(path, false);
    expect((await r.listClients()).map((c) => c.client_id).sort()).toEqual(["a", "b"]);
    await r.close();
  });

  test("a snapshot that cannot be written (compaction on a full disk) changes nothing; the journal keeps it all", async () => {
    const h = fileHarness();
    const path = join(tempDir(), "auth_server.json");
    const s = h.open(path);
    await s.putClient(client("a"));
    h.files.renameFault = "ENOSPC";
    expect(s.compact()).toBe(false);
    h.files.heal();
    await s.putClient(client("b"));
    h.abandon(s);
    const r = h.open(path, false);
    expect((await r.listClients()).length).toBe(2);
    expect(existsSync(`${path}.${process.pid}.tmp`)).toBe(false);
    await r.close();
  });

  test("the lock taken by another process: writes are refused (503) until a restart; reads go on", async () => {
    const path = join(tempDir(), "auth_server.json");
    const s = JsonFileStore.open(path, { log: memoryLogger() });
    await s.putClient(client("a"));
    writeFileSync(`${path}.lock`, String(process.ppid));
    const e = await s.putClient(client("b")).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(StoreUnavailableError);
    expect((e as Error).message).toContain(`taken by pid ${process.ppid}`);
    expect(await s.getClient("a")).toBeDefined();
    expect(await s.getClient("b")).toBeUndefined();
    expect(s.health()).toMatchObject({ ok: false });
    writeFileSync(`${path}.lock`, String(process.pid));
    await s.close();
  });

  test("a lock file merely deleted is put back, and writes go on", async () => {
    const path = join(tempDir(), "auth_server.json");
    const log = memoryLogger();
    const s = JsonFileStore.open(path, { log });
    await s.putClient(client("a"));
    Bun.spawnSync(["rm", `${path}.lock`]);
    await s.putClient(client("b"));
    expect(readFileSync(`${path}.lock`, "utf8")).toBe(String(process.pid));
    expect(log.lines.some((l) => l.includes("lock file was missing"))).toBe(true);
    await s.close();
  });
});

describe("inline state (MCP_AUTH_SERVER_CONFIG)", () => {
  test("loads, accepts changes in memory and warns once that they are not saved", async () => {
    let warnings = 0;
    const s = inlineStore('{"clients": {}, "refresh_tokens": {}}', () => warnings++);
    await s.putClient(client("a"));
    await s.putClient(client("b"));
    expect(await s.getClient("a")).toBeDefined();
    expect(warnings).toBe(1);
    expect(() => inlineStore("{nope", () => {})).toThrow("MCP_AUTH_SERVER_CONFIG is not valid Gatehouse state");
  });

  test("mcp serve's state inline is converted in memory", async () => {
    const c = mcpServeClient(["https://claude.ai/api/mcp/auth_callback"]);
    const rt = mcpServeRefreshToken(c.client_id, "alice", [], Math.floor(Date.now() / 1000) + 60);
    const said: string[] = [];
    const s = inlineStore(mcpServeStateFile(mcpServeState([c], [rt])), () => {}, {
      context: { now: Date.now(), resource: "https://mcp.example.com/mcp", injectedRoles: [], scopes: [] },
      converted: (r) => said.push(r),
    });
    expect(await s.getRefreshToken(sha256Hex(rt.token))).toBeDefined();
    expect(said).toEqual(["1 client and 1 refresh token"]);
  });
});
