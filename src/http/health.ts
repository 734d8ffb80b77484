// GET /health: liveness and a summary, in the shape `mcp serve` uses (status, backends_configured,
// backends_connected, active_clients, tools, version). Unauthenticated, so it names no backend and no user.

import { Elysia } from "elysia";
import { json } from "./responses.ts";

export const health = (deps: { health(): Promise<Record<string, unknown>> }) =>
  new Elysia({ name: "health" }).get("/health", async () =>
    json(await deps.health(), 200, { "cache-control": "no-store" }),
  );
