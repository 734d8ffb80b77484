// What the upstream sign-ins (OpenID Connect, GitHub) hand to oauth4webapi, which does the protocol: the transport
// it calls through (our injected fetch, with a deadline, a size limit and JSON or JWT only, so that a provider that
// is down, slow or answering garbage gives the user an error page quickly, never a hang or a 500), the one rule for
// plain http (loopback only, the rule the configuration applies to provider URLs), the authorization URL, and the
// wording of the library's errors on the error page.

import * as oauth from "oauth4webapi";
import { UpstreamError } from "../net/upstream.ts";

const MAX_BYTES = 1024 * 1024;

export interface UpstreamHttp {
  /** The login id, for the page and the log. */
  provider: string;
  timeoutMs: number;
  fetch?: typeof fetch;
}

/** Plain http is acceptable only to a loopback address (tests and local stand-ins), as the config rules say. */
export function isLoopbackHttp(url: string | URL): boolean {
  let u: URL;
  try {
    u = typeof url === "string" ? new URL(url) : url;
  } catch {
    return false;
  }
  if (u.protocol !== "http:") return false;
  return u.hostname === "localhost" || u.hostname === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(u.hostname);
}

type CustomFetch = (url: string, init: oauth.CustomFetchOptions<string, unknown>) => Promise<Response>;

/** The options every oauth4webapi call of one provider gets. */
export interface HttpOptions {
  [oauth.customFetch]: CustomFetch;
  /** Only when the provider's configured URL is plain http on loopback (oauth4webapi refuses http otherwise). */
  [oauth.allowInsecureRequests]?: boolean;
  headers?: Record<string, string>;
}

/** Request options for a provider whose configured URL (issuer, GitHub base URL) is `base`. */
export function httpOptions(base: string, o: UpstreamHttp, headers?: Record<string, string>): HttpOptions {
  const options: HttpOptions = { [oauth.customFetch]: boundedFetch(o) };
  if (isLoopbackHttp(base)) options[oauth.allowInsecureRequests] = true;
  if (headers) options.headers = headers;
  return options;
}

/** Statuses whose Response must have no body. */
const NULL_BODY = new Set([101, 103, 204, 205, 304]);

/**
 * oauth4webapi's fetch: our injected one (or the global), bounded, every transport failure an UpstreamError that
 * says what went wrong. The body is read here, within the deadline and the size limit, and handed on unchanged.
 */
function boundedFetch(o: UpstreamHttp): CustomFetch {
  const doFetch = o.fetch ?? fetch;
  return async (url, init) => {
    const u = new URL(url);
    // oauth4webapi allows http for a whole provider or not at all; an endpoint off loopback is never plain http.
    if (u.protocol !== "https:" && !isLoopbackHttp(u)) {
      throw new UpstreamError(o.provider, `${u.host} is not https (plain http is accepted on loopback only)`);
    }
    const deadline = AbortSignal.timeout(o.timeoutMs);
    let res: Response;
    try {
      res = await doFetch(url, {
        method: init.method,
        headers: init.headers,
        body: init.body as RequestInit["body"],
        redirect: "manual",
        signal: init.signal ? AbortSignal.any([init.signal, deadline]) : deadline,
      });
    } catch (e) {
      const timedOut = (e as Error).name === "TimeoutError" || (e as Error).name === "AbortError";
      throw new UpstreamError(
        o.provider,
        timedOut
          ? `${u.host} did not answer within ${o.timeoutMs} ms`
          : `cannot reach ${u.host} (${(e as Error).message})`,
      );
    }
    if (Number(res.headers.get("content-length") ?? 0) > MAX_BYTES) {
      throw new UpstreamError(o.provider, `${u.host} answered with an oversized body`);
    }
    let text: string;
    try {
      text = await res.text();
    } catch {
      throw new UpstreamError(o.provider, `${u.host} closed the connection mid-answer`);
    }
    if (text.length > MAX_BYTES) throw new UpstreamError(o.provider, `${u.host} answered with an oversized body`);
    const jwt = res.headers.get("content-type")?.split(";")[0]?.trim() === "application/jwt";
    if (text !== "" && !jwt) {
      try {
        JSON.parse(text);
      } catch {
        throw new UpstreamError(o.provider, `${u.host} answered HTTP ${res.status} with something that is not JSON`);
      }
    }
    const headers = new Headers(res.headers);
    for (const h of ["content-length", "content-encoding", "transfer-encoding"]) headers.delete(h);
    return new Response(NULL_BODY.has(res.status) || text === "" ? null : text, {
      status: res.status,
      statusText: res.statusText,
      headers,
    });
  };
}

/**
 * The URL to send the browser to: the provider's authorization endpoint (https, or loopback http when allowed) with
 * the request's parameters. Extra parameters (`hd`, `prompt` …) go first: they cannot replace the protocol's own.
 */
export function authorizationUrl(
  as: oauth.AuthorizationServer,
  params: Record<string, string>,
  extra: Record<string, string>,
  options: HttpOptions,
): string {
  if (typeof as.authorization_endpoint !== "string") throw new TypeError("no authorization_endpoint");
  const u = new URL(as.authorization_endpoint);
  oauth.checkProtocol(u, options[oauth.allowInsecureRequests] !== true);
  for (const [k, v] of Object.entries({ ...extra, ...params })) u.searchParams.set(k, v);
  return u.href;
}

/** An error oauth4webapi raises about what a provider sent (as opposed to a bug in how we call it). */
export function isProtocolError(e: unknown): e is Error {
  return (
    e instanceof oauth.OperationProcessingError ||
    e instanceof oauth.ResponseBodyError ||
    e instanceof oauth.AuthorizationResponseError ||
    e instanceof oauth.WWWAuthenticateChallengeError ||
    e instanceof oauth.UnsupportedOperationError
  );
}

/**
 * Any failure as the UpstreamError the error page shows, worded by `explain` (else the library's own message); an
 * error that is not about what the provider sent (a bug of ours) is thrown as it is.
 */
export function upstreamError(provider: string, e: unknown, explain: (e: Error) => string | undefined): UpstreamError {
  if (e instanceof UpstreamError) return e;
  if (!isProtocolError(e)) throw e;
  if (e instanceof oauth.OperationProcessingError && e.code === oauth.HTTP_REQUEST_FORBIDDEN) {
    const url = (e as { cause?: unknown }).cause;
    return new UpstreamError(
      provider,
      `${url instanceof URL ? url.host : "an endpoint"} is not https (plain http is accepted on loopback only)`,
    );
  }
  return new UpstreamError(provider, explain(e) ?? e.message);
}

/** "access_denied (The user said no)": an OAuth error code with its description, when there is one. */
export function errorWords(error: unknown, description: unknown): string {
  const code = typeof error === "string" ? error : "";
  return typeof description === "string" && description ? `${code} (${description})` : code;
}

/** The HTTP status of the answer an oauth4webapi error is about, when it is about one. */
export function statusOf(e: unknown): number | undefined {
  if (e instanceof oauth.ResponseBodyError || e instanceof oauth.WWWAuthenticateChallengeError) return e.status;
  const cause = (e as { cause?: unknown }).cause;
  return cause instanceof Response ? cause.status : undefined;
}

/** The JSON body an oauth4webapi error quotes, when it quotes one. */
export function bodyOf(e: unknown): Record<string, unknown> | undefined {
  if (e instanceof oauth.ResponseBodyError) return e.cause;
  const body = (e as { cause?: { body?: unknown } }).cause?.body;
  return typeof body === "object" && body !== null && !Array.isArray(body)
    ? (body as Record<string, unknown>)
    : undefined;
}

/** How a callback refused by oauth4webapi's validateAuthResponse reads on the error page. */
export function callbackRefusal(
  e: unknown,
  refusedBy: string,
  params: URLSearchParams,
  as: oauth.AuthorizationServer,
): string | undefined {
  if (e instanceof oauth.AuthorizationResponseError) {
    return `${refusedBy} refused: ${errorWords(e.error, e.error_description)}`;
  }
  if (!(e instanceof oauth.OperationProcessingError)) return undefined;
  // RFC 9207 §2.4: a present `iss` must be the provider's; one advertised but missing is a mix-up risk.
  if (e.message.includes('"iss"')) {
    return params.has("iss")
      ? `the callback's iss (${params.get("iss")}) is not ${as.issuer}`
      : "the callback has no iss although the provider advertises it (RFC 9207)";
  }
  if (e.message.includes('"state"')) return "the callback's state is not this sign-in's";
  return `the callback was refused: ${e.message}`;
}
