// The Store contract as one suite: every store implementation runs it (memory, JSON file, Redis). Times are real
// (around now), as a store sharing expiry with a server (Redis) needs them to be.

import { describe, expect, test } from "bun:test";
import type { ClientRecord, CodeRecord, GrantRecord, KeyRecord, Store } from "../../src/store/types.ts";

/** A base time: now, so that records "valid for a day" are valid for real too. */
export const T = Math.floor(Date.now() / 1000) * 1000;
const DAY = 86_400_000;

export const client = (id: string, extra: Partial<ClientRecord> = {}): ClientRecord => ({
  client_id: id,
  client_id_issued_at: 1,
  redirect_uris: ["https://app.example/cb"],
  token_endpoint_auth_method: "none",
  grant_types: ["authorization_code", "refresh_token"],
  response_types: ["code"],
  ...extra,
});

export const grant = (id: string, clientId: string, extra: Partial<GrantRecord> = {}): GrantRecord => ({
  id,
  client_id: clientId,
  subject: "alice",
  groups: [],
  roles: [],
  scopes: ["mcp"],
  resource: "https://gh.example/mcp",
  created_at: T,
  expires_at: T + 30 * DAY,
  ...extra,
});

export const refreshRecord = (grantId: string, extra: { created_at?: number; expires_at?: number } = {}) => ({
  grant_id: grantId,
  created_at: T,
  expires_at: T + 30 * DAY,
  ...extra,
});

export const codeRecord = (extra: Partial<CodeRecord> = {}): CodeRecord => ({
  client_id: "c",
  redirect_uri: "https://app.example/cb",
  code_challenge: "x",
  scopes: ["mcp"],
  resource: "r",
  subject: "alice",
  groups: [],
  roles: [],
  expires_at: T + 60_000,
  ...extra,
});

export const keyRecord = (kid: string, extra: Partial<KeyRecord> = {}): KeyRecord => ({
  kid,
  alg: "ES256",
  private_jwk: { d: `d-${kid}` },
  public_jwk: { x: `x-${kid}`, kid },
  created_at: T,
  ...extra,
});

export function storeContract(
  name: string,
  make: () => Promise<Store>,
  cleanup: (s: Store) => Promise<void> = (s) => s.close(),
) {
  describe(`Store contract: ${name}`, () => {
    const withStore = (fn: (s: Store) => Promise<void>) => async () => {
      const s = await make();
      try {
        await fn(s);
      } finally {
        await cleanup(s);
      }
    };

    test(
      "clients: put, get, list, delete",
      withStore(async (s) => {
        await s.putClient(client("a"));
        await s.putClient(client("b", { client_name: "B" }));
        expect((await s.getClient("b"))?.client_name).toBe("B");
        expect((await s.listClients()).map((c) => c.client_id).sort()).toEqual(["a", "b"]);
        expect(await s.deleteClient("a", T + 5)).toBe(true);
        expect(await s.deleteClient("a", T + 5)).toBe(false);
        expect(await s.getClient("a")).toBeUndefined();
        expect(s.health()).toEqual({ ok: true });
      }),
    );

    test(
      "records come back as they were stored (empty lists stay lists)",
      withStore(async (s) => {
        const g = grant("g", "c", { groups: [], roles: ["r"], email: "a@example.com" });
        await s.putGrant(g);
        expect(await s.getGrant("g")).toEqual(g);
        const c = client("x", { contacts: [], scope: "mcp" });
        await s.putClient(c);
        expect(await s.getClient("x")).toEqual(c);
      }),
    );

    test(
      "deleting a client revokes its grants, their refresh tokens and its consents",
      withStore(async (s) => {
        await s.putClient(client("c"));
        await s.putGrant(grant("g1", "c"));
        await s.putRefreshToken("h1", refreshRecord("g1"));
        await s.putConsent({ subject: "alice", client_id: "c", scopes: ["mcp"], granted_at: T });
        await s.deleteClient("c", T + 42);
        expect((await s.getGrant("g1"))?.revoked_at).toBe(T + 42);
        expect(await s.getRefreshToken("h1")).toBeUndefined();
        expect(await s.getConsent("alice", "c")).toBeUndefined();
      }),
    );

    test(
      "consents are per (subject, client)",
      withStore(async (s) => {
        await s.putConsent({ subject: "alice", client_id: "c", scopes: ["mcp"], granted_at: T });
        expect((await s.getConsent("alice", "c"))?.scopes).toEqual(["mcp"]);
        expect(await s.getConsent("bob", "c")).toBeUndefined();
        expect(await s.getConsent("alice", "d")).toBeUndefined();
      }),
    );

    test(
      "a grant and its first refresh token are stored together",
      withStore(async (s) => {
        await s.putGrant(grant("g", "c"), { hash: "first", record: refreshRecord("g") });
        expect((await s.getGrant("g"))?.client_id).toBe("c");
        expect((await s.getRefreshToken("first"))?.grant_id).toBe("g");
        await s.revokeGrant("g", T + 1, "test");
        expect(await s.getRefreshToken("first")).toBeUndefined();
      }),
    );

    test(
      "revokeGrant marks the grant and deletes every refresh token of it",
      withStore(async (s) => {
        await s.putGrant(grant("g", "c"));
        await s.putRefreshToken("r1", refreshRecord("g"));
        await s.putRefreshToken("r2", refreshRecord("g", { created_at: T + 2 }));
        await s.putRefreshToken("other", refreshRecord("g2"));
        await s.revokeGrant("g", T + 7, "replay");
        expect(await s.getGrant("g")).toMatchObject({ revoked_at: T + 7, revoked_reason: "replay" });
        expect(await s.getRefreshToken("r1")).toBeUndefined();
        expect(await s.getRefreshToken("r2")).toBeUndefined();
        expect(await s.getRefreshToken("other")).toBeDefined();
        expect((await s.grantsOfClient("c")).map((g) => g.id)).toEqual(["g"]);
        // A second revocation keeps the first time and reason.
        await s.revokeGrant("g", T + 9, "again");
        expect(await s.getGrant("g")).toMatchObject({ revoked_at: T + 7, revoked_reason: "replay" });
      }),
    );

    test(
      "rotateRefreshToken: exactly one of many concurrent rotations wins; the others see its answer",
      withStore(async (s) => {
        await s.putRefreshToken("old", refreshRecord("g"));
        const results = await Promise.all(
          Array.from({ length: 10 }, (_, i) =>
            s.rotateRefreshToken("old", `new${i}`, refreshRecord("g", { created_at: T + 2 }), T + 100 + i, {
              sealed: `answer-${i}`,
              until: T + 60_000,
            }),
          ),
        );
        const won = results.findIndex((r) => r.status === "rotated");
        expect(results.filter((r) => r.status === "rotated").length).toBe(1);
        const lost = results.filter((r) => r.status === "already-rotated");
        expect(lost.length).toBe(9);
        for (const r of lost)
          expect(r).toEqual({ status: "already-rotated", rotatedAt: T + 100 + won, answer: `answer-${won}` });
        expect((await s.getRefreshToken("old"))?.rotated_at).toBe(T + 100 + won);
        expect(await s.getRefreshToken(`new${won}`)).toBeDefined();
        expect(await s.getRefreshToken(`new${(won + 1) % 10}`)).toBeUndefined();
        expect(await s.rotateRefreshToken("missing", "x", refreshRecord("g"), T)).toEqual({ status: "missing" });
      }),
    );

    test(
      "a rotation's answer is kept only until it says",
      withStore(async (s) => {
        await s.putRefreshToken("old", refreshRecord("g"));
        await s.rotateRefreshToken("old", "new", refreshRecord("g"), T + 1, { sealed: "a", until: T + 10 });
        expect(await s.rotationAnswer("old", T + 5)).toBe("a");
        expect(await s.rotationAnswer("old", T + 11)).toBeUndefined();
        expect(await s.rotationAnswer("never-rotated", T + 5)).toBeUndefined();
        expect(await s.rotateRefreshToken("old", "x", refreshRecord("g"), T + 20)).toEqual({
          status: "already-rotated",
          rotatedAt: T + 1,
        });
      }),
    );

    test(
      "consumeCode is one-time; a replay returns the record and the grant it produced",
      withStore(async (s) => {
        await s.putCode("h", codeRecord());
        const [a, b] = await Promise.all([s.consumeCode("h", "g1"), s.consumeCode("h", "g2")]);
        expect(a?.replay).toBe(false);
        expect(b?.replay).toBe(true);
        expect(b?.record.grant_id).toBe("g1");
        expect(a?.record.subject).toBe("alice");
        expect(await s.consumeCode("nope", "g")).toBeUndefined();
      }),
    );

    test(
      "releaseCode makes a consumed code redeemable once more, only by the grant that consumed it",
      withStore(async (s) => {
        await s.putCode("h", codeRecord());
        expect((await s.consumeCode("h", "g1"))?.replay).toBe(false);
        await s.releaseCode("h", "someone-else");
        await s.releaseCode("h", "g1");
        expect((await s.consumeCode("h", "g3"))?.replay).toBe(false);
        expect((await s.consumeCode("h", "g4"))?.record.grant_id).toBe("g3");
      }),
    );

    test(
      "a replayed code stays spent: releaseCode does not give it back",
      withStore(async (s) => {
        await s.putCode("h", codeRecord());
        expect((await s.consumeCode("h", "g1"))?.replay).toBe(false);
        expect((await s.consumeCode("h", "g2"))?.replay).toBe(true);
        await s.releaseCode("h", "g1");
        const again = await s.consumeCode("h", "g3");
        expect(again?.replay).toBe(true);
        expect(again?.record.grant_id).toBe("g1");
      }),
    );

    test(
      "putGrant from a code: stored while the code is bound to it; never once the code was replayed (RFC 6749 §4.1.2)",
      withStore(async (s) => {
        await s.putCode("ok", codeRecord());
        expect((await s.consumeCode("ok", "g-ok"))?.replay).toBe(false);
        expect(await s.putGrant(grant("g-ok", "c"), { hash: "rt-ok", record: refreshRecord("g-ok") }, "ok")).toBe(true);
        expect((await s.getGrant("g-ok"))?.revoked_at).toBeUndefined();

        // The replay comes while the first redemption has not stored its grant yet: revoking it finds nothing...
        await s.putCode("h", codeRecord());
        expect((await s.consumeCode("h", "g1"))?.replay).toBe(false);
        const replay = await s.consumeCode("h", "g2");
        expect(replay).toMatchObject({ replay: true, record: { grant_id: "g1" } });
        await s.revokeGrant("g1", T + 1, "authorization code replayed");
        // ...and yet the revocation holds: the grant of the replayed code is refused, with its refresh token.
        expect(await s.putGrant(grant("g1", "c"), { hash: "rt1", record: refreshRecord("g1") }, "h")).toBe(false);
        expect(await s.getGrant("g1")).toBeUndefined();
        expect(await s.getRefreshToken("rt1")).toBeUndefined();
        expect(await s.grantsOfClient("c")).toEqual([grant("g-ok", "c")]);
        expect((await s.stats()).refreshTokens).toBe(1);

        // Nor for a code bound to another grant, or unknown (expired, swept).
        await s.putCode("other", codeRecord());
        await s.consumeCode("other", "g-mine");
        expect(await s.putGrant(grant("g-theirs", "c"), undefined, "other")).toBe(false);
        expect(await s.putGrant(grant("g-none", "c"), undefined, "no-such-code")).toBe(false);
        expect(await s.getGrant("g-theirs")).toBeUndefined();
        expect(await s.getGrant("g-none")).toBeUndefined();
        // Without a code (an import): stored as given.
        expect(await s.putGrant(grant("g-plain", "c"))).toBe(true);
      }),
    );

    test(
      "concurrent redemption and replay of a code: either the grant is stored and then revoked, or never stored",
      withStore(async (s) => {
        await s.putCode("h", codeRecord());
        expect((await s.consumeCode("h", "g1"))?.replay).toBe(false);
        // The token endpoint's two paths, at once: the first stores its grant, the replay revokes it.
        const [stored] = await Promise.all([
          s.putGrant(grant("g1", "c"), { hash: "rt1", record: refreshRecord("g1") }, "h"),
          (async () => {
            const r = await s.consumeCode("h", "g2");
            if (r?.replay && r.record.grant_id) await s.revokeGrant(r.record.grant_id, T + 1, "replayed");
          })(),
        ]);
        const g = await s.getGrant("g1");
        if (stored) expect(g?.revoked_at).toBe(T + 1);
        else expect(g).toBeUndefined();
        expect(await s.getRefreshToken("rt1")).toBeUndefined();
      }),
    );

    test(
      "a code remembers whether the authorization request omitted redirect_uri",
      withStore(async (s) => {
        await s.putCode("omitted", codeRecord({ redirect_uri_omitted: true }));
        await s.putCode("sent", codeRecord());
        expect((await s.consumeCode("omitted", "g1"))?.record.redirect_uri_omitted).toBe(true);
        expect((await s.consumeCode("sent", "g2"))?.record.redirect_uri_omitted).toBeUndefined();
      }),
    );

    test(
      "signing keys: the first, a rotation retiring the active one, a concurrent rotation refused",
      withStore(async (s) => {
        expect(await s.getKeys()).toEqual([]);
        expect(await s.addSigningKey(keyRecord("k1"), T, T + 3600_000, "someone")).toBe(false);
        expect(await s.addSigningKey(keyRecord("k1"), T, T + 3600_000, null)).toBe(true);
        expect(await s.getKeys()).toEqual([keyRecord("k1")]);
        const [a, b] = await Promise.all([
          s.addSigningKey(keyRecord("k2", { created_at: T + 5 }), T + 5, T + 100, "k1"),
          s.addSigningKey(keyRecord("k3", { created_at: T + 6 }), T + 6, T + 200, "k1"),
        ]);
        expect([a, b].sort()).toEqual([false, true]);
        const keys = await s.getKeys();
        expect(keys.length).toBe(2);
        const retired = keys.find((k) => k.kid === "k1");
        expect(retired?.retired_at).toBeDefined();
        expect(keys.filter((k) => k.retired_at === undefined).length).toBe(1);
      }),
    );

    test(
      "revoked access tokens",
      withStore(async (s) => {
        await s.revokeAccessToken("jti-1", T + 5000);
        expect(await s.isAccessTokenRevoked("jti-1")).toBe(true);
        expect(await s.isAccessTokenRevoked("jti-2")).toBe(false);
      }),
    );

    test(
      "browser sessions: put, get, list, revoke once",
      withStore(async (s) => {
        await s.putSession({
          id: "s1",
          subject: "alice",
          groups: ["g"],
          roles: [],
          method: "corp",
          created_at: T,
          expires_at: T + DAY,
        });
        expect((await s.getSession("s1"))?.subject).toBe("alice");
        expect((await s.getSession("s1"))?.roles).toEqual([]);
        expect((await s.listSessions()).length).toBe(1);
        expect(await s.revokeSession("s1", T + 5)).toBe(true);
        expect(await s.revokeSession("s1", T + 6)).toBe(false);
        expect((await s.getSession("s1"))?.revoked_at).toBe(T + 5);
        expect(await s.revokeSession("nope", T + 5)).toBe(false);
      }),
    );

    test(
      "secrets by name: the first stored wins",
      withStore(async (s) => {
        expect(await s.getSecret("session-key")).toBeUndefined();
        const [a, b] = await Promise.all([s.initSecret("session-key", "abc"), s.initSecret("session-key", "xyz")]);
        expect(a).toBe(b);
        expect(await s.getSecret("session-key")).toBe(a);
        expect(await s.initSecret("session-key", "later")).toBe(a);
      }),
    );

    test(
      "transient records: put, get, take once (of concurrent takers one gets it)",
      withStore(async (s) => {
        const value = { id: "p1", scopes: ["mcp"], user: { subject: "alice", groups: [] }, expiresAt: T + 60_000 };
        await s.putTransient("authorization", "p1", value, T + 60_000);
        expect(await s.getTransient("authorization", "p1")).toEqual(value);
        expect(await s.getTransient("login", "p1")).toBeUndefined();
        const taken = await Promise.all([
          s.takeTransient("authorization", "p1"),
          s.takeTransient("authorization", "p1"),
          s.takeTransient("authorization", "p1"),
        ]);
        expect(taken.filter((t) => t !== undefined)).toEqual([value]);
        expect(await s.getTransient("authorization", "p1")).toBeUndefined();
      }),
    );

    test(
      "sweep forgets what expired and keeps the rest",
      withStore(async (s) => {
        await s.putGrant(grant("old", "c", { expires_at: T + 50 }));
        await s.putGrant(grant("live", "c", { expires_at: T + DAY }));
        await s.putRefreshToken("r-old", refreshRecord("live", { expires_at: T + 50 }));
        await s.putRefreshToken("r-live", refreshRecord("live", { expires_at: T + DAY }));
        await s.putRefreshToken("r-used", refreshRecord("live", { expires_at: T + DAY }));
        await s.rotateRefreshToken("r-used", "r-next", refreshRecord("live", { expires_at: T + DAY }), T - DAY - 1);
        await s.revokeAccessToken("j", T + 50);
        await s.revokeAccessToken("j-live", T + DAY);
        await s.addSigningKey(keyRecord("gone"), T, T + 50, null);
        await s.addSigningKey(keyRecord("kept", { created_at: T + 1 }), T + 1, T + 50, "gone");
        await s.sweep(T + 100);
        expect(await s.getGrant("old")).toBeUndefined();
        expect(await s.getGrant("live")).toBeDefined();
        expect(await s.getRefreshToken("r-old")).toBeUndefined();
        expect(await s.getRefreshToken("r-live")).toBeDefined();
        expect(await s.getRefreshToken("r-used")).toBeUndefined(); // used more than a day ago
        expect(await s.isAccessTokenRevoked("j")).toBe(false);
        expect(await s.isAccessTokenRevoked("j-live")).toBe(true);
        expect((await s.getKeys()).map((k) => k.kid)).toEqual(["kept"]);
        expect(await s.stats()).toEqual({ clients: 0, grants: 1, refreshTokens: 2 });
      }),
    );

    test(
      "export and import: every durable record moves; an import into a non-empty store is refused",
      withStore(async (s) => {
        await s.putClient(client("c"));
        await s.putConsent({ subject: "alice", client_id: "c", scopes: ["mcp"], granted_at: T });
        await s.putGrant(grant("g", "c"), { hash: "rt", record: refreshRecord("g") });
        await s.addSigningKey(keyRecord("k"), T, T + 1000, null);
        await s.revokeAccessToken("j", T + DAY);
        await s.initSecret("session-key", "secret");
        await s.putSession({
          id: "s",
          subject: "alice",
          groups: [],
          roles: [],
          method: "m",
          created_at: T,
          expires_at: T + DAY,
        });
        const snap = await s.exportSnapshot();
        expect(Object.keys(snap.clients)).toEqual(["c"]);
        expect(Object.keys(snap.grants)).toEqual(["g"]);
        expect(Object.keys(snap.refresh_tokens)).toEqual(["rt"]);
        expect(snap.keys.map((k) => k.kid)).toEqual(["k"]);
        expect(Object.keys(snap.revoked_access_tokens)).toEqual(["j"]);
        expect(snap.secrets).toEqual({ "session-key": "secret" });
        expect(Object.values(snap.consents).map((c) => c.subject)).toEqual(["alice"]);
        expect(Object.keys(snap.sessions)).toEqual(["s"]);
        await expect(s.importSnapshot(snap)).rejects.toThrow("already holds");
      }),
    );

    test("an exported snapshot imported into an empty store gives the same records", async () => {
      const a = await make();
      const b = await make();
      try {
        await a.putClient(client("c"));
        await a.putGrant(grant("g", "c"), { hash: "rt", record: refreshRecord("g") });
        await a.addSigningKey(keyRecord("k"), T, T + 1000, null);
        const snap = await a.exportSnapshot();
        await b.importSnapshot(snap);
        expect(await b.getClient("c")).toEqual(client("c"));
        expect(await b.getGrant("g")).toEqual(grant("g", "c"));
        expect((await b.getRefreshToken("rt"))?.grant_id).toBe("g");
        expect((await b.getKeys()).map((k) => k.kid)).toEqual(["k"]);
        await b.revokeGrant("g", T + 1, "x");
        expect(await b.getRefreshToken("rt")).toBeUndefined(); // the indexes came along
      } finally {
        await cleanup(a);
        await cleanup(b);
      }
    });
  });
}
