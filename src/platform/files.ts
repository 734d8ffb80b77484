// Files on node:fs, which Bun, Deno and Node all provide: the StateFiles the JSON-file store writes through, and the
// buffered appender of audit records.

import {
  appendFileSync,
  closeSync,
  constants,
  existsSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import type { FileIdentity, StateFiles } from "./types.ts";

const identity = (s: { ino: number; size: number; mtimeMs: number }): FileIdentity => ({
  ino: s.ino,
  size: s.size,
  mtimeMs: s.mtimeMs,
});

export const nodeFiles: StateFiles = {
  exists: (path) => existsSync(path),
  readText: (path) => readFileSync(path, "utf8"),
  openAppend: (path, mode) => openSync(path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, mode),
  openWrite: (path, mode, exclusive = false) =>
    openSync(path, constants.O_WRONLY | constants.O_CREAT | (exclusive ? constants.O_EXCL : constants.O_TRUNC), mode),
  write: (fd, data, offset, length) => writeSync(fd, data, offset, length),
  fsync: (fd) => fsyncSync(fd),
  truncate: (fd, size) => ftruncateSync(fd, size),
  close: (fd) => closeSync(fd),
  rename: (from, to) => renameSync(from, to),
  unlink: (path) => unlinkSync(path),
  stat(path) {
    try {
      return identity(statSync(path));
    } catch (e) {
      if ((e as { code?: string }).code === "ENOENT") return undefined;
      throw e;
    }
  },
  fstat: (fd) => identity(fstatSync(fd)),
  syncDir(path) {
    let fd: number;
    try {
      fd = openSync(path, constants.O_RDONLY);
    } catch {
      return; // some filesystems refuse to open directories; the rename is atomic anyway
    }
    try {
      fsyncSync(fd);
    } catch {
      // same: nothing more can be done for the directory entry
    } finally {
      closeSync(fd);
    }
  },
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
