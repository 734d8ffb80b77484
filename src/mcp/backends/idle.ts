// When an idle backend is stopped (`idle_timeout` of `mcp serve`): never, after a fixed time, or adaptively —
// busy backends stay warm longer than rarely used ones.

import type { IdlePolicy } from "../../config/types.ts";

export interface Usage {
  requestCount: number;
  firstUsed: number;
}

/**
 * The idle time after which a backend is stopped, or undefined when it must stay up. Adaptive: fewer than two
 * requests → the minimum; otherwise by requests per hour since first use (> 20 → 5 min, > 5 → 3 min, else
 * 1 min), clamped to [min, max]. A backend never used yet is left alone for `max` (its warm-up grace).
 */
export function idleTimeoutMs(policy: IdlePolicy, usage: Usage, now: number): number | undefined {
  if (policy.kind === "never") return undefined;
  if (policy.kind === "fixed") return policy.ms;
  const { minMs, maxMs } = policy;
  const clamp = (ms: number) => Math.min(maxMs, Math.max(minMs, ms));
  if (usage.requestCount === 0 && now - usage.firstUsed < maxMs) return undefined;
  if (usage.requestCount < 2) return minMs;
  const hours = Math.max((now - usage.firstUsed) / 3_600_000, 0.001);
  const perHour = usage.requestCount / hours;
  if (perHour > 20) return clamp(300_000);
  if (perHour > 5) return clamp(180_000);
  return clamp(60_000);
}
