// The admission pipeline: what every MCP request passes before the gateway runs it, on every transport (Streamable
// HTTP, the 2024-11-05 HTTP+SSE transport) and — its first part — for forward auth. Named checks, in order:
//
//   origin → authenticate → required scopes → rate limit      admitCaller (once per HTTP request)
//   → protocol (body, JSON-RPC, MCP-Protocol-Version)         readMessages
//   → anonymous policy                                         checkAnonymous (a batch as a whole)
//   → resolve the target once: ACL + tool scopes               admitRequest (per JSON-RPC request)
//
// Each returns what it admitted or one Refusal, which the transport serializes (http/refusal.ts). Framework-free:
// web-standard Request in, plain values out. The resolved target travels with the call (call.ts), so nothing later
// resolves or checks it again.

import { type AuthFailure, type AuthResult, type Identity, principalKey } from "../auth/identity.ts";
import { missingRequiredScopes, stepUp } from "../auth/required-scopes.ts";
import type { RoutePolicy } from "../config/types.ts";
import type { Logger } from "../log.ts";
import { readLimited } from "../net/body.ts";
import { originAllowed, selfOrigins } from "../net/origin.ts";
import { hasAll } from "../oauth/scopes.ts";
import { describeLimit, type RateLimit } from "../policy/rate-limit.ts";
import { admitsAnonymous, anonymousMayCall } from "../policy/route.ts";
import { StoreUnavailableError } from "../store/types.ts";
import type { Target } from "./call.ts";
import { insufficientScopeError } from "./catalog.ts";
import { classify, ErrorCode, type JsonRpcRequest, type MessageKind, RpcError } from "./jsonrpc.ts";
import { SUPPORTED_PROTOCOL_VERSIONS } from "./sessions.ts";

/** A route as admission sees it (routing.ts McpRoute). */
export interface AdmissionRoute {
  name: string;
  resourceUrl?: string;
  policy: RoutePolicy;
  authenticate(request: Request): Promise<AuthResult>;
}

export interface AdmissionDeps {
  /** gateway.allowedOrigins, and the setting's name for messages (env-only mode: CORS_ALLOW_ORIGINS). */
  allowedOrigins: readonly string[];
  originsSetting?: string;
  /** gateway.maxBodyBytes. */
  maxBodyBytes: number;
  /** Requests per caller (gateway.rateLimitPerMinute or gateway.rateLimit.maxRequests), and which setting it is. */
  limiter?: RateLimit;
  limiterSetting?: string;
  /** Tool calls per caller (gateway.rateLimit.maxToolCalls), counted apart from requests. */
  toolCallLimiter?: RateLimit;
  log: Logger;
  /** Told of each request a rate limit refused, and which ("mcp", "mcp_tool_calls"): metrics. */
  onRateLimited?: (limit: string) => void;
  /** gateway.accessLog: each admitted request with credentials logged at info (subject, method, path). */
  accessLog?: boolean;
}

/** Why a request is not let in: an authentication refusal (401/403 with its challenge), or an HTTP-level error. */
export type Refusal =
  | { kind: "auth"; failure: AuthFailure }
  | { kind: "rpc"; status: number; code: number; message: string; retryAfter?: number };

export interface Refused {
  refusal: Refusal;
}

/** Who is calling. `challenge` is set for a caller without credentials let in by the route's policy. */
export interface Caller {
  identity: Identity;
  challenge?: AuthFailure;
}

export const ANONYMOUS: Identity = { subject: "anonymous", roles: [], groups: [], provider: "none" };

const rpc = (status: number, code: number, message: string): Refused => ({
  refusal: { kind: "rpc", status, code, message },
});

export const refused = (x: object): x is Refused => "refusal" in x;

// --- the caller ------------------------------------------------------------------------------------------------

/** A browser Origin that is not allowed gets 403 (MCP transports, "Security Warning": servers MUST validate it). */
export function checkOrigin(request: Request, route: AdmissionRoute, deps: AdmissionDeps): Refused | undefined {
  const origin = request.headers.get("origin");
  if (originAllowed(origin, deps.allowedOrigins, () => selfOrigins([route.resourceUrl], request))) return undefined;
  const setting = deps.originsSetting ?? "gateway.allowedOrigins";
  deps.log.warn(`request refused: Origin not allowed (add it to ${setting} if it is yours)`, { origin });
  return rpc(403, ErrorCode.InvalidRequest, `Origin ${origin} is not allowed`);
}

/**
 * The route's providers (routing.ts). No credentials at all (not bad ones) on a route that lets anonymous callers
 * do some things admits an anonymous caller, whose every message is then checked against the policy.
 */
export async function authenticate(
  request: Request,
  route: AdmissionRoute,
  allowAnonymous: boolean,
): Promise<Caller | Refused> {
  const result = await route.authenticate(request);
  if (result.ok) return { identity: result.identity };
  const { failure } = result;
  if (allowAnonymous && failure.status === 401 && !failure.error && admitsAnonymous(route.policy)) {
    return { identity: ANONYMOUS, challenge: failure };
  }
  return { refusal: { kind: "auth", failure } };
}

/** A token without its provider's requiredScopes gets 403 insufficient_scope (RFC 6750 §3.1). */
export function checkRequiredScopes(caller: Caller, log: Logger): Refused | undefined {
  const failure = missingRequiredScopes(caller.identity);
  if (!failure) return undefined;
  log.info("request refused: insufficient scope", { subject: caller.identity.subject, reason: failure.description });
  return { refusal: { kind: "auth", failure } };
}

/** 429 with Retry-After, as JSON-RPC: a rate limit refused the request. */
function rateLimited(message: string, retryAfter: number): Refused {
  return { refusal: { kind: "rpc", status: 429, code: ErrorCode.InvalidRequest, message, retryAfter } };
}

/** gateway.rateLimitPerMinute per principal: 429 with Retry-After. */
export async function checkRateLimit(caller: Caller, deps: AdmissionDeps): Promise<Refused | undefined> {
  const { limiter } = deps;
  if (!limiter) return undefined;
  const allowance = await limiter.take(principalKey(caller.identity));
  if (allowance.ok) return undefined;
  deps.log.warn("request refused: rate limit", { subject: caller.identity.subject, limit: describeLimit(limiter) });
  deps.onRateLimited?.("mcp");
  const setting = deps.limiterSetting ?? "gateway.rateLimitPerMinute";
  return rateLimited(
    `rate limit exceeded: ${describeLimit(limiter)} requests (${setting})`,
    allowance.retryAfterSeconds,
  );
}

/**
 * Origin, credentials, required scopes, rate limit: what every MCP HTTP request passes first. A state store that
 * cannot be asked (a token lookup, a shared rate limit, on Redis that is down) is a 503 refusal: retry soon.
 */
export async function admitCaller(
  request: Request,
  route: AdmissionRoute,
  deps: AdmissionDeps,
): Promise<Caller | Refused> {
  const origin = checkOrigin(request, route, deps);
  if (origin) return origin;
  try {
    const caller = await authenticate(request, route, true);
    if (refused(caller)) return caller;
    const refusal = checkRequiredScopes(caller, deps.log) ?? (await checkRateLimit(caller, deps));
    if (refusal) return refusal;
    // The line's own time and req= id complete it (mcp-oauth-proxy's audit log: sub, method, path, time).
    if (deps.accessLog && !caller.challenge) {
      deps.log.info("request", { sub: caller.identity.subject, method: request.method, path: pathOf(request.url) });
    }
    return caller;
  } catch (e) {
    if (!(e instanceof StoreUnavailableError)) throw e;
    return { refusal: storeRefusal(e) };
  }
}

/** The path of a request URL, without its query (which may carry what does not belong in a log). */
function pathOf(url: string): string {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start < 0) return "/";
  const q = url.indexOf("?", start);
  return q < 0 ? url.slice(start) : url.slice(start, q);
}

export const STORE_UNAVAILABLE =
  "Gatehouse's state store is unavailable right now; nothing was changed, try again shortly";

/** The 503 of a state store fault (the store logged its cause once for the whole outage). */
export function storeRefusal(e: StoreUnavailableError): Refusal {
  return {
    kind: "rpc",
    status: 503,
    code: ErrorCode.InternalError,
    message: STORE_UNAVAILABLE,
    retryAfter: e.retryAfterSeconds,
  };
}

/**
 * Forward auth (nginx auth_request, Caddy forward_auth): credentials and required scopes only. The proxy does not
 * show the body, so a route's anonymous policy cannot be honoured there: credentials are required.
 */
export async function admitForwarded(request: Request, route: AdmissionRoute, log: Logger): Promise<Caller | Refused> {
  const caller = await authenticate(request, route, false);
  if (refused(caller)) return caller;
  return checkRequiredScopes(caller, log) ?? caller;
}

// --- the messages ----------------------------------------------------------------------------------------------

export interface Incoming {
  /** A JSON array was posted (a 2025-03-26 batch). */
  batch: boolean;
  messages: { kind: MessageKind | null; message: unknown }[];
}

/**
 * The body as JSON-RPC messages: Content-Type, gateway.maxBodyBytes (413 without buffering more), JSON, the
 * MCP-Protocol-Version header (transports §Protocol Version Header: an unsupported one gets 400), the batch shape.
 * The 2024-11-05 transport's /message takes exactly one well-formed message.
 */
export async function readMessages(
  request: Request,
  deps: AdmissionDeps,
  transport: "streamable-http" | "sse",
): Promise<Incoming | Refused> {
  const type = request.headers.get("content-type");
  if (transport === "streamable-http" && type !== null && !type.toLowerCase().includes("application/json")) {
    return rpc(415, ErrorCode.InvalidRequest, `Content-Type must be application/json (got ${type})`);
  }
  const body = await readLimited(request, deps.maxBodyBytes);
  if (!body.ok) {
    const message = `request body is larger than ${deps.maxBodyBytes} bytes (gateway.maxBodyBytes)`;
    return rpc(413, ErrorCode.InvalidRequest, message);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.text);
  } catch (e) {
    return rpc(400, ErrorCode.ParseError, `Parse error: ${(e as Error).message}`);
  }
  if (transport === "sse") {
    const kind = classify(parsed);
    if (kind === null) return rpc(400, ErrorCode.InvalidRequest, "Invalid Request: not a JSON-RPC 2.0 message");
    return { batch: false, messages: [{ kind, message: parsed }] };
  }
  const header = request.headers.get("mcp-protocol-version");
  if (header !== null && !(SUPPORTED_PROTOCOL_VERSIONS as readonly string[]).includes(header)) {
    const supported = SUPPORTED_PROTOCOL_VERSIONS.join(", ");
    return rpc(400, ErrorCode.InvalidRequest, `Unsupported MCP-Protocol-Version: ${header} (supported: ${supported})`);
  }
  if (!Array.isArray(parsed)) return { batch: false, messages: [{ kind: classify(parsed), message: parsed }] };
  if (parsed.length === 0) return rpc(400, ErrorCode.InvalidRequest, "Invalid Request: empty batch");
  return { batch: true, messages: parsed.map((message) => ({ kind: classify(message), message })) };
}

/**
 * An anonymous caller whose messages hold any request that needs a user is sent to authorize — a batch as a whole,
 * so that no item rides on another (policy/route.ts).
 */
export function checkAnonymous(route: AdmissionRoute, caller: Caller, incoming: Incoming, log: Logger) {
  if (!caller.challenge) return undefined;
  for (const { kind, message } of incoming.messages) {
    if (kind !== "request") continue;
    const r = message as JsonRpcRequest;
    if (!anonymousMayCall(route.policy, r.method, r.params)) {
      log.info("anonymous request needs authentication", { route: route.name, method: r.method });
      return { refusal: { kind: "auth", failure: caller.challenge } } satisfies Refused;
    }
  }
  return undefined;
}

/** The methods the audit log records one by one (audit.ts): a refusal of one of them is recorded too. */
const AUDITED_CALLS = new Set(["tools/call", "resources/read", "prompts/get"]);

/** What resolves a request's target: the route's gateway. */
export interface Resolver {
  resolve(identity: Identity, request: JsonRpcRequest): Target | Promise<Target> | undefined;
  /** A call refused here, before it reaches the gateway: audited like any other call. */
  refused?(identity: Identity, request: JsonRpcRequest, target: Target): void;
}

/**
 * Resolves what one request names, once (ACL and tool scopes, catalog.ts). A tools/call the token's scopes do not
 * cover is refused with 403 insufficient_scope naming every scope needed, so the client can step up (MCP
 * authorization, "Scope Challenge Handling"); inside a batch the item is answered with its JSON-RPC error instead.
 * Any other refused target (unknown, hidden by the ACL) is answered by the gateway as a JSON-RPC error, and audited.
 */
export async function admitRequest(
  resolver: Resolver,
  caller: Caller,
  request: JsonRpcRequest,
  inBatch: boolean,
  log: Logger,
  policy?: Pick<RoutePolicy, "methodScopes">,
  limits?: Pick<AdmissionDeps, "toolCallLimiter" | "onRateLimited">,
): Promise<{ target?: Target } | Refused> {
  // gateway.rateLimit.maxToolCalls: tool calls per caller, apart from requests (a batch's items count one by one).
  const toolLimit = limits?.toolCallLimiter;
  if (toolLimit && request.method === "tools/call") {
    const allowance = await toolLimit.take(principalKey(caller.identity));
    if (!allowance.ok) {
      log.warn("tool call refused: rate limit", { subject: caller.identity.subject, limit: describeLimit(toolLimit) });
      limits.onRateLimited?.("mcp_tool_calls");
      const message = `rate limit exceeded: ${describeLimit(toolLimit)} tool calls (gateway.rateLimit.maxToolCalls)`;
      const target: Target = { kind: "refused", error: new RpcError(ErrorCode.InvalidRequest, message) };
      if (inBatch) return { target }; // the gateway answers and audits it
      resolver.refused?.(caller.identity, request, target);
      return rateLimited(message, allowance.retryAfterSeconds);
    }
  }
  // route.methodScopes: the scopes a method needs on this route (simple-rpc-ai-backend's "mcp:call"). A token
  // without a notion of scope (bearer table, forwarded headers) is not limited by them, as with tool scopes.
  const needed = policy?.methodScopes?.[request.method] ?? policy?.methodScopes?.["*"];
  const { identity } = caller;
  if (needed && needed.length > 0 && identity.scopes !== undefined && !hasAll(identity.scopes, needed)) {
    log.info("request refused: insufficient scope for the method", {
      subject: identity.subject,
      method: request.method,
    });
    const target: Target = { kind: "refused", error: insufficientScopeError(request.method, needed), scopes: needed };
    if (inBatch) return { target }; // the gateway answers and audits it
    if (AUDITED_CALLS.has(request.method)) resolver.refused?.(identity, request, target);
    return { refusal: { kind: "auth", failure: stepUp(identity, needed, request.method) } };
  }
  const target = await resolver.resolve(caller.identity, request);
  if (!target) return {};
  if (target.kind === "refused" && target.scopes) {
    const tool = String(request.params?.name);
    log.info(inBatch ? "batch item refused: insufficient scope" : "tool call refused: insufficient scope", {
      subject: caller.identity.subject,
      tool,
    });
    if (!inBatch) {
      resolver.refused?.(caller.identity, request, target);
      return { refusal: { kind: "auth", failure: stepUp(caller.identity, target.scopes, tool) } };
    }
  }
  return { target };
}
