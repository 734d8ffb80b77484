// GET /health: liveness and a summary, in the shape `mcp serve` uses (status, backends_configured,
// backends_connected, active_clients, tools, version). Unauthenticated, so it names no backend and no user.

import { Elysia } from "elysia";
import type { Gateway } from "../mcp/gateway.ts";
import { json } from "./responses.ts";

export const health = (deps: { gateway: Gateway }) =>
  new Elysia({ name: "health" }).get("/health", async () =>
    json(await deps.gateway.health(), 200, { "cache-control": "no-store" }),
  );
