// Runs the Store contract against every store, then what only the JSON file store promises: durability across
// restarts and crashes, refusal of damaged files, file modes and the single-process lock.

import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { inlineStore, JsonFileStore } from "../../src/store/json-file.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import { tempDir } from "../helpers/temp.ts";
import { client, grant, storeContract } from "./contract.ts";

storeContract("memory", async () => new MemoryStore());
storeContract("json-file", async () => JsonFileStore.open(join(tempDir(), "auth_server.json")));

describe("JsonFileStore", () => {
  test("a reopened store has everything that was acknowledged; files are mode 0600", async () => {
    const path = join(tempDir(), "auth_server.json");
    const a = JsonFileStore.open(path);
    await a.putClient(client("c1"));
    await a.putGrant(grant("g1", "c1"));
    await a.putRefreshToken("r1", { grant_id: "g1", created_at: 1, expires_at: 10_000_000 });
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
    for (let i = 0; i < 50; i++)
      await a.putRefreshToken(`r${i}`, { grant_id: "g", created_at: i, expires_at: 10_000_000 });
    await a.rotateRefreshToken("r1", "r1b", { grant_id: "g", created_at: 60, expires_at: 10_000_000 }, 60);
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

  test("compaction folds the journal into the snapshot", async () => {
    const path = join(tempDir(), "auth_server.json");
    const a = JsonFileStore.open(path);
    await a.putClient(client("c"));
    a.compact();
    expect(readFileSync(`${path}.journal`, "utf8")).toBe("");
    expect(JSON.parse(readFileSync(path, "utf8")).clients.c.client_id).toBe("c");
    await a.close();
  });

  test("the state of mcp serve (clients, refresh_tokens) loads; its refresh tokens are dropped", async () => {
    const path = join(tempDir(), "auth_server.json");
    writeFileSync(
      path,
      JSON.stringify({
        clients: { old: { redirect_uris: ["https://claude.ai/api/mcp/auth_callback"] } },
        refresh_tokens: { abc: { sub: "x" } },
      }),
    );
    const s = JsonFileStore.open(path);
    expect((await s.getClient("old"))?.token_endpoint_auth_method).toBe("none");
    expect((await s.stats()).refreshTokens).toBe(0);
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
});
