// The small interfaces behind which runtime-specific services sit (process spawning, files, time), so that
// `createApp` runs under Bun, Deno or a test with fakes. Implementations for Bun live in ./bun.ts.

export interface SpawnOptions {
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd?: string;
}

/** A running child process with piped stdio. */
export interface ChildProcess {
  readonly pid: number;
  readonly stdout: ReadableStream<Uint8Array>;
  readonly stderr: ReadableStream<Uint8Array>;
  /** Writes to stdin; resolves once the bytes are handed to the OS. */
  write(data: string): void | Promise<void>;
  /** Resolves with the exit code (null when killed by a signal) once the process has exited. */
  readonly exited: Promise<number | null>;
  /**
   * Signals the child and, where the runtime can, every process it started (its process group): a backend run as
   * `sh -c "npx -y server"` is three processes, and signalling only the shell would leave the server running.
   */
  kill(signal?: "SIGTERM" | "SIGKILL"): void;
  /** Whether a process the child started is still running after the child itself exited (absent: not known). */
  descendantsAlive?(): boolean;
}

export interface Spawner {
  /** Throws when the command cannot be started (missing executable, bad cwd). */
  spawn(options: SpawnOptions): ChildProcess;
}

export interface FileSystem {
  readText(path: string): Promise<string>;
  exists(path: string): Promise<boolean>;
}

/** Identity and size of a file: a replaced file has another inode, a file another process appended to another size. */
export interface FileIdentity {
  ino: number;
  size: number;
  mtimeMs: number;
}

/**
 * The synchronous file operations the JSON-file store needs (it writes one batch and its fsync without yielding, so
 * nothing can read a change that is not yet durable). Errors carry Node's `code` (ENOSPC, EIO, EROFS …). Behind an
 * interface so that tests can inject short writes and faults at chosen moments (tests/store/faulty-files.ts).
 */
export interface StateFiles {
  exists(path: string): boolean;
  readText(path: string): string;
  /** Opens for appending, creating the file with `mode` if absent. */
  openAppend(path: string, mode: number): number;
  /** Creates (or, unless `exclusive`, truncates) a file for writing. */
  openWrite(path: string, mode: number, exclusive?: boolean): number;
  /** Writes `length` bytes of `data` from `offset`; returns how many were written, which may be fewer. */
  write(fd: number, data: Uint8Array, offset: number, length: number): number;
  fsync(fd: number): void;
  truncate(fd: number, size: number): void;
  close(fd: number): void;
  rename(from: string, to: string): void;
  unlink(path: string): void;
  /** Undefined when the file does not exist. */
  stat(path: string): FileIdentity | undefined;
  fstat(fd: number): FileIdentity;
  /** fsyncs a directory, so that a rename in it survives a power loss (a no-op where directories cannot be opened). */
  syncDir(path: string): void;
}

/** Password hashing (argon2id) for local accounts. */
export interface PasswordHasher {
  hash(password: string): Promise<string>;
  verify(password: string, hash: string): Promise<boolean>;
}

export type TimerHandle = { readonly __timer: unique symbol } | number | object;

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
  setInterval(fn: () => void, ms: number): TimerHandle;
  clearInterval(handle: TimerHandle): void;
}

/** Wall-clock time and the runtime's timers; timers are unref'd so they never keep a process alive. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => unref(setTimeout(fn, ms)),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
  setInterval: (fn, ms) => unref(setInterval(fn, ms)),
  clearInterval: (h) => clearInterval(h as ReturnType<typeof setInterval>),
};

function unref<T>(handle: T): T {
  const h = handle as { unref?: () => void };
  if (typeof h?.unref === "function") h.unref();
  else if (typeof handle === "number" && typeof (globalThis as { Deno?: unknown }).Deno === "object") {
    (globalThis as unknown as { Deno: { unrefTimer(id: number): void } }).Deno.unrefTimer(handle);
  }
  return handle;
}

/** A spawner for runtimes or tests where child processes are not available. */
export const noSpawner: Spawner = {
  spawn(options) {
    throw new Error(`cannot start "${options.command}": this runtime has no process spawner configured`);
  },
};

/**
 * One Redis connection, as Bun's built-in client offers it (the only implementation; tests wrap it to inject faults).
 * Commands fail at once while it is disconnected (no offline queue); it reconnects by itself for a while, then stays
 * closed (`onclose`) until `connect()` is called again.
 */
export interface RedisClientLike {
  send(command: string, args: string[]): Promise<unknown>;
  subscribe(channel: string, listener: (message: string, channel: string) => void): Promise<unknown>;
  unsubscribe(channel: string): Promise<void>;
  readonly connected: boolean;
  onconnect: (() => void) | null;
  onclose: ((error: Error) => void) | null;
  connect(): Promise<void>;
  close(): void;
}

/** Opens Redis connections to `url` (redis://, rediss://, with a password and database in the URL). */
export type RedisFactory = (url: string) => RedisClientLike;

/** A listening HTTP server. */
export interface HttpServer {
  readonly port: number;
  /** The address of the peer that sent a request this server accepted. */
  peerAddress(request: Request): string | undefined;
  /** Stops accepting; `force` also ends connections still open. Resolves once stopped. */
  stop(force: boolean): Promise<void>;
}

export interface ServeOptions {
  hostname: string;
  port: number;
  /** Bodies larger than this are refused by the server itself (Gatehouse also bounds them per route). */
  maxRequestBodySize: number;
}

/**
 * What the command line needs from the runtime it runs on: Bun (platform/bun.ts) or Deno (platform/deno.ts). The app
 * itself only sees the narrower interfaces above. A capability a runtime lacks is undefined, and the command that
 * needs it says so, naming it.
 */
export interface Runtime {
  /** "Bun 1.4.5", "Deno 2.9.6". */
  readonly name: string;
  readonly spawner: Spawner;
  readonly files: FileSystem;
  /** argon2id, for local accounts and `gatehouse hash-password`. */
  readonly passwords?: PasswordHasher;
  /** A Redis client, for state.redis. */
  readonly redis?: RedisFactory;
  serve(options: ServeOptions, handler: (request: Request) => Response | Promise<Response>): HttpServer;
  /** An HTTP server on a unix socket (the admin socket beside a state file). */
  serveUnix(path: string, handler: (request: Request) => Response | Promise<Response>): { stop(): void };
  /** One request to an HTTP server on a unix socket (the CLI asking a running server). */
  fetchUnix(socket: string, method: string, path: string): Promise<{ status: number; body: string }>;
  readStdin(): Promise<string>;
  sleep(ms: number): Promise<void>;
}

/** The runtime this process runs on; each implementation is loaded only there (Bun's imports `bun`). */
export async function currentRuntime(): Promise<Runtime> {
  const g = globalThis as { Bun?: unknown; Deno?: unknown };
  if (g.Bun !== undefined) return (await import("./bun.ts")).bunRuntime;
  if (g.Deno !== undefined) return (await import("./deno.ts")).denoRuntime;
  throw new Error("Gatehouse runs on Bun or Deno (see README: Running under Deno)");
}
