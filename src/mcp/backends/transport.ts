// The contract between a backend connection (backend-client.ts) and the wire it runs over: a child's stdio,
// Streamable HTTP, or the 2024-11-05 HTTP+SSE transport.

import type { JsonRpcId, JsonRpcMessage } from "../jsonrpc.ts";

export interface TransportHandlers {
  /**
   * A message from the backend. `relatedTo` is the id of the request whose response stream carried it, when
   * the wire says so (Streamable HTTP); stdio and legacy SSE cannot tell.
   */
  onMessage(message: JsonRpcMessage, relatedTo?: JsonRpcId): void;
  /** The connection is gone for good (process exited, stream closed); pending requests must fail. */
  onClose(reason: string): void;
}

export interface SendOptions {
  signal?: AbortSignal;
  /** Extra HTTP headers for this message only (forward_identity); ignored by stdio. */
  headers?: Record<string, string>;
}

export interface BackendTransport {
  /**
   * Whether send() uses `options.signal` (HTTP aborts the fetch of a request given up on). A transport that does
   * not is spared an AbortController per request.
   */
  readonly abortsRequests?: boolean;
  /** Connects (spawns the process). Rejects with a message a user can act on. */
  start(handlers: TransportHandlers): Promise<void>;
  /**
   * Sends one message. Resolves once the backend accepted it; for HTTP that is when the response headers are in
   * (messages on the response stream keep arriving through onMessage). Rejects with TransportError.
   */
  send(message: JsonRpcMessage, options?: SendOptions): Promise<void>;
  /** Tells the transport the protocol version negotiated at initialize (sent as MCP-Protocol-Version). */
  setProtocolVersion(version: string): void;
  /** Closes the connection (kills the process after a grace period). Idempotent. */
  close(): Promise<void>;
  /** e.g. `stdio (pid 1234)` or `streamable-http http://host/mcp`, for logs and /health. */
  describe(): string;
}

/** A failure of the wire, not of the protocol. `sessionLost` asks the client to re-initialize and retry. */
export class TransportError extends Error {
  constructor(
    message: string,
    /** sessionLost: HTTP 404 on our session; unreachable: no connection (refused, reset, DNS, connect timeout). */
    readonly options: { sessionLost?: boolean; unreachable?: boolean; status?: number } = {},
  ) {
    super(message);
    this.name = "TransportError";
  }
}
