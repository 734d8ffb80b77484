// The Store contract as one suite: every store implementation runs it (memory, JSON file; Redis when configured).

import { describe, expect, test } from "bun:test";
import type { ClientRecord, GrantRecord, Store } from "../../src/store/types.ts";

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
  created_at: 1000,
  expires_at: 10_000_000,
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
        expect(await s.deleteClient("a", 5)).toBe(true);
        expect(await s.deleteClient("a", 5)).toBe(false);
        expect(await s.getClient("a")).toBeUndefined();
      }),
    );

    test(
      "deleting a client revokes its grants, their refresh tokens and its consents",
      withStore(async (s) => {
        await s.putClient(client("c"));
        await s.putGrant(grant("g1", "c"));
        await s.putRefreshToken("h1", { grant_id: "g1", created_at: 1, expires_at: 10_000_000 });
        await s.putConsent({ subject: "alice", client_id: "c", scopes: ["mcp"], granted_at: 1 });
        await s.deleteClient("c", 42);
        expect((await s.getGrant("g1"))?.revoked_at).toBe(42);
        expect(await s.getRefreshToken("h1")).toBeUndefined();
        expect(await s.getConsent("alice", "c")).toBeUndefined();
      }),
    );

    test(
      "consents are per (subject, client)",
      withStore(async (s) => {
        await s.putConsent({ subject: "alice", client_id: "c", scopes: ["mcp"], granted_at: 1 });
        expect((await s.getConsent("alice", "c"))?.scopes).toEqual(["mcp"]);
        expect(await s.getConsent("bob", "c")).toBeUndefined();
        expect(await s.getConsent("alice", "d")).toBeUndefined();
      }),
    );

    test(
      "revokeGrant marks the grant and deletes every refresh token of it",
      withStore(async (s) => {
        await s.putGrant(grant("g", "c"));
        await s.putRefreshToken("r1", { grant_id: "g", created_at: 1, expires_at: 10_000_000 });
        await s.putRefreshToken("r2", { grant_id: "g", created_at: 2, expires_at: 10_000_000 });
        await s.putRefreshToken("other", { grant_id: "g2", created_at: 2, expires_at: 10_000_000 });
        await s.revokeGrant("g", 7, "replay");
        expect(await s.getGrant("g")).toMatchObject({ revoked_at: 7, revoked_reason: "replay" });
        expect(await s.getRefreshToken("r1")).toBeUndefined();
        expect(await s.getRefreshToken("r2")).toBeUndefined();
        expect(await s.getRefreshToken("other")).toBeDefined();
        expect((await s.grantsOfClient("c")).map((g) => g.id)).toEqual(["g"]);
      }),
    );

    test(
      "rotateRefreshToken: exactly one of many concurrent rotations wins",
      withStore(async (s) => {
        await s.putRefreshToken("old", { grant_id: "g", created_at: 1, expires_at: 10_000_000 });
        const results = await Promise.all(
          Array.from({ length: 10 }, (_, i) =>
            s.rotateRefreshToken("old", `new${i}`, { grant_id: "g", created_at: 2, expires_at: 10_000_000 }, 100 + i),
          ),
        );
        expect(results.filter((r) => r.status === "rotated").length).toBe(1);
        expect(results.filter((r) => r.status === "already-rotated").length).toBe(9);
        expect((await s.getRefreshToken("old"))?.rotated_at).toBeDefined();
        expect(await s.rotateRefreshToken("missing", "x", { grant_id: "g", created_at: 1, expires_at: 2 }, 1)).toEqual({
          status: "missing",
        });
      }),
    );

    test(
      "consumeCode is one-time; a replay returns the record and the grant it produced",
      withStore(async (s) => {
        const code = {
          client_id: "c",
          redirect_uri: "https://app.example/cb",
          code_challenge: "x",
          scopes: ["mcp"],
          resource: "r",
          subject: "alice",
          groups: [],
          roles: [],
          expires_at: 10_000,
        };
        await s.putCode("h", code);
        const [a, b] = await Promise.all([s.consumeCode("h", "g1"), s.consumeCode("h", "g2")]);
        expect(a?.replay).toBe(false);
        expect(b?.replay).toBe(true);
        expect(b?.record.grant_id).toBe("g1");
        expect(await s.consumeCode("nope", "g")).toBeUndefined();
      }),
    );

    test(
      "keys and revoked access tokens",
      withStore(async (s) => {
        const key = {
          kid: "k1",
          alg: "ES256" as const,
          private_jwk: { d: "x" },
          public_jwk: { x: "y" },
          created_at: 1,
        };
        await s.putKeys([key]);
        expect(await s.getKeys()).toEqual([key]);
        await s.revokeAccessToken("jti-1", 5000);
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
          created_at: 1,
          expires_at: 10_000_000,
        });
        expect((await s.getSession("s1"))?.subject).toBe("alice");
        expect((await s.listSessions()).length).toBe(1);
        expect(await s.revokeSession("s1", 5)).toBe(true);
        expect(await s.revokeSession("s1", 6)).toBe(false);
        expect((await s.getSession("s1"))?.revoked_at).toBe(5);
        expect(await s.revokeSession("nope", 5)).toBe(false);
      }),
    );

    test(
      "secrets by name",
      withStore(async (s) => {
        expect(await s.getSecret("session-key")).toBeUndefined();
        await s.putSecret("session-key", "abc");
        expect(await s.getSecret("session-key")).toBe("abc");
      }),
    );

    test(
      "sweep forgets what expired and keeps the rest",
      withStore(async (s) => {
        await s.putGrant(grant("old", "c", { expires_at: 50 }));
        await s.putGrant(grant("live", "c", { expires_at: 500 }));
        await s.putRefreshToken("r-old", { grant_id: "live", created_at: 1, expires_at: 50 });
        await s.putRefreshToken("r-live", { grant_id: "live", created_at: 1, expires_at: 500 });
        await s.revokeAccessToken("j", 50);
        await s.putKeys([
          { kid: "gone", alg: "ES256", private_jwk: {}, public_jwk: {}, created_at: 1, expires_at: 50 },
        ]);
        await s.sweep(100);
        expect(await s.getGrant("old")).toBeUndefined();
        expect(await s.getGrant("live")).toBeDefined();
        expect(await s.getRefreshToken("r-old")).toBeUndefined();
        expect(await s.getRefreshToken("r-live")).toBeDefined();
        expect(await s.isAccessTokenRevoked("j")).toBe(false);
        expect(await s.getKeys()).toEqual([]);
        expect(await s.stats()).toEqual({ clients: 0, grants: 1, refreshTokens: 1 });
      }),
    );
  });
}
