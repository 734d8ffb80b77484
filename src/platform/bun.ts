// The Bun implementations of the platform interfaces, loaded by currentRuntime() (types.ts) under Bun only — this
// file imports `bun` — and by tests. The rest of the app stays runtime-neutral.

import { RedisClient } from "bun";
import { groupRunning, signalGroup, trackGroup } from "./process-group.ts";
import type { ChildProcess, FileSystem, PasswordHasher, RedisFactory, Runtime, Spawner } from "./types.ts";

export const bunSpawner: Spawner = {
  spawn({ command, args, env, cwd }): ChildProcess {
    const proc = Bun.spawn([command, ...args], {
      env,
      cwd,
      // setsid(): the child leads its own process group, so stopping it reaches what it started (npx → node).
      detached: true,
      stdin: "pipe",
      stdout: "pipe",
      stderr: "pipe",
    });
    trackGroup(proc.pid, proc.exited);
    return {
      pid: proc.pid,
      stdout: proc.stdout,
      stderr: proc.stderr,
      write(data) {
        proc.stdin.write(data);
        const flushed = proc.stdin.flush();
        if (flushed instanceof Promise) return flushed.then(() => {});
      },
      exited: proc.exited.then(() => proc.exitCode),
      kill(signal = "SIGTERM") {
        if (!signalGroup(proc.pid, signal)) proc.kill(signal); // no group left: the child itself, if still there
      },
      descendantsAlive: () => groupRunning(proc.pid),
    };
  },
};

export const bunFileSystem: FileSystem = {
  readText: (path) => Bun.file(path).text(),
  exists: (path) => Bun.file(path).exists(),
};

/** argon2id through Bun's built-in password hashing (no dependency). */
export const bunPasswords: PasswordHasher = {
  hash: (password) => Bun.password.hash(password, { algorithm: "argon2id" }),
  verify: async (password, hash) => {
    try {
      return await Bun.password.verify(password, hash);
    } catch {
      return false; // a malformed hash never matches
    }
  },
};

/**
 * Bun's built-in Redis client (no dependency). Without an offline queue, a command sent while disconnected fails at
 * once instead of waiting: Gatehouse answers 503 rather than hang (src/store/redis/connection.ts bounds the rest).
 */
export const bunRedis: RedisFactory = (url) =>
  new RedisClient(url, {
    enableOfflineQueue: false,
    autoReconnect: true,
    maxRetries: 1_000_000,
    connectionTimeout: 3_000,
  });

export const bunRuntime: Runtime = {
  name: `Bun ${Bun.version}`,
  spawner: bunSpawner,
  files: bunFileSystem,
  passwords: bunPasswords,
  redis: bunRedis,
  serve(options, handler) {
    const server = Bun.serve({
      hostname: options.hostname,
      port: options.port,
      // SSE streams stay open for long: keep-alive comments flow every gateway.sseKeepalive (default 25 s).
      idleTimeout: 255,
      maxRequestBodySize: options.maxRequestBodySize,
      fetch: handler,
    });
    return {
      port: server.port ?? options.port,
      peerAddress: (request) => server.requestIP(request)?.address,
      stop: async (force) => {
        await server.stop(force);
      },
    };
  },
  serveUnix(path, handler) {
    const server = Bun.serve({ unix: path, fetch: handler });
    return { stop: () => void server.stop(true) };
  },
  async fetchUnix(socket, method, path) {
    const res = await fetch(`http://gatehouse${path}`, { method, unix: socket } as RequestInit);
    return { status: res.status, body: await res.text() };
  },
  readStdin: () => Bun.stdin.text(),
  sleep: (ms) => Bun.sleep(ms),
};
