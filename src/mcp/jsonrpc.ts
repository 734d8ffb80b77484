// JSON-RPC 2.0 message shapes and classification (https://www.jsonrpc.org/specification), as MCP uses them
// (MCP basic/index: ids are strings or numbers, never null, for requests).

export type JsonRpcId = string | number;

export interface JsonRpcRequest {
  jsonrpc: "2.0";
  id: JsonRpcId;
  method: string;
  params?: Record<string, unknown>;
}

export interface JsonRpcNotification {
  jsonrpc: "2.0";
  method: string;
  params?: Record<string, unknown>;
}

export interface JsonRpcErrorObject {
  code: number;
  message: string;
  data?: unknown;
}

export interface JsonRpcSuccess {
  jsonrpc: "2.0";
  id: JsonRpcId;
  result: Record<string, unknown>;
}

export interface JsonRpcFailure {
  jsonrpc: "2.0";
  id: JsonRpcId | null;
  error: JsonRpcErrorObject;
}

export type JsonRpcResponse = JsonRpcSuccess | JsonRpcFailure;
export type JsonRpcMessage = JsonRpcRequest | JsonRpcNotification | JsonRpcResponse;

/** Standard codes (JSON-RPC 2.0 §5.1) and the ones the MCP SDKs use. */
export const ErrorCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  /** MCP SDK: connection closed / backend unavailable. */
  ConnectionClosed: -32000,
  /** MCP SDK: request timed out. */
  RequestTimeout: -32001,
  /** MCP: resource not found. */
  ResourceNotFound: -32002,
} as const;

export type MessageKind = "request" | "notification" | "response";

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isId(v: unknown): v is JsonRpcId {
  return typeof v === "string" || (typeof v === "number" && Number.isFinite(v));
}

/**
 * Classifies one parsed JSON value. Returns null when it is not a JSON-RPC 2.0 message, so the caller can answer
 * -32600 Invalid Request.
 */
export function classify(value: unknown): MessageKind | null {
  if (!isObject(value) || value.jsonrpc !== "2.0") return null;
  if (typeof value.method === "string") {
    if (value.params !== undefined && !isObject(value.params)) return null; // MCP params are always objects
    if ("id" in value) return isId(value.id) ? "request" : null;
    return "notification";
  }
  if ("result" in value || "error" in value) {
    if ("result" in value && "error" in value) return null;
    if (!(isId(value.id) || value.id === null)) return null;
    if ("error" in value) {
      const e = value.error;
      if (!isObject(e) || typeof e.code !== "number" || typeof e.message !== "string") return null;
    } else if (!isObject(value.result)) return null;
    return "response";
  }
  return null;
}

export function errorResponse(id: JsonRpcId | null, code: number, message: string, data?: unknown): JsonRpcFailure {
  const error: JsonRpcErrorObject = { code, message };
  if (data !== undefined) error.data = data;
  return { jsonrpc: "2.0", id, error };
}

export function successResponse(id: JsonRpcId, result: Record<string, unknown>): JsonRpcSuccess {
  return { jsonrpc: "2.0", id, result };
}

export function isRequest(m: JsonRpcMessage): m is JsonRpcRequest {
  return "method" in m && "id" in m;
}

export function isNotification(m: JsonRpcMessage): m is JsonRpcNotification {
  return "method" in m && !("id" in m);
}

export function isResponse(m: JsonRpcMessage): m is JsonRpcResponse {
  return !("method" in m);
}

export function isFailure(m: JsonRpcResponse): m is JsonRpcFailure {
  return "error" in m;
}

/** A protocol-level failure that becomes a JSON-RPC error response for the request that caused it. */
export class RpcError extends Error {
  constructor(
    readonly rpcCode: number,
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
    this.name = "RpcError";
  }

  toJsonRpc(id: JsonRpcId | null): JsonRpcFailure {
    return errorResponse(id, this.rpcCode, this.message, this.data);
  }
}
