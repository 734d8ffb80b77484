// Origin validation against DNS rebinding (MCP transports, "Security Warning": servers MUST validate the Origin
// header; a present Origin that is not allowed gets 403). Framework-free: the admission's first check and CORS use it.

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
