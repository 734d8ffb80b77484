// Signing keys for access tokens. Default: ES256 key pairs generated on first start and kept in the state, published
// at jwks_uri, rotated on a schedule (signingKeyRotation) and on demand; a retired key stays for verification until
// the last token it signed has expired, so neither a restart nor a rotation logs anyone out. `signingAlgorithm:
// "RS256"` makes new keys RSA (2048-bit) for resource servers that accept nothing else; switching rotates at start,
// and keys of the other algorithm keep verifying their tokens. Each key verifies only its own algorithm (RFC 8725
// §3.1): the algorithm comes from the key record, never from the token.
// With `jwtSecret` configured: HS256 with that secret (nothing is published; rotating the secret logs everyone out).

import { exportJWK, generateKeyPair, importJWK, type JWK } from "jose";
import { randomId } from "../crypto.ts";
import type { Logger } from "../log.ts";
import { activeKey, type KeyRecord, type Store } from "../store/types.ts";

type VerifyKey = CryptoKey | Uint8Array;

export type KeyAlgorithm = KeyRecord["alg"];
export type SigningAlgorithm = KeyAlgorithm | "HS256";

export interface SigningKey {
  alg: SigningAlgorithm;
  kid: string;
  key: CryptoKey | Uint8Array;
}

export interface KeyRingOptions {
  jwtSecret?: string;
  /** The algorithm of keys generated from now on (default ES256). */
  algorithm?: KeyAlgorithm;
  accessTokenTtlSeconds: number;
  /** Rotate on a schedule this often; 0: only on demand. */
  rotationMs: number;
  /**
   * Rotate at start when the active key is of another algorithm than `algorithm` (default true). The admin CLI,
   * which opens the state to read it, turns it off: only the server switches.
   */
  switchAlgorithm?: boolean;
}

export class KeyRing {
  /** What new tokens are signed with: the configured algorithm (HS256 with jwtSecret). */
  readonly alg: SigningAlgorithm;
  private records: KeyRecord[] = [];
  private imported = new Map<string, { privateKey?: CryptoKey; publicKey: CryptoKey }>();
  private readonly secret: Uint8Array | undefined;
  private lastReload = 0;

  constructor(
    private readonly store: Store,
    private readonly options: KeyRingOptions,
    private readonly log: Logger,
  ) {
    this.alg = options.jwtSecret ? "HS256" : (options.algorithm ?? "ES256");
    this.secret = options.jwtSecret ? new TextEncoder().encode(options.jwtSecret) : undefined;
  }

  /**
   * Loads the keys, generating the first one when there is none yet, and rotating when the active key is due or of
   * another algorithm than the configured one (its tokens keep verifying until they expire).
   */
  async init(now: number): Promise<void> {
    if (this.alg === "HS256") return;
    this.records = await this.store.getKeys();
    // Replicas sharing the store: a rotation elsewhere is picked up at once (and on an unknown kid, below).
    this.store.onKeysChanged?.(() => void this.reload().catch(() => {}));
    const active = this.active();
    if (!active) await this.rotate(now, "first start");
    else if (algOf(active) !== this.alg && this.options.switchAlgorithm !== false) {
      await this.rotate(now, `signing algorithm changed from ${algOf(active)} to ${this.alg}`);
    } else await this.maybeRotate(now);
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
    const alg = this.alg;
    if (alg === "HS256") throw new Error("keys are HS256 from oauthAs.jwtSecret: change the secret to rotate");
    const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, modulusLength: 2048 });
    const kid = randomId(12);
    const record: KeyRecord = {
      kid,
      alg,
      private_jwk: (await exportJWK(privateKey)) as Record<string, unknown>,
      public_jwk: { ...(await exportJWK(publicKey)), kid, alg, use: "sig" },
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

  /** Rotates when the active key is older than the rotation period (signingKeyRotation). */
  async maybeRotate(now: number): Promise<void> {
    const every = this.options.rotationMs;
    const active = this.active();
    if (this.alg === "HS256" || every <= 0 || !active) return;
    if (now - active.created_at >= every) await this.rotate(now, `older than ${describePeriod(every)}`);
  }

  private async importRecord(r: KeyRecord) {
    let hit = this.imported.get(r.kid);
    if (!hit) {
      const alg = algOf(r);
      hit = {
        publicKey: (await importJWK(r.public_jwk as JWK, alg)) as CryptoKey,
        privateKey: (await importJWK(r.private_jwk as JWK, alg)) as CryptoKey,
      };
      this.imported.set(r.kid, hit);
    }
    return hit;
  }

  /** The active key, whatever its algorithm (a replica with the other setting may have rotated: it is adopted). */
  async signingKey(): Promise<SigningKey> {
    if (this.secret) return { alg: "HS256", kid: "hs256", key: this.secret };
    const active = this.active();
    if (!active) throw new Error("no signing key");
    const { privateKey } = await this.importRecord(active);
    return { alg: algOf(active), kid: active.kid, key: privateKey as CryptoKey };
  }

  /**
   * The key that verifies a token with this `kid` and `alg`: only a key of exactly that algorithm (with a secret,
   * only HS256). An unknown kid makes the ring re-read the store once per few seconds (another replica may have
   * rotated).
   */
  async verifyKey(kid: string | undefined, alg: unknown, now: number): Promise<VerifyKey | undefined> {
    if (this.secret) return alg === "HS256" ? this.secret : undefined;
    if (!kid || alg === "HS256") return undefined;
    let r = this.records.find((k) => k.kid === kid);
    if (!r && now - this.lastReload > 5000) {
      this.lastReload = now;
      this.records = await this.store.getKeys();
      r = this.records.find((k) => k.kid === kid);
    }
    if (!r || (r.expires_at !== undefined && r.expires_at < now) || algOf(r) !== alg) return undefined;
    return (await this.importRecord(r)).publicKey;
  }

  /** The algorithms of the keys that verify tokens now: the signing one first (for the discovery metadata). */
  algorithms(): SigningAlgorithm[] {
    if (this.secret) return ["HS256"];
    const active = this.active();
    return [...new Set([active ? algOf(active) : this.alg, ...this.records.map(algOf)])];
  }

  /** RFC 7517 JWK Set of the public keys (empty with HS256). */
  jwks(): { keys: Record<string, unknown>[] } {
    return { keys: this.records.map((k) => k.public_jwk) };
  }

  describe(): string {
    return this.alg === "HS256"
      ? "HS256 (oauthAs.jwtSecret)"
      : `${this.algorithms()[0]} (${this.records.length} key(s), active ${this.active()?.kid})`;
  }
}

/** A key's algorithm; records written before keys had one are ES256. */
function algOf(r: KeyRecord): KeyAlgorithm {
  return r.alg ?? "ES256";
}

function describePeriod(ms: number): string {
  const h = ms / 3_600_000;
  if (h >= 24 && Number.isInteger(h / 24)) return `${h / 24} day(s)`;
  if (h >= 1 && Number.isInteger(h)) return `${h} hour(s)`;
  return `${Math.round(ms / 60_000)} minute(s)`;
}
