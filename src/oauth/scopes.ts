// Scopes (RFC 6749 §3.3): space-separated, case-sensitive. Unknown scopes in a request are dropped rather than
// refused — clients such as mcp-remote ask for "openid email profile" when they know nothing better — and the
// token response says which scopes were granted.

export function parseScope(value: string | undefined | null): string[] {
  if (!value) return [];
  return [...new Set(value.split(" ").filter((s) => s.length > 0))];
}

/** The scopes to grant for a request: those asked for that are supported, else the defaults. */
export function grantableScopes(requested: string[], supported: string[], defaults: string[]): string[] {
  const known = requested.filter((s) => supported.includes(s));
  return known.length > 0 ? known : [...defaults];
}

export function hasAll(granted: readonly string[], required: readonly string[]): boolean {
  return required.every((s) => granted.includes(s));
}
