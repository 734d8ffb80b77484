// The Deno implementations of the platform interfaces, loaded by currentRuntime() (types.ts) under Deno only, so
// that `deno run -A src/main.ts serve --config …` runs the whole gateway: stdio backends through Deno.Command, the
// state file through node:fs (platform/files.ts, which Deno provides), HTTP through Deno.serve. What Deno does not
// have is left undefined and refused by the command that needs it, naming it: argon2id (Bun.password) for local
// accounts and `hash-password`, and a Redis client (Bun's built-in one) for state.redis.

import { groupRunning, signalGroup, trackGroup } from "./process-group.ts";
import type { ChildProcess, FileSystem, HttpServer, Runtime, Spawner } from "./types.ts";

/** The part of Deno's API used here (the project type-checks against bun-types). */
interface DenoChild {
  readonly pid: number;
  readonly stdin: WritableStream<Uint8Array>;
  readonly stdout: ReadableStream<Uint8Array>;
  readonly stderr: ReadableStream<Uint8Array>;
  readonly status: Promise<{ code: number; signal: string | null }>;
  kill(signal?: string): void;
}
interface DenoServer {
  shutdown(): Promise<void>;
  readonly finished: Promise<void>;
}
interface DenoConn {
  readonly readable: ReadableStream<Uint8Array>;
  write(data: Uint8Array): Promise<number>;
  close(): void;
}
interface DenoApi {
  version: { deno: string };
  Command: new (
    command: string,
    options: {
      args: string[];
      env: Record<string, string>;
      clearEnv: boolean;
      cwd?: string;
      stdin: "piped";
      stdout: "piped";
      stderr: "piped";
      detached: boolean;
    },
  ) => { spawn(): DenoChild };
  serve(
    options:
      | { hostname: string; port: number; onListen(addr: { port: number }): void }
      | { path: string; onListen(): void },
    handler: (request: Request, info: { remoteAddr: { hostname?: string } }) => Response | Promise<Response>,
  ): DenoServer;
  connect(options: { transport: "unix"; path: string }): Promise<DenoConn>;
  readTextFile(path: string): Promise<string>;
  stat(path: string): Promise<unknown>;
  readonly stdin: { readonly readable: ReadableStream<Uint8Array> };
}

const Deno = (globalThis as unknown as { Deno: DenoApi }).Deno;
const encoder = new TextEncoder();

export const denoSpawner: Spawner = {
  spawn({ command, args, env, cwd }): ChildProcess {
    // Bun.spawn's env replaces the environment; the same here (childEnv already holds Gatehouse's own).
    const child = new Deno.Command(command, {
      args,
      env,
      clearEnv: true,
      ...(cwd ? { cwd } : {}),
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      // setsid(): the child leads its own process group, so stopping it reaches what it started (npx → node).
      detached: true,
    }).spawn();
    const stdin = child.stdin.getWriter();
    trackGroup(child.pid, child.status);
    return {
      pid: child.pid,
      stdout: child.stdout,
      stderr: child.stderr,
      write: (data) => stdin.write(encoder.encode(data)),
      exited: child.status.then((s) => (s.signal ? null : s.code)),
      kill(signal = "SIGTERM") {
        if (signalGroup(child.pid, signal)) return;
        try {
          child.kill(signal); // no group left: the child itself, if still there
        } catch {
          // already exited
        }
      },
      descendantsAlive: () => groupRunning(child.pid),
    };
  },
};

export const denoFileSystem: FileSystem = {
  readText: (path) => Deno.readTextFile(path),
  exists: (path) =>
    Deno.stat(path).then(
      () => true,
      () => false,
    ),
};

/** Minimal HTTP/1.1 over a unix socket, for the CLI's questions to the admin socket (Deno's fetch has no `unix`). */
async function fetchUnix(socket: string, method: string, path: string): Promise<{ status: number; body: string }> {
  const conn = await Deno.connect({ transport: "unix", path: socket });
  try {
    await conn.write(encoder.encode(`${method} ${path} HTTP/1.1\r\nHost: gatehouse\r\nConnection: close\r\n\r\n`));
    const raw = await new Response(conn.readable).text();
    const head = raw.slice(0, raw.indexOf("\r\n\r\n"));
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1]);
    if (!status) throw new Error("not an HTTP answer");
    let body = raw.slice(head.length + 4);
    if (/^transfer-encoding:\s*chunked/im.test(head)) body = unchunk(body);
    return { status, body };
  } finally {
    try {
      conn.close();
    } catch {
      // closed by the peer
    }
  }
}

function unchunk(s: string): string {
  let out = "";
  for (let i = 0; ; ) {
    const eol = s.indexOf("\r\n", i);
    const size = Number.parseInt(s.slice(i, eol), 16);
    if (!(size > 0)) return out;
    out += s.slice(eol + 2, eol + 2 + size);
    i = eol + 2 + size + 2;
  }
}

export const denoRuntime: Runtime = {
  name: `Deno ${Deno.version.deno}`,
  spawner: denoSpawner,
  files: denoFileSystem,
  serve(options, handler) {
    const peers = new WeakMap<Request, string>();
    let port = options.port;
    // Deno.serve has no body limit of its own: the routes bound what they read (gateway.maxBodyBytes).
    const server = Deno.serve(
      {
        hostname: options.hostname,
        port: options.port,
        onListen: (addr) => {
          port = addr.port;
        },
      },
      (request, info) => {
        if (info.remoteAddr.hostname) peers.set(request, info.remoteAddr.hostname);
        return handler(request);
      },
    );
    const out: HttpServer = {
      get port() {
        return port;
      },
      peerAddress: (request) => peers.get(request),
      async stop(force) {
        // Graceful: in-flight requests finish (SSE streams end when the sessions are shut down); forced: not waited.
        const done = server.shutdown();
        if (!force) await done;
      },
    };
    return out;
  },
  serveUnix(path, handler) {
    // Deno names these requests http+unix://…, which routers do not expect: they are given as http://.
    const server = Deno.serve({ path, onListen() {} }, (request) =>
      handler(new Request(request.url.replace(/^http\+unix:/, "http:"), request)),
    );
    return { stop: () => void server.shutdown() };
  },
  fetchUnix,
  readStdin: () => new Response(Deno.stdin.readable).text(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};
