// Server-Sent Events: an incremental parser for streams read from backends and a formatter for streams written
// to clients (WHATWG HTML "Server-sent events", §9.2.6 interpreting an event stream).

export interface SseEvent {
  id?: string;
  event?: string;
  data: string;
  retry?: number;
}

/** Feed it chunks of text as they arrive; it calls `onEvent` for each complete event. */
export class SseParser {
  private buffer = "";
  private data: string[] = [];
  private id: string | undefined;
  private event: string | undefined;
  private retry: number | undefined;
  private sawField = false;

  constructor(private readonly onEvent: (e: SseEvent) => void) {}

  push(chunk: string): void {
    this.buffer += chunk;
    let start = 0;
    for (;;) {
      const nl = this.nextLineEnd(start);
      if (nl < 0) break;
      const line = this.buffer.slice(start, nl);
      // A CRLF pair counts as one line end.
      start = this.buffer[nl] === "\r" && this.buffer[nl + 1] === "\n" ? nl + 2 : nl + 1;
      this.line(line);
    }
    this.buffer = this.buffer.slice(start);
  }

  /** Flushes a final event that was not followed by a blank line. */
  end(): void {
    if (this.buffer.length > 0) this.line(this.buffer);
    this.buffer = "";
    this.dispatch();
  }

  private nextLineEnd(from: number): number {
    for (let i = from; i < this.buffer.length; i++) {
      const c = this.buffer[i];
      if (c === "\n") return i;
      if (c === "\r") {
        // A lone CR at the end of the buffer may be the first half of CRLF: wait for more input.
        if (i === this.buffer.length - 1) return -1;
        return i;
      }
    }
    return -1;
  }

  private line(line: string): void {
    if (line === "") {
      this.dispatch();
      return;
    }
    if (line.startsWith(":")) return; // comment (keep-alive)
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    this.sawField = true;
    switch (field) {
      case "data":
        this.data.push(value);
        break;
      case "event":
        this.event = value;
        break;
      case "id":
        if (!value.includes("\0")) this.id = value;
        break;
      case "retry":
        if (/^\d+$/.test(value)) this.retry = Number(value);
        break;
    }
  }

  private dispatch(): void {
    if (!this.sawField) return;
    const e: SseEvent = { data: this.data.join("\n") };
    if (this.id !== undefined) e.id = this.id;
    if (this.event !== undefined) e.event = this.event;
    if (this.retry !== undefined) e.retry = this.retry;
    this.data = [];
    this.event = undefined;
    this.retry = undefined;
    this.sawField = false;
    // The last event id persists across events per the spec; we report it only on the event that set it.
    this.id = undefined;
    this.onEvent(e);
  }
}

/** Formats one event; multi-line data is split into several `data:` lines. */
export function formatSse(e: SseEvent): string {
  let out = "";
  if (e.event) out += `event: ${e.event}\n`;
  if (e.id !== undefined) out += `id: ${e.id}\n`;
  if (e.retry !== undefined) out += `retry: ${e.retry}\n`;
  for (const line of e.data.split(/\r\n|\r|\n/)) out += `data: ${line}\n`;
  return `${out}\n`;
}

/** Reads a byte stream of SSE and yields events; ends when the stream ends or the signal aborts. */
export async function* readSse(body: ReadableStream<Uint8Array>, signal?: AbortSignal): AsyncGenerator<SseEvent> {
  const queue: SseEvent[] = [];
  const parser = new SseParser((e) => queue.push(e));
  const decoder = new TextDecoder();
  const reader = body.getReader();
  const onAbort = () => reader.cancel().catch(() => {});
  signal?.addEventListener("abort", onAbort, { once: true });
  let finished = false;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        finished = true;
        break;
      }
      parser.push(decoder.decode(value, { stream: true }));
      while (queue.length > 0) yield queue.shift() as SseEvent;
    }
    parser.end();
    while (queue.length > 0) yield queue.shift() as SseEvent;
  } finally {
    signal?.removeEventListener("abort", onAbort);
    // A consumer that stops early must not leave the connection open.
    if (!finished) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}
