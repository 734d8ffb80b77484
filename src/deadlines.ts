// Many deadlines, one timer: a deadline per request in flight (a backend's answer, the switch of a slow answer to
// SSE) costs a set insertion instead of a runtime timer each. One interval, running only while deadlines are set,
// fires those that fell due; they fire at most `resolutionMs` late, which is nothing next to timeouts of seconds.

import type { Clock, TimerHandle } from "./platform/types.ts";

export interface Deadline {
  /** When it falls due (a clock time); may be moved with `postpone`. */
  at: number;
  readonly fire: () => void;
}

export class Deadlines {
  private readonly pending = new Set<Deadline>();
  private timer: TimerHandle | undefined;

  constructor(
    private readonly clock: Clock,
    private readonly resolutionMs = 100,
  ) {}

  /** Calls `fire` once, `ms` from now, unless cancelled first. */
  add(ms: number, fire: () => void): Deadline {
    const d: Deadline = { at: this.clock.now() + ms, fire };
    this.pending.add(d);
    if (this.timer === undefined) this.timer = this.clock.setInterval(() => this.sweep(), this.resolutionMs);
    return d;
  }

  /** Moves a deadline to `ms` from now. */
  postpone(d: Deadline, ms: number): void {
    d.at = this.clock.now() + ms;
  }

  cancel(d: Deadline | undefined): void {
    if (d) this.pending.delete(d);
  }

  get size(): number {
    return this.pending.size;
  }

  private sweep(): void {
    const now = this.clock.now();
    for (const d of this.pending) {
      if (d.at > now) continue;
      this.pending.delete(d);
      d.fire();
    }
    if (this.pending.size === 0 && this.timer !== undefined) {
      this.clock.clearInterval(this.timer);
      this.timer = undefined;
    }
  }
}
