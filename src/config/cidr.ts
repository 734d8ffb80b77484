// CIDR ranges in configuration (`10.0.0.0/8`, `::1/128`, or a bare address for one host), checked with node:net's
// own address parser. The matching is net/cidr.ts's.

import { isIP } from "node:net";
import type { Cidr } from "./types.ts";

/** Parses a range; null when malformed (a bad address, a prefix beyond the address's length). */
export function parseCidr(text: string): Cidr | null {
  const slash = text.indexOf("/");
  const address = slash < 0 ? text : text.slice(0, slash);
  const version = isIP(address);
  if (version === 0) return null;
  const max = version === 4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p)) return null;
    prefix = Number(p);
    if (prefix > max) return null;
  }
  return { text, address, prefix, family: version === 4 ? "ipv4" : "ipv6" };
}
