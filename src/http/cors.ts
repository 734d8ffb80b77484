// Browser-facing rules for the MCP endpoints: Origin validation against DNS rebinding (MCP transports, "Security
// Warning": a present Origin that is not allowed gets 403) and CORS for the browser clients that are allowed
// (the MCP Inspector, claude.ai), exposing the headers MCP clients must read.

export const EXPOSED_HEADERS = "Mcp-Session-Id, WWW-Authenticate, MCP-Protocol-Version, Last-Event-ID";
export const ALLOWED_HEADERS =
  "Authorization, Content-Type, Accept, Mcp-Session-Id, MCP-Protocol-Version, Last-Event-ID, Mcp-Method, Mcp-Name";

/** Requests without Origin come from non-browser clients and pass; `*` in the list allows any origin. */
/** `own` (Gatehouse's own origins) is only worked out for a request that has an Origin the list does not allow. */
export function originAllowed(
  origin: string | null,
  allowed: readonly string[],
  own: () => readonly string[] = () => [],
): boolean {
  if (origin === null) return true;
  return allowed.includes("*") || allowed.includes(origin) || own().includes(origin);
}

const LOOPBACK_HOST = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?$/;

/**
 * Origins that are Gatehouse itself: those of its configured public URLs, and a loopback origin naming the very
 * loopback host and port the request was sent to. Any other Host-derived origin is not trusted: under DNS
 * rebinding the attacker's page sends its own name as both Origin and Host (MCP transports, "Security Warning").
 */
export function selfOrigins(publicUrls: readonly (string | undefined)[], request: Request): string[] {
  const out: string[] = [];
  for (const u of publicUrls) {
    if (!u) continue;
    try {
      out.push(new URL(u).origin);
    } catch {
      // not a URL: ignored
    }
  }
  const host = request.headers.get("host");
  if (host && LOOPBACK_HOST.test(host)) out.push(`http://${host}`, `https://${host}`);
  return out;
}

/** CORS response headers for an allowed browser origin (none for non-browser requests). */
export function corsHeaders(origin: string | null, allowed: readonly string[]): Record<string, string> {
  if (origin === null || !originAllowed(origin, allowed)) return {};
  return {
    "access-control-allow-origin": origin,
    "access-control-expose-headers": EXPOSED_HEADERS,
    vary: "Origin",
  };
}

/** The answer to a CORS preflight (OPTIONS). */
export function preflight(request: Request, allowed: readonly string[], methods: string): Response {
  const origin = request.headers.get("origin");
  if (!originAllowed(origin, allowed)) return new Response(null, { status: 403 });
  const requested = request.headers.get("access-control-request-headers");
  return new Response(null, {
    status: 204,
    headers: {
      ...corsHeaders(origin, allowed),
      "access-control-allow-methods": methods,
      "access-control-allow-headers": requested ?? ALLOWED_HEADERS,
      "access-control-max-age": "600",
    },
  });
}

/** Copies the CORS headers onto a response that a handler produced. */
export function withCors(response: Response, request: Request, allowed: readonly string[]): Response {
  for (const [k, v] of Object.entries(corsHeaders(request.headers.get("origin"), allowed))) response.headers.set(k, v);
  return response;
}
