// One log line when the state store starts failing and one when it works again — never one per request — and the
// reason in between, for /health. Storage errors are described by their code and meaning, without a stack.

import type { Logger } from "../log.ts";

const MEANINGS: Record<string, string> = {
  ENOSPC: "no space left on device",
  EDQUOT: "disk quota exceeded",
  EIO: "input/output error",
  EROFS: "read-only file system",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EBADF: "bad file descriptor",
  EFBIG: "file too large",
  ENOENT: "no such file or directory",
};

/** `ENOSPC (no space left on device)` for a Node filesystem error; its message for anything else. */
export function describeFault(e: unknown): string {
  const code = (e as { code?: unknown })?.code;
  if (typeof code === "string" && MEANINGS[code]) return `${code} (${MEANINGS[code]})`;
  const message = (e as Error)?.message ?? String(e);
  return typeof code === "string" && !message.includes(code) ? `${code}: ${message}` : message;
}

/**
 * A store that fails, works for a moment and fails again (a disk with a few bytes free, a flapping network) is one
 * outage: its end is logged only after `quietMs` without a failure.
 */
export class OutageLog {
  private since: number | undefined;
  private reason = "";
  private refused = 0;
  /** Working again, but not yet for `quietMs`: a failure now continues the same outage, silently. */
  private recovering: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly log: Logger,
    /** What is failing, for the log: "state store /var/lib/gatehouse/auth_server.json". */
    private readonly what: string,
    /** What users see meanwhile, for the first line. */
    private readonly effect: string,
    private readonly quietMs = 5_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** The reason of the ongoing outage, if it is failing right now. */
  get down(): string | undefined {
    return this.since === undefined || this.recovering !== undefined ? undefined : this.reason;
  }

  /** `effect` replaces the usual one when this failure does not end by itself (a lost lock: until a restart). */
  failed(reason: string, effect = this.effect): void {
    this.refused++;
    if (this.recovering !== undefined) {
      clearTimeout(this.recovering);
      this.recovering = undefined;
    }
    if (this.since !== undefined) {
      // The same outage: its reason may change (timeouts, then a lost connection), but it is logged once.
      if (reason !== this.reason) this.log.debug(`${this.what}: still failing`, { reason });
      this.reason = reason;
      return;
    }
    this.since = this.now();
    this.reason = reason;
    this.log.error(`${this.what}: ${reason}; ${effect}`);
  }

  recovered(): void {
    if (this.since === undefined || this.recovering !== undefined) return;
    const end = () => {
      this.recovering = undefined;
      if (this.since === undefined) return;
      this.log.warn(`${this.what}: working again`, {
        after_s: Math.round((this.now() - this.since) / 1000),
        refused: this.refused,
      });
      this.since = undefined;
      this.refused = 0;
      this.reason = "";
    };
    if (this.quietMs <= 0) {
      end();
      return;
    }
    this.recovering = setTimeout(end, this.quietMs);
    (this.recovering as { unref?: () => void }).unref?.();
  }
}
