// GET /metrics: the Prometheus text exposition format (version 0.0.4). By default only loopback sources may scrape
// (`metrics.allowFrom` widens it); a request that came through a reverse proxy (X-Forwarded-For or Forwarded) is
// refused even from loopback — its real source is elsewhere — unless it brings `metrics.bearerToken`.
// `metrics.enabled: false` removes the endpoint (404).

import { Elysia } from "elysia";
import type { MetricsConfig } from "../config/types.ts";
import { constantTimeEqual } from "../crypto.ts";
import type { Logger } from "../log.ts";
import { inAnyCidr } from "../net/cidr.ts";
import { json } from "./responses.ts";

export interface MetricsDeps {
  config: MetricsConfig;
  render(): string;
  peerAddress(request: Request): string | undefined;
  log: Logger;
}

export const metricsEndpoint = (deps: MetricsDeps) => {
  const app = new Elysia({ name: "metrics" });
  if (!deps.config.enabled) return app;
  const { bearerToken, allowFrom } = deps.config;
  return app.get("/metrics", ({ request }) => {
    const auth = request.headers.get("authorization");
    if (auth !== null && bearerToken) {
      if (!constantTimeEqual(auth, `Bearer ${bearerToken}`)) {
        deps.log.warn("metrics refused: wrong bearer token", { peer: deps.peerAddress(request) });
        return json({ error: "invalid_token", error_description: "wrong metrics token" }, 401, {
          "www-authenticate": 'Bearer realm="gatehouse-metrics"',
        });
      }
    } else {
      const peer = deps.peerAddress(request);
      const proxied = request.headers.has("x-forwarded-for") || request.headers.has("forwarded");
      if (proxied || !inAnyCidr(allowFrom, peer)) {
        deps.log.info("metrics refused: source not allowed", { peer, proxied });
        return json(
          {
            error: "forbidden",
            error_description: proxied
              ? bearerToken
                ? "through a proxy, send Authorization: Bearer <metrics.bearerToken>"
                : "metrics are not served through a proxy without metrics.bearerToken"
              : bearerToken
                ? "this source may not read the metrics without Authorization: Bearer <metrics.bearerToken> (or list it in metrics.allowFrom)"
                : "this source may not read the metrics (metrics.allowFrom, or metrics.bearerToken)",
          },
          403,
        );
      }
    }
    return new Response(deps.render(), {
      headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8", "cache-control": "no-store" },
    });
  });
};
