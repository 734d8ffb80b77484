// Requests per minute per caller (allardy/mcp-oauth-proxy's RATE_LIMIT_RPM, keyed by principal): a token bucket
// holding a minute's allowance that refills continuously, so a burst up to the limit passes and a steady stream is
// held to the rate. Buckets of callers not seen for a while are dropped; the map is bounded. With replicas the
// buckets live in Redis (store/redis/limits.ts) so that the limit is global, not per replica.

import { BoundedMap } from "../bounded-map.ts";

const MAX_BUCKETS = 10_000;

export type Allowance = { ok: true } | { ok: false; retryAfterSeconds: number };

export interface RateLimit {
  readonly perMinute: number;
  /** Takes one request's worth for `key`; when none is left, the seconds until one is available. */
  take(key: string): Allowance | Promise<Allowance>;
}

interface Bucket {
  tokens: number;
  at: number;
}

/** The seconds until a bucket holding `tokens` has one again, refilling `perMinute` a minute. */
export function retryAfter(tokens: number, perMinute: number): number {
  return Math.max(1, Math.ceil(((1 - tokens) * 60_000) / perMinute / 1000));
}

export class RateLimiter implements RateLimit {
  private readonly buckets = new BoundedMap<string, Bucket>(MAX_BUCKETS);

  constructor(
    readonly perMinute: number,
    private readonly now: () => number,
  ) {}

  take(key: string): Allowance {
    const now = this.now();
    const rate = this.perMinute / 60_000;
    let b = this.buckets.get(key);
    if (b) {
      b.tokens = Math.min(this.perMinute, b.tokens + (now - b.at) * rate);
      b.at = now;
      this.buckets.touch(key); // least-recently-used order
    } else {
      b = { tokens: this.perMinute, at: now };
      this.buckets.set(key, b);
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfterSeconds: retryAfter(b.tokens, this.perMinute) };
  }
}
