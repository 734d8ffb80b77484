// An identity provider's signing keys (its JWKS), cached: fetched on first use, kept for an hour, and fetched again
// at once when a token names a key id the cache does not know (the provider rotated) — but at most once per
// cooldown for unknown ids, so random `kid`s cannot make Gatehouse hammer the provider.

import { importJWK, type JWK, type JWSHeaderParameters } from "jose";
import { fetchJson, isObject, UpstreamError } from "./upstream.ts";

export interface JwksOptions {
  provider: string;
  timeoutMs: number;
  now(): number;
  fetch?: typeof fetch;
  cooldownMs?: number;
  maxAgeMs?: number;
}

type Key = CryptoKey | Uint8Array;

/** The token names a key the provider does not publish: the token's fault, not the provider's. */
export class UnknownKeyError extends UpstreamError {
  override name = "UnknownKeyError";
}

export class RemoteJwks {
  private keys: JWK[] = [];
  private imported = new Map<string, Key>();
  private loadedAt = Number.NEGATIVE_INFINITY;
  private lastUnknownRefetch = Number.NEGATIVE_INFINITY;
  /** The fetch under way, shared: callers arriving meanwhile wait for it instead of fetching again or failing. */
  private reloading: Promise<void> | undefined;

  constructor(
    private readonly url: string,
    private readonly o: JwksOptions,
  ) {}

  private async load(): Promise<void> {
    const { status, body } = await fetchJson(
      this.url,
      { headers: { accept: "application/json" } },
      {
        provider: this.o.provider,
        timeoutMs: this.o.timeoutMs,
        ...(this.o.fetch ? { fetch: this.o.fetch } : {}),
      },
    );
    if (status !== 200 || !isObject(body) || !Array.isArray(body.keys)) {
      throw new UpstreamError(this.o.provider, `its JWKS (${this.url}) answered HTTP ${status} without keys`);
    }
    this.keys = body.keys.filter(isObject) as JWK[];
    this.imported.clear();
    this.loadedAt = this.o.now();
  }

  private reload(): Promise<void> {
    this.reloading ??= this.load().finally(() => {
      this.reloading = undefined;
    });
    return this.reloading;
  }

  private find(header: JWSHeaderParameters): JWK | undefined {
    const usable = this.keys.filter(
      (k) => (k.use === undefined || k.use === "sig") && (k.alg === undefined || k.alg === header.alg),
    );
    if (header.kid !== undefined) return usable.find((k) => k.kid === header.kid);
    return usable.length === 1 ? usable[0] : undefined;
  }

  /** The key for a token's header, for jose's jwtVerify. */
  async key(header: JWSHeaderParameters): Promise<Key> {
    const now = this.o.now();
    let fresh = false;
    if (now - this.loadedAt > (this.o.maxAgeMs ?? 3_600_000)) {
      await this.reload();
      fresh = true;
    }
    let jwk = this.find(header);
    // Right after a rotation many requests bring the new kid at once: they all wait for the one refetch.
    if (!jwk && !fresh && this.reloading) {
      await this.reloading;
      jwk = this.find(header);
    }
    if (!jwk && !fresh && now - this.lastUnknownRefetch >= (this.o.cooldownMs ?? 10_000)) {
      this.lastUnknownRefetch = now;
      await this.reload();
      jwk = this.find(header);
    }
    if (!jwk)
      throw new UnknownKeyError(
        this.o.provider,
        `the token is signed with a key the provider does not publish (kid ${header.kid ?? "none"})`,
      );
    const id = jwk.kid ?? JSON.stringify(jwk);
    let k = this.imported.get(id);
    if (!k) {
      k = await importJWK(jwk, header.alg);
      this.imported.set(id, k);
    }
    return k;
  }
}
