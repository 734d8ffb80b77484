#!/usr/bin/env bun
// The command-line entry and the only file with side effects: read config → build app → listen → stop cleanly.

import { chmodSync, existsSync, rmSync } from "node:fs";
import { dirname, isAbsolute } from "node:path";
import pkg from "../package.json" with { type: "json" };
import { adminApi, reloadApi } from "./admin.ts";
import { type AppDeps, createApp, type GatehouseApp } from "./app.ts";
import { CommandError, parseArgs, parseBind, UsageError } from "./cli/args.ts";
import { doctor } from "./cli/doctor.ts";
import {
  CHECK_HELP,
  CLIENTS_HELP,
  HASH_PASSWORD_HELP,
  HASH_TOKEN_HELP,
  KEYS_HELP,
  MAIN_HELP,
  RELOAD_HELP,
  SERVE_HELP,
  SESSIONS_HELP,
  STATE_HELP,
} from "./cli/help.ts";
import { adminSocketPath, stateCommand } from "./cli/state-commands.ts";
import { stateTransfer } from "./cli/state-transfer.ts";
import { ENV_MODE_SOURCE, envModeConfig } from "./config/env-mode.ts";
import { ConfigError, loadConfig, locateConfig } from "./config/load.ts";
import type { Config } from "./config/types.ts";
import { randomId, sha256Hex } from "./crypto.ts";
import { GatehouseMetrics } from "./gatehouse-metrics.ts";
import { createLogger, isLogLevel, type Logger, type LogLevel } from "./log.ts";
import { isLoopbackHost } from "./net/cidr.ts";
import { bufferedAppender } from "./platform/files.ts";
import { killAllGroups } from "./platform/process-group.ts";
import { currentRuntime, type HttpServer, type Runtime, systemClock } from "./platform/types.ts";
import { configWatcher, type ReloadResult, reloader } from "./reload.ts";
import { stateLocation, stateLocationIn } from "./store/location.ts";
import { openState } from "./store/open.ts";
import { describeRedisUrl } from "./store/redis/connection.ts";
import { StateOpenError } from "./store/types.ts";

const VERSION: string = pkg.version;

function stringEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) out[k] = v;
  return out;
}

function logger(flags: Record<string, string | true>): Logger {
  const level = String(flags["log-level"] ?? process.env.LOG_LEVEL ?? process.env.MCP_LOG_LEVEL ?? "info")
    .toLowerCase()
    // mcp-oauth-proxy's levels, for env-only mode.
    .replace(/^trace$/, "debug")
    .replace(/^fatal$/, "error");
  if (!isLogLevel(level)) throw new UsageError(`log level must be debug, info, warn or error (got "${level}")`);
  const format = String(flags["log-format"] ?? process.env.MCP_LOG_FORMAT ?? "text").toLowerCase();
  if (format !== "text" && format !== "json") throw new UsageError(`log format must be text or json (got "${format}")`);
  return createLogger({ level: level as LogLevel, format });
}

async function readConfig(runtime: Runtime, flag: string | undefined): Promise<Config> {
  const env = process.env as Record<string, string | undefined>;
  return loadConfig(locateConfig(flag, env, process.cwd()), env, runtime.files.readText, process.cwd());
}

/** What this runtime cannot do for a configuration, refused before anything starts, naming it. */
function refuseMissing(runtime: Runtime, config: Config): void {
  const local = config.auth.oauthAs?.logins.find((l) => l.type === "local");
  if (local && !runtime.passwords) {
    throw new CommandError(
      `login "${local.id}" is a local account list, whose passwords are argon2id hashes checked with Bun.password: ` +
        `not available under ${runtime.name}. Run dist/gatehouse (or bun src/main.ts), or use another login.`,
    );
  }
}

async function serve(runtime: Runtime, argv: string[]): Promise<number> {
  const { flags } = parseArgs(argv, {
    config: { value: true },
    bind: { value: true },
    insecure: {},
    "log-level": { value: true },
    "log-format": { value: true },
    help: {},
  });
  if (flags.help) return print(SERVE_HELP);
  const log = logger(flags);
  const env = process.env as Record<string, string | undefined>;
  const location = locateConfig(flags.config as string | undefined, env, process.cwd());
  // Env-only mode runs where mcp-oauth-proxy ran: a container listening on all interfaces at $PORT.
  const envMode = location.fromEnv === true && flags.bind === undefined;
  const { host, port } = parseBind(
    String(flags.bind ?? (envMode ? `0.0.0.0:${env.PORT?.trim() || 8080}` : "127.0.0.1:8080")),
  );
  const loopback = isLoopbackHost(host);
  // mcp-oauth-proxy listened on $PORT: an explicit --bind elsewhere (the container image's CMD binds 0.0.0.0:8080)
  // would quietly listen where the container's port mapping does not point.
  const wanted = env.PORT?.trim();
  if (location.fromEnv && flags.bind !== undefined && wanted && Number(wanted) !== port) {
    throw new UsageError(
      `PORT=${wanted}, but --bind ${flags.bind} listens on port ${port} (the container image's command binds ` +
        "0.0.0.0:8080): publish that port instead (docker run -p <host port>:8080) and drop PORT, or run the command " +
        "`serve` alone, which listens on 0.0.0.0:$PORT as mcp-oauth-proxy did",
    );
  }
  if (envMode) {
    log.warn("env-only mode: listening on all interfaces ($PORT), as mcp-oauth-proxy did; put TLS in front", {
      bind: `${host}:${port}`,
    });
  }
  if (!loopback && !flags.insecure && !envMode) {
    throw new UsageError(
      `refusing to listen on ${host}:${port}: Gatehouse speaks plain HTTP, so a non-loopback address exposes tokens ` +
        "on the network. Bind 127.0.0.1 behind a TLS reverse proxy, or pass --insecure if this network is trusted.",
    );
  }
  const config = await loadConfig(location, env, runtime.files.readText, process.cwd());
  refuseMissing(runtime, config);
  if (location.fromEnv) {
    // Where mcp-oauth-proxy's requests now go, so that an MCP endpoint guessed wrong (/mcp) is seen at once.
    const t = config.backends[0]?.transport;
    const f = config.gateway.forward;
    log.info("env-only mode: the MCP gateway at these paths, every other path forwarded raw to the upstream", {
      paths: config.gateway.paths.join(","),
      mcp: t?.kind === "http" ? t.url : t?.kind === "spawned-http" ? `http://127.0.0.1:${t.port}${t.path}` : undefined,
      forward: f ? `${f.url}${f.appendPath ? " + the request's path" : ""}` : undefined,
      hint: env.MCP_UPSTREAM_PATH?.trim() ? undefined : "set MCP_UPSTREAM_PATH if the upstream serves MCP elsewhere",
    });
  }
  const f = config.auth.forwarded;
  if (config.auth.providers.includes("forwarded") && f && !f.trustedSourceCidrs && !loopback) {
    throw new CommandError(
      `serverAuth.forwarded.trustedSourceCidrs is required when listening on ${host}: without it anyone who can ` +
        `reach Gatehouse could claim any user with the ${f.header} header. List your reverse proxy's addresses.`,
    );
  }

  const state = await openState(config, {
    log: log.child("state"),
    env: process.env as Record<string, string | undefined>,
    cwd: process.cwd(),
    redis: runtime.redis,
  });
  const store = state.store;
  if (store) log.info("authorization server state", { store: store.description });
  if (state.backplane) {
    log.info("shared state for replicas", { redis: state.redis?.description, replica: state.backplane.replica });
    if (process.env.MCP_AUTH_SERVER_PATH || process.env.MCP_AUTH_SERVER_CONFIG) {
      log.warn("state.redis is set: MCP_AUTH_SERVER_PATH and MCP_AUTH_SERVER_CONFIG are ignored");
    }
  }

  // The server that accepted a request knows its peer (asked only when a rule needs the address).
  let server: HttpServer | undefined;
  const auditFile = config.audit.file ? bufferedAppender(config.audit.file) : undefined;
  let app: GatehouseApp;
  let running = config;
  const metrics = new GatehouseMetrics(VERSION, runtime.name);
  if (store) store.writeObserver = (seconds, ok) => metrics.storeWrite(seconds, ok);
  const appDeps: AppDeps = {
    log,
    clock: systemClock,
    spawner: runtime.spawner,
    ...(runtime.passwords ? { passwords: runtime.passwords } : {}),
    version: VERSION,
    peerAddress: (req) => server?.peerAddress(req),
    childEnv: stringEnv(),
    ...(auditFile ? { appendAudit: auditFile.append } : {}),
    ...(store ? { store } : {}),
    ...(state.backplane ? { backplane: state.backplane } : {}),
    ...(state.shared ? { shared: state.shared } : {}),
    metrics,
  };
  try {
    app = await createApp(config, appDeps);
  } catch (e) {
    await state.close();
    throw e;
  }
  try {
    server = runtime.serve(
      { hostname: host, port, maxRequestBodySize: Math.max(config.gateway.maxBodyBytes * 2, 1024 * 1024) },
      (request) => app.gatehouse.handle(request),
    );
  } catch (e) {
    await app.gatehouse.shutdown();
    await state.close();
    throw new CommandError(`cannot listen on ${host}:${port}: ${(e as Error).message}`);
  }

  const { reload } = reloader({
    load: async () => {
      const next = await loadConfig(location, env, runtime.files.readText, process.cwd());
      refuseMissing(runtime, next);
      return next;
    },
    config: () => running,
    current: () => app,
    build: async (next) => {
      if (!store && next.auth.oauthAs && next.auth.providers.includes("oauth_as")) {
        throw new Error("turning on the authorization server (oauth_as) needs a restart: its state is opened at start");
      }
      return createApp(next, { ...appDeps, carry: app.gatehouse.carry() });
    },
    swap: (next, nextConfig) => {
      app = next;
      running = nextConfig;
      watch.update(nextConfig.gateway.watchConfig);
    },
    log: log.child("config"),
    audit: { event: (r) => app.gatehouse.audit.event(r) },
    observe: (ok) => metrics.reload(ok),
  });
  // gateway.watchConfig: a change of the file reloads it (editors write in several steps: one reload per burst).
  const watch = configWatcher(location.path, () => void reload("file changed"), log);
  watch.update(config.gateway.watchConfig);

  const admin = startAdminSocket(runtime, () => app, config, log, reload);
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${server.port}`;
  log.info(`Gatehouse ${VERSION} listening`, {
    url: `${url}/mcp`,
    config: config.source,
    config_from: config.via,
    runtime: runtime.name,
  });
  log.info("backends", { names: config.backends.map((b) => b.name).join(",") });
  log.info("authentication", { providers: config.auth.providers.join(",") || "none (anonymous)" });
  for (const w of config.warnings) log.warn(`configuration: ${w.path}: ${w.message}`, { config: config.source });
  if (config.auth.providers.length === 0 || config.auth.providers.includes("none")) {
    log.warn("anonymous access is enabled: anyone who reaches this address can use every allowed tool");
  }

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) {
        // A second signal while stopping (Ctrl-C twice): no more waiting — the backends' process groups are killed,
        // so none is left behind (each runs in its own group, out of reach of the terminal's).
        const killed = killAllGroups();
        log.warn("second signal: stopping now", { signal, backend_groups_killed: killed });
        auditFile?.flush();
        resolve(1);
        return;
      }
      stopping = true;
      log.info("shutting down", { signal });
      const grace = config.gateway.shutdownGraceMs;
      const closed = server.stop(false); // stop accepting; requests in flight continue
      const deadline = Date.now() + grace;
      await app.gatehouse.sessions.drain(deadline, runtime.sleep);
      admin?.stop();
      watch.update(false);
      await app.gatehouse.shutdown();
      await state.close();
      auditFile?.flush();
      await Promise.race([closed, runtime.sleep(Math.max(0, deadline - Date.now()))]);
      await server.stop(true);
      log.info("stopped");
      resolve(0);
    };
    process.on("SIGTERM", () => void stop("SIGTERM"));
    process.on("SIGINT", () => void stop("SIGINT"));
    // SIGHUP reloads the configuration (systemctl reload); it never stops the process.
    process.on("SIGHUP", () => void reload("SIGHUP"));
  });
}

/** The admin socket beside a state file, for `gatehouse clients …` while this server runs. */
function startAdminSocket(
  runtime: Runtime,
  current: () => GatehouseApp,
  config: Config,
  log: Logger,
  reload: (trigger: string) => Promise<ReloadResult>,
): { stop(): void } | undefined {
  const as = current().gatehouse.authorizationServer;
  const where = stateLocation(config, process.env as Record<string, string | undefined>, process.cwd());
  if (where.kind !== "file") return undefined;
  const path = adminSocketPath(where.path);
  try {
    rmSync(path, { force: true });
    // With state.redis the state commands reach the shared state themselves: the socket is for reload only.
    const api =
      as && !config.state.redis
        ? adminApi({
            store: as.store,
            // The authorization server of the configuration running now (a reload may have replaced it).
            get keys() {
              return current().gatehouse.authorizationServer?.keys ?? as.keys;
            },
            get audit() {
              return current().gatehouse.audit;
            },
            now: () => Date.now(),
            reload: () => reload("gatehouse reload"),
          })
        : reloadApi(() => reload("gatehouse reload"));
    const server = runtime.serveUnix(path, api.fetch);
    chmodSync(path, 0o600);
    return {
      stop() {
        server.stop();
        rmSync(path, { force: true });
      },
    };
  } catch (e) {
    log.warn("admin socket not available: gatehouse clients/keys commands will need the server stopped", {
      socket: path,
      error: (e as Error).message,
    });
    return undefined;
  }
}

async function stateAdmin(runtime: Runtime, command: "clients" | "keys" | "sessions", argv: string[]): Promise<number> {
  const { flags, positionals } = parseArgs(
    argv,
    { config: { value: true }, state: { value: true }, json: {}, help: {} },
    2,
  );
  if (flags.help) return print(command === "keys" ? KEYS_HELP : command === "sessions" ? SESSIONS_HELP : CLIENTS_HELP);
  // --state PATH: the state file the server uses, when it is not beside servers.json (as MCP_AUTH_SERVER_PATH).
  if (typeof flags.state === "string") process.env.MCP_AUTH_SERVER_PATH = flags.state;
  const config = await readConfig(runtime, flags.config as string | undefined);
  return stateCommand(command, positionals[0], positionals[1], {
    config,
    runtime,
    json: flags.json === true,
    out: (s) => process.stdout.write(s),
  });
}

async function state(runtime: Runtime, argv: string[]): Promise<number> {
  const { flags, positionals } = parseArgs(argv, { config: { value: true }, state: { value: true }, help: {} }, 1);
  if (flags.help || positionals[0] === undefined) return print(STATE_HELP);
  if (typeof flags.state === "string") process.env.MCP_AUTH_SERVER_PATH = flags.state;
  const config = await readConfig(runtime, flags.config as string | undefined);
  return stateTransfer(positionals[0], {
    config,
    redis: runtime.redis,
    input: runtime.readStdin,
    out: (s) => process.stdout.write(s),
    err: (s) => process.stderr.write(s),
  });
}

async function reloadCommand(runtime: Runtime, argv: string[]): Promise<number> {
  const { flags } = parseArgs(argv, { config: { value: true }, help: {} });
  if (flags.help) return print(RELOAD_HELP);
  // Not loaded here: the file may well be broken, and then the server is the one to say so.
  const env = process.env as Record<string, string | undefined>;
  const location = locateConfig(flags.config as string | undefined, env, process.cwd());
  const dir = isAbsolute(location.path) ? dirname(location.path) : process.cwd();
  const where = stateLocationIn(dir, env, process.cwd());
  const socket = where.kind === "file" ? adminSocketPath(where.path) : undefined;
  let answer: { status: number; body: string } | undefined;
  if (socket && existsSync(socket)) answer = await runtime.fetchUnix(socket, "POST", "/reload").catch(() => undefined);
  if (!answer) {
    throw new CommandError(
      `no running Gatehouse found for ${location.path}${socket ? ` (no admin socket at ${socket})` : ""}: ` +
        "send it SIGHUP instead (systemctl reload gatehouse, or kill -HUP <pid>)",
    );
  }
  const result = JSON.parse(answer.body) as ReloadResult;
  if (!result.ok) {
    process.stderr.write("gatehouse: the new configuration was refused; the running one stays:\n");
    for (const p of result.problems ?? []) process.stderr.write(`  ${p}\n`);
    return 1;
  }
  const parts = [
    result.added?.length ? `added ${result.added.join(", ")}` : "",
    result.changed?.length ? `restarted ${result.changed.join(", ")}` : "",
    result.removed?.length ? `removed ${result.removed.join(", ")}` : "",
  ].filter(Boolean);
  process.stdout.write(`reloaded${parts.length ? `: ${parts.join("; ")}` : ""}\n`);
  if (result.restartNeeded?.length) {
    process.stdout.write(`needs a restart to take effect: ${result.restartNeeded.join(", ")}\n`);
  }
  for (const w of result.warnings ?? []) process.stdout.write(`warning: ${w}\n`);
  return 0;
}

async function check(runtime: Runtime, argv: string[]): Promise<number> {
  const { flags } = parseArgs(argv, { config: { value: true }, help: {} });
  if (flags.help) return print(CHECK_HELP);
  const env = process.env as Record<string, string | undefined>;
  const location = locateConfig(flags.config as string | undefined, env, process.cwd());
  const which = `configuration: ${location.path}${location.via ? ` (found through ${location.via})` : ""}\n`;
  let config: Config;
  try {
    config = await loadConfig(location, env, runtime.files.readText, process.cwd());
  } catch (e) {
    // The file it read comes first, problems or not: a problem in a file one did not mean to read is found at once.
    if (e instanceof ConfigError) process.stdout.write(which);
    throw e;
  }
  refuseMissing(runtime, config);
  const providers = config.auth.providers.join(", ") || "none (anonymous)";
  process.stdout.write(which);
  const names = config.backends.length > 0 ? ` (${config.backends.map((b) => b.name).join(", ")})` : "";
  process.stdout.write(
    `${config.source}: ok — ${config.backends.length} server${config.backends.length === 1 ? "" : "s"}${names}` +
      `, providers: ${providers}` +
      `${config.auth.acl ? `, ACL: ${config.auth.acl.kind === "legacy" ? "legacy rules" : "role-based"}` : ""}` +
      `${config.state.redis ? `, shared state: ${describeRedisUrl(config.state.redis.url)}` : ""}\n`,
  );
  for (const w of config.warnings) process.stdout.write(`warning: ${w.path}: ${w.message}\n`);
  if (config.source === ENV_MODE_SOURCE) {
    // What the variables amount to, to copy into a servers.json when outgrowing env-only mode.
    const built = envModeConfig(process.env as Record<string, string | undefined>, []);
    process.stdout.write(`equivalent servers.json:\n${JSON.stringify(built, null, 2)}\n`);
  }
  return 0;
}

async function hashToken(runtime: Runtime, argv: string[]): Promise<number> {
  const { flags, positionals } = parseArgs(argv, { help: {} }, 1);
  if (flags.help) return print(HASH_TOKEN_HELP);
  let token = positionals[0];
  if (token === undefined && !process.stdin.isTTY) token = (await runtime.readStdin()).trim();
  if (token === undefined || token === "") {
    token = randomId(32);
    process.stdout.write(`token: ${token}\n`);
  }
  process.stdout.write(`sha256:${sha256Hex(token)}\n`);
  return 0;
}

async function hashPassword(runtime: Runtime, argv: string[]): Promise<number> {
  const { flags, positionals } = parseArgs(argv, { help: {} }, 1);
  if (flags.help) return print(HASH_PASSWORD_HELP);
  const { passwords } = runtime;
  if (!passwords) {
    throw new CommandError(
      `hash-password needs argon2id (Bun.password), which ${runtime.name} does not have: run dist/gatehouse`,
    );
  }
  let password = positionals[0];
  if (password === undefined && !process.stdin.isTTY) password = (await runtime.readStdin()).replace(/\r?\n$/, "");
  if (!password)
    throw new UsageError("give the password as an argument or on standard input (see gatehouse hash-password --help)");
  process.stdout.write(`${await passwords.hash(password)}\n`);
  return 0;
}

function print(text: string): number {
  process.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    const runtime = await currentRuntime();
    switch (command) {
      case undefined:
      case "--help":
      case "-h":
      case "help":
        return print(MAIN_HELP);
      case "--version":
      case "-V":
      case "version":
        return print(VERSION);
      case "serve":
        return await serve(runtime, rest);
      case "check":
        return await check(runtime, rest);
      case "reload":
        return await reloadCommand(runtime, rest);
      case "doctor":
        return await doctor(rest, {
          out: (s) => void process.stdout.write(s),
          err: (s) => void process.stderr.write(s),
        });
      case "hash-token":
        return await hashToken(runtime, rest);
      case "clients":
      case "keys":
      case "sessions":
        return await stateAdmin(runtime, command, rest);
      case "hash-password":
        return await hashPassword(runtime, rest);
      case "state":
        return await state(runtime, rest);
      default:
        throw new UsageError(`unknown command "${command}" (see gatehouse --help)`);
    }
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`${e.format()}\n`);
      process.stderr.write(
        `gatehouse: the configuration has ${e.problems.length} problem${e.problems.length === 1 ? "" : "s"}; nothing was started\n`,
      );
      return 1;
    }
    if (e instanceof StateOpenError) {
      process.stderr.write(`gatehouse: ${e.message}\n`);
      return 1;
    }
    if (e instanceof UsageError) {
      process.stderr.write(`gatehouse: ${e.message}\n`);
      return 2;
    }
    if (e instanceof CommandError) {
      process.stderr.write(`gatehouse: ${e.message}\n`);
      return 1;
    }
    process.stderr.write(`gatehouse: unexpected error: ${(e as Error).stack ?? e}\n`);
    return 1;
  }
}

if (import.meta.main) {
  const code = await main(process.argv.slice(2));
  process.exit(code);
}
