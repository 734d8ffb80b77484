// Requests per minute per caller (allardy/mcp-oauth-proxy's RATE_LIMIT_RPM, keyed by principal): a token bucket
// holding a minute's allowance that refills continuously, so a burst up to the limit passes and a steady stream is
// held to the rate. Buckets of callers not seen for a while are dropped; the map is bounded. With replicas the
// buckets live in Redis (store/redis/limits.ts) so that the limit is global, not per replica.

import { BoundedMap } from "../bounded-map.ts";

const MAX_BUCKETS = 10_000;

export type Allowance = { ok: true } | { ok: false; retryAfterSeconds: number };

export interface RateLimit {
  /** At most this many at once (the bucket), refilled at `max` per `windowMs`. */
  readonly max: number;
  readonly windowMs: number;
  /** Takes one request's worth for `key`; when none is left, the seconds until one is available. */
  take(key: string): Allowance | Promise<Allowance>;
}

/** "100 per minute", "50 per 15 minutes": a limit in words, for refusals and logs. */
export function describeLimit(l: Pick<RateLimit, "max" | "windowMs">): string {
  const m = l.windowMs / 60_000;
  const per = l.windowMs % 60_000 === 0 ? (m === 1 ? "minute" : `${m} minutes`) : `${l.windowMs / 1000} s`;
  return `${l.max} per ${per}`;
}

interface Bucket {
  tokens: number;
  at: number;
}

/** The seconds until a bucket holding `tokens` has one again, refilling `max` per `windowMs`. */
export function retryAfter(tokens: number, max: number, windowMs = 60_000): number {
  return Math.max(1, Math.ceil(((1 - tokens) * windowMs) / max / 1000));
}

export class RateLimiter implements RateLimit {
  private readonly buckets = new BoundedMap<string, Bucket>(MAX_BUCKETS);

  constructor(
    readonly max: number,
    private readonly now: () => number,
    readonly windowMs = 60_000,
  ) {}

  take(key: string): Allowance {
    const now = this.now();
    const rate = this.max / this.windowMs;
    let b = this.buckets.get(key);
    if (b) {
      b.tokens = Math.min(this.max, b.tokens + (now - b.at) * rate);
      b.at = now;
      this.buckets.touch(key); // least-recently-used order
    } else {
      b = { tokens: this.max, at: now };
      this.buckets.set(key, b);
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfterSeconds: retryAfter(b.tokens, this.max, this.windowMs) };
  }
}
