// Forward authentication for a reverse proxy that fronts MCP servers itself: nginx `auth_request`, Caddy
// `forward_auth`, Traefik `forwardAuth`. GET /authenticate checks the request's credentials exactly as /mcp does
// (/authenticate/<server> as /servers/<server>/mcp does, with that backend's audience) through the first steps of
// the same admission pipeline (mcp/admission.ts), and answers 200 with the identity in X-Auth-Request-* headers for
// the proxy to pass on, or 401/403 with the RFC 9728 challenge, which the proxy must copy to its own answer so MCP
// clients can find the authorization server.

import { Elysia } from "elysia";
import type { Logger } from "../log.ts";
import { admitForwarded, refused } from "../mcp/admission.ts";
import { headerValue } from "../net/header-value.ts";
import type { McpRoute } from "../routing.ts";
import { refusalResponse } from "./refusal.ts";
import { json } from "./responses.ts";

export interface ForwardAuthDeps {
  mcpRoute(request: Request): McpRoute;
  serverRoutes: ReadonlyMap<string, McpRoute>;
  log: Logger;
}

async function check(request: Request, route: McpRoute, deps: ForwardAuthDeps): Promise<Response> {
  const caller = await admitForwarded(request, route, deps.log);
  if (refused(caller)) {
    const { refusal } = caller;
    if (refusal.kind !== "auth") return json({ error: "invalid_request", error_description: refusal.message }, 400);
    // A missing required scope was logged by the admission already.
    if (refusal.failure.error !== "insufficient_scope")
      deps.log.info("forward auth: refused", {
        route: route.name,
        status: refusal.failure.status,
        reason: refusal.failure.tried ?? refusal.failure.description,
        uri: request.headers.get("x-original-uri") ?? undefined,
      });
    return refusalResponse(refusal.failure, "oauth");
  }
  const { identity } = caller;
  const headers: Record<string, string> = {
    "x-auth-request-user": headerValue(identity.subject),
    "x-auth-request-groups": headerValue(identity.groups.join(",")),
    "x-auth-request-roles": headerValue(identity.roles.join(",")),
    "cache-control": "no-store",
  };
  if (identity.email) headers["x-auth-request-email"] = headerValue(identity.email);
  if (identity.scopes) headers["x-auth-request-scope"] = headerValue(identity.scopes.join(" "));
  if (identity.clientId) headers["x-auth-request-client-id"] = headerValue(identity.clientId);
  deps.log.debug("forward auth: accepted", { route: route.name, subject: identity.subject });
  return new Response(null, { status: 200, headers });
}

export const forwardAuth = (deps: ForwardAuthDeps) => {
  const app = new Elysia({ name: "forward-auth" });
  const main = ({ request }: { request: Request }) => check(request, deps.mcpRoute(request), deps);
  const server = ({ request, params }: { request: Request; params: { server: string } }) => {
    const route = deps.serverRoutes.get(decodeURIComponent(params.server));
    if (!route) return json({ error: "not_found", error_description: `no server ${params.server}` }, 404);
    return check(request, route, deps);
  };
  // nginx auth_request sends a GET (HEAD for some setups); Traefik and Caddy forward the original method.
  for (const path of ["/authenticate", "/authenticate/"]) {
    app.get(path, main).head(path, main).post(path, main, { parse: "none" });
  }
  app
    .get("/authenticate/:server", server)
    .head("/authenticate/:server", server)
    .post("/authenticate/:server", server, { parse: "none" });
  return app;
};
