// Calls to an upstream identity provider, bounded: a deadline, a size limit and JSON only, so that a provider that
// is down, slow or answering garbage gives the user an error page quickly — never a hang or a 500.

export class UpstreamError extends Error {
  override name = "UpstreamError";
  constructor(
    /** Which provider (login id), for the page and the log. */
    readonly provider: string,
    message: string,
  ) {
    super(message);
  }
}

const MAX_BYTES = 1024 * 1024;

export interface UpstreamFetchOptions {
  provider: string;
  timeoutMs: number;
  fetch?: typeof fetch;
}

/** Fetches JSON from a provider endpoint; every failure becomes an UpstreamError that says what went wrong. */
export async function fetchJson(
  url: string,
  init: RequestInit,
  o: UpstreamFetchOptions,
): Promise<{ status: number; body: unknown }> {
  const doFetch = o.fetch ?? fetch;
  let res: Response;
  try {
    res = await doFetch(url, { ...init, redirect: "manual", signal: AbortSignal.timeout(o.timeoutMs) });
  } catch (e) {
    const timedOut = (e as Error).name === "TimeoutError" || (e as Error).name === "AbortError";
    throw new UpstreamError(
      o.provider,
      timedOut
        ? `${new URL(url).host} did not answer within ${o.timeoutMs} ms`
        : `cannot reach ${new URL(url).host} (${(e as Error).message})`,
    );
  }
  const declared = Number(res.headers.get("content-length") ?? 0);
  if (declared > MAX_BYTES) throw new UpstreamError(o.provider, `${new URL(url).host} answered with an oversized body`);
  let text: string;
  try {
    text = await res.text();
  } catch {
    throw new UpstreamError(o.provider, `${new URL(url).host} closed the connection mid-answer`);
  }
  if (text.length > MAX_BYTES)
    throw new UpstreamError(o.provider, `${new URL(url).host} answered with an oversized body`);
  let body: unknown;
  try {
    body = text === "" ? {} : JSON.parse(text);
  } catch {
    throw new UpstreamError(
      o.provider,
      `${new URL(url).host} answered HTTP ${res.status} with something that is not JSON`,
    );
  }
  return { status: res.status, body };
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
