// Host validation against DNS rebinding (MCP transports, "Security Warning"; security checklist row 12): a page on
// an attacker's domain that resolves to Gatehouse's address reaches it with its own name in Host. Requests whose Host
// is not one Gatehouse is known by get 403 before anything else.
// - gateway.allowedHosts: exactly those (an entry without port matches any port).
// - Otherwise, when public URLs are configured: their hosts (and gateway.hosts), plus what a rebinding attacker
//   cannot use because it is not a domain name: IP literals and single-label names (`localhost`, the `gatehouse` of
//   an nginx `upstream gatehouse {…}`, which nginx sends as Host by default).
// - With neither, nothing is checked (a bearer-only gateway reached by IP would lock itself out); the log says so.
// /health and /healthz stay open for probes.

import { Elysia } from "elysia";
import type { Logger } from "../log.ts";
import { json } from "./responses.ts";

export interface HostPolicy {
  allowed: readonly string[];
  /** Also let IP literals and single-label names through (the default list; not an explicit allowedHosts). */
  nonDomains: boolean;
}

/** Whether a Host header value passes (an entry without a port matches any port). */
export function hostAllowed(host: string | null, policy: HostPolicy): boolean {
  if (policy.allowed.includes("*")) return true;
  if (!host) return true; // HTTP/1.0 or an in-process request: nothing to rebind
  const h = host.toLowerCase();
  const name = h.startsWith("[") ? h.slice(0, h.indexOf("]") + 1) : h.replace(/:\d+$/, "");
  if (policy.allowed.some((a) => a === h || a === name)) return true;
  if (!policy.nonDomains) return false;
  return name.startsWith("[") || /^\d+\.\d+\.\d+\.\d+$/.test(name) || !name.includes(".");
}

/** The default list: hosts of the configured URLs; undefined when no URL is configured. */
export function defaultAllowedHosts(urls: (string | undefined)[], hostMap: string[]): string[] | undefined {
  const hosts = new Set<string>();
  for (const u of urls) {
    if (!u) continue;
    try {
      hosts.add(new URL(u).host.toLowerCase());
    } catch {
      // not a URL
    }
  }
  for (const h of hostMap) hosts.add(h.toLowerCase());
  if (hosts.size === 0) return undefined;
  return [...hosts];
}

export const hostCheck = (deps: { policy: HostPolicy | undefined; log: Logger }) => {
  const app = new Elysia({ name: "host-check" });
  const policy = deps.policy;
  if (!policy) return app;
  return app.onRequest(({ request }) => {
    const host = request.headers.get("host");
    const path = new URL(request.url).pathname;
    if (hostAllowed(host, policy) || path === "/health" || path === "/healthz") return;
    deps.log.warn("request refused: Host not served here (add it to gateway.allowedHosts if it is yours)", { host });
    return json(
      { error: "invalid_request", error_description: `Host ${host} is not served here (gateway.allowedHosts)` },
      403,
    );
  });
};
