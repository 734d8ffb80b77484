// IP address and CIDR matching for source-address rules (trustedSourceCidrs, trustedProxies) and the SSRF guard of
// client metadata documents, on node:net's BlockList (Bun, Deno and Node all provide it). IPv4, IPv6 and
// IPv4-mapped IPv6 (`::ffff:127.0.0.1`, as Bun reports IPv4 peers on dual-stack sockets) are all understood: a
// mapped address matches the IPv4 rules.

import { BlockList, isIP } from "node:net";
import { parseCidr } from "../config/cidr.ts";
import type { Cidr } from "../config/types.ts";

export type { Cidr };
export { parseCidr };

/** The address without brackets or an IPv6 zone, and its family; undefined when it is not an IP address. */
function address(text: string): { address: string; family: "ipv4" | "ipv6" } | undefined {
  let s = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  const zone = s.indexOf("%");
  if (zone >= 0) s = s.slice(0, zone);
  const v = isIP(s);
  return v === 0 ? undefined : { address: s, family: v === 4 ? "ipv4" : "ipv6" };
}

/** 4, 6, or 0 when the text is not an IP address (brackets and zones allowed). */
export function ipVersion(text: string): 0 | 4 | 6 {
  const a = address(text);
  return a ? (a.family === "ipv4" ? 4 : 6) : 0;
}

function blockList(cidrs: readonly Cidr[]): BlockList {
  const list = new BlockList();
  for (const c of cidrs) list.addSubnet(c.address, c.prefix, c.family);
  return list;
}

/** Lists come from configuration and never change: each is compiled once. */
const compiled = new WeakMap<readonly Cidr[], BlockList>();

export function inAnyCidr(cidrs: readonly Cidr[], text: string | undefined): boolean {
  if (!text || cidrs.length === 0) return false;
  const a = address(text);
  if (!a) return false;
  let list = compiled.get(cidrs);
  if (!list) {
    list = blockList(cidrs);
    compiled.set(cidrs, list);
  }
  return list.check(a.address, a.family);
}

const LOOPBACK = blockList(["127.0.0.0/8", "::1/128"].map((c) => parseCidr(c) as Cidr));

/** True for 127.0.0.0/8, ::1 and the name `localhost`: a bind that only local processes can reach. */
export function isLoopbackHost(host: string): boolean {
  if (host === "localhost") return true;
  const a = address(host);
  return a !== undefined && LOOPBACK.check(a.address, a.family);
}

/** Ranges a server-side fetch must never reach (SSRF defence): private, loopback, link-local, CGNAT, multicast… */
const NON_PUBLIC = blockList(
  [
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "::/128",
    "::1/128",
    "64:ff9b::/96",
    "100::/64",
    "2001:db8::/32",
    "fc00::/7",
    "fe80::/10",
    "fec0::/10",
    "ff00::/8",
  ].map((c) => parseCidr(c) as Cidr),
);

/** True for an address on the public internet (IPv4-mapped IPv6 is judged as IPv4). */
export function isPublicAddress(text: string): boolean {
  const a = address(text);
  return a !== undefined && !NON_PUBLIC.check(a.address, a.family);
}
