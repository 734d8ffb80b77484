// How the aggregate names what it gathers from many backends — the one place this rule lives: tools, prompts and
// resource templates are `server__name`, resource URIs `server+uri` (a valid RFC 3986 scheme), descriptions
// `[server] …`; a backend passed through (its own route, or /mcp in pass-through mode) keeps its own names.
// A leaf module (it imports nothing), so configuration checks, the ACL, the catalog and initialize all use it.

export const SEPARATOR = "__";

/** `files` + `read_file` → `files__read_file`. */
export function prefixed(server: string, name: string): string {
  return `${server}${SEPARATOR}${name}`;
}

/** Why a server name cannot be used, or undefined when it can. */
export function serverNameProblem(name: string): string | undefined {
  if (name.includes(SEPARATOR))
    return `server names must not contain "${SEPARATOR}": it separates server and tool names`;
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) {
    return "server names may use letters, digits, '.', '_' and '-' (starting with a letter or digit)";
  }
  return undefined;
}

/**
 * The scheme tag of a server in resource URIs: `everything` + `demo://x` → `everything+demo://x`. RFC 3986 §3.1
 * allows only letters, digits, `+`, `-` and `.` in a scheme, starting with a letter, and MCP declares resource URIs
 * `format: uri` (clients such as the Python SDK parse them): so `_` becomes `-`, a leading digit gets `x-`, and the
 * tag is lower case (schemes are case-insensitive; clients may lower-case them). Configuration refuses two servers
 * with the same tag.
 */
export function uriTag(server: string): string {
  const t = server.toLowerCase().replace(/_/g, "-");
  return /^[a-z]/.test(t) ? t : `x-${t}`;
}

/** What initialize tells clients of the aggregate about names (no backend is named: a caller may not see some). */
export const AGGREGATE_INSTRUCTIONS = `This gateway aggregates several MCP servers. Tool, prompt and resource names are prefixed with their server's name and "${SEPARATOR}" (for example "${prefixed("files", "read_file")}").`;

/** How names are shown to clients: `server__name` with `[server]` descriptions, or as the backend has them. */
export interface Naming {
  readonly prefixed: boolean;
  outward(server: string, name: string): string;
  /** A resource URI (or URI template) as clients see it. */
  outwardUri(server: string, uri: string): string;
  describe(server: string, description: unknown): unknown;
  /** The backend (its name) and the backend's own name for a name a client sent. */
  inward(name: string): { server: string; rest: string } | undefined;
  /** The backend and its own URI for a resource URI a client sent. */
  inwardUri(uri: string): { server: string; rest: string } | undefined;
}

export function prefixedNaming(servers: () => Iterable<string>): Naming {
  return {
    prefixed: true,
    outward: prefixed,
    outwardUri: (server, uri) => `${uriTag(server)}+${uri}`,
    describe: (server, description) =>
      typeof description === "string" && description.length > 0 ? `[${server}] ${description}` : `[${server}]`,
    inward(name) {
      const i = name.indexOf(SEPARATOR);
      if (i <= 0) return undefined;
      const server = name.slice(0, i);
      for (const s of servers()) if (s === server) return { server, rest: name.slice(i + SEPARATOR.length) };
      return undefined;
    },
    inwardUri(uri) {
      const i = uri.indexOf("+");
      if (i <= 0) return undefined;
      const tag = uri.slice(0, i).toLowerCase();
      for (const s of servers()) if (uriTag(s) === tag) return { server: s, rest: uri.slice(i + 1) };
      return undefined;
    },
  };
}

/** One backend passed through unchanged (its own route, or /mcp in pass-through mode). */
export function passthroughNaming(server: string): Naming {
  const same = (name: string) => ({ server, rest: name });
  return {
    prefixed: false,
    outward: (_s, name) => name,
    outwardUri: (_s, uri) => uri,
    describe: (_s, d) => d,
    inward: same,
    inwardUri: same,
  };
}

/** Maps resource URIs inside results (resources/read contents, resource links and embedded resources) outward. */
export function outwardResourceUris(
  naming: Naming,
  server: string,
  result: Record<string, unknown>,
): Record<string, unknown> {
  if (!naming.prefixed) return result;
  const fix = (item: unknown): unknown => {
    if (!item || typeof item !== "object") return item;
    const o = item as Record<string, unknown>;
    if (o.type === "resource_link" && typeof o.uri === "string") return { ...o, uri: naming.outwardUri(server, o.uri) };
    if (o.type === "resource" && o.resource && typeof o.resource === "object") {
      const r = o.resource as Record<string, unknown>;
      if (typeof r.uri === "string") return { ...o, resource: { ...r, uri: naming.outwardUri(server, r.uri) } };
    }
    return o;
  };
  let out: Record<string, unknown> | undefined;
  if (Array.isArray(result.content) && result.content.some(needsFix)) {
    out = { ...result, content: result.content.map(fix) };
  }
  if (Array.isArray(result.contents)) {
    out ??= { ...result };
    out.contents = result.contents.map((c: unknown) => {
      if (!c || typeof c !== "object") return c;
      const r = c as Record<string, unknown>;
      return typeof r.uri === "string" ? { ...r, uri: naming.outwardUri(server, r.uri) } : r;
    });
  }
  return out ?? result;
}

/** A content item that names a resource (only those are rewritten; the rest is passed on as it came). */
function needsFix(item: unknown): boolean {
  if (!item || typeof item !== "object") return false;
  const t = (item as { type?: unknown }).type;
  return t === "resource_link" || t === "resource";
}
