// `gatehouse clients list|show|revoke` and `gatehouse keys rotate`. When Gatehouse is running, the commands go
// through its admin socket (so the running server sees the change at once); otherwise they open the state file
// directly (taking its lock, so they never race a server).

import { appendFileSync, existsSync } from "node:fs";
import {
  type AdminDeps,
  listClients,
  listSessions,
  revokeClient,
  revokeSessions,
  rotateKeys,
  showClient,
} from "../admin.ts";
import { createAuditor } from "../audit.ts";
import type { Config } from "../config/types.ts";
import { createLogger } from "../log.ts";
import { KeyRing } from "../oauth/keys.ts";
import type { Runtime } from "../platform/types.ts";
import { stateLocation } from "../store/location.ts";
import { openState } from "../store/open.ts";
import type { Store } from "../store/types.ts";
import { CommandError, noStateFile, UsageError } from "./args.ts";

export function adminSocketPath(statePath: string): string {
  return `${statePath}.sock`;
}

type Op = { method: "GET" | "DELETE" | "POST"; path: string };

async function viaSocket(
  runtime: Runtime,
  socket: string,
  op: Op,
): Promise<{ status: number; body: unknown } | undefined> {
  if (!existsSync(socket)) return undefined;
  try {
    const res = await runtime.fetchUnix(socket, op.method, op.path);
    return { status: res.status, body: JSON.parse(res.body) };
  } catch {
    return undefined; // a stale socket from a server that is gone
  }
}

/** The state opened by this command itself: the file (taking its lock, so it never races a server) or Redis. */
async function direct<T>(config: Config, runtime: Runtime, fn: (d: AdminDeps) => Promise<T>): Promise<T> {
  // Never a new, empty state: a command that finds none where it looked says where, and how to point it elsewhere.
  const where = stateLocation(config, process.env as Record<string, string | undefined>, process.cwd());
  if (!config.state.redis && where.kind === "file" && !existsSync(where.path) && !existsSync(`${where.path}.journal`)) {
    throw noStateFile(where.path, config.source, process.env as Record<string, string | undefined>);
  }
  const state = await openState(config, {
    log: createLogger({ level: "warn" }),
    env: process.env as Record<string, string | undefined>,
    cwd: process.cwd(),
    redis: runtime.redis,
    always: true,
  });
  const store = state.store as Store;
  try {
    const o = config.auth.oauthAs;
    const keys = new KeyRing(
      store,
      {
        ...(o?.jwtSecret ? { jwtSecret: o.jwtSecret } : {}),
        ...(o ? { algorithm: o.signingAlgorithm } : {}),
        accessTokenTtlSeconds: o?.accessTokenTtlSeconds ?? 3600,
        rotationMs: 0,
        switchAlgorithm: false,
      },
      createLogger({ level: "warn" }),
    );
    // What the command changes is audited as the server would, to audit.path's file (the server's log stream is out
    // of reach: a stopped server's audit output "log" gets nothing).
    // Only into a file the server has made (one this command created, as root say, the server could not append to);
    // a record that cannot be written is said, never a reason to fail a change already made.
    const file = config.audit.file;
    const appendRecord = (line: string) => {
      if (!file) return;
      try {
        if (!existsSync(file)) throw new Error(`${file} does not exist yet (the server creates it)`);
        appendFileSync(file, `${line}\n`);
      } catch (e) {
        process.stderr.write(`gatehouse: warning: the audit record was not written: ${(e as Error).message}\n`);
      }
    };
    const audit = createAuditor({ ...config.audit, toLog: false }, createLogger({ level: "warn" }), appendRecord);
    keys.onRotated = (kid, reason) => audit.event({ event: "signing_key_rotated", success: true, kid, reason });
    await keys.init(Date.now());
    return await fn({ store, keys, now: () => Date.now(), audit });
  } finally {
    await state.close();
  }
}

function table(rows: Record<string, unknown>[], columns: [string, string][]): string {
  const cells = rows.map((r) => columns.map(([key]) => String(r[key] ?? "")));
  const widths = columns.map(([, title], i) => Math.max(title.length, ...cells.map((c) => (c[i] as string).length)));
  const line = (values: string[]) =>
    values
      .map((v, i) => v.padEnd(widths[i] as number))
      .join("  ")
      .trimEnd();
  return [line(columns.map(([, t]) => t)), ...cells.map(line)].join("\n");
}

export async function stateCommand(
  command: "clients" | "keys" | "sessions",
  sub: string | undefined,
  arg: string | undefined,
  options: { config: Config; runtime: Runtime; json: boolean; out: (s: string) => void },
): Promise<number> {
  const { config, runtime, out } = options;
  if (!config.auth.oauthAs)
    throw new CommandError(
      "this configuration has no serverAuth.oauthAs block: there is no authorization server state",
    );
  const where = stateLocation(config, process.env as Record<string, string | undefined>, process.cwd());
  if (where.kind === "inline" && !config.state.redis) {
    throw new CommandError("the state comes from MCP_AUTH_SERVER_CONFIG (read-only): edit that value instead");
  }
  // A running server is asked through its admin socket (it sees the change at once); with Redis every replica is
  // told by Redis itself, so the command works on the shared state directly.
  const socket = where.kind === "file" && !config.state.redis ? adminSocketPath(where.path) : undefined;
  const run = async <T>(op: Op, local: (d: AdminDeps) => Promise<T>): Promise<{ status: number; body: unknown }> => {
    const remote = socket ? await viaSocket(runtime, socket, op) : undefined;
    if (remote) return remote;
    const body = await direct(config, runtime, local);
    return { status: body === undefined || body === false ? 404 : 200, body };
  };
  const print = (value: unknown) => out(`${JSON.stringify(value, null, 2)}\n`);

  if (command === "sessions") {
    if (sub === "list") {
      const r = await run({ method: "GET", path: "/sessions" }, (d) => listSessions(d));
      const rows = r.body as Record<string, unknown>[];
      if (options.json) print(rows);
      else if (rows.length === 0) out("no active browser sessions\n");
      else {
        out(
          `${table(rows, [
            ["id", "SESSION"],
            ["subject", "USER"],
            ["method", "SIGNED IN WITH"],
            ["created_at", "SINCE"],
            ["expires_at", "UNTIL"],
          ])}\n`,
        );
      }
      return 0;
    }
    if (sub === "revoke" && arg) {
      const r = await run({ method: "DELETE", path: `/sessions/${encodeURIComponent(arg)}` }, (d) =>
        revokeSessions(d, arg),
      );
      if (r.status === 404 || r.body === 0) throw new CommandError(`no active session matches ${arg}`);
      out(`revoked ${(r.body as { revoked?: number }).revoked ?? r.body} session(s): the browser must sign in again\n`);
      return 0;
    }
    throw new UsageError("usage: gatehouse sessions list | revoke SESSION_ID | revoke subject:USER");
  }
  if (command === "keys") {
    if (sub !== "rotate") throw new UsageError("usage: gatehouse keys rotate");
    const r = await run({ method: "POST", path: "/keys/rotate" }, async (d) => {
      try {
        return { kid: await rotateKeys(d) };
      } catch (e) {
        throw new CommandError((e as Error).message); // HS256 from jwtSecret: nothing to rotate
      }
    });
    if (r.status !== 200) throw new CommandError((r.body as { error?: string }).error ?? "rotation failed");
    out(
      `new signing key ${(r.body as { kid: string }).kid}; the previous one keeps verifying until its tokens expire\n`,
    );
    return 0;
  }
  switch (sub) {
    case "list": {
      const r = await run({ method: "GET", path: "/clients" }, (d) => listClients(d));
      const rows = r.body as Record<string, unknown>[];
      if (options.json) print(rows);
      else if (rows.length === 0) out("no registered clients\n");
      else {
        const view = rows.map((c) => ({
          ...c,
          issued: c.client_id_issued_at
            ? new Date(Number(c.client_id_issued_at) * 1000).toISOString().slice(0, 19)
            : "",
          redirect_hosts: [
            ...new Set((c.redirect_uris as string[]).map((u) => new URL(u).host || new URL(u).protocol)),
          ].join(","),
        }));
        out(
          `${table(view, [
            ["client_id", "CLIENT ID"],
            ["client_name", "NAME"],
            ["token_endpoint_auth_method", "AUTH"],
            ["redirect_hosts", "REDIRECTS TO"],
            ["issued", "REGISTERED"],
            ["active_grants", "GRANTS"],
          ])}\n`,
        );
      }
      return 0;
    }
    case "show": {
      if (!arg) throw new UsageError("usage: gatehouse clients show CLIENT_ID");
      const r = await run({ method: "GET", path: `/clients/${encodeURIComponent(arg)}` }, (d) => showClient(d, arg));
      if (r.status === 404) throw new CommandError(`no client ${arg}`);
      print(r.body);
      return 0;
    }
    case "revoke": {
      if (!arg) throw new UsageError("usage: gatehouse clients revoke CLIENT_ID");
      const r = await run({ method: "DELETE", path: `/clients/${encodeURIComponent(arg)}` }, (d) =>
        revokeClient(d, arg),
      );
      if (r.status === 404) throw new CommandError(`no client ${arg}`);
      out(`revoked ${arg}: its registration, consents, grants and tokens no longer work\n`);
      return 0;
    }
    default:
      throw new UsageError("usage: gatehouse clients list|show CLIENT_ID|revoke CLIENT_ID");
  }
}
