// What replicas share about MCP sessions (state.redis): the session itself (who owns it, what was negotiated), the
// session's own stream (the GET stream: numbered events kept for replay, delivered to whichever replica holds the
// stream), and messages between replicas (a client's answer to a server→client request sent through another
// replica, a cancellation, a session ended). Backends stay per replica. Without Redis there is no backplane and
// sessions live in the one process (session.ts).

import type { JsonRpcId, JsonRpcMessage, JsonRpcResponse } from "./jsonrpc.ts";

export interface SharedSessionMeta {
  id: string;
  /** The route (gateway) the session belongs to: a session of one route is unknown on the others. */
  route: string;
  principal: string;
  protocolVersion: string;
  clientCapabilities: Record<string, unknown>;
  clientInfo: { name?: string; version?: string };
  transport: "streamable-http" | "sse";
  initialized: boolean;
  logLevel?: string;
  createdAt: number;
}

export type BackplaneMessage =
  /** A client's answer to a request the replica `to` forwarded from its backend. */
  | { type: "response"; session: string; message: JsonRpcResponse }
  | { type: "cancel"; session: string; requestId: JsonRpcId }
  | { type: "closed"; session: string }
  | { type: "unsubscribe"; session: string; uri: string }
  | { type: "level"; session: string; level: string }
  /** The session's GET stream is now held by `replica`: any other holder closes its copy. */
  | { type: "stream"; session: string; replica: string };

export interface StreamEvent {
  seq: number;
  message: JsonRpcMessage;
}

export interface SessionBackplane {
  /** This replica's tag: part of the ids it gives to streams and forwarded requests, so others can route to it. */
  readonly replica: string;
  save(meta: SharedSessionMeta): Promise<void>;
  load(id: string): Promise<SharedSessionMeta | undefined>;
  /** Keeps the session alive for another idle timeout (best effort). */
  touch(id: string): void;
  /** Deletes the session everywhere (the client ended it) and tells every replica. */
  remove(id: string): Promise<void>;
  /** Appends a message to the session's own stream; undefined when the session is gone. */
  append(id: string, message: JsonRpcMessage): Promise<number | undefined>;
  /**
   * The stream's events after `afterSeq`, or — with `afterSeq` undefined — those no replica delivered yet; and the
   * stream's current number. Undefined when the session is gone.
   */
  replay(id: string, afterSeq: number | undefined): Promise<{ current: number; events: StreamEvent[] } | undefined>;
  /** Receives the stream's new events while this replica holds it. */
  listen(id: string, onEvent: (e: StreamEvent) => void): Promise<void>;
  unlisten(id: string): Promise<void>;
  /** To one replica (by its tag), or to all. */
  send(replica: string, message: BackplaneMessage): Promise<void>;
  broadcast(message: BackplaneMessage): Promise<void>;
  onMessage(handler: (message: BackplaneMessage) => void): void;
  /** Whether the shared state can be reached now (for /health). */
  health(): { ok: true } | { ok: false; reason: string };
}
