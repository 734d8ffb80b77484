// StateFiles with faults injected at chosen moments: writes that fail (ENOSPC, EIO, EROFS) or store only part of
// what they were given, fsyncs and truncations that fail. Everything else is the real filesystem.

import { nodeFiles } from "../../src/platform/files.ts";
import type { StateFiles } from "../../src/platform/types.ts";

export type WriteFault =
  /** The write fails at once. */
  | { kind: "error"; code: string }
  /** The write stores part of the data and reports it; the next write fails. */
  | { kind: "short-then-error"; code: string }
  /** Every write stores at most `bytes` and reports it (the caller must continue). */
  | { kind: "short"; bytes: number };

export function fsError(code: string, syscall: string): Error {
  const messages: Record<string, string> = {
    ENOSPC: "no space left on device",
    EIO: "i/o error",
    EROFS: "read-only file system",
  };
  return Object.assign(new Error(`${code}: ${messages[code] ?? "error"}, ${syscall}`), { code, syscall });
}

export class FaultyFiles implements StateFiles {
  writeFault: WriteFault | undefined;
  fsyncFault: string | undefined;
  truncateFault: string | undefined;
  renameFault: string | undefined;
  readonly calls = { write: 0, fsync: 0, truncate: 0 };
  private shortDone = false;

  heal(): void {
    this.writeFault = undefined;
    this.fsyncFault = undefined;
    this.truncateFault = undefined;
    this.renameFault = undefined;
    this.shortDone = false;
  }

  exists = nodeFiles.exists;
  readText = nodeFiles.readText;
  openAppend = nodeFiles.openAppend;
  openWrite = nodeFiles.openWrite;
  close = nodeFiles.close;
  unlink = nodeFiles.unlink;
  stat = nodeFiles.stat;
  fstat = nodeFiles.fstat;
  syncDir = nodeFiles.syncDir;

  write(fd: number, data: Uint8Array, offset: number, length: number): number {
    this.calls.write++;
    const f = this.writeFault;
    if (f?.kind === "error") throw fsError(f.code, "write");
    if (f?.kind === "short-then-error") {
      if (this.shortDone) throw fsError(f.code, "write");
      this.shortDone = true;
      return nodeFiles.write(fd, data, offset, Math.max(1, Math.floor(length / 2)));
    }
    if (f?.kind === "short") return nodeFiles.write(fd, data, offset, Math.min(length, f.bytes));
    return nodeFiles.write(fd, data, offset, length);
  }

  fsync(fd: number): void {
    this.calls.fsync++;
    if (this.fsyncFault) throw fsError(this.fsyncFault, "fsync");
    nodeFiles.fsync(fd);
  }

  truncate(fd: number, size: number): void {
    this.calls.truncate++;
    if (this.truncateFault) throw fsError(this.truncateFault, "ftruncate");
    nodeFiles.truncate(fd, size);
  }

  rename(from: string, to: string): void {
    if (this.renameFault) throw fsError(this.renameFault, "rename");
    nodeFiles.rename(from, to);
  }
}
