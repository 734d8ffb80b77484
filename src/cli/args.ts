// Command-line parsing: `gatehouse <command> [flags]`. Flags are declared per command; anything undeclared is an
// error, so a mistyped flag never runs with defaults silently.

export interface FlagSpec {
  /** Takes a value (`--config PATH` or `--config=PATH`); otherwise a boolean switch. */
  value?: boolean;
}

export interface Parsed {
  flags: Record<string, string | true>;
  positionals: string[];
}

/** The command line itself is wrong (an unknown flag, a missing argument): exit 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** The command was understood, but what it works on is not there or refused it (no state, no such client): exit 1. */
export class CommandError extends Error {
  override name = "CommandError";
}

/** No state file where a command looked: says where that place came from, and how to name another. */
export function noStateFile(path: string, configSource: string, env: Record<string, string | undefined>): CommandError {
  const from = env.MCP_AUTH_SERVER_PATH?.trim()
    ? "the path given with --state or MCP_AUTH_SERVER_PATH"
    : `beside ${configSource}, where the server keeps it unless told otherwise`;
  return new CommandError(
    `no state file at ${path} (${from}): point to the one the server uses with --state PATH or MCP_AUTH_SERVER_PATH`,
  );
}

export function parseArgs(argv: string[], spec: Record<string, FlagSpec>, maxPositionals = 0): Parsed {
  const flags: Record<string, string | true> = {};
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith("-") || arg === "-") {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = (eq >= 0 ? arg.slice(0, eq) : arg).replace(/^--?/, "");
    const s = spec[name];
    if (!s) throw new UsageError(`unknown flag ${arg.slice(0, eq >= 0 ? eq : undefined)}`);
    if (s.value) {
      const v = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
      if (v === undefined || (eq < 0 && v.startsWith("--"))) throw new UsageError(`--${name} needs a value`);
      flags[name] = v;
    } else {
      if (eq >= 0) throw new UsageError(`--${name} does not take a value`);
      flags[name] = true;
    }
  }
  if (positionals.length > maxPositionals) throw new UsageError(`unexpected argument ${positionals[maxPositionals]}`);
  return { flags, positionals };
}

/** Parses `HOST:PORT`, `[v6]:PORT` or `:PORT` (all interfaces). */
export function parseBind(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text);
  if (!m) throw new UsageError(`--bind expects HOST:PORT (for example 127.0.0.1:8080), got "${text}"`);
  const port = Number(m[3]);
  if (port > 65535) throw new UsageError(`--bind: port ${port} is out of range`);
  const host = m[1] ?? (m[2] === "" ? "0.0.0.0" : (m[2] as string));
  return { host, port };
}
