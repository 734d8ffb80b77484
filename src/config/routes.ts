// Routes in configuration: the policy of each route (gateway.route for /mcp, mcpServers.<name>.route for
// /servers/<name>/mcp), pass-through, host-based routing and the public base URL, with the checks that need the
// whole file (a pass-through or host naming a server that does not exist, an authType no provider can satisfy).

import { uriTag } from "../naming.ts";
import { DEFAULTS } from "./defaults.ts";
import { found, type Problems } from "./problems.ts";
import type { RoutePolicyInput } from "./schema.ts";
import type { AuthConfig, BackendConfig, GatewayConfig, ProviderKind, RoutePolicy } from "./types.ts";

export const DEFAULT_ROUTE_POLICY: RoutePolicy = DEFAULTS.route;

export function routePolicy(input: RoutePolicyInput | undefined): RoutePolicy {
  const p: RoutePolicy = {
    authType: (input?.authType as RoutePolicy["authType"] | undefined) ?? DEFAULT_ROUTE_POLICY.authType,
    requireAuthForToolsList: input?.requireAuthForToolsList ?? DEFAULT_ROUTE_POLICY.requireAuthForToolsList,
    requireAuthForToolsCall: input?.requireAuthForToolsCall ?? DEFAULT_ROUTE_POLICY.requireAuthForToolsCall,
    publicTools: input?.publicTools ?? [...DEFAULT_ROUTE_POLICY.publicTools],
  };
  if (input?.audience) p.audience = input.audience;
  if (input?.methodScopes) p.methodScopes = input.methodScopes as Record<string, string[]>;
  return p;
}

/** The providers of the chain a route accepts. */
export function routeProviders(policy: RoutePolicy, providers: readonly ProviderKind[]): ProviderKind[] {
  switch (policy.authType) {
    case "none":
      return [];
    case "oauth":
      return providers.filter((p) => p === "oauth_as");
    case "jwt":
      return providers.filter((p) => p === "jwt" || p === "introspection");
    case "both":
      return [...providers];
  }
}

export function publicUrlProblems(value: string | undefined, problems: Problems): string | undefined {
  if (value === undefined) return undefined;
  try {
    const u = new URL(value);
    if (u.protocol === "https:" || u.protocol === "http:") return `${u.origin}${u.pathname.replace(/\/$/, "")}`;
  } catch {
    // reported below
  }
  problems.push({
    path: "gateway.publicUrl",
    message: `found ${found(value)}, expected the public base URL such as "https://mcp.example.com"`,
  });
  return undefined;
}

/** Checks across the file: names that must exist, and route policies that some provider can satisfy. */
export function routeProblems(
  gateway: GatewayConfig,
  backends: BackendConfig[],
  auth: AuthConfig,
  problems: Problems,
): void {
  const names = new Set(backends.map((b) => b.name));
  const tags = new Map<string, string>();
  for (const b of backends) {
    const other = tags.get(uriTag(b.name));
    if (other) {
      problems.push({
        path: `mcpServers.${b.name}`,
        message: `its resource URIs would be prefixed "${uriTag(b.name)}+" like those of "${other}": rename one`,
      });
    } else tags.set(uriTag(b.name), b.name);
  }
  const known = [...names].map((n) => JSON.stringify(n)).join(", ");
  const forwarded = gateway.forward?.server;
  if (forwarded !== undefined) {
    const b = backends.find((x) => x.name === forwarded);
    if (!b) {
      problems.push({
        path: "gateway.forward.server",
        message: `names ${JSON.stringify(forwarded)}, which is not in mcpServers (servers: ${known})`,
      });
    } else if (b.transport.kind === "stdio") {
      problems.push({
        path: "gateway.forward.server",
        message: `names ${JSON.stringify(forwarded)}, a stdio server: requests can only be forwarded to an HTTP one`,
      });
    }
  }
  if (gateway.passthrough !== undefined && !names.has(gateway.passthrough)) {
    problems.push({
      path: "gateway.passthrough",
      message: `names ${JSON.stringify(gateway.passthrough)}, which is not in mcpServers (servers: ${known})`,
    });
  }
  for (const [host, name] of Object.entries(gateway.hosts)) {
    if (!names.has(name)) {
      problems.push({
        path: `gateway.hosts.${host}`,
        message: `names ${JSON.stringify(name)}, which is not in mcpServers (servers: ${known})`,
      });
    }
    if (host !== host.toLowerCase() || host.includes("/")) {
      problems.push({ path: `gateway.hosts.${host}`, message: "write the host in lower case, without scheme or path" });
    }
  }
  const policies: [string, RoutePolicy][] = [
    ["gateway.route", gateway.route],
    ...backends.map((b): [string, RoutePolicy] => [`mcpServers.${b.name}.route`, b.route]),
  ];
  for (const [path, policy] of policies) {
    if (policy.authType === "none" || auth.providers.length === 0) continue;
    if (routeProviders(policy, auth.providers).length === 0) {
      const needs = policy.authType === "oauth" ? '"oauth_as"' : '"jwt" or "introspection"';
      problems.push({
        path: `${path}.authType`,
        message: `is "${policy.authType}", but serverAuth.providers has no ${needs} provider`,
      });
    }
  }
}
