// Local accounts: argon2id checks, the same answer for unknown users and wrong passwords, and lockout with a growing
// delay (time moved by the test).

import { describe, expect, test } from "bun:test";
import { LocalAccounts } from "../../src/login/local.ts";
import { bunPasswords } from "../../src/platform/bun.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import { FakeClock } from "../helpers/clock.ts";

async function accounts(clock: FakeClock) {
  return new LocalAccounts(
    "local",
    "a local account",
    {
      alice: { passwordHash: await bunPasswords.hash("correct horse"), groups: ["admins"], email: "alice@example.com" },
    },
    bunPasswords,
    { maxAttempts: 3, baseLockMs: 30_000, maxLockMs: 120_000 },
    () => clock.now(),
    new MemoryStore(),
  );
}

describe("local accounts", () => {
  test("the right password signs in, with the configured groups; usernames are case-insensitive", async () => {
    const a = await accounts(new FakeClock());
    const r = await a.verify("Alice", "correct horse");
    expect(r).toEqual({
      ok: true,
      user: { subject: "alice", emailVerified: true, email: "alice@example.com", groups: ["admins"] },
    });
  });

  test("a wrong password and an unknown user get the same answer", async () => {
    const a = await accounts(new FakeClock());
    expect(await a.verify("alice", "nope")).toEqual({ ok: false, reason: "invalid" });
    expect(await a.verify("nobody", "nope")).toEqual({ ok: false, reason: "invalid" });
  });

  test("repeated failures lock the username with a growing delay, unknown usernames too", async () => {
    const clock = new FakeClock();
    const a = await accounts(clock);
    for (const user of ["alice", "ghost"]) {
      expect((await a.verify(user, "x")).ok).toBe(false);
      expect((await a.verify(user, "x")).ok).toBe(false);
      expect(await a.verify(user, "x")).toEqual({ ok: false, reason: "locked", retryAfterMs: 30_000 });
    }
    // locked: even the right password is refused
    expect(await a.verify("alice", "correct horse")).toMatchObject({ ok: false, reason: "locked" });
    clock.advance(30_001);
    expect(await a.verify("alice", "x")).toEqual({ ok: false, reason: "locked", retryAfterMs: 60_000 });
    clock.advance(60_001);
    expect((await a.verify("alice", "correct horse")).ok).toBe(true);
    // a success clears the count
    expect(await a.verify("alice", "x")).toEqual({ ok: false, reason: "invalid" });
  });
});
