// Client sessions of the gateway (MCP basic/transports "Session Management" and "Resumability and Redelivery"):
// a random Mcp-Session-Id bound to the principal that created it, the client's negotiated version and
// capabilities, and a bounded buffer of the SSE events sent to it so a client can resume with Last-Event-ID.

import type { JsonRpcMessage } from "./jsonrpc.ts";

/** Something that writes SSE events to one open HTTP response. */
export interface EventSink {
  send(eventId: string, message: JsonRpcMessage): void;
  /** Writes a comment line so that idle connections are not cut by proxies. */
  ping?(): void;
  /** Ends the HTTP response. */
  close(): void;
}

interface BufferedEvent {
  seq: number;
  stream: number;
  message: JsonRpcMessage;
  delivered: boolean;
}

/** Stream 0 is the standalone GET stream; every POST that answers with SSE gets its own number. */
export const STANDALONE_STREAM = 0;

export interface SessionInit {
  id: string;
  principal: string;
  protocolVersion: string;
  clientCapabilities: Record<string, unknown>;
  clientInfo: { name?: string; version?: string };
  transport: "streamable-http" | "sse";
  now: number;
  bufferSize: number;
}

export class ClientSession {
  readonly id: string;
  readonly principal: string;
  protocolVersion: string;
  clientCapabilities: Record<string, unknown>;
  clientInfo: { name?: string; version?: string };
  /** False until initialize was answered (HTTP+SSE sessions exist before it). */
  initialized = false;
  readonly transport: "streamable-http" | "sse";
  readonly createdAt: number;
  lastSeen: number;
  logLevel: string | undefined;
  /** Resource URIs (as the client sees them, prefixed) the client subscribed to. */
  readonly subscriptions = new Set<string>();
  /** Server→client requests forwarded to this client, by the id we gave them. */
  readonly outgoing = new Map<string, { backend: string; upstreamId: string | number }>();
  /** The client's requests in flight, by the client's id, so notifications/cancelled can reach the backend. */
  readonly inFlight = new Map<string | number, AbortController>();

  private seq = 0;
  private nextStream = 1;
  private nextOutgoing = 1;
  private readonly buffer: BufferedEvent[] = [];
  private readonly sinks = new Map<number, EventSink>();
  /** POST streams whose final response has not been written yet. */
  private readonly openStreams = new Set<number>();
  private readonly bufferSize: number;
  closed = false;

  constructor(init: SessionInit) {
    this.id = init.id;
    this.principal = init.principal;
    this.protocolVersion = init.protocolVersion;
    this.clientCapabilities = init.clientCapabilities;
    this.clientInfo = init.clientInfo;
    this.transport = init.transport;
    this.createdAt = init.now;
    this.lastSeen = init.now;
    this.bufferSize = init.bufferSize;
  }

  newStream(): number {
    const n = this.nextStream++;
    this.openStreams.add(n);
    return n;
  }

  /** Marks a POST stream complete (its response was sent): a resumed GET closes after replaying it. */
  endStream(stream: number): void {
    this.openStreams.delete(stream);
    const sink = this.sinks.get(stream);
    if (sink) {
      this.sinks.delete(stream);
      sink.close();
    }
  }

  newOutgoingId(): string {
    return `gatehouse-${this.nextOutgoing++}`;
  }

  /** Sends (or buffers, if nobody listens on that stream right now) one message. Returns its event id. */
  send(stream: number, message: JsonRpcMessage): string {
    const seq = ++this.seq;
    const ev: BufferedEvent = { seq, stream, message, delivered: false };
    this.buffer.push(ev);
    if (this.buffer.length > this.bufferSize) this.buffer.shift();
    const id = `${stream}-${seq}`;
    const sink = this.sinks.get(stream);
    if (sink) {
      ev.delivered = true;
      sink.send(id, message);
    }
    return id;
  }

  /**
   * Attaches an open HTTP response to a stream. Without `lastEventId`, a GET becomes the standalone stream and
   * receives what was queued for it but never delivered. With it, the events after that id on the same stream are
   * replayed and the sink keeps receiving that stream. Returns false when the id is unknown or no longer buffered.
   */
  attach(sink: EventSink, lastEventId?: string): boolean {
    let stream = STANDALONE_STREAM;
    let after = 0;
    if (lastEventId !== undefined) {
      const m = /^(\d+)-(\d+)$/.exec(lastEventId);
      if (!m) return false;
      stream = Number(m[1]);
      after = Number(m[2]);
      // An id this session never issued (another session's, or made up) cannot be resumed.
      if (after > this.seq || stream >= this.nextStream) return false;
    }
    const previous = this.sinks.get(stream);
    this.sinks.set(stream, sink);
    previous?.close();
    for (const ev of this.buffer) {
      if (ev.stream !== stream) continue;
      if (lastEventId !== undefined ? ev.seq > after : !ev.delivered) {
        ev.delivered = true;
        sink.send(`${stream}-${ev.seq}`, ev.message);
      }
    }
    if (stream !== STANDALONE_STREAM && !this.openStreams.has(stream)) {
      this.sinks.delete(stream);
      sink.close();
    }
    return true;
  }

  /** The id of a priming event for a new stream (MCP 2025-11-25 transports): resuming from it replays the stream. */
  primingId(stream: number): string {
    return `${stream}-${this.seq}`;
  }

  /** Attaches the HTTP response of a POST to the stream created for it. */
  attachNew(stream: number, sink: EventSink): void {
    this.sinks.set(stream, sink);
  }

  /** Detaches a sink (the client went away); later events on that stream are buffered. */
  detach(sink: EventSink): void {
    for (const [stream, s] of this.sinks) if (s === sink) this.sinks.delete(stream);
  }

  hasStandaloneStream(): boolean {
    return this.sinks.has(STANDALONE_STREAM);
  }

  /** Every open sink, for keep-alive comments. */
  openSinks(): IterableIterator<EventSink> {
    return this.sinks.values();
  }

  close(): void {
    this.closed = true;
    for (const c of this.inFlight.values()) c.abort();
    this.inFlight.clear();
    for (const s of this.sinks.values()) s.close();
    this.sinks.clear();
    this.buffer.length = 0;
  }
}
