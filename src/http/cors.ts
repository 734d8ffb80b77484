// CORS for the browser clients that are allowed (the MCP Inspector, claude.ai), exposing the headers MCP clients
// must read. Which origins are allowed is net/origin.ts's rule (also the admission's first check).

import { originAllowed } from "../net/origin.ts";

export const EXPOSED_HEADERS = "Mcp-Session-Id, WWW-Authenticate, MCP-Protocol-Version, Last-Event-ID";
export const ALLOWED_HEADERS =
  "Authorization, Content-Type, Accept, Mcp-Session-Id, MCP-Protocol-Version, Last-Event-ID, Mcp-Method, Mcp-Name";

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
