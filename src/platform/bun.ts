// Bun implementations of the platform interfaces. Only main.ts (and tests) import this file, so the rest of the
// app stays runtime-neutral.

import { appendFileSync } from "node:fs";
import { RedisClient } from "bun";
import type { ChildProcess, FileSystem, PasswordHasher, RedisFactory, Spawner } from "./types.ts";

export const bunSpawner: Spawner = {
  spawn({ command, args, env, cwd }): ChildProcess {
    const proc = Bun.spawn([command, ...args], {
      env,
      cwd,
      stdin: "pipe",
      stdout: "pipe",
      stderr: "pipe",
    });
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
        proc.kill(signal);
      },
    };
  },
};

export const bunFileSystem: FileSystem = {
  readText: (path) => Bun.file(path).text(),
  exists: (path) => Bun.file(path).exists(),
};

/** Appends lines to a file in batches (every 200 ms, or at 64 KB), for audit records; `flush()` at shutdown. */
export function bufferedAppender(path: string): { append(line: string): void; flush(): void } {
  let buffer = "";
  let timer: ReturnType<typeof setTimeout> | undefined;
  const flush = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    if (buffer === "") return;
    const data = buffer;
    buffer = "";
    appendFileSync(path, data, { mode: 0o600 });
  };
  return {
    append(line) {
      buffer += `${line}\n`;
      if (buffer.length >= 65_536) flush();
      else timer ??= setTimeout(flush, 200);
    },
    flush,
  };
}

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
