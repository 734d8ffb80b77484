// What the rest of Gatehouse may share between replicas besides the Store: rate limits (global, not per replica)
// and caches (client metadata documents, introspection results). One process: in memory. With state.redis: in
// Redis (store/redis/limits.ts).

import { BoundedMap } from "../bounded-map.ts";
import { type RateLimit, RateLimiter } from "../policy/rate-limit.ts";

/** A cache of strings by key with a time to live; misses and failures are the same (the caller recomputes). */
export interface SharedCache {
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string, ttlMs: number): Promise<void>;
}

export interface SharedServices {
  /** A rate limit named `name` (its buckets are kept apart from other limits'). */
  rateLimit(name: string, max: number, windowMs?: number): RateLimit;
  /** A cache named `name`, holding at most `maxEntries` in one process. */
  cache(name: string, maxEntries: number): SharedCache;
}

export function localServices(now: () => number): SharedServices {
  return {
    rateLimit: (_name, max, windowMs = 60_000) => new RateLimiter(max, now, windowMs),
    cache(_name, maxEntries) {
      const m = new BoundedMap<string, { value: string; until: number }>(Math.max(1, maxEntries));
      return {
        async get(key) {
          const hit = m.get(key);
          if (!hit) return undefined;
          if (hit.until > now()) return hit.value;
          m.delete(key);
          return undefined;
        },
        async set(key, value, ttlMs) {
          if (maxEntries > 0 && ttlMs > 0) m.set(key, { value, until: now() + ttlMs });
        },
      };
    },
  };
}
