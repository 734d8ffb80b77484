// Health endpoints, unauthenticated: GET /health, a summary in the shape `mcp serve` uses (status, backends_configured,
// backends_connected, active_clients, tools, version) that says "degraded" — still 200: the process serves — when a
// backend has failed or the state store cannot write, naming which (never a file, host or user); GET /livez, 200
// while the process serves (a container's HEALTHCHECK, a liveness probe); GET /readyz, 503 until the configuration
// is loaded and the state store can write, then 200 (a readiness probe, a load balancer's check); GET /healthz, the
// probe of allardy/mcp-oauth-proxy's image (`{"status":"ok"}`, 200 while serving, as /livez), so Docker and Kubernetes
// health checks written for it keep working.

import { Elysia } from "elysia";
import { json } from "./responses.ts";

export interface HealthDeps {
  health(): Promise<Record<string, unknown>>;
  /** Undefined when ready; else why not, in words. */
  notReady(): string | undefined;
}

const NO_STORE = { "cache-control": "no-store" };

export const health = (deps: HealthDeps) =>
  new Elysia({ name: "health" })
    .get("/health", async () => json(await deps.health(), 200, NO_STORE))
    .get("/livez", () => json({ status: "alive" }, 200, NO_STORE))
    .get("/healthz", () => json({ status: "ok" }, 200, NO_STORE))
    .get("/readyz", () => {
      const why = deps.notReady();
      return why ? json({ status: "not ready", reason: why }, 503, NO_STORE) : json({ status: "ready" }, 200, NO_STORE);
    });
