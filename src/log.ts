// Structured logging: one line per event, as text (default) or JSON, written to an injected sink.
// Callers pass fields, never whole requests, so secrets stay out by construction; `redact` exists for the few
// places that must mention a credential-shaped value.

import { currentRequest } from "./request-context.ts";

export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFields = Record<string, string | number | boolean | null | undefined>;

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** Writes whatever the level (audit records must not vanish because LOG_LEVEL=warn). */
  always(msg: string, fields?: LogFields): void;
  /** A logger whose lines carry `component`. */
  child(component: string): Logger;
  enabled(level: LogLevel): boolean;
}

export interface LogOptions {
  level?: LogLevel;
  format?: "text" | "json";
  /** Receives each finished line (without a trailing newline). Defaults to stderr. */
  sink?: (line: string) => void;
  now?: () => Date;
}

export function isLogLevel(value: string): value is LogLevel {
  return value in ORDER;
}

/** Values that contain spaces, quotes or `=` are quoted so that `key=value` lines stay machine-readable. */
function textValue(v: string | number | boolean | null): string {
  const s = String(v);
  return /[\s"=]/.test(s) || s === "" ? JSON.stringify(s) : s;
}

export function createLogger(options: LogOptions = {}, component = "gatehouse"): Logger {
  const min = ORDER[options.level ?? "info"];
  const format = options.format ?? "text";
  const sink = options.sink ?? ((line: string) => process.stderr.write(`${line}\n`));
  const now = options.now ?? (() => new Date());

  const write = (level: LogLevel, msg: string, fields?: LogFields, force = false) => {
    if (!force && ORDER[level] < min) return;
    const time = now().toISOString();
    // The request being served, if any: every line of one connection attempt can be found by it.
    const req = currentRequest()?.id;
    if (format === "json") {
      const record: Record<string, unknown> = { time, level, component, msg };
      if (req) record.req = req;
      for (const [k, v] of Object.entries(fields ?? {})) if (v !== undefined) record[k] = v;
      sink(JSON.stringify(record));
      return;
    }
    let line = `${time} ${level.toUpperCase().padEnd(5)} [${component}] ${msg}`;
    for (const [k, v] of Object.entries(fields ?? {})) if (v !== undefined) line += ` ${k}=${textValue(v)}`;
    if (req) line += ` req=${req}`;
    sink(line);
  };

  return {
    debug: (m, f) => write("debug", m, f),
    info: (m, f) => write("info", m, f),
    warn: (m, f) => write("warn", m, f),
    error: (m, f) => write("error", m, f),
    always: (m, f) => write("info", m, f, true),
    child: (name) => createLogger(options, name),
    enabled: (level) => ORDER[level] >= min,
  };
}

/** Keeps enough of a secret to recognise it in a log, never enough to use it. */
export function redact(secret: string): string {
  if (secret.length <= 8) return "***";
  return `${secret.slice(0, 4)}…(${secret.length} chars)`;
}

/** A logger that keeps lines in memory, for tests that assert on what was logged. */
export function memoryLogger(level: LogLevel = "debug"): Logger & { lines: string[] } {
  const lines: string[] = [];
  const logger = createLogger({ level, sink: (l) => lines.push(l) });
  return Object.assign(logger, { lines });
}
