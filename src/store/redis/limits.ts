// Rate limits and caches in Redis, so that every replica counts against the same limit and reuses the same
// fetched documents. A Redis outage lets requests through the limit (the outage is logged once by the connection)
// rather than refusing everyone, and makes the caches miss.

import { type Allowance, type RateLimit, retryAfter } from "../../policy/rate-limit.ts";
import type { SharedCache, SharedServices } from "../shared.ts";
import { type RedisConnection, script } from "./connection.ts";

/** 3 bucket key, 4 per minute → {1|0, tokens left as text} — Redis's own clock refills the bucket. */
const TAKE = script(
  "rate_take",
  `local k = ARGV[2] .. 'rl:' .. ARGV[3]
local per = tonumber(ARGV[4])
local window = tonumber(ARGV[5]) or 60000
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local h = redis.call('HMGET', k, 't', 'a')
local tokens = tonumber(h[1]) or per
local at = tonumber(h[2]) or now
tokens = math.min(per, tokens + (now - at) * per / window)
local ok = 0
if tokens >= 1 then
  tokens = tokens - 1
  ok = 1
end
redis.call('HSET', k, 't', tostring(tokens), 'a', tostring(now))
redis.call('PEXPIRE', k, window * 2)
return {ok, tostring(tokens)}`,
);

export function redisServices(redis: RedisConnection): SharedServices {
  return {
    rateLimit(name, max, windowMs = 60_000): RateLimit {
      return {
        max,
        windowMs,
        async take(key): Promise<Allowance> {
          try {
            const r = (await redis.run(TAKE, [`${name}:${key}`, max, windowMs])) as [number, string];
            return r[0] === 1
              ? { ok: true }
              : { ok: false, retryAfterSeconds: retryAfter(Number(r[1]), max, windowMs) };
          } catch {
            return { ok: true };
          }
        },
      };
    },
    cache(name): SharedCache {
      return {
        async get(key) {
          try {
            const v = await redis.send("GET", [redis.key("cache", name, key)]);
            return typeof v === "string" ? v : undefined;
          } catch {
            return undefined;
          }
        },
        async set(key, value, ttlMs) {
          if (ttlMs <= 0) return;
          await redis
            .send("SET", [redis.key("cache", name, key), value, "PX", String(Math.ceil(ttlMs))])
            .catch(() => {});
        },
      };
    },
  };
}
