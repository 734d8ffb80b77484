// The append-only journal beside the state file (auth_server.json.journal): one JSON line per batch of changes,
// fsync'd before the batch is acknowledged. An append is all or nothing: a short write is continued; any failure
// (ENOSPC, EIO, a failed fsync) cuts the file back to the last good record before the error is thrown, so the
// journal never holds a torn record followed by good ones. If even the cut fails, the journal is "broken" and
// refuses appends until a later cut succeeds.

import type { StateFiles } from "../platform/types.ts";
import type { Mutation } from "./memory.ts";
import { describeFault } from "./outage.ts";

/** Writes all of `bytes` at the descriptor's position: a short write is continued, one that makes no progress is EIO. */
export function writeFully(files: StateFiles, fd: number, bytes: Uint8Array): void {
  let written = 0;
  while (written < bytes.length) {
    const n = files.write(fd, bytes, written, bytes.length - written);
    if (n <= 0) throw Object.assign(new Error("a write made no progress"), { code: "EIO" });
    written += n;
  }
}

/** Writes a whole file and fsyncs it before returning (`exclusive`: fails if it exists). */
export function writeFileDurably(files: StateFiles, path: string, bytes: Uint8Array, exclusive = false): void {
  const fd = files.openWrite(path, 0o600, exclusive);
  try {
    writeFully(files, fd, bytes);
    files.fsync(fd);
  } finally {
    files.close(fd);
  }
}

export class JournalError extends Error {
  override name = "JournalError";
}

export class Journal {
  private fd = -1;
  /** Bytes of acknowledged records: what the file holds when nothing is failing. */
  private size = 0;
  /** Mutations since the journal was last emptied (for the compaction heuristic). */
  entries = 0;
  /** Why the file could not be cut back after a failed append; appends are refused while set. */
  private broken: string | undefined;

  constructor(
    private readonly files: StateFiles,
    readonly path: string,
  ) {}

  /**
   * Replays every record (calling `apply` for each mutation) and opens the journal for appending. Only the very
   * last line may be torn (the process died while writing it, so it was never acknowledged): it is cut off. A bad
   * line before a good one means the file was damaged: refused, untouched.
   */
  open(apply: (op: Mutation) => void): void {
    if (this.files.exists(this.path)) {
      const text = this.files.readText(this.path);
      const lines = text.split("\n");
      let good = 0;
      const last = lines.length - 1;
      for (const [i, line] of lines.entries()) {
        // A record is a line with its newline: one without it was never fsync'd whole, so never acknowledged.
        if (i === last) break;
        if (line === "") {
          good += 1;
          continue;
        }
        let ops: Mutation[];
        try {
          ops = JSON.parse(line) as Mutation[];
          if (!Array.isArray(ops)) throw new Error("not an array");
        } catch {
          if (lines.slice(i + 1).every((l) => l === "")) break;
          throw new JournalError(`${this.path} line ${i + 1} is corrupt; it was left untouched — fix or move it`);
        }
        for (const op of ops) apply(op);
        this.entries += ops.length;
        good += Buffer.byteLength(line) + 1;
      }
      this.size = good;
      if (good < Buffer.byteLength(text)) {
        // Drop the torn tail so that new records start on a line of their own.
        const fd = this.files.openAppend(this.path, 0o600);
        try {
          this.files.truncate(fd, good);
          this.files.fsync(fd);
        } finally {
          this.files.close(fd);
        }
      }
    }
    try {
      this.fd = this.files.openAppend(this.path, 0o600);
    } catch (e) {
      throw new JournalError(`cannot write ${this.path}: ${describeFault(e)}`);
    }
    if (this.files.fstat(this.fd).size !== this.size) {
      throw new JournalError(`${this.path} changed while it was being read (is another Gatehouse using it?)`);
    }
  }

  /** Appends one batch durably, or throws having left the file as it was. */
  append(line: string, mutations: number): void {
    if (this.broken !== undefined) this.cutBack();
    if (this.broken !== undefined) throw new JournalError(this.broken);
    const bytes = Buffer.from(line);
    try {
      writeFully(this.files, this.fd, bytes);
      this.files.fsync(this.fd);
    } catch (e) {
      // Whatever reached the file (part of the line, or all of it without a durable fsync) is not acknowledged.
      this.cutBack();
      throw new JournalError(`cannot write ${this.path}: ${describeFault(e)}`);
    }
    this.size += bytes.length;
    this.entries += mutations;
  }

  private cutBack(): void {
    try {
      if (this.files.fstat(this.fd).size !== this.size) this.files.truncate(this.fd, this.size);
      this.files.fsync(this.fd);
      this.broken = undefined;
    } catch (e) {
      this.broken = `cannot cut ${this.path} back to its last good record: ${describeFault(e)}`;
    }
  }

  /** Whether the file is still the one this journal wrote (no other process appended to it or replaced it). */
  intact(): boolean {
    const byPath = this.files.stat(this.path);
    const open = this.files.fstat(this.fd);
    return byPath !== undefined && byPath.ino === open.ino && (open.size === this.size || this.broken !== undefined);
  }

  /** Empties the journal once a snapshot holds everything in it. Failing is harmless: replaying it is idempotent. */
  reset(): boolean {
    try {
      this.files.truncate(this.fd, 0);
      this.files.fsync(this.fd);
    } catch {
      return false;
    }
    this.size = 0;
    this.entries = 0;
    this.broken = undefined;
    return true;
  }

  close(): void {
    if (this.fd >= 0) this.files.close(this.fd);
    this.fd = -1;
  }
}
