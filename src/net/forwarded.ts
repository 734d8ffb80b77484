// The address of the client a request came from. Behind a reverse proxy listed in gateway.trustedProxies (an nginx,
// Caddy, Cloudflare Tunnel or ngrok agent in front), the socket's peer is the proxy: the client is the right-most
// address of X-Forwarded-For that is not itself a trusted proxy (each proxy appends the address it received from;
// entries further left were written by the client and prove nothing). Without a trusted proxy the peer is the client.
// Used for per-source rate limits, audit records and logs — never for a provider's trustedSourceCidrs, which are
// about the proxy itself.

import type { Cidr } from "../config/types.ts";
import { inAnyCidr, ipVersion } from "./cidr.ts";

export function clientAddress(
  headers: Headers,
  peer: string | undefined,
  trustedProxies: readonly Cidr[] | undefined,
): string | undefined {
  if (!peer || !trustedProxies || !inAnyCidr(trustedProxies, peer)) return peer;
  const forwarded = headers.get("x-forwarded-for");
  if (!forwarded) return peer;
  const hops = forwarded
    .split(",")
    .map((h) => h.trim().replace(/^\[(.*)\](:\d+)?$/, "$1"))
    .filter((h) => h.length > 0);
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i] as string;
    if (ipVersion(hop) === 0) return peer; // not an address: the header cannot be believed
    if (!inAnyCidr(trustedProxies, hop)) return hop;
  }
  return hops[0] ?? peer;
}
