// Requests per minute per caller (allardy/mcp-oauth-proxy's RATE_LIMIT_RPM, keyed by principal): a token bucket
// holding a minute's allowance that refills continuously, so a burst up to the limit passes and a steady stream is
// held to the rate. Buckets of callers not seen for a while are dropped; the map is bounded.

const MAX_BUCKETS = 10_000;

interface Bucket {
  tokens: number;
  at: number;
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    readonly perMinute: number,
    private readonly now: () => number,
  ) {}

  /** Takes one request's worth for `key`; false (and the seconds until one is available) when none is left. */
  take(key: string): { ok: true } | { ok: false; retryAfterSeconds: number } {
    const now = this.now();
    const rate = this.perMinute / 60_000;
    let b = this.buckets.get(key);
    if (b) {
      b.tokens = Math.min(this.perMinute, b.tokens + (now - b.at) * rate);
      b.at = now;
      this.buckets.delete(key); // re-inserted below: the map stays in least-recently-used order
    } else {
      b = { tokens: this.perMinute, at: now };
      if (this.buckets.size >= MAX_BUCKETS) this.buckets.delete(this.buckets.keys().next().value as string);
    }
    this.buckets.set(key, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - b.tokens) / rate / 1000)) };
  }
}
