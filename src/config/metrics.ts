// The `metrics` block: GET /metrics (Prometheus text format), on by default for loopback sources only. `allowFrom`
// widens it to other CIDRs (a Prometheus on another host), `bearerToken` lets a scraper in from anywhere with
// `Authorization: Bearer <token>`, `enabled: false` removes the endpoint.

import { DEFAULTS } from "./defaults.ts";
import type { Problems } from "./problems.ts";
import type { MetricsConfig } from "./types.ts";

export interface MetricsInput {
  enabled?: boolean;
  allowFrom?: string[];
  bearerToken?: string;
}

export function metricsSection(input: MetricsInput | undefined, problems: Problems): MetricsConfig {
  const d = DEFAULTS.metrics;
  const allowFrom = problems.cidrs(input?.allowFrom ?? [...d.allowFrom], "metrics.allowFrom") ?? [];
  const out: MetricsConfig = { enabled: input?.enabled ?? d.enabled, allowFrom };
  if (input?.bearerToken !== undefined) out.bearerToken = input.bearerToken;
  return out;
}
