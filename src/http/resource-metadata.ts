// Protected resource metadata (RFC 9728 §3) of every route: at the path-inserted well-known URL of the route's URL
// (`/.well-known/oauth-protected-resource/mcp`, `/.well-known/oauth-protected-resource/servers/<name>/mcp`) and, for
// /mcp, at the root. Routes that share a path (hosts mapped to a backend all serve /mcp) are told apart by host.
// Public, CORS `*`.

import { Elysia } from "elysia";
import type { Logger } from "../log.ts";
import { type McpRoute, metadataPath } from "../routing.ts";
import { json } from "./responses.ts";

const PUBLIC = { "access-control-allow-origin": "*", "cache-control": "public, max-age=300" };

export interface ResourceMetadataDeps {
  routes: McpRoute[];
  /** The route of /mcp for a request (host-based routing). */
  mcpRoute(request: Request): McpRoute;
  /** The host the request was sent to (X-Forwarded-Host from trusted proxies). */
  hostOf(request: Request): string;
  log: Logger;
}

export const resourceMetadata = (deps: ResourceMetadataDeps) => {
  const byPath = new Map<string, McpRoute[]>();
  for (const r of deps.routes) {
    if (!r.resourceUrl || !r.metadata) continue;
    const path = metadataPath(r.resourceUrl);
    byPath.set(path, [...(byPath.get(path) ?? []), r]);
  }
  const answer = (request: Request, route: McpRoute | undefined) => {
    const body = route?.metadata?.();
    if (!body) return json({ error: "not_found", error_description: "no protected resource here" }, 404);
    deps.log.info("discovery", {
      path: new URL(request.url).pathname,
      route: route?.name,
      user_agent: request.headers.get("user-agent")?.slice(0, 60),
    });
    return json(body, 200, PUBLIC);
  };
  const app = new Elysia({ name: "resource-metadata" });
  const preflight = () =>
    new Response(null, {
      status: 204,
      headers: {
        "access-control-allow-origin": "*",
        "access-control-allow-methods": "GET, HEAD, OPTIONS",
        "access-control-allow-headers": "MCP-Protocol-Version, Accept, Authorization",
        "access-control-max-age": "600",
      },
    });
  for (const [path, candidates] of byPath) {
    const hosts = candidates.map((r) => new URL(r.resourceUrl as string).host);
    const pick = (request: Request) => {
      if (candidates.length === 1) return candidates[0];
      const host = deps.hostOf(request);
      return candidates.find((_r, i) => hosts[i] === host) ?? deps.mcpRoute(request);
    };
    for (const p of [path, `${path}/`]) {
      app.get(p, ({ request }) => answer(request, pick(request)));
      app.options(p, preflight);
    }
  }
  for (const p of ["/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/"]) {
    if (byPath.has(p)) continue;
    app.get(p, ({ request }) => answer(request, deps.mcpRoute(request)));
    app.options(p, preflight);
  }
  return app;
};
