// Discovery: authorization server metadata (RFC 8414 §3, path-inserted for an issuer with a path, and mirrored at
// the resource's origin for 2025-03-26 clients), OpenID Connect discovery and the JWK Set. Public, CORS `*`,
// GET/HEAD/OPTIONS. Protected resource metadata is per route: see ../resource-metadata.ts.

import { Elysia } from "elysia";
import { authorizationServerMetadata, openidConfiguration } from "../../oauth/metadata.ts";
import type { OAuthHttpDeps } from "./common.ts";

const PUBLIC = {
  "content-type": "application/json",
  "access-control-allow-origin": "*",
  "cache-control": "public, max-age=300",
};

function publicJson(body: unknown): Response {
  return new Response(JSON.stringify(body), { headers: PUBLIC });
}

function preflight(): Response {
  return new Response(null, {
    status: 204,
    headers: {
      "access-control-allow-origin": "*",
      "access-control-allow-methods": "GET, HEAD, OPTIONS",
      "access-control-allow-headers": "MCP-Protocol-Version, Accept, Authorization",
      "access-control-max-age": "600",
    },
  });
}

export const discovery = (deps: OAuthHttpDeps) => {
  const { as, log } = deps;
  const c = as.config;
  const issuerPath = new URL(c.issuerUrl).pathname.replace(/\/$/, "");

  const asMetadata = () => authorizationServerMetadata(c, as.keys.algorithms(), as.scopesSupported());
  const docs: [string[], () => unknown][] = [
    // RFC 8414 §3.1: path inserted between host and path; plus the root (the resource's origin, 2025-03-26 clients).
    [[`/.well-known/oauth-authorization-server${issuerPath}`, "/.well-known/oauth-authorization-server"], asMetadata],
    [
      [
        `/.well-known/openid-configuration${issuerPath}`,
        `${issuerPath}/.well-known/openid-configuration`,
        "/.well-known/openid-configuration",
      ],
      () => openidConfiguration(c, as.keys.algorithms(), as.scopesSupported()),
    ],

    // …/openid/v1/jwks is where mcp-oauth2-proxy published its keys: resource servers pointed there keep working.
    [[`${issuerPath}/jwks`, "/jwks", `${issuerPath}/openid/v1/jwks`], () => as.keys.jwks()],
  ];
  const app = new Elysia({ name: "discovery" });
  for (const [paths, body] of docs) {
    for (const path of new Set(paths.flatMap((p) => [p, `${p}/`]))) {
      app.get(path, ({ request }) => {
        log.info("discovery", { path, user_agent: request.headers.get("user-agent")?.slice(0, 60) });
        return publicJson(body());
      });
      app.options(path, preflight);
    }
  }
  return app;
};
