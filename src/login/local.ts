// Local accounts: users with argon2id password hashes in the configuration (`gatehouse hash-password` prints one).
// Unknown usernames cost the same as known ones (a dummy hash is checked), and failures lock the username out with a
// growing delay, so the login form reveals neither which accounts exist nor lets passwords be guessed quickly. The
// failures are kept in the store, so that replicas lock a username out together.

import type { LocalUser, LockoutPolicy } from "../config/types.ts";
import { randomId } from "../crypto.ts";
import type { PasswordHasher } from "../platform/types.ts";
import type { Store } from "../store/types.ts";
import type { UpstreamUser } from "./types.ts";

export type { LocalUser, LockoutPolicy };

export type LocalOutcome =
  | { ok: true; user: UpstreamUser }
  | { ok: false; reason: "invalid" | "locked"; retryAfterMs?: number };

/** A username's failures are forgotten this long after the last one. */
const FAILURE_MEMORY_MS = 24 * 3_600_000;

export class LocalAccounts {
  private dummy: Promise<string>;

  constructor(
    readonly id: string,
    readonly label: string,
    private readonly users: Record<string, LocalUser>,
    private readonly passwords: PasswordHasher,
    private readonly policy: LockoutPolicy,
    private readonly now: () => number,
    private readonly store: Store,
  ) {
    this.dummy = passwords.hash(randomId(16));
  }

  async verify(username: string, password: string): Promise<LocalOutcome> {
    const key = username.trim().toLowerCase();
    const now = this.now();
    const record = `${this.id}\u0000${key}`;
    const f = await this.store.getTransient<{ count: number; until: number }>("lockout", record);
    if (f && f.until > now) return { ok: false, reason: "locked", retryAfterMs: f.until - now };
    const user = Object.hasOwn(this.users, key) ? this.users[key] : undefined;
    // The same work whether or not the user exists.
    const ok = await this.passwords.verify(password, user?.passwordHash ?? (await this.dummy));
    if (!ok || !user) {
      const count = (f?.count ?? 0) + 1;
      const over = count - this.policy.maxAttempts;
      const until = over >= 0 ? now + Math.min(this.policy.maxLockMs, this.policy.baseLockMs * 2 ** over) : 0;
      await this.store.putTransient("lockout", record, { count, until }, Math.max(until, now) + FAILURE_MEMORY_MS);
      return until > now
        ? { ok: false, reason: "locked", retryAfterMs: until - now }
        : { ok: false, reason: "invalid" };
    }
    if (f) await this.store.takeTransient("lockout", record);
    const u: UpstreamUser = { subject: key, emailVerified: user.email !== undefined, groups: user.groups };
    if (user.email) u.email = user.email;
    if (user.name) u.name = user.name;
    return { ok: true, user: u };
  }
}
