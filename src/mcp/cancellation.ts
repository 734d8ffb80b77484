// A client request that may be cancelled: by the client (notifications/cancelled, MCP basic/utilities/cancellation)
// or because its session ends. One per call, so it is lighter than an AbortController with an event listener: a flag
// and one callback — the backend request the call waits on.

export class Cancellation {
  private done = false;
  private listener: (() => void) | undefined;

  get cancelled(): boolean {
    return this.done;
  }

  cancel(): void {
    if (this.done) return;
    this.done = true;
    const listener = this.listener;
    this.listener = undefined;
    listener?.();
  }

  /** Calls `fn` when cancelled (at once if it already is); replaces an earlier callback, `undefined` clears it. */
  onCancel(fn: (() => void) | undefined): void {
    if (this.done) fn?.();
    else this.listener = fn;
  }
}
