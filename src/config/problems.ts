// The one collector of configuration problems. Every section adds to it; nothing starts unless it is empty. Each
// problem has the JSON path of the setting at fault and what was found and expected, and is reported once. Schema
// checks mark the paths they refused, so the rules that come after never read a value of the wrong type (they use
// the default instead) and every other problem is still found in the same run.

import type { TSchema } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { parseCidr } from "./cidr.ts";
import { parseDuration } from "./duration.ts";
import type { Cidr } from "./types.ts";

export interface ConfigProblem {
  path: string;
  message: string;
}

export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly problems: ConfigProblem[],
  ) {
    super(`${source}: ${problems.length} problem${problems.length === 1 ? "" : "s"}`);
    this.name = "ConfigError";
  }

  /** One line per problem, as `gatehouse check` prints them. */
  format(): string {
    return this.problems.map((p) => `${this.source}: ${p.path || "(root)"}: ${p.message}`).join("\n");
  }
}

/** Settings whose values are secrets (or hold some): a problem with one names its shape, never its text. */
const SECRET_SETTING = /(secret|token|tokens|password|passwordhash|key|authorization|credentials?)$/i;
/** Settings that hold secrets among other things: anything under them is described, never quoted. */
const SECRET_HOLDERS = new Set(["headers", "env", "introspectionClients", "bearer", "redis", "logins", "users", "jwt"]);
/** A URL with a password in it (redis://:pw@host). */
const USERINFO = /^[a-z][a-z0-9+.-]*:\/\/[^/@\s]*:[^/@\s]*@/i;

/** `found(value)`, unless `path` is or is under a secret: then only what kind of value it is, and its length. */
export function foundAt(path: string, value: unknown): string {
  const segments = path
    .split(/[.[\]]+/)
    .map((x) => x.replace(/^"|"$/g, ""))
    .filter(Boolean);
  const secret =
    segments.some((x) => SECRET_SETTING.test(x) || SECRET_HOLDERS.has(x)) ||
    (typeof value === "string" && USERINFO.test(value));
  if (!secret) return found(value);
  if (typeof value === "string") return `a string of ${value.length} characters (not shown: a secret)`;
  if (value === undefined) return found(value);
  if (value === null || typeof value !== "object")
    return `${value === null ? "null" : `a ${typeof value}`} (not shown)`;
  return `${Array.isArray(value) ? "an array" : "an object"} (not shown: it holds secrets)`;
}

/** `found(value)` for a URL setting: its userinfo and query (where passwords and API keys ride) left out. */
export function foundUrl(value: unknown): string {
  if (typeof value !== "string") return found(value);
  return found(value.replace(/\/\/[^/@\s]*@/, "//…@").replace(/\?.*$/, "?…"));
}

/** A short rendering of a bad value for error messages (never the whole object). */
export function found(value: unknown): string {
  if (value === undefined) return "nothing";
  const s = JSON.stringify(value);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** `a.b`, or `a["odd key"]` when the key is not a plain identifier. */
export function joinPath(parent: string, key: string | number): string {
  if (typeof key === "number") return `${parent}[${key}]`;
  if (/^[A-Za-z_$][A-Za-z0-9_$-]*$/.test(key)) return parent ? `${parent}.${key}` : key;
  return `${parent}[${JSON.stringify(key)}]`;
}

/** Edit distance with transpositions (optimal string alignment), for "did you mean" (small strings only). */
function distance(x: string, y: string): number {
  const a = x.toLowerCase();
  const b = y.toLowerCase();
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  const at = (i: number, j: number) => (d[i] as number[])[j] as number;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, at(i - 2, j - 2) + 1);
      (d[i] as number[])[j] = v;
    }
  }
  return at(a.length, b.length);
}

/** The known key an unknown one was probably meant to be, if one is close enough. */
export function suggest(unknown: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Number.POSITIVE_INFINITY;
  for (const k of known) {
    const d = distance(unknown, k);
    if (d < bestD) {
      best = k;
      bestD = d;
    }
  }
  const limit = unknown.length <= 4 ? 1 : unknown.length <= 8 ? 2 : 3;
  return best !== undefined && bestD <= limit ? best : undefined;
}

export function unknownKeyMessage(key: string, known: readonly string[]): string {
  const near = suggest(key, known);
  return near
    ? `unknown key (did you mean "${near}"?)`
    : "unknown key (check its spelling; unknown keys are not ignored)";
}

function pointerToPath(base: string, pointer: string): string {
  let path = base;
  for (const raw of pointer.split("/").slice(1)) {
    const key = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    path = /^\d+$/.test(key) ? `${path}[${key}]` : joinPath(path, key);
  }
  return path;
}

function expected(schema: TSchema, fallback: string): string {
  if (typeof schema.description === "string") return schema.description;
  if (schema.const !== undefined) return JSON.stringify(schema.const);
  return fallback.replace(/^Expected /, "").replace(/^Unexpected property$/, "");
}

/** What to put in a required setting that users most often leave out, where "is required" alone does not help. */
const REQUIRED_HINTS: Record<string, string> = {
  "serverAuth.oauthAs.issuerUrl":
    "is required but missing: the public https:// URL clients reach Gatehouse at (behind ngrok or a Cloudflare " +
    "Tunnel, the tunnel's URL) — Gatehouse never builds its issuer from X-Forwarded-* headers",
};

export class Problems {
  private readonly list: ConfigProblem[] = [];
  /** What boots but deserves a word (logged by serve, printed by check): never a reason to refuse. */
  readonly warnings: ConfigProblem[] = [];
  private readonly seen = new Set<string>();
  /** Paths a schema refused (the rules after it must not read them). */
  private readonly refused = new Set<string>();
  /** Paths holding an unset ${VAR} (refuse()). */
  private readonly unset = new Set<string>();
  private checking = false;

  push(p: ConfigProblem): void {
    // A setting the schema refused has its problem already: what the rules would add about it is noise.
    if (this.refused.has(p.path) && !this.checking) return;
    // A setting whose variable is unset has its one problem ("… is not set").
    if (this.unset.has(p.path) && !p.message.startsWith("environment variable ")) return;
    const key = `${p.path}\u0000${p.message}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.list.push(p);
  }

  /**
   * Marks `path` as having its problem already (an unset variable in it): later problems at that path are not
   * added. The setting stays in place (unlike a schema refusal), so no rule reports it as missing either.
   */
  refuse(path: string): void {
    this.unset.add(path);
  }

  add(path: string, message: string): void {
    this.push({ path, message });
  }

  warn(path: string, message: string): void {
    this.warnings.push({ path, message });
  }

  get all(): readonly ConfigProblem[] {
    return this.list;
  }

  get count(): number {
    return this.list.length;
  }

  /** Whether the schema refused `path` or anything under it. */
  failed(path: string): boolean {
    if (path === "") return this.refused.size > 0;
    for (const r of this.refused) {
      if (r === path || r.startsWith(`${path}.`) || r.startsWith(`${path}[`)) return true;
    }
    return false;
  }

  /** `value` when the schema accepted it (and everything under it), else `fallback`. */
  valid<T>(path: string, value: T | undefined, fallback: T): T {
    return value === undefined || this.failed(path) ? fallback : value;
  }

  /** Runs a TypeBox schema and turns its errors into problems; returns true when the value is valid. */
  check(schema: TSchema, value: unknown, base: string): boolean {
    let ok = true;
    const here = new Set<string>();
    this.checking = true;
    try {
      ok = this.collect(schema, value, base, here);
    } finally {
      this.checking = false;
    }
    return ok;
  }

  private collect(schema: TSchema, value: unknown, base: string, here: Set<string>): boolean {
    let ok = true;
    for (const e of Value.Errors(schema, value)) {
      ok = false;
      const path = pointerToPath(base, e.path);
      this.refused.add(path);
      if (here.has(path)) continue; // one problem per location is enough
      here.add(path);
      if (e.message === "Unexpected property") {
        const known = Object.keys((e.schema as { properties?: Record<string, unknown> }).properties ?? {});
        this.add(path, unknownKeyMessage(path.split(/[.[]/).pop()?.replace(/["\]]/g, "") ?? "", known));
      } else if (e.message.startsWith("Expected required property")) {
        this.add(path, REQUIRED_HINTS[path] ?? "is required but missing");
      } else {
        this.add(path, `found ${foundAt(path, e.value)}, expected ${expected(e.schema, e.message)}`);
      }
    }
    return ok;
  }

  /**
   * A copy of `value` without what the schema refused under `base` (a refused element drops its whole array), so
   * the rules that follow see each setting as valid or absent, and fall back to its default.
   */
  prune<T>(value: T, base: string): T {
    if (this.refused.size === 0 || !this.failed(base)) return value;
    if (Array.isArray(value)) {
      return (value.some((_, i) => this.failed(`${base}[${i}]`)) ? undefined : value) as T;
    }
    if (!value || typeof value !== "object") return (this.refused.has(base) ? undefined : value) as T;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const path = joinPath(base, k);
      if (this.refused.has(path)) continue;
      const kept = this.prune(v, path);
      if (kept !== undefined) out[k] = kept;
    }
    return out as T;
  }

  /** A duration setting ("30s", "5m" or seconds), in milliseconds; the fallback when absent or bad. */
  duration(value: string | number | undefined, path: string, fallback: number): number {
    if (value === undefined || this.failed(path)) return fallback;
    const ms = parseDuration(value);
    if (ms === null) {
      this.add(path, `found ${found(value)}, expected a duration such as "30s", "5m" or "1h"`);
      return fallback;
    }
    return ms;
  }

  /** A list of CIDRs; undefined when absent. */
  cidrs(list: string[] | undefined, path: string): Cidr[] | undefined {
    if (list === undefined || this.failed(path)) return undefined;
    const out: Cidr[] = [];
    for (const [i, text] of list.entries()) {
      const c = parseCidr(text.trim());
      if (c) out.push(c);
      else this.add(`${path}[${i}]`, `found ${found(text)}, expected a CIDR such as "10.0.0.0/8"`);
    }
    return out;
  }

  /** An https:// URL (http only on loopback, for tests). */
  httpsUrl(value: string | undefined, path: string): void {
    if (value === undefined || this.failed(path)) return;
    let ok = false;
    try {
      const u = new URL(value);
      ok = u.protocol === "https:" || /^http:\/\/(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?(\/|$)/.test(value);
    } catch {
      ok = false;
    }
    if (!ok) this.add(path, `found ${foundUrl(value)}, expected an https:// URL (http only on loopback, for tests)`);
  }

  /** Throws the ConfigError listing every problem, when there is one. */
  throwIfAny(source: string): void {
    if (this.list.length > 0) throw new ConfigError(source, [...this.list]);
  }
}
