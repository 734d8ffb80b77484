// MCP Streamable HTTP client transport (MCP 2025-11-25 basic/transports "Streamable HTTP"), falling back to the
// 2024-11-05 HTTP+SSE transport when the backend refuses a POSTed initialize with 400/404/405 (the spec's
// "Backwards Compatibility" section). Only the configured headers go upstream: never the client's credentials.

import type { Logger } from "../../log.ts";
import { classify, ErrorCode, errorResponse, type JsonRpcId, type JsonRpcMessage } from "../jsonrpc.ts";
import { readSse, type SseEvent } from "../sse.ts";
import { type BackendTransport, type SendOptions, TransportError, type TransportHandlers } from "./transport.ts";

export interface HttpTransportOptions {
  url: string;
  headers: Record<string, string>;
  /** How long to wait for response headers (connect + first byte). */
  connectTimeoutMs: number;
  fetch?: typeof fetch;
}

const STREAM_RETRY_MIN_MS = 1000;
const STREAM_RETRY_MAX_MS = 30_000;
/** Wait before resuming a response stream when the backend sent no `retry:` field. */
const RESUME_DEFAULT_DELAY_MS = 1000;
/** Failed reconnects in a row (no event stream came back) before a call whose response stream ended fails. */
const RESUME_MAX_ATTEMPTS = 3;

/** Where a response stream left off: what a reconnect sends as Last-Event-ID and how long it waits first. */
interface StreamCursor {
  lastEventId: string | undefined;
  retryMs: number | undefined;
}

/** Waits `ms` unless the signal aborts first; resolves false when it did. */
function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (waited: boolean) => {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      resolve(waited);
    };
    const onAbort = () => done(false);
    const timer = setTimeout(() => done(true), ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

function isInitialize(m: JsonRpcMessage): boolean {
  return "method" in m && m.method === "initialize" && "id" in m;
}

function parseMessages(text: string): JsonRpcMessage[] {
  const value: unknown = JSON.parse(text);
  const list = Array.isArray(value) ? value : [value];
  return list.filter((v) => classify(v) !== null) as JsonRpcMessage[];
}

export class HttpTransport implements BackendTransport {
  readonly abortsRequests = true;
  private mode: "unknown" | "streamable" | "sse" = "unknown";
  private sessionId: string | undefined;
  private protocolVersion: string | undefined;
  private handlers: TransportHandlers | undefined;
  private legacyEndpoint: string | undefined;
  /** Aborted on close: ends the response streams being read. */
  private streams = new AbortController();
  /** Requests waiting for their response headers, aborted on close. */
  private readonly waiting = new Set<AbortController>();
  private closed = false;
  private readonly fetch: typeof fetch;
  private posting: { key: string; headers: Record<string, string> } | undefined;
  /** The configured headers, lower-cased once. */
  private readonly baseHeaders: Record<string, string>;

  constructor(
    private readonly name: string,
    private readonly options: HttpTransportOptions,
    private readonly log: Logger,
  ) {
    this.fetch = options.fetch ?? fetch;
    this.baseHeaders = Object.fromEntries(Object.entries(options.headers).map(([k, v]) => [k.toLowerCase(), v]));
  }

  async start(handlers: TransportHandlers): Promise<void> {
    this.handlers = handlers;
    this.closed = false;
    this.streams = new AbortController();
    this.sessionId = undefined;
    this.mode = this.mode === "sse" ? "sse" : "unknown";
    if (this.mode === "sse") await this.connectLegacy();
  }

  setProtocolVersion(version: string): void {
    this.protocolVersion = version;
  }

  describe(): string {
    const kind = this.mode === "sse" ? "sse (2024-11-05)" : "streamable-http";
    return `${kind} ${this.options.url}`;
  }

  /** The headers of a POST, kept until the session or the protocol version changes (built once, not per call). */
  private postHeaders(): Record<string, string> {
    const key = `${this.sessionId ?? ""} ${this.protocolVersion ?? ""}`;
    if (this.posting?.key !== key) {
      const headers = this.headers({
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
      });
      this.posting = { key, headers };
    }
    return this.posting.headers;
  }

  /** Extra headers (lower-case names) over the configured ones, plus the session's. */
  private headers(extra: Record<string, string>): Record<string, string> {
    const h: Record<string, string> = { ...this.baseHeaders, ...extra };
    if (this.sessionId) h["mcp-session-id"] = this.sessionId;
    if (this.protocolVersion) h["mcp-protocol-version"] = this.protocolVersion;
    return h;
  }

  /**
   * fetch without following redirects. With a caller's signal (a request of the backend client, which has its own
   * deadline) the signal is used as is — no extra controller or timer on the hot path. Without one (notifications,
   * streams, the legacy transport) the response headers must arrive within the connect timeout.
   */
  private async request(url: string, init: RequestInit, signal?: AbortSignal): Promise<Response> {
    if (signal) {
      try {
        return await this.fetch(url, { ...init, signal, redirect: "manual" });
      } catch (e) {
        // Aborted by the caller (its deadline, a cancellation): not the backend's fault.
        throw new TransportError(`could not reach ${url}: ${(e as Error).message}`, { unreachable: !signal.aborted });
      }
    }
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, this.options.connectTimeoutMs);
    this.waiting.add(controller);
    try {
      return await this.fetch(url, { ...init, signal: controller.signal, redirect: "manual" });
    } catch (e) {
      if (timedOut) {
        throw new TransportError(`no response from ${url} within ${this.options.connectTimeoutMs} ms`, {
          unreachable: true,
        });
      }
      throw new TransportError(`could not reach ${url}: ${(e as Error).message}`, { unreachable: true });
    } finally {
      clearTimeout(timer);
      this.waiting.delete(controller);
    }
  }

  async send(message: JsonRpcMessage, options: SendOptions = {}): Promise<void> {
    const { signal } = options;
    if (this.mode === "sse") return this.sendLegacy(message, options);
    // The session this request is sent on: a 404 is about that one, which may have been replaced meanwhile.
    const sent = this.sessionId;
    const res = await this.request(
      this.options.url,
      {
        method: "POST",
        headers: options.headers ? { ...this.postHeaders(), ...options.headers } : this.postHeaders(),
        body: JSON.stringify(message),
      },
      signal,
    );
    if (this.mode === "unknown" && isInitialize(message) && [400, 404, 405].includes(res.status)) {
      await res.body?.cancel().catch(() => {});
      this.log.info("backend refused Streamable HTTP; trying the 2024-11-05 HTTP+SSE transport", {
        backend: this.name,
        status: res.status,
      });
      this.mode = "sse";
      await this.connectLegacy();
      return this.sendLegacy(message, options);
    }
    if (res.status === 404 && sent) {
      await res.body?.cancel().catch(() => {});
      if (this.sessionId === sent) this.sessionId = undefined;
      throw new TransportError("the backend no longer knows our session (HTTP 404)", {
        sessionLost: true,
        status: 404,
      });
    }
    if (!res.ok) throw await this.httpError(res);
    if (this.mode === "unknown") this.mode = "streamable";
    // The session is assigned by the answer to initialize (MCP transports, Session Management).
    if (!this.sessionId || isInitialize(message)) {
      const sid = res.headers.get("mcp-session-id");
      if (sid) this.sessionId = sid;
    }
    if ("method" in message && message.method === "notifications/initialized") this.openStandaloneStream();

    const requestId: JsonRpcId | undefined = "id" in message && "method" in message ? message.id : undefined;
    if (res.status === 202 || !res.body) return;
    const type = res.headers.get("content-type") ?? "";
    if (type.includes("text/event-stream")) {
      void this.consumeResponseStream(res.body, requestId, signal);
      return;
    }
    const text = await res.text();
    if (text.trim() === "") return;
    let messages: JsonRpcMessage[];
    try {
      messages = parseMessages(text);
    } catch {
      throw new TransportError(`backend answered with a body that is not JSON (content-type "${type}")`);
    }
    for (const m of messages) this.handlers?.onMessage(m, requestId);
  }

  private async httpError(res: Response): Promise<TransportError> {
    const body = (await res.text().catch(() => "")).slice(0, 200).replace(/\s+/g, " ");
    let hint = "";
    if (res.status === 401 || res.status === 403) hint = " (check the headers configured for this backend)";
    if (res.status >= 300 && res.status < 400)
      hint = ` (redirect to ${res.headers.get("location")}: set the final URL)`;
    return new TransportError(`HTTP ${res.status}${hint}${body ? `: ${body}` : ""}`, { status: res.status });
  }

  /**
   * Reads an SSE response to one POST. If it ends without the answer after an event carrying an id, the stream is
   * resumed with GET; if it cannot be, the request fails instead of hanging. `signal` is the request's own (aborted
   * when the caller gives up on it).
   */
  private async consumeResponseStream(
    body: ReadableStream<Uint8Array>,
    requestId: JsonRpcId | undefined,
    signal: AbortSignal | undefined,
  ) {
    const streams = this.streams.signal; // this connection's: a restarted transport must not resume old streams
    const cursor: StreamCursor = { lastEventId: undefined, retryMs: undefined };
    const answered = await this.readResponseStream(body, requestId, cursor, streams, false);
    if (answered || requestId === undefined) return;
    let failure: string | undefined;
    // MCP 2025-11-25 basic/transports, "Sending Messages to the Server" and "Resumability and Redelivery"
    // (SEP-1699): once it has sent an event with an id, the server MAY close the stream before the response; the
    // client then resumes it with a GET carrying Last-Event-ID, after the `retry:` delay, and the response
    // arrives on that stream. Without an id there is nothing to resume from.
    if (cursor.lastEventId !== undefined) {
      failure = await this.resumeResponseStream(requestId, cursor, streams, signal);
      if (failure === undefined) return;
    }
    if (this.closed || streams.aborted || signal?.aborted) return;
    const reason = "the backend closed its response stream before answering";
    this.handlers?.onMessage(
      errorResponse(
        requestId,
        ErrorCode.ConnectionClosed,
        failure ? `${reason} (resuming it failed: ${failure})` : reason,
      ),
      requestId,
    );
  }

  /**
   * Reads one response stream, handing on its messages and moving the cursor; returns whether the answer to
   * `requestId` came. A resumed stream is left once answered: a server replaying a stored response may keep it open.
   */
  private async readResponseStream(
    body: ReadableStream<Uint8Array>,
    requestId: JsonRpcId | undefined,
    cursor: StreamCursor,
    signal: AbortSignal,
    stopWhenAnswered: boolean,
  ): Promise<boolean> {
    let answered = requestId === undefined;
    try {
      await this.readEvents(body, signal, (event, messages) => {
        // An empty id clears the last event id (WHATWG SSE): nothing to resume from then.
        if (event.id !== undefined) cursor.lastEventId = event.id === "" ? undefined : event.id;
        if (event.retry !== undefined) cursor.retryMs = event.retry;
        for (const m of messages) {
          if (!("method" in m) && m.id === requestId) answered = true;
          this.handlers?.onMessage(m, requestId);
        }
        return answered && stopWhenAnswered;
      });
    } catch (e) {
      this.log.debug("backend response stream failed", { backend: this.name, error: (e as Error).message });
    }
    return answered;
  }

  /**
   * The one SSE loop (response streams, the standalone stream, the 2024-11-05 stream): every event goes to `each`
   * with the JSON-RPC messages its data holds (none for a priming event; an event that is not JSON is logged and
   * skipped). `each` returning true stops the reading; a broken stream throws.
   */
  private async readEvents(
    body: ReadableStream<Uint8Array>,
    signal: AbortSignal,
    each: (event: SseEvent, messages: JsonRpcMessage[]) => boolean | undefined,
  ): Promise<void> {
    for await (const event of readSse(body, signal)) {
      let messages: JsonRpcMessage[] = [];
      // Messages come as "message" events (the default name); the 2024-11-05 `endpoint` event carries a URL.
      const isMessage = event.event === undefined || event.event === "message";
      if (isMessage && event.data.trim() !== "") {
        try {
          messages = parseMessages(event.data);
        } catch {
          this.log.warn("backend sent an SSE event that is not JSON (ignored)", { backend: this.name });
        }
      }
      if (each(event, messages)) return;
    }
  }

  /**
   * Resumes a response stream until the answer comes (undefined) or it cannot be resumed (the reason). A stream
   * that reopens and closes again is the server polling (SEP-1699), which may last as long as the call does, so
   * only reconnects that fail in a row are bounded; the request's own deadline (its signal) bounds the rest.
   */
  private async resumeResponseStream(
    requestId: JsonRpcId,
    cursor: StreamCursor,
    streams: AbortSignal,
    signal: AbortSignal | undefined,
  ): Promise<string | undefined> {
    const stop = signal ? AbortSignal.any([streams, signal]) : streams;
    let failures = 0;
    let failure = "";
    while (cursor.lastEventId !== undefined && failures < RESUME_MAX_ATTEMPTS) {
      const delay = Math.min(cursor.retryMs ?? RESUME_DEFAULT_DELAY_MS, STREAM_RETRY_MAX_MS);
      if (!(await pause(delay, stop)) || this.closed) return "the connection was closed";
      const res = await this.openResumedStream(cursor.lastEventId, signal ? stop : undefined);
      if (!(res instanceof ReadableStream)) {
        if (res.final) return res.reason;
        failure = res.reason;
        failures++;
        continue;
      }
      failures = 0;
      this.log.debug("resumed a backend response stream", { backend: this.name, last_event_id: cursor.lastEventId });
      if (await this.readResponseStream(res, requestId, cursor, streams, true)) return undefined;
      failure = "the resumed stream ended without the response";
    }
    if (cursor.lastEventId === undefined) return "the backend cleared the event id";
    return `${failure} (${RESUME_MAX_ATTEMPTS} attempts)`;
  }

  /**
   * The GET that resumes a stream after `lastEventId`: its event stream, or why there is none. A 3xx/4xx is final
   * (405: the backend offers no GET, 404: the session or the stream is gone); the rest may be worth another try.
   */
  private async openResumedStream(
    lastEventId: string,
    signal: AbortSignal | undefined,
  ): Promise<ReadableStream<Uint8Array> | { reason: string; final: boolean }> {
    let res: Response;
    try {
      const extra = { accept: "text/event-stream", "last-event-id": lastEventId };
      res = await this.request(this.options.url, { method: "GET", headers: this.headers(extra) }, signal);
    } catch (e) {
      return { reason: (e as Error).message, final: false };
    }
    const type = res.headers.get("content-type") ?? "";
    if (res.ok && res.body && type.includes("text/event-stream")) return res.body;
    await res.body?.cancel().catch(() => {});
    if (res.ok) return { reason: `the GET answered with "${type}", not an event stream`, final: true };
    return { reason: `HTTP ${res.status} to the GET`, final: res.status < 500 };
  }

  /** The optional GET stream for messages the backend sends on its own (list_changed, resource updates). */
  private openStandaloneStream(): void {
    let lastEventId: string | undefined;
    let delay = STREAM_RETRY_MIN_MS;
    const loop = async () => {
      while (!this.closed && this.mode === "streamable") {
        let res: Response;
        try {
          const extra: Record<string, string> = { accept: "text/event-stream" };
          if (lastEventId) extra["last-event-id"] = lastEventId;
          res = await this.request(this.options.url, { method: "GET", headers: this.headers(extra) });
        } catch {
          if (this.closed) return;
          await new Promise((r) => setTimeout(r, delay));
          delay = Math.min(delay * 2, STREAM_RETRY_MAX_MS);
          continue;
        }
        if (res.status === 405 || res.status === 404 || !res.ok || !res.body) {
          // 405: the backend offers no standalone stream, which the spec allows.
          await res.body?.cancel().catch(() => {});
          return;
        }
        delay = STREAM_RETRY_MIN_MS;
        try {
          await this.readEvents(res.body, this.streams.signal, (event, messages) => {
            if (event.id) lastEventId = event.id;
            for (const m of messages) this.handlers?.onMessage(m);
            return undefined;
          });
        } catch {
          // reconnect below
        }
        if (this.closed) return;
        await new Promise((r) => setTimeout(r, delay));
      }
    };
    void loop();
  }

  // --- 2024-11-05 HTTP+SSE -------------------------------------------------------------------------------

  private async connectLegacy(): Promise<void> {
    const res = await this.request(this.options.url, {
      method: "GET",
      headers: this.headers({ accept: "text/event-stream" }),
    });
    if (!res.ok || !res.body) throw await this.httpError(res);
    const body = res.body;
    const endpoint = new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new TransportError("the SSE stream sent no `endpoint` event")),
        this.options.connectTimeoutMs,
      );
      void (async () => {
        try {
          await this.readEvents(body, this.streams.signal, (event, messages) => {
            if (event.event === "endpoint") {
              clearTimeout(timer);
              resolve(new URL(event.data.trim(), this.options.url).href);
            }
            for (const m of messages) this.handlers?.onMessage(m);
            return undefined;
          });
        } catch {
          // reported through onClose below
        }
        clearTimeout(timer);
        reject(new TransportError("the SSE stream closed"));
        if (!this.closed) this.handlers?.onClose("the backend closed its SSE stream");
      })();
    });
    this.legacyEndpoint = await endpoint;
    const origin = new URL(this.options.url).origin;
    if (new URL(this.legacyEndpoint).origin !== origin) {
      throw new TransportError(`the SSE endpoint event points at another origin (${this.legacyEndpoint})`);
    }
  }

  private async sendLegacy(message: JsonRpcMessage, options: SendOptions): Promise<void> {
    if (!this.legacyEndpoint) throw new TransportError("the SSE stream is not connected");
    const res = await this.request(
      this.legacyEndpoint,
      {
        method: "POST",
        headers: this.headers({ ...options.headers, "content-type": "application/json" }),
        body: JSON.stringify(message),
      },
      options.signal,
    );
    if (!res.ok) throw await this.httpError(res);
    await res.body?.cancel().catch(() => {});
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.streams.abort();
    for (const c of this.waiting) c.abort();
    if (this.mode === "streamable" && this.sessionId) {
      const sid = this.sessionId;
      this.sessionId = undefined;
      try {
        const res = await this.fetch(this.options.url, {
          method: "DELETE",
          headers: this.headers({ "mcp-session-id": sid }),
          signal: AbortSignal.timeout(1000),
        });
        await res.body?.cancel().catch(() => {});
      } catch {
        // best effort: the backend expires the session on its own
      }
    }
  }
}
