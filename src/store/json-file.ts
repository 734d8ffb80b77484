// The Store in a local JSON file (auth_server.json): a snapshot plus an append-only journal beside it
// (auth_server.json.journal, see journal.ts). Every change is applied in memory, appended and fsync'd before the
// call that made it returns — changes made in the same tick share one line and one fsync — so a crash (even kill -9)
// loses nothing that was acknowledged. When the append fails (a full disk, an I/O error, a read-only filesystem, the
// lock taken by another process) the batch is undone in memory and its callers get StoreUnavailableError: nothing of
// it remains, and the next batch tries again by itself. Reads never touch the disk, so they keep working.
// Once the journal outgrows the snapshot it is folded into a new snapshot (temp file, fsync, rename). Files are
// created mode 0600. A lock file keeps a second process out.

import { readFileSync } from "node:fs";
import { dirname } from "node:path";
import { createLogger, type Logger } from "../log.ts";
import { nodeFiles } from "../platform/files.ts";
import type { FileIdentity, StateFiles } from "../platform/types.ts";
import { Journal, JournalError, writeFileDurably } from "./journal.ts";
import { describeReport, type McpServeContext, type McpServeReport, parseState } from "./mcp-serve.ts";
import { MemoryStore, type Mutation } from "./memory.ts";
import { describeFault, OutageLog } from "./outage.ts";
import type { Snapshot } from "./snapshot.ts";
import { StateOpenError, type StoreHealth, StoreUnavailableError } from "./types.ts";

export class StoreFileError extends StateOpenError {
  override name = "StoreFileError";
}

/** Compaction happens when the journal has at least this many mutations and more than the snapshot has records. */
const MIN_COMPACT_ENTRIES = 10_000;
/** After a failed compaction (no room for a new snapshot), the next try waits for this many more mutations. */
const COMPACT_RETRY_ENTRIES = 2_000;

/**
 * Whether the process named in a lock file still holds it. Killed processes leave their lock behind, so a pid alone
 * is not enough: it may be a zombie not yet reaped, or — after a restart, in a container where Gatehouse is always
 * pid 1 or 7 — another process that got the same pid. Where /proc says more (Linux), a zombie does not hold it, and
 * neither does a process that started after the lock was written.
 */
function holdsLock(pid: number, lockWrittenMs: number | undefined): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as { code?: string }).code !== "EPERM") return false;
  }
  let stat: string;
  let btime: number;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    btime = Number(/^btime (\d+)$/m.exec(readFileSync("/proc/stat", "utf8"))?.[1]);
  } catch {
    return true; // no /proc: the pid is all there is to go by
  }
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  if (fields[0] === "Z" || fields[0] === "X") return false;
  const startTicks = Number(fields[19]);
  if (!btime || !Number.isFinite(startTicks) || lockWrittenMs === undefined) return true;
  // USER_HZ is 100 on every Linux architecture Gatehouse ships for.
  const startedMs = btime * 1000 + startTicks * 10;
  return startedMs <= lockWrittenMs + 2000;
}

export interface JsonFileOptions {
  /** Where outages are logged (one line when writes start failing, one when they work again). */
  log?: Logger;
  /** The file operations (tests inject faults here). */
  files?: StateFiles;
  /** Open without the lock and without writing anything (`gatehouse state export` beside a running server). */
  readOnly?: boolean;
  /** How long writes must work before the end of an outage is logged (default 5 s). */
  recoveryQuietMs?: number;
  /** What converting a state file of mcp serve needs from the configuration (its refresh tokens need it). */
  mcpServe?: McpServeContext;
}

interface PendingBatch {
  ops: Mutation[];
  undo: Mutation[];
  resolve: () => void;
  reject: (e: Error) => void;
}

export class JsonFileStore extends MemoryStore {
  override description: string;
  private readonly files: StateFiles;
  private readonly journal: Journal;
  private readonly lockPath: string;
  private readonly outage: OutageLog;
  private readonly log: Logger | undefined;
  private pending: PendingBatch[] = [];
  private flushScheduled = false;
  private closed = false;
  private readOnly: boolean;
  /** The lock file and the snapshot as this process last wrote them: anything else means another process took over. */
  private lockIdentity: FileIdentity | undefined;
  private snapshotIno: number | undefined;
  private lostLock: string | undefined;
  private nextCompactAt = MIN_COMPACT_ENTRIES;
  private readonly mcpServe: McpServeContext | undefined;

  private constructor(
    private readonly path: string,
    options: JsonFileOptions,
  ) {
    super();
    this.description = `json-file ${path}`;
    this.files = options.files ?? nodeFiles;
    this.journal = new Journal(this.files, `${path}.journal`);
    this.lockPath = `${path}.lock`;
    this.readOnly = options.readOnly === true;
    this.log = options.log;
    this.mcpServe = options.mcpServe;
    this.outage = new OutageLog(
      options.log ?? createLogger({ sink: () => {} }),
      `state store ${path}`,
      "changes are refused with 503 (nothing is half-saved) until writing works again; reads go on",
      options.recoveryQuietMs,
    );
  }

  /**
   * Opens (or creates) the state at `path`. A file that cannot be read or parsed is reported with the file and the
   * problem, and left untouched.
   */
  static open(path: string, options: JsonFileOptions = {}): JsonFileStore {
    const store = new JsonFileStore(path, options);
    if (store.readOnly) {
      store.loadReadOnly();
      return store;
    }
    store.lock();
    try {
      store.load();
    } catch (e) {
      store.journal.close();
      store.unlock();
      throw e;
    }
    return store;
  }

  private lock(): void {
    const f = this.files;
    try {
      const fd = f.openWrite(this.lockPath, 0o600, true);
      try {
        f.write(fd, Buffer.from(String(process.pid)), 0, String(process.pid).length);
      } finally {
        f.close(fd);
      }
    } catch (e) {
      if ((e as { code?: string }).code !== "EEXIST") {
        throw new StoreFileError(`cannot create ${this.lockPath}: ${describeFault(e)}`);
      }
      const holder = Number(f.readText(this.lockPath).trim());
      if (holder > 0 && holder !== process.pid && holdsLock(holder, f.stat(this.lockPath)?.mtimeMs)) {
        throw new StoreFileError(
          `${this.path} is in use by another Gatehouse process (pid ${holder}); stop it, or give this one its own MCP_AUTH_SERVER_PATH`,
        );
      }
      // A stale lock from a process that died: take it over.
      try {
        const fd = f.openWrite(this.lockPath, 0o600);
        try {
          f.write(fd, Buffer.from(String(process.pid)), 0, String(process.pid).length);
        } finally {
          f.close(fd);
        }
      } catch (e2) {
        throw new StoreFileError(`cannot write ${this.lockPath}: ${describeFault(e2)}`);
      }
    }
    this.lockIdentity = f.stat(this.lockPath);
  }

  private unlock(): void {
    try {
      if (this.files.exists(this.lockPath) && this.files.readText(this.lockPath).trim() === String(process.pid))
        this.files.unlink(this.lockPath);
    } catch {
      // nothing to do
    }
  }

  private readSnapshot(): { snapshot: Snapshot; text: string; mcpServe?: McpServeReport } | undefined {
    if (!this.files.exists(this.path)) return undefined;
    let text: string;
    try {
      text = this.files.readText(this.path);
    } catch (e) {
      throw new StoreFileError(`cannot read ${this.path}: ${describeFault(e)}`);
    }
    try {
      return { ...parseState(JSON.parse(text), this.mcpServe), text };
    } catch (e) {
      throw new StoreFileError(
        `${this.path} is not a valid Gatehouse state file (${(e as Error).message}); it was left untouched — fix or move it`,
      );
    }
  }

  /**
   * Keeps mcp serve's file as it was, beside the state (auth_server.json.mcp-serve.bak, or with the time when that
   * exists), written and fsync'd before anything replaces it.
   */
  private keepOriginal(text: string): string {
    const f = this.files;
    const bytes = Buffer.from(text);
    const write = (path: string) => writeFileDurably(f, path, bytes, true);
    let backup = `${this.path}.mcp-serve.bak`;
    try {
      try {
        write(backup);
      } catch (e) {
        if ((e as { code?: string }).code !== "EEXIST") throw e;
        backup = `${this.path}.mcp-serve.${Date.now()}.bak`;
        write(backup);
      }
      f.syncDir(dirname(this.path));
    } catch (e) {
      throw new StoreFileError(
        `${this.path} is mcp serve's state; a copy of it could not be kept (${describeFault(e)}), so it was not ` +
          "converted and is untouched",
      );
    }
    return backup;
  }

  private load(): void {
    const read = this.readSnapshot();
    if (read) this.restore(read.snapshot);
    this.snapshotIno = this.files.stat(this.path)?.ino;
    try {
      this.journal.open((op) => this.apply(op));
    } catch (e) {
      if (e instanceof JournalError) throw new StoreFileError(e.message);
      throw new StoreFileError(`cannot read ${this.journal.path}: ${describeFault(e)}`);
    }
    if (read?.mcpServe) this.convert(read.text, read.mcpServe);
  }

  /**
   * mcp serve's state, read into memory: kept as it was beside the file, which is then replaced by the same records
   * in Gatehouse's format (temp file, fsync, rename). Either step failing stops the start with mcp serve's file
   * untouched.
   */
  private convert(original: string, report: McpServeReport): void {
    const backup = this.keepOriginal(original);
    if (!this.compact()) {
      throw new StoreFileError(
        `${this.path} is mcp serve's state and could not be rewritten in Gatehouse's format; it is untouched ` +
          `(a copy is at ${backup})`,
      );
    }
    this.log?.warn(`converted mcp serve's state: ${describeReport(report)}; the original is kept at ${backup}`, {
      file: this.path,
      backup,
    });
  }

  /** The snapshot and every complete journal line, without touching either (a torn last line is ignored). */
  private loadReadOnly(): void {
    const read = this.readSnapshot();
    if (read) this.restore(read.snapshot);
    if (!this.files.exists(this.journal.path)) return;
    const lines = this.files.readText(this.journal.path).split("\n");
    lines.pop(); // the last piece has no newline: empty, or a record still being written
    for (const line of lines) {
      if (line === "") continue;
      try {
        for (const op of JSON.parse(line) as Mutation[]) this.apply(op);
      } catch {
        throw new StoreFileError(`${this.journal.path} has a corrupt line; it was left untouched — fix or move it`);
      }
    }
  }

  override health(): StoreHealth {
    const down = this.lostLock ?? this.outage.down;
    return down ? { ok: false, reason: down } : { ok: true };
  }

  protected override commit(ops: Mutation[], undo: Mutation[]): Promise<void> {
    if (this.closed || this.readOnly) {
      for (const op of undo) this.apply(op);
      const why = this.readOnly ? "opened read-only" : "closed";
      return Promise.reject(new StoreUnavailableError(`${this.path} is ${why}`));
    }
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ ops, undo, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /**
   * Whether this process still owns the files. The lock file replaced, or the snapshot or journal changed by someone
   * else, means another process took over: writing on would mix two histories, so writes stop until a restart. A
   * lock file that was merely deleted (a tmp cleaner) is put back when nothing else changed.
   */
  private checkOwnership(): void {
    if (this.lostLock) throw new StoreUnavailableError(this.lostLock, 30);
    const f = this.files;
    const lock = f.stat(this.lockPath);
    const snapshotChanged = f.stat(this.path)?.ino !== this.snapshotIno;
    const lost = (why: string) => {
      this.lostLock = `${why}: another process may be using ${this.path}; changes are refused until Gatehouse is restarted`;
      throw new StoreUnavailableError(this.lostLock, 30);
    };
    if (snapshotChanged || !this.journal.intact()) lost("the state files were changed by someone else");
    if (!lock) {
      try {
        this.lock();
      } catch (e) {
        lost((e as Error).message);
      }
      this.log?.warn("the lock file was missing (deleted by someone?); it was put back", { lock: this.lockPath });
      return;
    }
    const mine = this.lockIdentity;
    if (mine && lock.ino === mine.ino && lock.mtimeMs === mine.mtimeMs) return;
    let holder = "";
    try {
      holder = f.readText(this.lockPath).trim();
    } catch {
      // unreadable: treated as someone else's
    }
    if (holder === String(process.pid)) {
      this.lockIdentity = lock;
      return;
    }
    lost(`the lock ${this.lockPath} was taken by ${holder ? `pid ${holder}` : "another process"}`);
  }

  /** Group commit: one line and one fsync for everything changed since the last flush. */
  private flush(): void {
    this.flushScheduled = false;
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0) return;
    let mutations = 0;
    const ops: Mutation[] = [];
    for (const b of batch) {
      for (const op of b.ops) ops.push(op);
      mutations += b.ops.length;
    }
    const started = performance.now();
    try {
      this.checkOwnership();
      this.journal.append(`${JSON.stringify(ops)}\n`, mutations);
      this.writeObserver?.((performance.now() - started) / 1000, true);
    } catch (e) {
      this.writeObserver?.((performance.now() - started) / 1000, false);
      // Undo newest first, so every key gets back the value it had before the batch.
      for (let i = batch.length - 1; i >= 0; i--) for (const op of (batch[i] as PendingBatch).undo) this.apply(op);
      const err = e instanceof StoreUnavailableError ? e : new StoreUnavailableError((e as Error).message);
      if (!this.lostLock) this.outage.failed(err.message);
      else this.outage.failed(this.lostLock, "they are answered 503 meanwhile (nothing is half-saved); reads go on");
      for (const b of batch) b.reject(err);
      return;
    }
    this.outage.recovered();
    for (const b of batch) b.resolve();
    if (this.journal.entries >= this.nextCompactAt && this.journal.entries > this.size()) this.compact();
  }

  /**
   * Writes a new snapshot (temp file, fsync, rename, fsync of the directory) and empties the journal. A failure
   * (no room for the new snapshot) changes nothing: the journal keeps every record, and compaction is tried later.
   */
  compact(): boolean {
    if (this.readOnly || this.lostLock) return false;
    const f = this.files;
    const tmp = `${this.path}.${process.pid}.tmp`;
    const bytes = Buffer.from(JSON.stringify(this.snapshot()));
    try {
      writeFileDurably(f, tmp, bytes);
      f.rename(tmp, this.path);
    } catch (e) {
      try {
        f.unlink(tmp);
      } catch {
        // it may not exist
      }
      this.nextCompactAt = this.journal.entries + COMPACT_RETRY_ENTRIES;
      this.log?.warn("cannot write a new snapshot; the journal keeps every change, compaction is retried later", {
        file: this.path,
        error: describeFault(e),
      });
      return false;
    }
    f.syncDir(dirname(this.path));
    this.snapshotIno = f.stat(this.path)?.ino;
    // A crash between the rename and this truncation only replays records the snapshot already has (idempotent).
    this.journal.reset();
    this.nextCompactAt = MIN_COMPACT_ENTRIES;
    return true;
  }

  override async importSnapshot(s: Snapshot): Promise<void> {
    await super.importSnapshot(s);
    this.compact();
  }

  override async close(): Promise<void> {
    if (this.closed) return;
    if (!this.readOnly) {
      this.flush();
      this.compact();
    }
    this.closed = true;
    this.journal.close();
    if (!this.readOnly) this.unlock();
  }
}

/** A store loaded from MCP_AUTH_SERVER_CONFIG (inline JSON, e.g. a Kubernetes secret): changes live in memory only. */
export function inlineStore(
  json: string,
  onFirstChange: () => void,
  mcpServe?: { context: McpServeContext; converted: (report: string) => void },
): MemoryStore {
  let snapshot: Snapshot;
  try {
    const read = parseState(JSON.parse(json), mcpServe?.context);
    snapshot = read.snapshot;
    if (read.mcpServe) mcpServe?.converted(describeReport(read.mcpServe));
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
