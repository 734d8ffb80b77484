// One client request while the gateway handles it: who asked, in which session, where the messages about it go —
// and what admission resolved it to (the tool, resource or prompt with the ACL's decision), so that nothing
// downstream resolves or checks it again. Dispatch, forwarding and the audit record all take this one object.

import type { Identity } from "../auth/identity.ts";
import type { Cancellation } from "./cancellation.ts";
import type { Backend, ToolEntry } from "./catalog.ts";
import type { JsonRpcMessage, JsonRpcRequest, RpcError } from "./jsonrpc.ts";
import type { ClientSession } from "./session.ts";

/** Where messages about one client request go while it runs (its SSE response, or the session's stream). */
export interface Channel {
  deliver(message: JsonRpcMessage): void;
}

/** What a request names, as resolved once (catalog.ts): a tool, resource or prompt the caller may use, or why not. */
export type Target =
  | { kind: "tool"; backend: Backend; tool: ToolEntry; rule: string }
  | { kind: "resource"; backend: Backend; uri: string; rule: string }
  | { kind: "prompt"; backend: Backend; name: string; rule: string }
  /**
   * Answered with `error` instead of being forwarded: unknown, hidden by the ACL (the same answer), or — with
   * `scopes` — a tool the token's scopes do not cover (HTTP answers that one with a 403 step-up challenge); or, with
   * `failed`, a backend that could not be asked (not a decision about the caller: metrics count it as an error).
   */
  | { kind: "refused"; error: RpcError; backend?: string; rule?: string; scopes?: string[]; failed?: true };

/** A request as the transports hand it to the gateway. */
export interface CallRequest {
  session: ClientSession;
  identity: Identity;
  request: JsonRpcRequest;
  channel: Channel;
  /** Resolved by admission; resolved by the gateway when a request comes another way. */
  target?: Target;
}

/** The same while the gateway runs it. */
export interface Call extends CallRequest {
  /** Cancelled when the client cancels the request (notifications/cancelled) or its session ends. */
  cancellation: Cancellation;
  /** When the gateway started on it (the audit record's duration). */
  started: number;
}
