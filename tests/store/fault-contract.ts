// The fault contract, run against every store: what a write that fails must leave behind (nothing), what a
// restart after any sequence of faults must find (every acknowledged record, and nothing else), and that writes
// resume by themselves once the fault is gone. Each store brings the ways its storage fails (scenarios).

import { describe, expect, test } from "bun:test";
import { type Store, StoreUnavailableError } from "../../src/store/types.ts";
import { client, codeRecord, grant, keyRecord, refreshRecord, T } from "./contract.ts";

export interface FaultScenario {
  name: string;
  /** From now on, writes fail this way. */
  inject(): void;
  /** The storage works again. */
  heal(): void | Promise<void>;
}

export interface FaultHarness {
  open(): Promise<Store>;
  /** The process dies (no clean close) and a new one opens the same state. */
  crashAndReopen(s: Store): Promise<Store>;
  close(s: Store): Promise<void>;
  scenarios: FaultScenario[];
  /** Reads are answered while writes fail (the JSON file: from memory; Redis down: no). */
  readsDuringFaults: boolean;
}

async function fails(p: Promise<unknown>): Promise<void> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(StoreUnavailableError);
}

export function faultContract(name: string, h: FaultHarness) {
  for (const sc of h.scenarios) {
    describe(`Store fault contract: ${name}, ${sc.name}`, () => {
      const run = (fn: (s: Store, reopen: (s: Store) => Promise<Store>) => Promise<Store>) => async () => {
        let s = await h.open();
        try {
          s = await fn(s, (x) => h.crashAndReopen(x));
        } finally {
          await sc.heal();
          await h.close(s);
        }
      };

      test(
        "a registration that failed does not exist, before or after a restart; writes resume once healed",
        run(async (s, reopen) => {
          await s.putClient(client("before"));
          sc.inject();
          await fails(s.putClient(client("failed")));
          if (h.readsDuringFaults) {
            expect(await s.getClient("failed")).toBeUndefined();
            expect(await s.getClient("before")).toBeDefined();
            expect(s.health().ok).toBe(false);
          }
          await sc.heal();
          expect(await s.getClient("failed")).toBeUndefined();
          await s.putClient(client("after"));
          expect(s.health()).toEqual({ ok: true });
          const r = await reopen(s);
          expect(await r.getClient("before")).toBeDefined();
          expect(await r.getClient("after")).toBeDefined();
          expect(await r.getClient("failed")).toBeUndefined();
          return r;
        }),
      );

      test(
        "a refresh token that failed to rotate still works; its successor does not exist",
        run(async (s, reopen) => {
          await s.putGrant(grant("g", "c"), { hash: "old", record: refreshRecord("g") });
          sc.inject();
          await fails(
            s.rotateRefreshToken("old", "lost", refreshRecord("g"), T + 1, { sealed: "a", until: T + 60_000 }),
          );
          await sc.heal();
          expect((await s.getRefreshToken("old"))?.rotated_at).toBeUndefined();
          expect(await s.getRefreshToken("lost")).toBeUndefined();
          expect((await s.rotateRefreshToken("old", "next", refreshRecord("g"), T + 2)).status).toBe("rotated");
          const r = await reopen(s);
          expect((await r.getRefreshToken("old"))?.rotated_at).toBe(T + 2);
          expect(await r.getRefreshToken("next")).toBeDefined();
          expect(await r.getRefreshToken("lost")).toBeUndefined();
          return r;
        }),
      );

      test(
        "a code whose grant could not be stored can still be redeemed, once",
        run(async (s) => {
          await s.putCode("code", codeRecord());
          sc.inject();
          // The token endpoint's steps: consume, store the grant with its refresh token, release on failure.
          let consumed: Awaited<ReturnType<Store["consumeCode"]>>;
          try {
            consumed = await s.consumeCode("code", "g1");
            await s.putGrant(grant("g1", "c"), { hash: "rt1", record: refreshRecord("g1") });
            throw new Error("the grant was stored although the storage is failing");
          } catch (e) {
            expect(e).toBeInstanceOf(StoreUnavailableError);
            if (consumed) await s.releaseCode("code", "g1").catch(() => {});
          }
          await sc.heal();
          expect(await s.getGrant("g1")).toBeUndefined();
          expect(await s.getRefreshToken("rt1")).toBeUndefined();
          expect((await s.consumeCode("code", "g2"))?.replay).toBe(false);
          expect((await s.consumeCode("code", "g3"))?.replay).toBe(true);
          return s;
        }),
      );

      test(
        "a revocation that failed leaves the grant and its tokens working",
        run(async (s, reopen) => {
          await s.putGrant(grant("g", "c"), { hash: "rt", record: refreshRecord("g") });
          sc.inject();
          await fails(s.revokeGrant("g", T + 1, "test"));
          await fails(s.revokeAccessToken("jti", T + 60_000));
          await sc.heal();
          expect((await s.getGrant("g"))?.revoked_at).toBeUndefined();
          expect(await s.getRefreshToken("rt")).toBeDefined();
          expect(await s.isAccessTokenRevoked("jti")).toBe(false);
          const r = await reopen(s);
          expect((await r.getGrant("g"))?.revoked_at).toBeUndefined();
          expect(await r.isAccessTokenRevoked("jti")).toBe(false);
          return r;
        }),
      );

      test(
        "a client deletion that failed leaves the client, its consents and its grants",
        run(async (s) => {
          await s.putClient(client("c"));
          await s.putConsent({ subject: "alice", client_id: "c", scopes: ["mcp"], granted_at: T });
          await s.putGrant(grant("g", "c"), { hash: "rt", record: refreshRecord("g") });
          sc.inject();
          await fails(s.deleteClient("c", T + 1));
          await sc.heal();
          expect(await s.getClient("c")).toBeDefined();
          expect(await s.getConsent("alice", "c")).toBeDefined();
          expect((await s.getGrant("g"))?.revoked_at).toBeUndefined();
          expect(await s.getRefreshToken("rt")).toBeDefined();
          return s;
        }),
      );

      test(
        "a key rotation that failed changes no key",
        run(async (s, reopen) => {
          await s.addSigningKey(keyRecord("k1"), T, T + 1000, null);
          sc.inject();
          await fails(s.addSigningKey(keyRecord("k2", { created_at: T + 1 }), T + 1, T + 1000, "k1"));
          await sc.heal();
          expect(await s.getKeys()).toEqual([keyRecord("k1")]);
          const r = await reopen(s);
          expect(await r.getKeys()).toEqual([keyRecord("k1")]);
          return r;
        }),
      );

      test(
        "writes of the same moment all fail together and none remains; acknowledged ones around them survive a crash",
        run(async (s, reopen) => {
          const acked: string[] = [];
          for (let i = 0; i < 5; i++) {
            await s.putClient(client(`ok${i}`));
            acked.push(`ok${i}`);
          }
          sc.inject();
          const results = await Promise.allSettled(
            Array.from({ length: 8 }, (_, i) => s.putClient(client(`lost${i}`))),
          );
          expect(results.every((r) => r.status === "rejected")).toBe(true);
          await sc.heal();
          await Promise.all(Array.from({ length: 8 }, (_, i) => s.putClient(client(`late${i}`))));
          for (let i = 0; i < 8; i++) acked.push(`late${i}`);
          const r = await reopen(s);
          const ids = (await r.listClients()).map((c) => c.client_id).sort();
          expect(ids).toEqual(acked.sort());
          return r;
        }),
      );

      test(
        "a crash while the storage is still failing: the restart finds every acknowledged record and nothing else",
        run(async (s, reopen) => {
          await s.putClient(client("acked"));
          await s.putGrant(grant("g", "c"), { hash: "rt", record: refreshRecord("g") });
          sc.inject();
          await fails(s.putClient(client("failed")));
          await fails(s.rotateRefreshToken("rt", "rt2", refreshRecord("g"), T + 1));
          await sc.heal();
          const r = await reopen(s);
          expect(await r.getClient("acked")).toBeDefined();
          expect(await r.getClient("failed")).toBeUndefined();
          expect((await r.getRefreshToken("rt"))?.rotated_at).toBeUndefined();
          expect(await r.getRefreshToken("rt2")).toBeUndefined();
          await r.putClient(client("next"));
          return r;
        }),
      );
    });
  }
}
