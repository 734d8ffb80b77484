// Resource indicators (RFC 8707) compared canonically: scheme and host case-insensitive, default port dropped,
// `https://h` ≡ `https://h/` and `/mcp` ≡ `/mcp/` (MCP authorization: "Canonical Server URI"; Claude and the
// Python SDK add a trailing slash to origin-only URLs).

/** The canonical form, or undefined when the value is not an absolute http(s) URI without fragment (RFC 8707 §2). */
export function canonicalResource(value: string): string | undefined {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    return undefined;
  }
  if ((u.protocol !== "https:" && u.protocol !== "http:") || u.hash !== "" || value.includes("#")) return undefined;
  const path = u.pathname.endsWith("/") ? u.pathname.slice(0, -1) : u.pathname;
  return `${u.protocol}//${u.host}${path}${u.search}`;
}

export function sameResource(a: string, b: string): boolean {
  const x = canonicalResource(a);
  return x !== undefined && x === canonicalResource(b);
}
