// `${VAR}` substitution in every string of servers.json (keys included, so bearer tokens can come from the
// environment). Unlike `mcp serve`, an unset variable is an error naming it — an empty secret must never be
// configured by accident — unless a default is written: `${VAR:-default}` (also used when VAR is empty).

import { type ConfigProblem, joinPath } from "./problems.ts";

/** Where substitution reports: a problem, and (a Problems collector) the setting it leaves unusable. */
interface EnvProblems {
  push(p: ConfigProblem): void;
  refuse?(path: string): void;
}

const PATTERN = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

export function substituteString(
  value: string,
  env: Record<string, string | undefined>,
  path: string,
  problems: EnvProblems,
  seen?: (name: string, path: string) => void,
): string {
  if (!value.includes("${")) return value;
  return value.replace(PATTERN, (whole: string, name: string, fallback: string | undefined) => {
    seen?.(name, path);
    const v = env[name];
    if (v !== undefined && (v !== "" || fallback === undefined)) return v;
    if (fallback !== undefined) return fallback;
    problems.push({
      path,
      message: `environment variable ${name} is not set (set it, or write \${${name}:-default} to give a default)`,
    });
    // Left as written, and the setting marked as already wrong: loading fails anyway, and the rules would only add
    // follow-on problems about the placeholder ("must be at least 32 bytes").
    problems.refuse?.(path);
    return whole;
  });
}

/** Returns a copy of `value` with every string (and object key) substituted. */
export function substituteEnv(
  value: unknown,
  env: Record<string, string | undefined>,
  problems: EnvProblems,
  path = "",
  /** Told every variable referenced, with where (secretEnv below). */
  seen?: (name: string, path: string) => void,
): unknown {
  if (typeof value === "string") return substituteString(value, env, path || "(root)", problems, seen);
  if (Array.isArray(value)) return value.map((v, i) => substituteEnv(v, env, problems, `${path}[${i}]`, seen));
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const childPath = joinPath(path, k);
      const key = substituteString(k, env, childPath, problems, seen);
      out[key] = substituteEnv(v, env, problems, childPath, seen);
    }
    return out;
  }
  return value;
}

/** Gatehouse's own variables that hold secrets: never in a backend's environment. */
const OWN_SECRETS = ["MCP_SERVERS_CONFIG", "MCP_AUTH_SERVER_CONFIG", "STATIC_CLIENT_SECRET"];

/**
 * The variables a backend process must not inherit: Gatehouse's own secrets, and every variable servers.json uses
 * outside mcpServers (a client secret, a Redis password, a bearer token, a metrics token). A backend gets a variable
 * of those only through its own `env`.
 */
export function secretEnvNames(referenced: Iterable<[string, string]>): string[] {
  const out = new Set(OWN_SECRETS);
  for (const [name, path] of referenced) if (!path.startsWith("mcpServers")) out.add(name);
  return [...out];
}
