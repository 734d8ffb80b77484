// Client sessions of the gateway (MCP basic/transports "Session Management" and "Resumability and Redelivery"):
// a random Mcp-Session-Id bound to the principal that created it, the client's negotiated version and
// capabilities, and a bounded buffer of the SSE events sent to it so a client can resume with Last-Event-ID.
// With replicas (backplane.ts) the session's own stream — its events, their numbers and their replay — lives in the
// shared state, so the GET stream can be held by any replica; the streams of POST responses stay where the POST is.

import type { SessionBackplane, StreamEvent } from "./backplane.ts";
import type { Cancellation } from "./cancellation.ts";
import type { JsonRpcMessage } from "./jsonrpc.ts";

/** Something that writes SSE events to one open HTTP response. */
export interface EventSink {
  send(eventId: string, message: JsonRpcMessage): void;
  /** An event with an id and no data (MCP 2025-11-25 transports): the client may resume from it. */
  prime?(eventId: string): void;
  /** Writes a comment line so that idle connections are not cut by proxies. */
  ping?(): void;
  /** Ends the HTTP response. */
  close(): void;
}

interface BufferedEvent {
  seq: number;
  stream: string;
  message: JsonRpcMessage;
  delivered: boolean;
}

/** The standalone GET stream; every POST that answers with SSE gets a stream of its own. */
export const STANDALONE_STREAM = "0";

export interface SessionInit {
  id: string;
  principal: string;
  protocolVersion: string;
  clientCapabilities: Record<string, unknown>;
  clientInfo: { name?: string; version?: string };
  transport: "streamable-http" | "sse";
  now: number;
  bufferSize: number;
  /** Shared with other replicas: the standalone stream goes through it. */
  backplane?: SessionBackplane;
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
  /** When the shared copy's lifetime was last extended. */
  lastTouched: number;
  logLevel: string | undefined;
  /** Resource URIs (as the client sees them, prefixed) the client subscribed to. */
  readonly subscriptions = new Set<string>();
  /** Server→client requests forwarded to this client, by the id we gave them. */
  readonly outgoing = new Map<string, { backend: string; upstreamId: string | number }>();
  /** The client's requests in flight, by the client's id, so notifications/cancelled can reach the backend. */
  readonly inFlight = new Map<string | number, Cancellation>();
  readonly backplane: SessionBackplane | undefined;

  private seq = 0;
  private nextStream = 1;
  private nextOutgoing = 1;
  /** Stream labels this replica issues: "1", "2" … alone; "<replica>.1" … with replicas, so ids never collide. */
  private readonly streamPrefix: string;
  private readonly buffer: BufferedEvent[] = [];
  private readonly sinks = new Map<string, EventSink>();
  /** POST streams whose final response has not been written yet. */
  private readonly openStreams = new Set<string>();
  private readonly bufferSize: number;
  /** Shared standalone stream: appends are chained so they reach Redis in the order they were sent. */
  private appends: Promise<unknown> = Promise.resolve();
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
    this.lastTouched = init.now;
    this.bufferSize = init.bufferSize;
    this.backplane = init.backplane;
    this.streamPrefix = init.backplane ? `${init.backplane.replica}.` : "";
  }

  newStream(): string {
    const n = `${this.streamPrefix}${this.nextStream++}`;
    this.openStreams.add(n);
    return n;
  }

  /** Marks a POST stream complete (its response was sent): a resumed GET closes after replaying it. */
  endStream(stream: string): void {
    this.openStreams.delete(stream);
    const sink = this.sinks.get(stream);
    if (sink) {
      this.sinks.delete(stream);
      sink.close();
    }
  }

  /** An id for a request forwarded to this client; with replicas it names this replica, where the answer must go. */
  newOutgoingId(): string {
    const n = this.nextOutgoing++;
    return this.backplane ? `gatehouse-${this.backplane.replica}-${n}` : `gatehouse-${n}`;
  }

  /** Sends (or buffers, if nobody listens on that stream right now) one message. */
  send(stream: string, message: JsonRpcMessage): void {
    if (stream === STANDALONE_STREAM && this.backplane) {
      const bp = this.backplane;
      this.appends = this.appends.then(() => bp.append(this.id, message)).catch(() => {});
      return;
    }
    const seq = ++this.seq;
    const ev: BufferedEvent = { seq, stream, message, delivered: false };
    this.buffer.push(ev);
    if (this.buffer.length > this.bufferSize) this.buffer.shift();
    const sink = this.sinks.get(stream);
    if (sink) {
      ev.delivered = true;
      sink.send(`${stream}-${seq}`, message);
    }
  }

  /**
   * Attaches an open HTTP response to a stream. Without `lastEventId`, a GET becomes the standalone stream and
   * receives what was queued for it but never delivered. With it, the events after that id on the same stream are
   * replayed and the sink keeps receiving that stream. Returns false when the id is unknown or no longer buffered.
   * `prime`: start a fresh stream with an event the client may resume from (MCP 2025-11-25 transports).
   */
  async attach(sink: EventSink, lastEventId?: string, prime = false): Promise<boolean> {
    let stream = STANDALONE_STREAM;
    let after: number | undefined;
    if (lastEventId !== undefined) {
      const m = /^([a-z0-9.]+)-(\d+)$/.exec(lastEventId);
      if (!m) return false;
      stream = m[1] as string;
      after = Number(m[2]);
    }
    if (stream === STANDALONE_STREAM && this.backplane) return this.attachShared(sink, after, prime);
    // An id this session never issued here (another session's, another replica's, or made up) cannot be resumed.
    if (after !== undefined && (after > this.seq || !this.issued(stream))) return false;
    if (prime && after === undefined) sink.prime?.(`${stream}-${this.seq}`);
    const previous = this.sinks.get(stream);
    this.sinks.set(stream, sink);
    previous?.close();
    for (const ev of this.buffer) {
      if (ev.stream !== stream) continue;
      if (after !== undefined ? ev.seq > after : !ev.delivered) {
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

  private issued(stream: string): boolean {
    if (stream === STANDALONE_STREAM) return true;
    if (!stream.startsWith(this.streamPrefix)) return false;
    const n = Number(stream.slice(this.streamPrefix.length));
    return Number.isInteger(n) && n >= 1 && n < this.nextStream;
  }

  /**
   * The standalone stream of a shared session: listen first (so nothing published meanwhile is missed), replay what
   * the shared buffer holds, then pass live events on — each number once, in order. A stream already attached here
   * keeps receiving until the new one is in place.
   */
  private async attachShared(sink: EventSink, after: number | undefined, prime: boolean): Promise<boolean> {
    const bp = this.backplane as SessionBackplane;
    const early: StreamEvent[] = [];
    const collect = (e: StreamEvent) => early.push(e);
    this.sharedListeners.add(collect);
    let replay: Awaited<ReturnType<SessionBackplane["replay"]>>;
    try {
      await this.listenShared();
      replay = await bp.replay(this.id, after);
    } catch (e) {
      this.sharedListeners.delete(collect);
      this.unlistenIfIdle();
      throw e;
    }
    this.sharedListeners.delete(collect);
    if (!replay || (after !== undefined && after > replay.current)) {
      this.unlistenIfIdle();
      return false;
    }
    let written = after ?? 0;
    const write = (e: StreamEvent) => {
      if (e.seq <= written) return;
      written = e.seq;
      sink.send(`${STANDALONE_STREAM}-${e.seq}`, e.message);
    };
    const previous = this.sinks.get(STANDALONE_STREAM);
    if (previous) this.sharedListeners.delete(this.writers.get(previous) as (e: StreamEvent) => void);
    this.sinks.set(STANDALONE_STREAM, sink);
    this.writers.set(sink, write);
    if (prime && after === undefined) sink.prime?.(`${STANDALONE_STREAM}-${replay.current}`);
    for (const e of replay.events) write(e);
    for (const e of early) write(e);
    this.sharedListeners.add(write);
    if (previous && previous !== sink) previous.close();
    void bp.broadcast({ type: "stream", session: this.id, replica: bp.replica }).catch(() => {});
    return true;
  }

  /** Every event published for this session reaches the listeners here (the stream's writer, attaches under way). */
  private readonly sharedListeners = new Set<(e: StreamEvent) => void>();
  private readonly writers = new WeakMap<EventSink, (e: StreamEvent) => void>();
  private listening: Promise<void> | undefined;

  private listenShared(): Promise<void> {
    this.listening ??= (this.backplane as SessionBackplane)
      .listen(this.id, (e) => {
        for (const l of this.sharedListeners) l(e);
      })
      .catch((e: unknown) => {
        this.listening = undefined;
        throw e;
      });
    return this.listening;
  }

  private unlistenIfIdle(): void {
    if (this.sharedListeners.size > 0 || !this.listening || !this.backplane) return;
    this.listening = undefined;
    void this.backplane.unlisten(this.id).catch(() => {});
  }

  /** Attaches the HTTP response of a POST to the stream created for it. */
  attachNew(stream: string, sink: EventSink): void {
    this.sinks.set(stream, sink);
  }

  /** The id of a priming event for a new POST stream: resuming from it replays the stream. */
  primingId(stream: string): string {
    return `${stream}-${this.seq}`;
  }

  /** Detaches a sink (the client went away); later events on that stream are buffered. */
  detach(sink: EventSink): void {
    for (const [stream, s] of this.sinks) {
      if (s !== sink) continue;
      this.sinks.delete(stream);
      const writer = this.writers.get(sink);
      if (writer) this.sharedListeners.delete(writer);
    }
    this.unlistenIfIdle();
  }

  /** Another replica took the standalone stream: this one lets go of its copy. */
  releaseStandalone(): void {
    const sink = this.sinks.get(STANDALONE_STREAM);
    if (!sink || !this.backplane) return;
    sink.close(); // its onClose detaches it
    this.detach(sink);
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
    for (const c of this.inFlight.values()) c.cancel();
    this.inFlight.clear();
    for (const s of this.sinks.values()) s.close();
    this.sinks.clear();
    this.buffer.length = 0;
    this.sharedListeners.clear();
    this.unlistenIfIdle();
  }
}
