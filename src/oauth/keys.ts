// Signing keys for access tokens. Default: ES256 key pairs generated on first start and kept in the state, published
// at jwks_uri, rotated on a schedule (signingKeyRotationDays) and on demand; a retired key stays for verification
// until the last token it signed has expired, so neither a restart nor a rotation logs anyone out.
// With `jwtSecret` configured: HS256 with that secret (nothing is published; rotating the secret logs everyone out).

import { exportJWK, generateKeyPair, importJWK, type JWK } from "jose";
import { randomId } from "../crypto.ts";
import type { Logger } from "../log.ts";
import { activeKey, type KeyRecord, type Store } from "../store/types.ts";

type VerifyKey = CryptoKey | Uint8Array;

export interface SigningKey {
  alg: "ES256" | "HS256";
  kid: string;
  key: CryptoKey | Uint8Array;
}

const DAY_MS = 86_400_000;

export class KeyRing {
  readonly alg: "ES256" | "HS256";
  private records: KeyRecord[] = [];
  private imported = new Map<string, { privateKey?: CryptoKey; publicKey: CryptoKey }>();
  private readonly secret: Uint8Array | undefined;
  private lastReload = 0;

  constructor(
    private readonly store: Store,
    private readonly options: { jwtSecret?: string; accessTokenTtlSeconds: number; rotationDays: number },
    private readonly log: Logger,
  ) {
    this.alg = options.jwtSecret ? "HS256" : "ES256";
    this.secret = options.jwtSecret ? new TextEncoder().encode(options.jwtSecret) : undefined;
  }

  /** Loads the keys, generating the first one (ES256) when there is none yet. */
  async init(now: number): Promise<void> {
    if (this.alg === "HS256") return;
    this.records = await this.store.getKeys();
    // Replicas sharing the store: a rotation elsewhere is picked up at once (and on an unknown kid, below).
    this.store.onKeysChanged?.(() => void this.reload().catch(() => {}));
    if (!this.active()) await this.rotate(now, "first start");
    else await this.maybeRotate(now);
  }

  private active(): KeyRecord | undefined {
    return activeKey(this.records);
  }

  /** Re-reads the key ring from the store (another process rotated). */
  async reload(): Promise<void> {
    const before = this.active()?.kid;
    this.records = await this.store.getKeys();
    const after = this.active()?.kid;
    if (after !== before) this.log.info("signing key changed by another process", { kid: after });
  }

  /** Told of each rotation this process makes (the audit log). */
  onRotated?: (kid: string, reason: string) => void;

  /**
   * Retires the current key (kept for verification until its tokens expire) and starts signing with a new one. If
   * another process sharing the store rotated in the meantime, its key is adopted instead of adding a second one.
   */
  async rotate(now: number, reason: string): Promise<string> {
    if (this.alg === "HS256") throw new Error("keys are HS256 from oauthAs.jwtSecret: change the secret to rotate");
    const { privateKey, publicKey } = await generateKeyPair("ES256", { extractable: true });
    const kid = randomId(12);
    const record: KeyRecord = {
      kid,
      alg: "ES256",
      private_jwk: (await exportJWK(privateKey)) as Record<string, unknown>,
      public_jwk: { ...(await exportJWK(publicKey)), kid, alg: "ES256", use: "sig" },
      created_at: now,
    };
    const keepFor = this.options.accessTokenTtlSeconds * 1000 + 60_000;
    const added = await this.store.addSigningKey(record, now, now + keepFor, this.active()?.kid ?? null);
    this.records = await this.store.getKeys();
    const active = this.active();
    if (!added) {
      this.log.info("signing key already rotated by another process", { kid: active?.kid });
      return active?.kid ?? kid;
    }
    this.log.info("signing key rotated", { kid, reason, verifying_keys: this.records.length });
    this.onRotated?.(kid, reason);
    return kid;
  }

  /** Rotates when the active key is older than signingKeyRotationDays. */
  async maybeRotate(now: number): Promise<void> {
    const days = this.options.rotationDays;
    const active = this.active();
    if (this.alg === "HS256" || days <= 0 || !active) return;
    if (now - active.created_at >= days * DAY_MS) await this.rotate(now, `older than ${days} days`);
  }

  private async importRecord(r: KeyRecord) {
    let hit = this.imported.get(r.kid);
    if (!hit) {
      hit = {
        publicKey: (await importJWK(r.public_jwk as JWK, "ES256")) as CryptoKey,
        privateKey: (await importJWK(r.private_jwk as JWK, "ES256")) as CryptoKey,
      };
      this.imported.set(r.kid, hit);
    }
    return hit;
  }

  async signingKey(): Promise<SigningKey> {
    if (this.secret) return { alg: "HS256", kid: "hs256", key: this.secret };
    const active = this.active();
    if (!active) throw new Error("no signing key");
    const { privateKey } = await this.importRecord(active);
    return { alg: "ES256", kid: active.kid, key: privateKey as CryptoKey };
  }

  /**
   * The key that verifies a token with this `kid`. An unknown kid makes the ring re-read the store once per
   * few seconds (another replica may have rotated).
   */
  async verifyKey(kid: string | undefined, now: number): Promise<VerifyKey | undefined> {
    if (this.secret) return this.secret;
    if (!kid) return undefined;
    let r = this.records.find((k) => k.kid === kid);
    if (!r && now - this.lastReload > 5000) {
      this.lastReload = now;
      this.records = await this.store.getKeys();
      r = this.records.find((k) => k.kid === kid);
    }
    if (!r || (r.expires_at !== undefined && r.expires_at < now)) return undefined;
    return (await this.importRecord(r)).publicKey;
  }

  /** RFC 7517 JWK Set of the public keys (empty with HS256). */
  jwks(): { keys: Record<string, unknown>[] } {
    return { keys: this.records.map((k) => k.public_jwk) };
  }

  describe(): string {
    return this.alg === "HS256"
      ? "HS256 (oauthAs.jwtSecret)"
      : `ES256 (${this.records.length} key(s), active ${this.active()?.kid})`;
  }
}
