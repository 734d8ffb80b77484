// The Store in a local JSON file (auth_server.json): a snapshot plus an append-only journal beside it
// (auth_server.json.journal). Every change is appended and fsync'd before the call that made it returns — changes
// made in the same tick share one fsync — so a crash (even kill -9) loses nothing that was acknowledged. The cost of
// a change does not grow with the number of records; once the journal outgrows the snapshot it is folded into a new
// snapshot (temp file, fsync, rename). Files are created mode 0600. A lock file keeps a second process out.

import {
  closeSync,
  constants,
  existsSync,
  fsyncSync,
  ftruncateSync,
  openSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { dirname } from "node:path";
import { MemoryStore, type Mutation, type Snapshot } from "./memory.ts";

export class StoreFileError extends Error {
  override name = "StoreFileError";
}

/** Compaction happens when the journal has at least this many entries and more entries than the snapshot has records. */
const MIN_COMPACT_ENTRIES = 10_000;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Checks the shape of a snapshot (sections and the fields the code relies on); throws a message naming the part. */
export function parseSnapshot(value: unknown): Snapshot {
  if (!isObject(value)) throw new Error("the top level is not a JSON object");
  const section = (name: string): Record<string, unknown> => {
    const s = value[name];
    if (s === undefined) return {};
    if (!isObject(s)) throw new Error(`"${name}" is not an object`);
    return s;
  };
  const clients = section("clients");
  for (const [id, c] of Object.entries(clients)) {
    if (!isObject(c) || !Array.isArray(c.redirect_uris)) throw new Error(`clients["${id}"] has no redirect_uris`);
    if (c.client_id === undefined) c.client_id = id;
    c.token_endpoint_auth_method ??= "none";
    c.grant_types ??= ["authorization_code", "refresh_token"];
    c.response_types ??= ["code"];
    c.client_id_issued_at ??= 0;
  }
  const grants = section("grants");
  for (const [id, g] of Object.entries(grants)) {
    if (
      !isObject(g) ||
      typeof g.client_id !== "string" ||
      typeof g.subject !== "string" ||
      typeof g.expires_at !== "number"
    ) {
      throw new Error(`grants["${id}"] is malformed`);
    }
  }
  const refresh = section("refresh_tokens");
  for (const [h, r] of Object.entries(refresh)) {
    if (!isObject(r) || typeof r.grant_id !== "string" || typeof r.expires_at !== "number") {
      // `mcp serve` kept refresh tokens in another shape; they cannot be used here and are dropped.
      delete refresh[h];
    }
  }
  const keys = value.keys ?? [];
  if (!Array.isArray(keys)) throw new Error('"keys" is not an array');
  for (const [i, k] of keys.entries()) {
    if (!isObject(k) || typeof k.kid !== "string" || !isObject(k.private_jwk) || !isObject(k.public_jwk)) {
      throw new Error(`keys[${i}] is malformed`);
    }
  }
  return {
    version: 1,
    clients: clients as Snapshot["clients"],
    consents: section("consents") as Snapshot["consents"],
    grants: grants as Snapshot["grants"],
    refresh_tokens: refresh as Snapshot["refresh_tokens"],
    keys: keys as Snapshot["keys"],
    revoked_access_tokens: section("revoked_access_tokens") as Snapshot["revoked_access_tokens"],
    sessions: section("sessions") as Snapshot["sessions"],
    secrets: section("secrets") as Snapshot["secrets"],
  };
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === "EPERM";
  }
}

export class JsonFileStore extends MemoryStore {
  override description: string;
  private journalFd = -1;
  private journalEntries = 0;
  private pending: { lines: string; resolve: () => void; reject: (e: Error) => void }[] = [];
  private flushScheduled = false;
  private readonly journalPath: string;
  private readonly lockPath: string;
  private closed = false;

  private constructor(private readonly path: string) {
    super();
    this.description = `json-file ${path}`;
    this.journalPath = `${path}.journal`;
    this.lockPath = `${path}.lock`;
  }

  /**
   * Opens (or creates) the state at `path`. A file that cannot be read or parsed is reported with the file and the
   * problem, and left untouched.
   */
  static open(path: string): JsonFileStore {
    const store = new JsonFileStore(path);
    store.lock();
    try {
      store.load();
    } catch (e) {
      store.unlock();
      throw e;
    }
    return store;
  }

  private lock(): void {
    try {
      const fd = openSync(this.lockPath, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
    } catch (e) {
      if ((e as { code?: string }).code !== "EEXIST") {
        throw new StoreFileError(`cannot create ${this.lockPath}: ${(e as Error).message}`);
      }
      const holder = Number(readFileSync(this.lockPath, "utf8").trim());
      if (holder > 0 && holder !== process.pid && pidAlive(holder)) {
        throw new StoreFileError(
          `${this.path} is in use by another Gatehouse process (pid ${holder}); stop it, or give this one its own MCP_AUTH_SERVER_PATH`,
        );
      }
      writeFileSync(this.lockPath, String(process.pid), { mode: 0o600 }); // a stale lock from a crashed process
    }
  }

  private unlock(): void {
    try {
      if (existsSync(this.lockPath) && readFileSync(this.lockPath, "utf8").trim() === String(process.pid))
        unlinkSync(this.lockPath);
    } catch {
      // nothing to do
    }
  }

  private load(): void {
    if (existsSync(this.path)) {
      let text: string;
      try {
        text = readFileSync(this.path, "utf8");
      } catch (e) {
        throw new StoreFileError(`cannot read ${this.path}: ${(e as Error).message}`);
      }
      let snapshot: Snapshot;
      try {
        snapshot = parseSnapshot(JSON.parse(text));
      } catch (e) {
        throw new StoreFileError(
          `${this.path} is not a valid Gatehouse state file (${(e as Error).message}); it was left untouched — fix or move it`,
        );
      }
      this.restore(snapshot);
    }
    if (existsSync(this.journalPath)) this.replayJournal();
    try {
      this.journalFd = openSync(this.journalPath, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, 0o600);
    } catch (e) {
      throw new StoreFileError(`cannot write ${this.journalPath}: ${(e as Error).message}`);
    }
  }

  private replayJournal(): void {
    const text = readFileSync(this.journalPath, "utf8");
    const lines = text.split("\n");
    let good = 0;
    for (const [i, line] of lines.entries()) {
      if (line === "") continue;
      let ops: Mutation[];
      try {
        ops = JSON.parse(line) as Mutation[];
        if (!Array.isArray(ops)) throw new Error("not an array");
      } catch {
        // Only the very last line may be torn (the process died while writing it; it was never acknowledged).
        if (lines.slice(i + 1).every((l) => l === "")) break;
        throw new StoreFileError(
          `${this.journalPath} line ${i + 1} is corrupt; it was left untouched — fix or move it`,
        );
      }
      for (const op of ops) this.apply(op);
      good += line.length + 1;
      this.journalEntries++;
    }
    if (good < Buffer.byteLength(text)) {
      // Drop the torn tail so new entries start on a line of their own.
      const fd = openSync(this.journalPath, constants.O_WRONLY);
      ftruncateSync(fd, Buffer.byteLength(text.slice(0, good)));
      closeSync(fd);
    }
  }

  protected override commit(ops: Mutation[]): Promise<void> {
    if (this.closed) return Promise.reject(new StoreFileError(`${this.path} is closed`));
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ lines: `${JSON.stringify(ops)}\n`, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Group commit: one write and one fsync for everything changed since the last flush. */
  private flush(): void {
    this.flushScheduled = false;
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0) return;
    try {
      writeSync(this.journalFd, batch.map((b) => b.lines).join(""));
      fsyncSync(this.journalFd);
      this.journalEntries += batch.length;
      for (const b of batch) b.resolve();
    } catch (e) {
      const err = new StoreFileError(`cannot write ${this.journalPath}: ${(e as Error).message}`);
      for (const b of batch) b.reject(err);
      return;
    }
    if (this.journalEntries >= MIN_COMPACT_ENTRIES && this.journalEntries > this.size()) this.compact();
  }

  /** Writes a new snapshot (temp file, fsync, rename, fsync of the directory) and empties the journal. */
  compact(): void {
    const tmp = `${this.path}.${process.pid}.tmp`;
    const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o600);
    try {
      writeSync(fd, JSON.stringify(this.snapshot()));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path);
    try {
      const dfd = openSync(dirname(this.path), constants.O_RDONLY);
      fsyncSync(dfd);
      closeSync(dfd);
    } catch {
      // directories cannot be opened on some filesystems; the rename is atomic anyway
    }
    // A crash between the rename and this truncation only replays entries the snapshot already has (idempotent).
    ftruncateSync(this.journalFd, 0);
    fsyncSync(this.journalFd);
    this.journalEntries = 0;
  }

  override async close(): Promise<void> {
    if (this.closed) return;
    this.flush();
    this.compact();
    this.closed = true;
    closeSync(this.journalFd);
    this.unlock();
  }
}

/** A store loaded from MCP_AUTH_SERVER_CONFIG (inline JSON, e.g. a Kubernetes secret): changes live in memory only. */
export function inlineStore(json: string, onFirstChange: () => void): MemoryStore {
  let snapshot: Snapshot;
  try {
    snapshot = parseSnapshot(JSON.parse(json));
  } catch (e) {
    throw new StoreFileError(`MCP_AUTH_SERVER_CONFIG is not valid Gatehouse state (${(e as Error).message})`);
  }
  let warned = false;
  class ReadOnly extends MemoryStore {
    override description = "inline (MCP_AUTH_SERVER_CONFIG, read-only)";
    protected override async commit(): Promise<void> {
      if (!warned) {
        warned = true;
        onFirstChange();
      }
    }
  }
  const store = new ReadOnly();
  store.restore(snapshot);
  return store;
}
