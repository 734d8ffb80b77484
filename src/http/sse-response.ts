// Turns a session stream into an HTTP response of Server-Sent Events, unbuffered: every event is written as soon
// as it is produced, and a client that goes away only detaches (its events stay buffered for resumption).

import type { JsonRpcMessage } from "../mcp/jsonrpc.ts";
import type { EventSink } from "../mcp/session.ts";
import { formatSse } from "../mcp/sse.ts";

export const SSE_HEADERS = {
  "content-type": "text/event-stream",
  "cache-control": "no-cache, no-transform",
  // Tells nginx not to buffer the stream (MCP 2026-07-28 transports recommend it for every SSE response).
  "x-accel-buffering": "no",
} as const;

const encoder = new TextEncoder();

export interface SseStream {
  sink: EventSink;
  response: Response;
  /** Writes raw SSE text (an `endpoint` event, a priming event). */
  write(text: string): void;
}

/**
 * Creates the response and its sink. `legacy` formats events the 2024-11-05 way (`event: message`, no ids).
 * `onClose` runs when the client disconnects or the stream is ended.
 */
export function sseStream(options: {
  legacy?: boolean;
  headers?: Record<string, string>;
  onClose?: () => void;
}): SseStream {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let open = true;
  const write = (text: string) => {
    if (!open) return;
    try {
      controller.enqueue(encoder.encode(text));
    } catch {
      open = false;
    }
  };
  const finish = () => {
    if (!open) return;
    open = false;
    options.onClose?.();
  };
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
    },
    cancel() {
      finish();
    },
  });
  const sink: EventSink = {
    send(eventId: string, message: JsonRpcMessage) {
      const data = JSON.stringify(message);
      write(options.legacy ? formatSse({ event: "message", data }) : formatSse({ id: eventId, data }));
    },
    prime(eventId: string) {
      write(`id: ${eventId}\ndata: \n\n`);
    },
    ping() {
      write(": keepalive\n\n");
    },
    close() {
      if (!open) return;
      try {
        controller.close();
      } catch {
        // already closed
      }
      finish();
    },
  };
  const response = new Response(body, { status: 200, headers: { ...SSE_HEADERS, ...options.headers } });
  return { sink, response, write };
}
