// "Bring your own identity provider" discovery, for tokens another issuer mints (jwt / introspection providers).
// Routes' protected resource metadata (RFC 9728; see resource-metadata.ts and oauth/metadata.ts externalResourceMetadata) names
// either the issuer itself ("direct") or Gatehouse ("proxy"). In proxy mode this plugin republishes the issuer's
// authorization server metadata with `issuer` rewritten to Gatehouse (allardy/mcp-oauth-proxy's approach, for
// clients that insist on a byte-identical issuer) — plus, for issuers without open registration (Authentik, Entra),
// a registration shim that hands every caller the one pre-registered client (at /register, and at /oauth/register
// where mcp-oauth-proxy served it).

import { Elysia } from "elysia";
import type { ExternalDiscoveryConfig } from "../config/types.ts";
import type { Logger } from "../log.ts";
import { fetchJson, isObject } from "../net/upstream.ts";
import { GRANT_TYPES } from "../oauth/grant-types.ts";
import { preflight, withCors } from "./cors.ts";
import { json } from "./responses.ts";

export interface ExternalDiscoveryDeps {
  issuer: string;
  discovery: ExternalDiscoveryConfig;
  log: Logger;
  origins: readonly string[];
  now(): number;
  fetch?: typeof fetch;
}

const PUBLIC = { "access-control-allow-origin": "*", "cache-control": "public, max-age=300" };
const METADATA_TTL_MS = 300_000;

export const externalDiscovery = (deps: ExternalDiscoveryDeps) => {
  const { discovery: d, log } = deps;
  const app = new Elysia({ name: "external-discovery" });
  if (d.mode === "none" || !d.resourceUrl) return app;
  if (d.mode !== "proxy") return app;

  // Proxy mode: the issuer's metadata under Gatehouse's name.
  let cached: { body: Record<string, unknown>; until: number } | undefined;
  const upstream = async (): Promise<Record<string, unknown> | undefined> => {
    if (cached && cached.until > deps.now()) return cached.body;
    const issuer = deps.issuer.replace(/\/$/, "");
    const u = new URL(issuer);
    const path = u.pathname === "/" ? "" : u.pathname;
    for (const url of [
      `${issuer}/.well-known/openid-configuration`,
      `${u.origin}/.well-known/oauth-authorization-server${path}`,
    ]) {
      try {
        const r = await fetchJson(
          url,
          { headers: { accept: "application/json" } },
          { provider: "issuer", timeoutMs: 5000, ...(deps.fetch ? { fetch: deps.fetch } : {}) },
        );
        if (r.status === 200 && isObject(r.body) && typeof r.body.authorization_endpoint === "string") {
          cached = { body: r.body, until: deps.now() + METADATA_TTL_MS };
          return r.body;
        }
      } catch (e) {
        log.warn("cannot fetch the issuer's metadata", { url, error: (e as Error).message });
      }
    }
    return undefined;
  };
  const publicUrl = d.publicUrl as string;
  const rewritten = async () => {
    const m = await upstream();
    if (!m)
      return json(
        { error: "temporarily_unavailable", error_description: "the identity provider's metadata cannot be fetched" },
        503,
        { "cache-control": "no-store" },
      );
    const body: Record<string, unknown> = {
      ...m,
      issuer: publicUrl,
      code_challenge_methods_supported: (m.code_challenge_methods_supported as string[] | undefined) ?? ["S256"],
    };
    // What the resource accepts, in both documents (as mcp-oauth-proxy does): clients ask for these.
    if (d.scopesSupported.length > 0) body.scopes_supported = d.scopesSupported;
    if (d.staticClient) body.registration_endpoint = `${publicUrl}/register`;
    return json(body, 200, PUBLIC);
  };
  const issuerPath = new URL(publicUrl).pathname.replace(/\/$/, "");
  for (const path of new Set([
    `/.well-known/oauth-authorization-server${issuerPath}`,
    "/.well-known/oauth-authorization-server",
    `/.well-known/openid-configuration${issuerPath}`,
    "/.well-known/openid-configuration",
  ])) {
    app.get(path, rewritten);
    app.options(path, ({ request }) => preflight(request, ["*"], "GET, OPTIONS"));
  }

  const sc = d.staticClient;
  if (sc) {
    const register = async ({ request }: { request: Request }) => {
      let body: Record<string, unknown> = {};
      try {
        const parsed = JSON.parse(await request.text());
        if (isObject(parsed)) body = parsed;
      } catch {
        // an empty or malformed body still gets the one client
      }
      const redirectUris = Array.isArray(body.redirect_uris)
        ? body.redirect_uris.filter((u): u is string => typeof u === "string")
        : [];
      log.info("registration shim: handing out the pre-registered client", {
        client_name: String(body.client_name ?? ""),
        client_id: sc.clientId,
      });
      const response: Record<string, unknown> = {
        client_id: sc.clientId,
        client_id_issued_at: Math.floor(deps.now() / 1000),
        redirect_uris: redirectUris,
        grant_types: [...GRANT_TYPES],
        response_types: ["code"],
        token_endpoint_auth_method: sc.clientSecret ? "client_secret_post" : "none",
      };
      if (typeof body.client_name === "string") response.client_name = body.client_name;
      if (sc.clientSecret) {
        response.client_secret = sc.clientSecret;
        response.client_secret_expires_at = 0;
      }
      return withCors(json(response, 201, { "cache-control": "no-store" }), request, deps.origins);
    };
    // /register is what the metadata advertises; /oauth/register is where mcp-oauth-proxy served it, for clients
    // and reverse-proxy rules written for that.
    for (const path of ["/register", "/oauth/register"]) {
      app.post(path, register, { parse: "none" });
      app.options(path, ({ request }) => preflight(request, deps.origins, "POST, OPTIONS"));
    }
  }
  return app;
};
