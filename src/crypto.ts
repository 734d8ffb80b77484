// Small hashing and randomness helpers on node:crypto, which Bun, Deno and Node all provide.

import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

export function sha256Hex(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** URL-safe random identifier with `bytes` bytes of entropy. */
export function randomId(bytes = 32): string {
  return randomBytes(bytes).toString("base64url");
}

/** Compares two strings in time that depends only on their length. */
export function constantTimeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  if (x.length !== y.length) return false;
  return timingSafeEqual(x, y);
}
