// Browser sessions at the authorization server: once signed in, a user's browser carries an encrypted and
// authenticated cookie (a JWE, A256GCM) naming a session kept in the store, so a second client can be authorized
// without another round trip to the identity provider. Sessions expire (oauthAs.sessionLifetime), end at /logout
// and can be revoked (`gatehouse sessions revoke`).

import { createHash } from "node:crypto";
import { EncryptJWT, jwtDecrypt } from "jose";
import { randomId } from "../crypto.ts";
import type { Clock } from "../platform/types.ts";
import type { SessionRecord, Store } from "../store/types.ts";

export class BrowserSessions {
  private constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly lifetimeMs: number,
    private readonly key: Uint8Array,
  ) {}

  /** The cookie key: from oauthAs.sessionSecret, or generated once and kept in the state. */
  static async open(store: Store, clock: Clock, lifetimeMs: number, secret?: string): Promise<BrowserSessions> {
    let material = secret;
    if (!material) {
      // Replicas starting together on a shared store agree on one key: the first stored wins.
      material = (await store.getSecret("session-key")) ?? (await store.initSecret("session-key", randomId(32)));
    }
    const key = new Uint8Array(createHash("sha256").update(`gatehouse session cookie\u0000${material}`).digest());
    return new BrowserSessions(store, clock, lifetimeMs, key);
  }

  async create(
    user: Omit<SessionRecord, "id" | "created_at" | "expires_at">,
  ): Promise<{ cookie: string; session: SessionRecord }> {
    const now = this.clock.now();
    const session: SessionRecord = { ...user, id: randomId(18), created_at: now, expires_at: now + this.lifetimeMs };
    await this.store.putSession(session);
    const cookie = await new EncryptJWT({ sid: session.id })
      .setProtectedHeader({ alg: "dir", enc: "A256GCM" })
      .setIssuedAt(Math.floor(now / 1000))
      .setExpirationTime(Math.floor(session.expires_at / 1000))
      .encrypt(this.key);
    return { cookie, session };
  }

  /** The live session a cookie names, or undefined (tampered, expired, revoked, unknown). */
  async read(cookie: string | undefined): Promise<SessionRecord | undefined> {
    if (!cookie) return undefined;
    let sid: unknown;
    try {
      ({
        payload: { sid },
      } = await jwtDecrypt(cookie, this.key, { currentDate: new Date(this.clock.now()) }));
    } catch {
      return undefined;
    }
    if (typeof sid !== "string") return undefined;
    const s = await this.store.getSession(sid);
    if (!s || s.revoked_at !== undefined || s.expires_at <= this.clock.now()) return undefined;
    return s;
  }

  revoke(id: string): Promise<boolean> {
    return this.store.revokeSession(id, this.clock.now());
  }

  get maxAgeSeconds(): number {
    return Math.floor(this.lifetimeMs / 1000);
  }
}
