// Glob patterns used by ACLs and allowlists: `*` matches any run of characters (including none), anywhere in the
// pattern; every other character matches itself, case-sensitively (tool names are compared exactly).

export type Matcher = (value: string) => boolean;

const cache = new Map<string, Matcher>();

export function globMatcher(pattern: string): Matcher {
  const hit = cache.get(pattern);
  if (hit) return hit;
  let m: Matcher;
  if (pattern === "*") m = () => true;
  else if (!pattern.includes("*")) m = (v) => v === pattern;
  else {
    const source = pattern
      .split("*")
      .map((part) => part.replace(/[.+?^${}()|[\]\\/]/g, "\\$&"))
      .join("[\\s\\S]*");
    const re = new RegExp(`^${source}$`, "u");
    m = (v) => re.test(v);
  }
  cache.set(pattern, m);
  return m;
}

export function matchesAny(patterns: readonly string[] | undefined, value: string): boolean {
  if (!patterns) return false;
  for (const p of patterns) if (globMatcher(p)(value)) return true;
  return false;
}
