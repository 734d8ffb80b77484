// The MCP routes Gatehouse serves and who may use each: the aggregate (or one pass-through backend) at /mcp, every
// backend unprefixed at /servers/<name>/mcp, and hosts mapped to a backend. Each route is its own protected resource
// (RFC 9728): its own URL, metadata and token audience (RFC 8707), so a token minted for one backend is refused by
// another. Backends are shared between routes; so are their list caches' invalidations and their idle reaping.

import type { Auditor } from "./audit.ts";
import { buildChain, type ChainDeps } from "./auth/chain.ts";
import type { AuthResult } from "./auth/identity.ts";
import { routeProviders } from "./config/routes.ts";
import type { AuthConfig, Config, RoutePolicy } from "./config/types.ts";
import type { Logger } from "./log.ts";
import type { Backend } from "./mcp/catalog.ts";
import type { Gateway } from "./mcp/gateway.ts";
import { inAnyCidr } from "./net/cidr.ts";
import type { AuthorizationServer } from "./oauth/authorization-server.ts";
import { oauthProvider } from "./oauth/bearer-verifier.ts";
import { externalResourceMetadata, protectedResourceMetadata, protectedResourceMetadataUrl } from "./oauth/metadata.ts";
import { canonicalResource } from "./oauth/resource.ts";

export interface McpRoute {
  /** "gatehouse" for /mcp, else the backend's name (logs). */
  name: string;
  /** Where it is served: "/mcp", "/servers/<name>/mcp". */
  path: string;
  /** Its public URL: the protected resource and token audience; undefined when no public URL is known. */
  resourceUrl?: string;
  policy: RoutePolicy;
  gateway: Gateway;
  authenticate(request: Request): Promise<AuthResult>;
  /** RFC 9728 protected resource metadata; undefined when no authorization server is to be advertised. */
  metadata?(): Record<string, unknown>;
}

export function serverRoutePath(backend: string): string {
  return `/servers/${encodeURIComponent(backend)}/mcp`;
}

/**
 * The public base URL routes hang from: gateway.publicUrl, else what the configured resource URL of /mcp implies
 * (`https://h/mcp` → `https://h`). Undefined when nothing says how Gatehouse is reached from outside.
 */
export function publicBase(explicit: string | undefined, mcpResourceUrl: string | undefined): string | undefined {
  if (explicit) return explicit.replace(/\/$/, "");
  if (!mcpResourceUrl) return undefined;
  const u = new URL(mcpResourceUrl);
  const path = u.pathname.replace(/\/$/, "");
  return `${u.origin}${path.endsWith("/mcp") ? path.slice(0, -4) : ""}`;
}

/** The host a request was sent to: X-Forwarded-Host only from a trusted proxy, else Host (lower case). */
export function requestHost(request: Request, trustedProxy: boolean): string {
  const forwarded = trustedProxy ? request.headers.get("x-forwarded-host") : null;
  const raw = forwarded?.split(",")[0]?.trim() || request.headers.get("host") || new URL(request.url).host;
  return raw.toLowerCase();
}

/** Finds the route for a host in a Host → route map, with or without the port. */
export function routeForHost<R>(map: ReadonlyMap<string, R>, host: string): R | undefined {
  return map.get(host) ?? map.get(host.replace(/:\d+$/, ""));
}

/** The well-known paths of a route's metadata: path-inserted (RFC 9728 §3.1). */
export function metadataPath(resourceUrl: string): string {
  return new URL(protectedResourceMetadataUrl(resourceUrl)).pathname;
}

/** Stops backends idle for longer than their policy allows, unless some client of some route is subscribed. */
export async function reapIdleBackends(
  backends: Backend[],
  gateways: Gateway[],
  now: number,
  idleTimeoutMs: (b: Backend, now: number) => number | undefined,
): Promise<void> {
  for (const b of backends) {
    const ms = idleTimeoutMs(b, now);
    if (ms === undefined || gateways.some((g) => g.hasSubscriptions(b.config.name))) continue;
    await b.client.reapIfIdle(ms).catch(() => false);
  }
}

export interface RouteDeps {
  backends: Backend[];
  /** `id` names the route in the shared state: "/mcp", or "server:<name>" for a backend's own route. */
  newGateway(members: Backend[], id: string, passthrough?: string): Gateway;
  as: AuthorizationServer | undefined;
  chainDeps: ChainDeps;
  peerAddress(request: Request): string | undefined;
  log: Logger;
  /** Records credentials a route refused (access_refused). */
  audit?: Auditor;
}

export interface Routes {
  /** /mcp as configured (the aggregate, or the pass-through backend). */
  main: McpRoute;
  /** /servers/<name>/mcp by backend name (empty when gateway.serverRoutes is false). */
  servers: ReadonlyMap<string, McpRoute>;
  all: McpRoute[];
  /** The route a request to /mcp is for: its host's, else main. */
  mcpRoute(request: Request): McpRoute;
  hostOf(request: Request): string;
  health(version: string, activeClients: number): Promise<Record<string, unknown>>;
  /** The scopes the backends of the route serving `resource` advertise, waiting for them until `deadline`. */
  advertisedScopes(resource: string, deadline: Promise<unknown>, waitMs: number): Promise<string[]>;
}

export function buildRoutes(config: Config, deps: RouteDeps): Routes {
  const { as } = deps;
  const auth = config.auth;
  const external = auth.jwt ?? auth.introspection;
  const mainUrl = as?.config.resourceUrl ?? external?.discovery.resourceUrl;
  const base = publicBase(config.gateway.publicUrl, mainUrl);
  const byName = new Map(deps.backends.map((b) => [b.config.name, b]));

  /** The chain of providers the route's policy accepts, bound to the route's URL (audience and challenges). */
  const authenticator = (policy: RoutePolicy, resourceUrl: string | undefined, own: boolean, name: string) => {
    const providers = routeProviders(policy, auth.providers);
    const routeAuth: AuthConfig = { ...auth, providers };
    const audience = policy.audience ?? (own && resourceUrl ? [resourceUrl] : undefined);
    const rebind = <T extends { discovery: { resourceUrl?: string } }>(c: T, aud?: string[]): T => ({
      ...c,
      ...(aud ? { audience: aud } : {}),
      discovery: { ...c.discovery, ...(resourceUrl ? { resourceUrl } : {}) },
    });
    if (auth.jwt) routeAuth.jwt = rebind(auth.jwt, audience);
    if (auth.introspection) routeAuth.introspection = rebind(auth.introspection, audience);
    const oauth = as && providers.includes("oauth_as") ? oauthProvider(as, resourceUrl) : undefined;
    const chain =
      policy.authType === "none" || (auth.providers.length > 0 && providers.length === 0)
        ? buildChain({ ...auth, providers: [] }, {}, deps.chainDeps)
        : buildChain(routeAuth, oauth ? { oauth_as: oauth } : {}, deps.chainDeps);
    return async (request: Request): Promise<AuthResult> => {
      // The peer's address is only worked out when a provider asks (forwarded headers' trustedSourceCidrs) or a
      // refusal is logged: asking the server for it costs on every request.
      let peer: string | undefined | null = null;
      const peerAddress = () => {
        if (peer === null) peer = deps.peerAddress(request);
        return peer;
      };
      const result = await chain({
        headers: request.headers,
        get peerAddress() {
          return peerAddress();
        },
      });
      if (!result.ok) {
        const reason = result.failure.tried ?? result.failure.description;
        const path = new URL(request.url).pathname;
        deps.log.info("request refused", {
          status: result.failure.status,
          reason,
          path,
          route: name,
          peer: peerAddress(),
        });
        // Credentials that were presented and refused are a security decision; a request without any is the first
        // step of every client's discovery (401 with resource_metadata), not worth a record each.
        if (result.failure.error) {
          deps.audit?.event({
            event: "access_refused",
            success: false,
            reason,
            status: result.failure.status,
            error: result.failure.error,
            route: name,
            path,
          });
        }
      }
      return result;
    };
  };

  /** The route's RFC 9728 document: names the first of its providers that has an authorization server to show. */
  const metadataOf = (policy: RoutePolicy, resourceUrl: string | undefined, name: string) => {
    if (!resourceUrl) return undefined;
    const label = name === "gatehouse" ? "Gatehouse MCP gateway" : `${name} (via Gatehouse)`;
    for (const p of routeProviders(policy, auth.providers)) {
      if (p === "oauth_as" && as) return () => protectedResourceMetadata(as.config, resourceUrl, label);
      const c = p === "jwt" ? auth.jwt : p === "introspection" ? auth.introspection : undefined;
      const issuer = c && ("issuer" in c ? c.issuer : undefined);
      if (c && issuer && c.discovery.mode !== "none") {
        return () => externalResourceMetadata(c.discovery, issuer, resourceUrl, label);
      }
    }
    return undefined;
  };

  const route = (
    name: string,
    path: string,
    resourceUrl: string | undefined,
    policy: RoutePolicy,
    gateway: Gateway,
    own: boolean,
  ): McpRoute => {
    const r: McpRoute = { name, path, policy, gateway, authenticate: authenticator(policy, resourceUrl, own, name) };
    if (resourceUrl) r.resourceUrl = resourceUrl;
    const metadata = metadataOf(policy, resourceUrl, name);
    if (metadata) r.metadata = metadata;
    return r;
  };

  // /mcp: the aggregate, or one backend passed through (with /mcp's own policy and audience).
  const g = config.gateway;
  const mainGateway = g.passthrough
    ? deps.newGateway([byName.get(g.passthrough) as Backend], "/mcp", g.passthrough)
    : deps.newGateway(deps.backends, "/mcp");
  const mainResource = mainUrl ?? (base ? `${base}/mcp` : undefined);
  const main = route(g.passthrough ?? "gatehouse", "/mcp", mainResource, g.route, mainGateway, false);

  const servers = new Map<string, McpRoute>();
  const gatewayOf = new Map<string, Gateway>();
  const serverGateway = (b: Backend) => {
    let gw = gatewayOf.get(b.config.name);
    if (!gw) {
      gw = deps.newGateway([b], `server:${b.config.name}`, b.config.name);
      gatewayOf.set(b.config.name, gw);
    }
    return gw;
  };
  if (g.serverRoutes) {
    for (const b of deps.backends) {
      const path = serverRoutePath(b.config.name);
      const url = base ? `${base}${path}` : undefined;
      servers.set(b.config.name, route(b.config.name, path, url, b.config.route, serverGateway(b), true));
    }
  }

  // Hosts mapped to a backend: that backend, at /mcp of that host, as its own resource.
  const hosts = new Map<string, McpRoute>();
  const scheme = base ? new URL(base).protocol : "https:";
  for (const [host, name] of Object.entries(g.hosts)) {
    const b = byName.get(name) as Backend;
    hosts.set(host, route(name, "/mcp", `${scheme}//${host}/mcp`, b.config.route, serverGateway(b), true));
  }

  const hostOf = (request: Request) => {
    const peer = deps.peerAddress(request);
    const trusted = !!g.trustedProxies && peer !== undefined && inAnyCidr(g.trustedProxies, peer);
    return requestHost(request, trusted);
  };
  const all = [main, ...servers.values(), ...hosts.values()];
  return {
    main,
    servers,
    all,
    hostOf,
    mcpRoute: hosts.size === 0 ? () => main : (request) => routeForHost(hosts, hostOf(request)) ?? main,
    async advertisedScopes(resource, deadline, waitMs) {
      const wanted = canonicalResource(resource);
      const r = all.find((x) => x.resourceUrl !== undefined && canonicalResource(x.resourceUrl) === wanted);
      return r ? r.gateway.catalog.advertisedScopes(deadline, waitMs) : [];
    },
    async health(version, activeClients) {
      return {
        status: "ok",
        backends_configured: deps.backends.length,
        backends_connected: deps.backends.filter((b) => b.client.connected).length,
        active_clients: activeClients,
        tools: await main.gateway.catalog.cachedToolCount(),
        version,
      };
    },
  };
}
