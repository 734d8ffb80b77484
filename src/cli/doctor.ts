// `gatehouse doctor <mcp-url>`: runs the MCP authorization discovery chain against any MCP server (Gatehouse or
// not) the way Claude.ai, ChatGPT, VS Code, Cursor and Claude Code do, and prints a checklist: what passes, what
// fails, and the setting that fixes it (the servers.json key for a Gatehouse server, the spec rule otherwise).
// Framework-free: plain functions over an injected fetch. Every request has a timeout, none follows a redirect
// (clients do not follow them for metadata), and a transport error is a FAIL with its message, never a stack.
//
// Order: the MCP endpoint's 401 challenge (RFC 9728 §5.1) → protected resource metadata (RFC 9728 §3) → the
// authorization server's metadata (RFC 8414 §3, OpenID Connect Discovery §4) → registration of each known client's
// redirect URIs (RFC 7591) → CORS for browser clients → TLS and redirects.

import pkg from "../../package.json" with { type: "json" };
import { parseDuration } from "../config/duration.ts";
import { parseArgs, UsageError } from "./args.ts";

export const DOCTOR_HELP = `Usage: gatehouse doctor <mcp-url> [--json] [--no-register] [--timeout SECONDS]

Runs the OAuth discovery chain of MCP clients (Claude.ai, ChatGPT, VS Code, Cursor, Claude Code, the MCP
Inspector) against an MCP server URL — a Gatehouse or any other — and prints one line per check with PASS, FAIL,
WARN or SKIP, and a "fix:" line naming the setting to change (the servers.json key for a Gatehouse server, the
spec rule for others). Needs no configuration and no running Gatehouse of its own.

Checks, in order:
  1. an unauthenticated POST initialize gets 401 and WWW-Authenticate: Bearer resource_metadata="…" (RFC 9728 §5.1),
     or the server is open (said so; the OAuth checks are then skipped)
  2. protected resource metadata at the challenge's URL, the path-aware /.well-known/oauth-protected-resource/<path>
     and the root; its "resource" equals the MCP URL (RFC 9728 §3.3); "authorization_servers" present
  3. authorization server metadata at the RFC 8414 and OpenID Connect locations of the issuer; "issuer" equals the
     issuer it was fetched for (RFC 8414 §3.3); PKCE S256; response type code; endpoints; registration (DCR and/or
     client ID metadata documents); grant types
  4. each known client's redirect URIs, by registering a test client named "gatehouse doctor check (<client>)"
     through dynamic client registration when the server offers it (the server's refusal is shown)
  5. CORS preflights from https://claude.ai and http://localhost:6274 (the MCP Inspector) to the MCP URL and the
     token endpoint (and, for the Inspector, the registration endpoint); the headers a browser may read
     (Mcp-Session-Id, WWW-Authenticate)
  6. https with a valid certificate (http only on loopback), and no redirects on any of these URLs

  --json              print the results as JSON
  --no-register       do not register test clients (the redirect URI checks are skipped)
  --timeout SECONDS   per request (default 5; "500ms" and "2s" work too)

Registering leaves the test clients on the server (unless it supports RFC 7592 deletion): on a Gatehouse, list them
with \`gatehouse clients list\` and remove them with \`gatehouse clients revoke ID\`.
Exits 0 when nothing FAILs, 1 when something does, 2 on a usage error.
`;

export type Status = "PASS" | "FAIL" | "WARN" | "SKIP";
export type Section = "mcp" | "prm" | "as" | "clients" | "cors" | "tls";

export const SECTION_TITLES: Record<Section, string> = {
  mcp: "MCP endpoint",
  prm: "Protected resource metadata (RFC 9728)",
  as: "Authorization server metadata (RFC 8414, OpenID Connect Discovery)",
  clients: "Redirect URIs of known clients (dynamic client registration, RFC 7591)",
  cors: "CORS for browser clients",
  tls: "TLS and redirects",
};

export interface Check {
  id: string;
  section: Section;
  status: Status;
  title: string;
  detail: string;
  /** The setting or rule that fixes a FAIL (or a WARN). */
  fix?: string;
}

/** A check as it is built: the fix for a Gatehouse server is chosen once it is known whether the server is one. */
export interface Draft extends Check {
  gatehouseFix?: string;
}

export interface RegisteredClient {
  client: string;
  clientId: string;
  registrationEndpoint: string;
  /** Deleted again through RFC 7592 (registration_client_uri + registration_access_token). */
  deleted: boolean;
}

export interface Report {
  url: string;
  gatehouse: boolean;
  ok: boolean;
  summary: Record<"pass" | "fail" | "warn" | "skip", number>;
  checks: Check[];
  registeredClients: RegisteredClient[];
}

// ---------------------------------------------------------------------------------------------------------------
// HTTP: one request, bounded in time and size, never following redirects, failures described in one line.

const VERSION: string = pkg.version;
const USER_AGENT = `gatehouse-doctor/${VERSION}`;
const PROTOCOL_VERSION = "2025-11-25";
const MAX_BODY = 256 * 1024;

export interface Reply {
  status: number;
  headers: Headers;
  text: string;
}

export type Exchange = { url: string; method: string } & (
  | { ok: true; reply: Reply }
  | { ok: false; error: string; certificate: boolean }
);

export interface Http {
  fetch: typeof fetch;
  timeoutMs: number;
  /** Every request made, in order (the TLS and redirect checks read it). */
  log: Exchange[];
}

class Timeout extends Error {}

/** One line for a transport failure: the runtime's message and code; a timeout says how long it waited. */
export function describeError(e: unknown, timeoutMs: number): { error: string; certificate: boolean } {
  const err = (e ?? {}) as { name?: unknown; message?: unknown; code?: unknown; cause?: unknown };
  if (e instanceof Timeout || err.name === "AbortError" || err.name === "TimeoutError") {
    return { error: `no answer within ${formatMs(timeoutMs)}`, certificate: false };
  }
  let message = typeof err.message === "string" && err.message ? err.message : String(e);
  const code = typeof err.code === "string" ? err.code : undefined;
  if (code && !message.includes(code)) message += ` (${code})`;
  const cause = err.cause as { message?: unknown; code?: unknown } | undefined;
  if (cause && typeof cause.message === "string" && !message.includes(cause.message)) message += `: ${cause.message}`;
  if (cause && typeof cause.code === "string" && !message.includes(cause.code)) message += ` (${cause.code})`;
  message = message.replace(/\s+/g, " ").trim();
  const certificate =
    /cert|self[- ]signed|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|ALTNAME|HOSTNAME_MISMATCH|SSL|TLS|x509|issuer certificate/i.test(
      message,
    );
  return { error: message, certificate };
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

async function readText(res: Response): Promise<string> {
  if (!res.body) return "";
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.byteLength;
    if (size >= MAX_BODY) {
      await reader.cancel().catch(() => {});
      break;
    }
  }
  const all = new Uint8Array(Math.min(size, MAX_BODY));
  let at = 0;
  for (const c of chunks) {
    const part = c.subarray(0, Math.min(c.byteLength, all.byteLength - at));
    all.set(part, at);
    at += part.byteLength;
    if (at >= all.byteLength) break;
  }
  return new TextDecoder().decode(all);
}

export interface SendInit {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  /** Read the body (default); false cancels it (an SSE stream of an open server must not hold the check). */
  readBody?: boolean | ((res: Response) => boolean);
}

export async function send(h: Http, url: string, init: SendInit = {}): Promise<Exchange> {
  const method = init.method ?? "GET";
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(new Timeout());
    }, h.timeoutMs);
  });
  const work = (async (): Promise<Reply> => {
    const res = await h.fetch(url, {
      method,
      headers: { "user-agent": USER_AGENT, ...init.headers },
      ...(init.body !== undefined ? { body: init.body } : {}),
      redirect: "manual",
      signal: controller.signal,
    });
    let text = "";
    const read = typeof init.readBody === "function" ? init.readBody(res) : init.readBody !== false;
    if (read) text = await readText(res);
    else await res.body?.cancel().catch(() => {});
    return { status: res.status, headers: res.headers, text };
  })();
  work.catch(() => {}); // when the timeout wins, the request's own rejection is expected
  let x: Exchange;
  try {
    x = { url, method, ok: true, reply: await Promise.race([work, timeout]) };
  } catch (e) {
    x = { url, method, ok: false, ...describeError(e, h.timeoutMs) };
  } finally {
    clearTimeout(timer);
  }
  h.log.push(x);
  return x;
}

function isRedirect(r: Reply): boolean {
  return r.status >= 300 && r.status < 400 && r.status !== 304;
}

function redirectText(r: Reply): string {
  return `redirected (${r.status}) to ${r.headers.get("location") ?? "(no Location header)"}`;
}

function excerpt(text: string, max = 160): string {
  const t = text.replace(/\s+/g, " ").trim();
  return t.length > max ? `${t.slice(0, max)}…` : t;
}

function parseJsonObject(text: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** An OAuth error body's `error: description`, else the status and the start of the body. */
function refusalText(r: Reply): string {
  const j = parseJsonObject(r.text);
  if (j && typeof j.error === "string") {
    return `${r.status} ${j.error}${typeof j.error_description === "string" ? `: ${j.error_description}` : ""}`;
  }
  const rpc = j?.error as { message?: unknown } | undefined;
  if (rpc && typeof rpc.message === "string") return `${r.status}: ${rpc.message}`;
  return `${r.status}${r.text.trim() ? `: ${excerpt(r.text)}` : ""}`;
}

export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.toLowerCase();
  return h === "localhost" || h.endsWith(".localhost") || /^127\.\d+\.\d+\.\d+$/.test(h) || h === "[::1]";
}

function isHttpUrl(v: unknown): v is string {
  if (typeof v !== "string") return false;
  try {
    const u = new URL(v);
    return u.protocol === "https:" || u.protocol === "http:";
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// WWW-Authenticate (RFC 9110 §11.6.1): challenges and their parameters.

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

export function parseChallenges(header: string): Challenge[] {
  const s = header;
  const out: Challenge[] = [];
  let i = 0;
  const ws = () => {
    while (i < s.length && /\s/.test(s[i] as string)) i++;
  };
  const token = () => {
    const m = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+/.exec(s.slice(i));
    if (!m) return "";
    i += m[0].length;
    return m[0];
  };
  while (i < s.length) {
    ws();
    while (s[i] === ",") {
      i++;
      ws();
    }
    if (i >= s.length) break;
    const scheme = token();
    if (!scheme) {
      i++;
      continue;
    }
    const challenge: Challenge = { scheme, params: {} };
    out.push(challenge);
    for (;;) {
      ws();
      const start = i;
      const name = token();
      ws();
      if (!name || s[i] !== "=") {
        i = start; // the next challenge's scheme (or a token68, ignored)
        if (!name) while (i < s.length && s[i] !== ",") i++;
        break;
      }
      i++;
      ws();
      let value = "";
      if (s[i] === '"') {
        i++;
        while (i < s.length && s[i] !== '"') {
          if (s[i] === "\\") i++;
          value += s[i] ?? "";
          i++;
        }
        i++;
      } else {
        const m = /^[^\s,]*/.exec(s.slice(i)) as RegExpExecArray;
        value = m[0];
        i += value.length;
      }
      challenge.params[name.toLowerCase()] = value;
      ws();
      if (s[i] === ",") {
        i++;
        continue;
      }
      break;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// The known clients: their redirect URIs and registration as mcp-auth-requirements.md §4–§5 describe them.

export interface KnownClient {
  id: string;
  name: string;
  redirectUris: string[];
  authMethod: "none" | "client_secret_post";
  applicationType?: "native";
  /** The client ID metadata document it uses when the server offers CIMD (with "none" among the auth methods). */
  cimd?: string;
  /** Why a refused URI matters, for the detail line. */
  note?: string;
}

export const KNOWN_CLIENTS: readonly KnownClient[] = [
  {
    id: "claude-ai",
    name: "Claude.ai",
    redirectUris: ["https://claude.ai/api/mcp/auth_callback"],
    // Claude's hosted connector registers as a confidential client since 2026 (anthropics/claude-ai-mcp #1043).
    authMethod: "client_secret_post",
    cimd: "https://claude.ai/oauth/mcp-oauth-client-metadata",
  },
  {
    id: "chatgpt",
    name: "ChatGPT",
    redirectUris: ["https://chatgpt.com/connector_platform_oauth_redirect"],
    authMethod: "none",
    cimd: "https://chatgpt.com/oauth/…/client.json",
  },
  {
    id: "vscode",
    name: "VS Code",
    // What VS Code registers (src/vs/base/common/oauth.ts): it uses 33418 or, when busy, any loopback port.
    redirectUris: [
      "https://insiders.vscode.dev/redirect",
      "https://vscode.dev/redirect",
      "http://127.0.0.1/",
      "http://127.0.0.1:33418/",
    ],
    authMethod: "none",
    applicationType: "native",
    cimd: "https://vscode.dev/oauth/client-metadata.json",
  },
  {
    id: "cursor",
    name: "Cursor",
    redirectUris: ["cursor://anysphere.cursor-mcp/oauth/callback"],
    authMethod: "none",
  },
  {
    id: "claude-code",
    name: "Claude Code",
    // Claude Code listens on a random (or configured) loopback port: any port must be accepted (RFC 8252 §7.3).
    redirectUris: ["http://localhost:45454/callback"],
    authMethod: "none",
    cimd: "https://claude.ai/oauth/claude-code-client-metadata",
  },
];

export const BROWSER_ORIGINS: readonly { origin: string; name: string; severity: "FAIL" | "WARN" }[] = [
  { origin: "https://claude.ai", name: "Claude.ai", severity: "FAIL" },
  // Only the Inspector's "direct" mode needs CORS; its proxy mode does not.
  { origin: "http://localhost:6274", name: "MCP Inspector", severity: "WARN" },
];

// ---------------------------------------------------------------------------------------------------------------
// The run: what the checks learn, passed along.

export interface DoctorContext {
  h: Http;
  mcpUrl: URL;
  register: boolean;
  checks: Draft[];
  /** Set when a document or an error message shows the server is a Gatehouse. */
  gatehouse: boolean;
  /** Why the rest is skipped: the MCP URL did not answer, or is no MCP endpoint. */
  stopped?: string;
  /** initialize succeeded without a token. */
  open: boolean;
  challenge?: { bearer: boolean; resourceMetadata?: string; scope?: string; check: Draft };
  prm?: { url: string; doc: Record<string, unknown> };
  issuer?: string;
  /** The authorization server is Gatehouse's own (serverAuth.oauthAs), not another issuer it points to. */
  ownAs: boolean;
  as?: { url: string; doc: Record<string, unknown> };
  registered: RegisteredClient[];
}

function add(ctx: DoctorContext, c: Draft): Draft {
  ctx.checks.push(c);
  return c;
}

function noticeGatehouse(ctx: DoctorContext, text: string): void {
  if (/oauthAs\.|gateway\.allowed|Gatehouse MCP gateway|\(via Gatehouse\)/.test(text)) ctx.gatehouse = true;
}

function skipReason(ctx: DoctorContext): string {
  return ctx.open ? "the server is open (no OAuth)" : (ctx.stopped ?? "");
}

function skipAll(ctx: DoctorContext, section: Section, id: string, title: string, why: string): void {
  add(ctx, { id, section, status: "SKIP", title, detail: why });
}

// 1. The MCP endpoint ----------------------------------------------------------------------------------------------

const INITIALIZE = JSON.stringify({
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: {
    protocolVersion: PROTOCOL_VERSION,
    capabilities: {},
    clientInfo: { name: "gatehouse-doctor", version: VERSION },
  },
});

const MCP_HEADERS = { "content-type": "application/json", accept: "application/json, text/event-stream" };

export async function checkMcpEndpoint(ctx: DoctorContext): Promise<void> {
  const url = ctx.mcpUrl.href;
  const title = "unauthenticated POST initialize";
  // The body of a refusal is read (it says why); a success's may be an endless SSE stream.
  const x = await send(ctx.h, url, { method: "POST", headers: MCP_HEADERS, body: INITIALIZE, readBody: notSuccess });
  if (!x.ok) {
    ctx.stopped = "the MCP URL did not answer";
    add(ctx, {
      id: "mcp.initialize",
      section: "mcp",
      status: "FAIL",
      title,
      detail: `${url}: ${x.error}`,
      fix: x.certificate
        ? `serve a certificate for ${ctx.mcpUrl.hostname} that chains to a public CA (clients verify TLS)`
        : `make ${url} reachable from the clients (DNS, firewall, the server running); hosted clients connect from the internet`,
    });
    return;
  }
  const r = x.reply;
  if (isRedirect(r)) {
    add(ctx, {
      id: "mcp.initialize",
      section: "mcp",
      status: "FAIL",
      title,
      detail: `${redirectText(r)}: clients do not follow redirects on the MCP URL`,
      fix: `give clients the final URL (${r.headers.get("location") ?? "?"}) or serve ${ctx.mcpUrl.pathname} directly (with and without a trailing slash), never as a redirect`,
      gatehouseFix:
        "Gatehouse never redirects /mcp: the redirect comes from a proxy in front of it — route the path to Gatehouse unchanged",
    });
    return;
  }
  if (r.status >= 200 && r.status < 300) {
    ctx.open = true;
    const session = r.headers.get("mcp-session-id");
    if (session) {
      // Leave nothing behind: end the session the check opened.
      await send(ctx.h, url, { method: "DELETE", headers: { "mcp-session-id": session }, readBody: false });
    }
    add(ctx, {
      id: "mcp.initialize",
      section: "mcp",
      status: "WARN",
      title,
      detail: `${r.status} without a token: the server is open (no OAuth); clients connect without signing in, so the OAuth checks are skipped`,
      fix: 'if it should require sign-in, answer requests without a token with 401 and WWW-Authenticate: Bearer resource_metadata="…" (MCP authorization)',
      gatehouseFix:
        'if it should require sign-in, set serverAuth.providers (e.g. ["oauth_as"] with serverAuth.oauthAs) and gateway.route.authType',
    });
    return;
  }
  const www = r.headers.get("www-authenticate");
  if (r.status !== 401) {
    const text = r.text;
    noticeGatehouse(ctx, text);
    const host = /gateway\.allowedHosts/.test(text);
    add(ctx, {
      id: "mcp.initialize",
      section: "mcp",
      status: "FAIL",
      title,
      detail: `answered ${r.status}${text ? ` (${excerpt(text)})` : ""}, expected 401 with a Bearer challenge`,
      fix:
        r.status === 404 || r.status === 405
          ? "the URL must be the MCP Streamable HTTP endpoint, accepting POST (check the path)"
          : 'a request without a token must get 401 + WWW-Authenticate: Bearer resource_metadata="…" (MCP authorization; RFC 9728 §5.1); 403 is for insufficient scope',
      ...(host ? { gatehouseFix: `add "${ctx.mcpUrl.host}" to gateway.allowedHosts (the Host clients send)` } : {}),
    });
    if (r.status === 404 || r.status === 405) ctx.stopped = `the MCP URL answered ${r.status}`;
    return;
  }
  const challenges = www ? parseChallenges(www) : [];
  const bearerAt = challenges.findIndex((c) => c.scheme.toLowerCase() === "bearer");
  const bearer = challenges[bearerAt];
  if (bearer?.params.realm === "gatehouse") ctx.gatehouse = true;
  const check = add(ctx, {
    id: "mcp.initialize",
    section: "mcp",
    status: "PASS",
    title,
    detail: `401, WWW-Authenticate: ${www ?? "(none)"}`,
  });
  ctx.challenge = { bearer: bearer !== undefined, check };
  if (!www || !bearer) {
    check.status = "FAIL";
    check.detail = `401 ${www ? `with WWW-Authenticate: ${www} — no Bearer challenge` : "without WWW-Authenticate"}`;
    check.fix =
      'send WWW-Authenticate: Bearer resource_metadata="<protected resource metadata URL>", scope="…" with the 401 (RFC 6750 §3, RFC 9728 §5.1)';
    return;
  }
  const rm = bearer.params.resource_metadata;
  if (bearer.params.scope) ctx.challenge.scope = bearer.params.scope;
  if (rm === undefined) {
    // Judged once the well-known locations are known (MCP 2025-11-25: the header or the well-known URI).
    check.status = "WARN";
    check.detail = `401, but the Bearer challenge has no resource_metadata (${www})`;
    check.fix = 'add resource_metadata="<protected resource metadata URL>" to the Bearer challenge (RFC 9728 §5.1)';
    check.gatehouseFix =
      "this route advertises no protected resource metadata: give it an authorization server (serverAuth.providers with oauth_as, or jwt/introspection with discovery)";
    return;
  }
  if (!isHttpUrl(rm)) {
    check.status = "FAIL";
    check.detail = `resource_metadata="${rm}" is not an absolute http(s) URL`;
    check.fix = "resource_metadata must be the absolute URL of the protected resource metadata (RFC 9728 §5.1)";
    return;
  }
  ctx.challenge.resourceMetadata = rm;
  if (bearerAt > 0) {
    check.status = "WARN";
    check.detail += " — the Bearer challenge is not first: the MCP TypeScript SDK reads only the first challenge";
    check.fix = "put the Bearer challenge first in WWW-Authenticate";
  }
}

function notSuccess(res: Response): boolean {
  return res.status < 200 || res.status >= 300;
}

// 2. Protected resource metadata -----------------------------------------------------------------------------------

/** The path-aware (RFC 9728 §3.1: inserted between host and path, trailing slash dropped) and root locations. */
export function resourceMetadataUrls(mcp: URL): { pathAware: string; root: string } {
  const path = mcp.pathname === "/" ? "" : mcp.pathname.replace(/\/+$/, "");
  return {
    pathAware: `${mcp.origin}/.well-known/oauth-protected-resource${path}${mcp.search}`,
    root: `${mcp.origin}/.well-known/oauth-protected-resource`,
  };
}

type Fetched =
  | { kind: "doc"; doc: Record<string, unknown> }
  | { kind: "problem"; text: string; notFound?: boolean; serverError?: boolean; redirect?: string };

function judgeDocument(x: Exchange): Fetched {
  if (!x.ok) return { kind: "problem", text: x.error };
  const r = x.reply;
  if (isRedirect(r)) {
    return {
      kind: "problem",
      text: `${redirectText(r)}: clients do not follow redirects for metadata`,
      redirect: r.headers.get("location") ?? "(no Location header)",
    };
  }
  if (r.status === 404 || r.status === 410)
    return { kind: "problem", text: `not served (${r.status})`, notFound: true };
  if (r.status < 200 || r.status >= 300) {
    return { kind: "problem", text: `answered ${refusalText(r)}`, serverError: r.status >= 500 };
  }
  const doc = parseJsonObject(r.text);
  if (!doc) {
    const type = r.headers.get("content-type") ?? "no content type";
    return { kind: "problem", text: `${r.status} but not a JSON object (${type}: ${excerpt(r.text, 60)})` };
  }
  return { kind: "doc", doc };
}

const METADATA_HEADERS = { accept: "application/json", "mcp-protocol-version": PROTOCOL_VERSION };

/** Same string after URL normalisation (how VS Code compares the PRM resource with the server URL). */
function sameUrl(a: string, b: string): boolean {
  try {
    return new URL(a).href === new URL(b).href;
  } catch {
    return false;
  }
}

/** Gatehouse's public base URL implied by one of its MCP URLs (`…/mcp`, `…/servers/<name>/mcp`). */
function gatehouseBase(u: URL): string {
  const path = u.pathname.replace(/\/+$/, "");
  const servers = /^(.*)\/servers\/[^/]+\/mcp$/.exec(path);
  return `${u.origin}${servers ? servers[1] : path.replace(/\/mcp$/, "")}`;
}

/** The key that sets that base: gateway.publicUrl for /servers/<name>/mcp, the issuer for /mcp. */
function gatehouseBaseKey(u: URL): string {
  return /\/servers\/[^/]+\/mcp\/?$/.test(u.pathname) ? "gateway.publicUrl" : "serverAuth.oauthAs.issuerUrl";
}

/** The servers.json setting that makes Gatehouse publish the URL used as the resource of its route. */
function gatehouseResourceFix(used: URL, published: string, issuer: string | undefined): string {
  const base = gatehouseBase(used);
  const orPublished = ` — or give clients the URL Gatehouse publishes, ${published}`;
  if (/\/servers\/[^/]+\/mcp\/?$/.test(used.pathname)) {
    return `set gateway.publicUrl to "${base}" (the base /servers/<name>/mcp hang from)${orPublished}`;
  }
  if (issuer && sameUrl(published, `${issuer.replace(/\/+$/, "")}/mcp`)) {
    return `set serverAuth.oauthAs.issuerUrl to "${base}" (the /mcp resource is serverAuth.oauthAs.resourceUrl, which defaults to gateway.publicUrl + "/mcp", else issuerUrl + "/mcp")${orPublished}`;
  }
  return `set the resource of /mcp to "${used.href.replace(/\/+$/, "")}": gateway.publicUrl (its base) or serverAuth.oauthAs.resourceUrl, or for tokens from another issuer serverAuth.jwt.discovery.resourceUrl (serverAuth.introspection.discovery.resourceUrl)${orPublished}`;
}

export async function checkResourceMetadata(ctx: DoctorContext): Promise<void> {
  if (ctx.stopped || ctx.open) {
    skipAll(ctx, "prm", "prm", "protected resource metadata", skipReason(ctx));
    return;
  }
  const { pathAware, root } = resourceMetadataUrls(ctx.mcpUrl);
  const header = ctx.challenge?.resourceMetadata;
  const locations: { id: string; label: string; url: string; role: "header" | "path" | "root" }[] = [];
  if (header && header !== pathAware && header !== root) {
    locations.push({ id: "prm.challenge_url", label: "document named by the challenge", url: header, role: "header" });
  }
  locations.push({
    id: "prm.path_aware",
    label: `path-aware location${header === pathAware ? " (the challenge's URL)" : ""}`,
    url: pathAware,
    role: header === pathAware ? "header" : "path",
  });
  if (root !== pathAware) {
    locations.push({
      id: "prm.root",
      label: `root location${header === root ? " (the challenge's URL)" : ""}`,
      url: root,
      role: header === root ? "header" : "root",
    });
  }
  const results = await Promise.all(
    locations.map(async (l) => ({ ...l, got: judgeDocument(await send(ctx.h, l.url, { headers: METADATA_HEADERS })) })),
  );
  for (const r of results) if (r.got.kind === "doc") noticeGatehouse(ctx, JSON.stringify(r.got.doc));
  const anyOk = results.some((r) => r.got.kind === "doc");
  // Client order: the challenge's URL (the only one the TypeScript SDK and VS Code then use), path-aware, root.
  const order = [...results].sort((a, b) => rank(a.role) - rank(b.role));
  const primary = order.find((r) => r.got.kind === "doc");
  if (primary && primary.got.kind === "doc") ctx.prm = { url: primary.url, doc: primary.got.doc };

  for (const r of results) {
    const c: Draft = { id: r.id, section: "prm", status: "PASS", title: r.label, detail: r.url };
    if (r.got.kind === "doc") {
      const res = r.got.doc.resource;
      c.detail = `${r.url}: 200, resource ${typeof res === "string" ? res : "(missing)"}`;
      const primaryRes = primary?.got.kind === "doc" ? primary.got.doc.resource : undefined;
      const primaryOk = typeof primaryRes === "string" && sameUrl(primaryRes, ctx.mcpUrl.href);
      if (
        r.role === "root" &&
        r !== primary &&
        primaryOk &&
        typeof res === "string" &&
        !sameUrl(res, ctx.mcpUrl.href)
      ) {
        c.detail += ` — another resource on this host; clients use the ${primary?.role === "header" ? "challenge's" : "path-aware"} document for this URL`;
      }
    } else {
      const p = r.got;
      c.detail = `${r.url}: ${p.text}`;
      if (r.role === "header") {
        c.status = "FAIL";
        c.detail += " — clients that got the challenge fetch only this URL";
        c.fix = p.redirect
          ? `serve the document at ${r.url} itself (no redirect), or name the final URL in resource_metadata`
          : `serve the protected resource metadata at ${r.url} (the challenge's resource_metadata), 200 application/json (RFC 9728 §3)`;
        if (new URL(r.url).origin !== ctx.mcpUrl.origin) {
          // Gatehouse names the metadata URL of the route's configured resource URL.
          c.gatehouseFix = `set ${gatehouseBaseKey(ctx.mcpUrl)} to "${gatehouseBase(ctx.mcpUrl)}": the challenge names the metadata URL of the configured resource, on another origin`;
        }
      } else if (p.notFound) {
        c.status = r.role === "path" && !anyOk ? "FAIL" : "WARN";
        c.fix =
          r.role === "path"
            ? `serve the protected resource metadata at ${r.url} too: clients without the challenge probe it (RFC 9728 §3.1)`
            : `serve the same document at ${r.url} too: older clients and some probes look only at the root`;
        if (r.role === "path" && !anyOk) {
          c.fix = `serve RFC 9728 protected resource metadata at ${r.url} and name it in WWW-Authenticate resource_metadata (MCP authorization)`;
          c.gatehouseFix =
            "this route has no protected resource metadata: give it an authorization server (serverAuth.providers with oauth_as, or jwt/introspection discovery)";
        }
      } else {
        c.status = r.role === "root" && anyOk ? "WARN" : "FAIL";
        c.fix = p.redirect
          ? `serve ${r.url} directly: clients do not follow redirects for metadata`
          : p.serverError
            ? `${r.url} must answer 200 with the document or 404 (clients abort discovery on 5xx)`
            : `${r.url} must answer 200 with a JSON protected resource metadata document, or 404`;
        if (p.redirect)
          c.gatehouseFix = `Gatehouse does not redirect ${new URL(r.url).pathname}: a proxy in front of it does — route it unchanged`;
      }
    }
    add(ctx, c);
  }

  // The challenge without resource_metadata is acceptable (MCP 2025-11-25) only when a well-known document exists.
  const ch = ctx.challenge;
  if (ch?.bearer && !ch.resourceMetadata && ch.check.status === "WARN" && !anyOk) ch.check.status = "FAIL";
  if (ch?.check && ch.bearer && !ch.resourceMetadata && anyOk) {
    ch.check.detail += " — clients fall back to the well-known locations (2025-06-18 clients require the header)";
  }

  if (!ctx.prm) {
    skipAll(ctx, "prm", "prm.resource", "resource", "no protected resource metadata document");
    skipAll(
      ctx,
      "prm",
      "prm.authorization_servers",
      "authorization_servers",
      "no protected resource metadata document",
    );
    return;
  }
  const doc = ctx.prm.doc;
  const resource = doc.resource;
  const rc: Draft = {
    id: "prm.resource",
    section: "prm",
    status: "PASS",
    title: "resource equals the MCP URL",
    detail: "",
  };
  const servers = doc.authorization_servers;
  const firstIssuer = Array.isArray(servers) && typeof servers[0] === "string" ? servers[0] : undefined;
  if (typeof resource !== "string" || !isHttpUrl(resource)) {
    rc.status = "FAIL";
    rc.detail = `${ctx.prm.url}: resource is ${resource === undefined ? "missing" : JSON.stringify(resource)}`;
    rc.fix = `set "resource" to "${ctx.mcpUrl.href}" (RFC 9728 §2: REQUIRED)`;
  } else if (sameUrl(resource, ctx.mcpUrl.href)) {
    rc.detail = resource;
  } else {
    const prefix = sameOriginPrefix(resource, ctx.mcpUrl);
    const slash = resource.replace(/\/+$/, "") === ctx.mcpUrl.href.replace(/\/+$/, "");
    rc.status = "FAIL";
    rc.detail =
      `the document says ${resource}, the URL used is ${ctx.mcpUrl.href}${slash ? " (only a trailing slash apart)" : ""}: RFC 9728 §3.3 requires them identical — ` +
      (prefix
        ? `VS Code stops ("does not match"); the MCP SDKs accept a same-origin path prefix and ask for a token for ${resource}`
        : "clients stop discovery (VS Code, the TypeScript and Python SDKs)");
    rc.fix = `make the protected resource metadata say "resource": "${ctx.mcpUrl.href}" (RFC 9728 §3.3) — or connect clients to ${resource}`;
    rc.gatehouseFix = slash
      ? `give clients ${resource}, without the trailing slash: Gatehouse answers at both but publishes the resource without it (no setting changes that)`
      : gatehouseResourceFix(ctx.mcpUrl, resource, firstIssuer);
  }
  add(ctx, rc);

  const ac: Draft = {
    id: "prm.authorization_servers",
    section: "prm",
    status: "PASS",
    title: "authorization_servers present",
    detail: "",
  };
  if (!Array.isArray(servers) || servers.length === 0 || !servers.every((s) => typeof s === "string")) {
    ac.status = "FAIL";
    ac.detail = `authorization_servers is ${servers === undefined ? "missing" : JSON.stringify(servers)}`;
    ac.fix =
      'list the issuer of the authorization server: "authorization_servers": ["https://…"] (MCP authorization: MUST)';
  } else if (!isHttpUrl(servers[0])) {
    ac.status = "FAIL";
    ac.detail = `authorization_servers[0] is ${JSON.stringify(servers[0])}, not an http(s) URL`;
    ac.fix = "authorization_servers entries are issuer identifiers: https URLs without query or fragment (RFC 8414 §2)";
  } else {
    ac.detail = servers.join(", ") + (servers.length > 1 ? " (clients use the first)" : "");
    ctx.issuer = servers[0] as string;
  }
  add(ctx, ac);

  const scopes = Array.isArray(doc.scopes_supported) ? (doc.scopes_supported as unknown[]).map(String) : [];
  const challenged = ctx.challenge?.scope?.split(/\s+/).filter(Boolean) ?? [];
  const sc: Draft = {
    id: "prm.scopes",
    section: "prm",
    status: "PASS",
    title: "scopes to request",
    detail: `challenge scope: ${challenged.join(" ") || "(none)"}; scopes_supported: ${scopes.join(" ") || "(none)"}`,
  };
  if (scopes.length === 0 && challenged.length === 0) {
    sc.status = "WARN";
    sc.detail +=
      " — clients then ask for every scope the authorization server lists (Claude Desktop) or a fallback set (mcp-remote)";
    sc.fix = 'send scope="…" in the 401 challenge and list scopes_supported in the protected resource metadata';
    sc.gatehouseFix =
      "set serverAuth.oauthAs.requiredScopes (and scopesSupported): published as scope and scopes_supported";
  } else if ([...scopes, ...challenged].includes("offline_access")) {
    sc.status = "WARN";
    sc.detail += ' — "offline_access" SHOULD NOT be in the challenge or scopes_supported (MCP 2026-07-28)';
    sc.fix = "leave offline_access to the authorization server's scopes_supported";
    sc.gatehouseFix = 'remove "offline_access" from serverAuth.oauthAs.requiredScopes';
  }
  add(ctx, sc);
}

function rank(role: "header" | "path" | "root"): number {
  return role === "header" ? 0 : role === "path" ? 1 : 2;
}

function sameOriginPrefix(resource: string, mcp: URL): boolean {
  try {
    const r = new URL(resource);
    return r.origin === mcp.origin && mcp.pathname.startsWith(r.pathname.replace(/\/$/, ""));
  } catch {
    return false;
  }
}

// 3. Authorization server metadata ---------------------------------------------------------------------------------

/** Client probe order for an issuer (MCP authorization server discovery; RFC 8414 §3.1; OIDC Discovery §4). */
export function authorizationServerMetadataUrls(issuer: string): { id: string; label: string; url: string }[] {
  const u = new URL(issuer);
  const path = u.pathname.replace(/\/+$/, "");
  if (!path) {
    return [
      { id: "as.rfc8414", label: "RFC 8414 metadata", url: `${u.origin}/.well-known/oauth-authorization-server` },
      { id: "as.oidc", label: "OpenID Connect discovery", url: `${u.origin}/.well-known/openid-configuration` },
    ];
  }
  return [
    {
      id: "as.rfc8414",
      label: "RFC 8414 metadata (path-aware)",
      url: `${u.origin}/.well-known/oauth-authorization-server${path}`,
    },
    {
      id: "as.oidc_inserted",
      label: "OpenID Connect discovery (path-inserted)",
      url: `${u.origin}/.well-known/openid-configuration${path}`,
    },
    {
      id: "as.oidc_appended",
      label: "OpenID Connect discovery (path-appended)",
      url: `${u.origin}${path}/.well-known/openid-configuration`,
    },
  ];
}

/** Tokens from another issuer: Gatehouse's registration shim (proxy discovery) hands out one pre-registered client. */
function proxyRegistrationFix(ctx: DoctorContext, issuer: string): string {
  return new URL(issuer).origin === ctx.mcpUrl.origin
    ? "set discovery.staticClient (a client pre-registered at the identity provider with the clients' redirect URIs) in serverAuth.jwt or serverAuth.introspection"
    : `enable open registration at the identity provider ${issuer}, or set discovery.mode "proxy" with discovery.staticClient in serverAuth.jwt or serverAuth.introspection`;
}

export async function checkAuthorizationServer(ctx: DoctorContext): Promise<void> {
  const issuer = ctx.issuer;
  if (!issuer) {
    const why =
      ctx.open || ctx.stopped
        ? skipReason(ctx)
        : "no authorization server named (no usable protected resource metadata)";
    skipAll(ctx, "as", "as", "authorization server metadata", why);
    return;
  }
  const candidates = authorizationServerMetadataUrls(issuer);
  const results = await Promise.all(
    candidates.map(async (c) => ({
      ...c,
      got: judgeDocument(await send(ctx.h, c.url, { headers: METADATA_HEADERS })),
    })),
  );
  const chosen = results.find((r) => r.got.kind === "doc");
  const chosenIndex = chosen ? results.indexOf(chosen) : results.length;
  // Gatehouse's own authorization server (serverAuth.oauthAs) has its endpoints under its issuer; in "proxy"
  // discovery it republishes another issuer's metadata, whose endpoints are that issuer's.
  const chosenDoc = chosen?.got.kind === "doc" ? chosen.got.doc : undefined;
  ctx.ownAs =
    ctx.gatehouse &&
    (chosenDoc === undefined || chosenDoc.authorization_endpoint === `${issuer.replace(/\/+$/, "")}/authorize`);
  const ghIssuerFix = !ctx.ownAs
    ? undefined
    : new URL(issuer).origin !== ctx.mcpUrl.origin
      ? `set serverAuth.oauthAs.issuerUrl to the URL clients reach Gatehouse at, "${gatehouseBase(ctx.mcpUrl)}" (it is "${issuer}")`
      : `serverAuth.oauthAs.issuerUrl ("${issuer}") must be the URL clients reach Gatehouse at, and nothing in front of it may rewrite its metadata`;
  for (const [i, r] of results.entries()) {
    const c: Draft = { id: r.id, section: "as", status: "PASS", title: r.label, detail: r.url };
    const before = i < chosenIndex; // clients reach this URL before any document is found
    if (r.got.kind === "doc") {
      const doc = r.got.doc;
      const iss = doc.issuer;
      if (iss === issuer) {
        c.detail = `${r.url}: issuer ${iss}`;
      } else if (typeof iss === "string" && iss.replace(/\/$/, "") === issuer.replace(/\/$/, "")) {
        c.status = "WARN";
        c.detail = `${r.url}: issuer "${iss}" differs from "${issuer}" (authorization_servers[0]) by a trailing slash — RFC 8414 §3.3 wants them identical; the TypeScript SDK tolerates only a slash on the PRM side`;
        c.fix = `make authorization_servers[0] and the metadata issuer the same string ("${iss}")`;
      } else {
        c.status = i === chosenIndex ? "FAIL" : "WARN";
        c.detail = `${r.url}: issuer is ${JSON.stringify(iss)}, fetched for "${issuer}" — RFC 8414 §3.3: clients MUST NOT use it (TypeScript SDK: IssuerMismatchError)`;
        c.fix = `the issuer in the metadata must be "${issuer}" exactly, or authorization_servers must name "${String(iss)}"`;
        if (ghIssuerFix) c.gatehouseFix = ghIssuerFix;
      }
      if (r.id.startsWith("as.oidc") && !Array.isArray(doc.code_challenge_methods_supported) && c.status === "PASS") {
        c.status = "WARN";
        c.detail += " — no code_challenge_methods_supported (MCP: an OpenID provider MUST include it)";
        c.fix = 'add "code_challenge_methods_supported": ["S256"] to the OpenID configuration';
      }
    } else {
      const p = r.got;
      c.detail = `${r.url}: ${p.text}`;
      if (p.notFound) {
        if (chosen) {
          c.status = "SKIP";
          c.detail += before ? `; clients go on to ${chosen.url}` : `; clients use ${chosen.url}`;
        } else {
          c.status = "FAIL";
          c.fix = `serve the authorization server metadata of "${issuer}" at ${candidates[0]?.url} (RFC 8414 §3.1) or the OpenID configuration (MCP: one of them is REQUIRED)`;
          if (ghIssuerFix) c.gatehouseFix = ghIssuerFix;
        }
      } else if (before || !chosen) {
        c.status = "FAIL";
        c.detail += p.serverError ? " — clients abort discovery on 5xx (TypeScript SDK)" : "";
        c.fix = p.redirect
          ? `serve ${r.url} directly: clients do not follow redirects for metadata`
          : `${r.url} must answer 200 with the metadata, or 404 (never 5xx or an HTML page)`;
        if (ghIssuerFix && !p.redirect && !p.serverError) c.gatehouseFix = ghIssuerFix;
      } else {
        c.status = "WARN";
        c.fix = `${r.url} should answer 200 with the metadata, or 404`;
      }
    }
    add(ctx, c);
  }
  if (chosen?.got.kind !== "doc") {
    skipAll(ctx, "as", "as.fields", "PKCE, response types, endpoints, registration, grant types", "no metadata found");
    return;
  }
  const doc = chosen.got.doc;
  ctx.as = { url: chosen.url, doc };
  const where = ` (${chosen.url})`;
  const list = (k: string) => (Array.isArray(doc[k]) ? (doc[k] as unknown[]).map(String) : undefined);

  // No scope in the challenge or the resource metadata is only a problem when the authorization server lists some:
  // clients then ask for all of them. With none anywhere (mcp serve's default, and Gatehouse's), they ask for none.
  const scopeCheck = ctx.checks.find((c) => c.id === "prm.scopes");
  if (
    scopeCheck?.status === "WARN" &&
    scopeCheck.detail.includes("clients then ask") &&
    !list("scopes_supported")?.length
  ) {
    scopeCheck.status = "PASS";
    scopeCheck.detail = `${scopeCheck.detail.split(" — ")[0]} — no scopes anywhere (the authorization server lists none either): clients ask for none`;
    delete scopeCheck.fix;
    delete scopeCheck.gatehouseFix;
  }

  const methods = list("code_challenge_methods_supported");
  add(ctx, {
    id: "as.pkce",
    section: "as",
    title: "PKCE S256 advertised",
    ...(methods?.includes("S256")
      ? { status: "PASS", detail: `code_challenge_methods_supported: ${methods.join(", ")}` }
      : {
          status: "FAIL",
          detail: `${methods ? `code_challenge_methods_supported is [${methods.join(", ")}]` : "no code_challenge_methods_supported"}${where} — MCP clients MUST refuse an authorization server that does not advertise S256`,
          fix: 'advertise "code_challenge_methods_supported": ["S256"] and require PKCE S256 (MCP authorization; OAuth 2.1)',
        }),
  });

  const responseTypes = list("response_types_supported");
  add(ctx, {
    id: "as.response_types",
    section: "as",
    title: "response type code",
    ...(responseTypes?.includes("code")
      ? { status: "PASS", detail: `response_types_supported: ${responseTypes.join(", ")}` }
      : {
          status: "FAIL",
          detail: `${responseTypes ? `response_types_supported is [${responseTypes.join(", ")}]` : "no response_types_supported (REQUIRED, RFC 8414 §2)"}`,
          fix: 'advertise "response_types_supported": ["code"]',
        }),
  });

  const missing = ["authorization_endpoint", "token_endpoint"].filter((k) => !isHttpUrl(doc[k]));
  add(ctx, {
    id: "as.endpoints",
    section: "as",
    title: "authorization and token endpoints",
    ...(missing.length === 0
      ? { status: "PASS", detail: `authorization ${doc.authorization_endpoint}, token ${doc.token_endpoint}` }
      : {
          status: "FAIL",
          detail: `${missing.join(" and ")} missing or not an http(s) URL${where}`,
          fix: `publish ${missing.join(" and ")} as absolute https URLs (RFC 8414 §2)`,
        }),
  });

  const registration = isHttpUrl(doc.registration_endpoint) ? doc.registration_endpoint : undefined;
  const cimd = doc.client_id_metadata_document_supported === true;
  const authMethods = list("token_endpoint_auth_methods_supported");
  const none = authMethods === undefined ? false : authMethods.includes("none");
  const rg: Draft = { id: "as.registration", section: "as", status: "PASS", title: "client registration", detail: "" };
  const parts = [
    registration ? `registration_endpoint ${registration}` : "no registration_endpoint",
    cimd ? "client_id_metadata_document_supported: true" : "no client ID metadata documents",
    `token_endpoint_auth_methods_supported: ${authMethods?.join(", ") ?? "(absent: client_secret_basic only)"}`,
  ];
  rg.detail = parts.join("; ");
  if (!registration && !cimd) {
    rg.status = "FAIL";
    rg.detail += ' — clients without a pre-registered client cannot register ("Incompatible auth server")';
    rg.fix =
      'offer dynamic client registration ("registration_endpoint", RFC 7591) and/or client ID metadata documents ("client_id_metadata_document_supported": true with "none" among token_endpoint_auth_methods_supported)';
    rg.gatehouseFix = ctx.ownAs
      ? "set serverAuth.oauthAs.registrationEnabled to true (DCR, used by Cursor, the Inspector, mcp-remote) and/or serverAuth.oauthAs.clientIdMetadataDocuments.enabled to true (CIMD, used by Claude.ai, VS Code, ChatGPT, Claude Code)"
      : proxyRegistrationFix(ctx, issuer);
  } else if (!registration) {
    rg.status = "WARN";
    rg.detail += " — Cursor, the MCP Inspector and mcp-remote register only by DCR";
    rg.fix = 'offer dynamic client registration too ("registration_endpoint", RFC 7591)';
    rg.gatehouseFix = ctx.ownAs
      ? "set serverAuth.oauthAs.registrationEnabled to true"
      : proxyRegistrationFix(ctx, issuer);
  } else if (cimd && !none) {
    rg.status = "WARN";
    rg.detail += ' — Claude.ai uses CIMD only when "none" is among the auth methods; it falls back to DCR';
    rg.fix = 'add "none" to token_endpoint_auth_methods_supported';
  }
  add(ctx, rg);

  const grants = list("grant_types_supported");
  const gt: Draft = {
    id: "as.grant_types",
    section: "as",
    status: "PASS",
    title: "grant types",
    detail: `grant_types_supported: ${grants?.join(", ") ?? "(absent)"}`,
  };
  if (!grants) {
    gt.status = "WARN";
    gt.detail +=
      ' — RFC 8414 §2 then means ["authorization_code", "implicit"]: clients are not told about refresh tokens';
    gt.fix = 'advertise "grant_types_supported": ["authorization_code", "refresh_token"]';
  } else if (!grants.includes("authorization_code")) {
    gt.status = "FAIL";
    gt.detail += " — MCP clients use the authorization code grant";
    gt.fix = 'support and advertise "authorization_code" (and "refresh_token")';
  } else if (!grants.includes("refresh_token")) {
    gt.status = "WARN";
    gt.detail += " — without refresh_token users sign in again whenever an access token expires";
    gt.fix = 'support and advertise "refresh_token"';
  }
  add(ctx, gt);
}

// 4. Known clients' redirect URIs, by registering test clients -----------------------------------------------------

export function registrationBody(client: KnownClient, grantTypesSupported?: string[]): Record<string, unknown> {
  const wanted = ["authorization_code", "refresh_token"];
  const grants = grantTypesSupported
    ? wanted.filter((g) => g === "authorization_code" || grantTypesSupported.includes(g))
    : wanted;
  return {
    client_name: `gatehouse doctor check (${client.name})`,
    redirect_uris: client.redirectUris,
    grant_types: grants,
    response_types: ["code"],
    token_endpoint_auth_method: client.authMethod,
    ...(client.applicationType ? { application_type: client.applicationType } : {}),
  };
}

function refusedUri(text: string, client: KnownClient): string {
  const named = /redirect_uri[s]?\s*"([^"]+)"/.exec(text)?.[1];
  return named ?? client.redirectUris.find((u) => text.includes(u)) ?? (client.redirectUris[0] as string);
}

/** The allowlist entry that admits a URI: loopback patterns match any port in Gatehouse. */
function allowlistEntry(uri: string): string {
  try {
    const u = new URL(uri);
    if (u.protocol === "http:" && isLoopbackHost(u.hostname)) return `http://${u.hostname}/*`;
  } catch {
    // left as is
  }
  return uri;
}

export async function checkClients(ctx: DoctorContext): Promise<void> {
  const doc = ctx.as?.doc;
  if (!doc) {
    const why = ctx.open || ctx.stopped ? skipReason(ctx) : "no authorization server metadata";
    skipAll(ctx, "clients", "client", "known clients' redirect URIs", why);
    return;
  }
  const accepted: { check: Draft; clientId: string; client: KnownClient }[] = [];
  for (const client of KNOWN_CLIENTS) {
    const id = `client.${client.id}`;
    const title = `${client.name}: ${client.redirectUris.join(", ")}`;
    const registration = isHttpUrl(doc.registration_endpoint) ? doc.registration_endpoint : undefined;
    const methods = Array.isArray(doc.token_endpoint_auth_methods_supported)
      ? (doc.token_endpoint_auth_methods_supported as unknown[]).map(String)
      : [];
    const usesCimd = client.cimd !== undefined && doc.client_id_metadata_document_supported === true;
    const cimdNote = usesCimd
      ? ` ${client.name} uses CIMD here (client_id ${client.cimd}${client.id === "claude-ai" && !methods.includes("none") ? ' — but not without "none" among the auth methods' : ""}); this checks its DCR fallback.`
      : "";
    if (!registration) {
      if (usesCimd) {
        add(ctx, {
          id,
          section: "clients",
          status: "SKIP",
          title,
          detail: `no registration endpoint; ${client.name} uses CIMD (client_id ${client.cimd}) — its redirect URI is checked against that document at the authorization endpoint, not tested here`,
        });
      } else {
        add(ctx, {
          id,
          section: "clients",
          status: "FAIL",
          title,
          detail: `no registration endpoint${client.cimd ? " and no CIMD" : ` (${client.name} has no client ID metadata document)`}: ${client.name} cannot register`,
          fix: `offer dynamic client registration (RFC 7591), or pre-register a client with ${client.redirectUris.join(", ")} and enter its client ID in ${client.name}`,
          gatehouseFix: ctx.ownAs
            ? "set serverAuth.oauthAs.registrationEnabled to true"
            : proxyRegistrationFix(ctx, ctx.issuer as string),
        });
      }
      continue;
    }
    if (!ctx.register) {
      add(ctx, { id, section: "clients", status: "SKIP", title, detail: "not registered (--no-register)" });
      continue;
    }
    const grants = Array.isArray(doc.grant_types_supported)
      ? (doc.grant_types_supported as unknown[]).map(String)
      : undefined;
    const x = await send(ctx.h, registration, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify(registrationBody(client, grants)),
    });
    if (!x.ok) {
      add(ctx, {
        id,
        section: "clients",
        status: "FAIL",
        title,
        detail: `registration at ${registration}: ${x.error}`,
        fix: `make ${registration} reachable`,
      });
      continue;
    }
    const r = x.reply;
    if (isRedirect(r)) {
      add(ctx, {
        id,
        section: "clients",
        status: "FAIL",
        title,
        detail: `registration ${redirectText(r)}`,
        fix: `serve registration at ${registration} directly (clients do not re-post after a redirect)`,
      });
      continue;
    }
    const body = parseJsonObject(r.text);
    if (r.status < 200 || r.status >= 300 || !body || typeof body.client_id !== "string") {
      const refusal = r.status >= 200 && r.status < 300 ? `${r.status} without a client_id` : refusalText(r);
      noticeGatehouse(ctx, refusal);
      const uri = refusedUri(refusal, client);
      const c: Draft = {
        id,
        section: "clients",
        status: "FAIL",
        title,
        detail: `registration refused: ${refusal}.${cimdNote}`,
        fix:
          r.status === 401 || r.status === 403
            ? "registration must be open (no initial access token): MCP clients cannot send one"
            : `the authorization server must accept redirect_uri ${uri} in dynamic registration (RFC 7591 §2; RFC 8252 §7.1: private-use schemes such as cursor://; RFC 8252 §7.3: any port on loopback)`,
      };
      if (/redirectUriAllowlist/.test(refusal) || (/invalid_redirect_uri/.test(refusal) && ctx.ownAs)) {
        c.gatehouseFix = `add "${allowlistEntry(uri)}" to serverAuth.oauthAs.redirectUriAllowlist (a list you set replaces the default, which has the hosted clients' callbacks and loopback)`;
      } else if (r.status === 429 && ctx.ownAs) {
        c.gatehouseFix = "registrations are rate-limited (60 a minute): run doctor again in a minute";
      }
      add(ctx, c);
      continue;
    }
    const clientId = body.client_id;
    const rc: RegisteredClient = {
      client: client.name,
      clientId,
      registrationEndpoint: registration,
      deleted: false,
    };
    ctx.registered.push(rc);
    // RFC 7592: delete the test client again when the server says how.
    const manage = body.registration_client_uri;
    const token = body.registration_access_token;
    if (isHttpUrl(manage) && typeof token === "string") {
      const d = await send(ctx.h, manage, { method: "DELETE", headers: { authorization: `Bearer ${token}` } });
      rc.deleted = d.ok && d.reply.status >= 200 && d.reply.status < 300;
    }
    const problems: string[] = [];
    if (!Array.isArray(body.redirect_uris)) {
      problems.push("the response does not echo redirect_uris (the MCP TypeScript SDK refuses it)");
    }
    const nulls = Object.entries(body)
      .filter(([, v]) => v === null)
      .map(([k]) => k);
    if (nulls.length > 0) problems.push(`null values (${nulls.join(", ")}; the MCP TypeScript SDK refuses them)`);
    if (client.authMethod === "client_secret_post" && typeof body.client_secret !== "string") {
      problems.push("no client_secret for a client_secret_post registration (Claude abandons the flow, reportedly)");
    }
    const c = add(ctx, {
      id,
      section: "clients",
      status: problems.length > 0 ? "WARN" : "PASS",
      title,
      detail:
        `accepted (${r.status}): test client ${clientId}${rc.deleted ? " (deleted again, RFC 7592)" : ""}.${cimdNote}` +
        (problems.length > 0 ? ` But: ${problems.join("; ")}` : ""),
      ...(problems.length > 0
        ? {
            fix: "answer 201 with every registered field echoed (redirect_uris included), without nulls, and a client_secret for confidential clients (RFC 7591 §3.2.1)",
          }
        : {}),
    });
    accepted.push({ check: c, clientId, client });
  }
  // One client_id for every registration: a registration shim handing out a pre-registered client (Gatehouse's
  // proxy discovery does). The redirect URI then matters only at the identity provider's authorization endpoint.
  const shared = accepted.filter((a) => accepted.some((b) => b !== a && b.clientId === a.clientId));
  for (const a of shared) {
    a.check.status = "WARN";
    a.check.detail += ` But every registration got the same client_id: a pre-registered client is handed out, so ${a.client.redirectUris.join(", ")} is only checked when the authorization endpoint redirects`;
    a.check.fix = `register ${a.client.redirectUris.join(", ")} with client ${a.clientId} at the identity provider`;
    a.check.gatehouseFix = `register ${a.client.redirectUris.join(", ")} with the identity provider's client discovery.staticClient.clientId (${a.clientId})`;
  }
}

// 5. CORS -------------------------------------------------------------------------------------------------------

function headerList(v: string | null): string[] {
  return (v ?? "")
    .split(",")
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
}

interface CorsTarget {
  name: string;
  /** Only these origins (default: all of BROWSER_ORIGINS). */
  origins?: string[];
  /** Served by Gatehouse itself, so gateway.allowedOrigins decides (not by another issuer). */
  gatehouse: boolean;
  url: string;
  requestHeaders: string[];
  /** A follow-up real request whose answer must carry CORS headers (and, for MCP, expose the MCP headers). */
  actual?: SendInit;
  expose?: string[];
}

async function corsCheck(ctx: DoctorContext, target: CorsTarget, o: (typeof BROWSER_ORIGINS)[number]): Promise<Draft> {
  const c: Draft = {
    id: `cors.${target.name.split(" ")[0]?.toLowerCase()}.${o.origin.replace(/^https?:\/\//, "")}`,
    section: "cors",
    status: "PASS",
    title: `${target.name} from ${o.origin} (${o.name})`,
    detail: "",
  };
  const fail = (detail: string, specFix: string) => {
    c.status = o.severity;
    c.detail = detail + (o.severity === "WARN" ? " — only the Inspector's direct mode needs it" : "");
    c.fix = specFix;
    if (target.gatehouse) c.gatehouseFix = `add "${o.origin}" to gateway.allowedOrigins`;
    return c;
  };
  const pre = await send(ctx.h, target.url, {
    method: "OPTIONS",
    headers: {
      origin: o.origin,
      "access-control-request-method": "POST",
      "access-control-request-headers": target.requestHeaders.join(", "),
    },
  });
  const specPreflight = `answer the OPTIONS preflight of ${target.url} with 2xx, Access-Control-Allow-Origin: ${o.origin} (or *), Access-Control-Allow-Methods including POST and Access-Control-Allow-Headers: ${target.requestHeaders.join(", ")} (Fetch standard, CORS protocol)`;
  if (!pre.ok) return fail(`preflight: ${pre.error}`, specPreflight);
  const p = pre.reply;
  if (isRedirect(p)) return fail(`preflight ${redirectText(p)} (a preflight cannot follow redirects)`, specPreflight);
  if (p.status < 200 || p.status >= 300) return fail(`preflight refused (${refusalText(p)})`, specPreflight);
  const acao = p.headers.get("access-control-allow-origin");
  if (acao !== o.origin && acao !== "*") {
    return fail(
      `preflight ${p.status} without Access-Control-Allow-Origin for ${o.origin} (got ${acao ?? "none"})`,
      specPreflight,
    );
  }
  const allowed = headerList(p.headers.get("access-control-allow-headers"));
  // `*` does not cover Authorization (Fetch standard).
  const missing = target.requestHeaders.filter(
    (hd) => !allowed.includes(hd) && !(allowed.includes("*") && hd !== "authorization"),
  );
  if (missing.length > 0) {
    return fail(`preflight does not allow the request headers ${missing.join(", ")}`, specPreflight);
  }
  const methods = headerList(p.headers.get("access-control-allow-methods"));
  if (methods.length > 0 && !methods.includes("post") && !methods.includes("*")) {
    return fail(`preflight allows ${methods.join(", ").toUpperCase()}, not POST`, specPreflight);
  }
  c.detail = `preflight ${p.status}, allow-origin ${acao}`;
  if (target.actual) {
    const a = await send(ctx.h, target.url, {
      ...target.actual,
      headers: { ...target.actual.headers, origin: o.origin },
    });
    if (!a.ok) return fail(`POST with Origin: ${a.error}`, specPreflight);
    const r = a.reply;
    const session = r.headers.get("mcp-session-id");
    if (session) await send(ctx.h, target.url, { method: "DELETE", headers: { "mcp-session-id": session } });
    const aacao = r.headers.get("access-control-allow-origin");
    if (aacao !== o.origin && aacao !== "*") {
      return fail(
        `POST with Origin ${o.origin} answered ${refusalText(r)} without Access-Control-Allow-Origin: a browser cannot read it`,
        `send Access-Control-Allow-Origin: ${o.origin} (or *) on the responses of ${target.url}, errors and 401s included`,
      );
    }
    if (target.expose) {
      const exposed = headerList(r.headers.get("access-control-expose-headers"));
      const hidden = target.expose.filter((e) => !exposed.includes(e.toLowerCase()) && !exposed.includes("*"));
      c.detail += `; ${r.status} exposes ${r.headers.get("access-control-expose-headers") ?? "nothing"}`;
      if (hidden.length > 0) {
        return fail(
          `${c.detail} — ${hidden.join(" and ")} not exposed: a browser client cannot read ${hidden.length > 1 ? "them" : "it"}`,
          `send Access-Control-Expose-Headers: ${target.expose.join(", ")} on the responses of ${target.url}`,
        );
      }
    } else {
      c.detail += `; POST answered ${r.status} with allow-origin ${aacao}`;
    }
  }
  return c;
}

export async function checkCors(ctx: DoctorContext): Promise<void> {
  if (ctx.stopped) {
    skipAll(ctx, "cors", "cors", "CORS", skipReason(ctx));
    return;
  }
  const targets: CorsTarget[] = [
    {
      name: "MCP endpoint",
      url: ctx.mcpUrl.href,
      requestHeaders: ["authorization", "content-type", "mcp-protocol-version", "mcp-session-id"],
      actual: { method: "POST", headers: MCP_HEADERS, body: INITIALIZE, readBody: notSuccess },
      expose: ["Mcp-Session-Id", "WWW-Authenticate"],
      gatehouse: true,
    },
  ];
  const doc = ctx.as?.doc;
  if (doc && isHttpUrl(doc.token_endpoint)) {
    targets.push({
      name: "token endpoint",
      url: doc.token_endpoint,
      requestHeaders: ["content-type"],
      actual: {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
        body: "grant_type=authorization_code",
      },
      gatehouse: ctx.ownAs,
    });
  }
  if (doc && isHttpUrl(doc.registration_endpoint)) {
    // Claude.ai registers from its servers; the Inspector's direct mode registers from the browser.
    targets.push({
      name: "registration endpoint",
      url: doc.registration_endpoint,
      requestHeaders: ["content-type"],
      origins: ["http://localhost:6274"],
      gatehouse: ctx.ownAs,
    });
  }
  for (const t of targets) {
    for (const o of BROWSER_ORIGINS)
      if (!t.origins || t.origins.includes(o.origin)) add(ctx, await corsCheck(ctx, t, o));
  }
  if (ctx.open) return;
  // The metadata documents: public, readable from any origin (Access-Control-Allow-Origin: *).
  const docs = [ctx.prm?.url, ctx.as?.url].filter((u): u is string => u !== undefined);
  if (docs.length === 0) return;
  const origin = BROWSER_ORIGINS[1]?.origin as string;
  const unreadable: string[] = [];
  for (const u of docs) {
    const x = await send(ctx.h, u, { headers: { ...METADATA_HEADERS, origin } });
    const acao = x.ok ? x.reply.headers.get("access-control-allow-origin") : null;
    if (acao !== "*" && acao !== origin) unreadable.push(u);
  }
  add(ctx, {
    id: "cors.metadata",
    section: "cors",
    title: "metadata documents readable cross-origin",
    ...(unreadable.length === 0
      ? { status: "PASS", detail: docs.join(", ") }
      : {
          status: "WARN",
          detail: `no Access-Control-Allow-Origin on ${unreadable.join(", ")} — browser clients (the Inspector) cannot discover`,
          fix: "serve the metadata documents with Access-Control-Allow-Origin: * (they are public)",
        }),
  });
}

// 6. TLS and redirects ---------------------------------------------------------------------------------------------

export function checkTransport(ctx: DoctorContext): void {
  const doc = ctx.as?.doc;
  const named: [string, unknown][] = [
    ["MCP URL", ctx.mcpUrl.href],
    ["issuer", ctx.issuer],
    ["authorization endpoint", doc?.authorization_endpoint],
    ["token endpoint", doc?.token_endpoint],
    ["registration endpoint", doc?.registration_endpoint],
  ];
  const byOrigin = new Map<string, string[]>();
  for (const [what, u] of named) {
    if (!isHttpUrl(u)) continue;
    const origin = new URL(u).origin;
    byOrigin.set(origin, [...(byOrigin.get(origin) ?? []), what]);
  }
  const ghTls =
    "put a TLS reverse proxy (port 443, a public certificate) in front of Gatehouse and set serverAuth.oauthAs.issuerUrl (and gateway.publicUrl) to the https:// URL";
  for (const [origin, whats] of byOrigin) {
    const u = new URL(origin);
    const c: Draft = {
      id: `tls.${u.host}`,
      section: "tls",
      status: "PASS",
      title: `https for ${whats.join(", ")}`,
      detail: origin,
    };
    if (u.protocol === "http:") {
      if (isLoopbackHost(u.hostname)) {
        c.status = "WARN";
        c.detail = `${origin}: plain http on loopback — fine for local clients (Claude Code, VS Code, the Inspector); hosted clients (Claude.ai, ChatGPT) need https on port 443 at a public address`;
        c.fix = "for hosted clients, serve it over https on port 443 with a public certificate";
        c.gatehouseFix = ghTls;
      } else {
        c.status = "FAIL";
        c.detail = `${origin}: plain http off loopback — tokens travel in clear text; MCP requires https (clients refuse non-TLS token endpoints)`;
        c.fix = "serve it over https (MCP authorization: all authorization server endpoints MUST be HTTPS)";
        c.gatehouseFix = ghTls;
      }
    } else if (u.port && u.port !== "443") {
      c.status = "WARN";
      c.detail = `${origin}: https on port ${u.port} — Claude.ai and ChatGPT connect only to port 443`;
      c.fix = "serve it on port 443";
    }
    add(ctx, c);
  }
  const bad = ctx.h.log.filter((x) => !x.ok && x.certificate) as Extract<Exchange, { ok: false }>[];
  const https = ctx.h.log.filter((x) => x.url.startsWith("https:"));
  // Without any https URL the lines above already say so: no certificate line.
  if (bad.length > 0) {
    const hosts = new Map(bad.map((x) => [new URL(x.url).host, `${new URL(x.url).host}: ${x.error}`]));
    add(ctx, {
      id: "tls.certificate",
      section: "tls",
      status: "FAIL",
      title: "valid certificates",
      detail: [...hosts.values()].join("; "),
      fix: "serve a certificate for the host name that chains to a public CA, with its intermediates (clients verify TLS; self-signed certificates are refused)",
      gatehouseFix:
        "the certificate is the TLS proxy's in front of Gatehouse: give it one for the host name from a public CA (e.g. Let's Encrypt), with its chain",
    });
  } else if (https.length > 0) {
    add(ctx, {
      id: "tls.certificate",
      section: "tls",
      status: "PASS",
      title: "valid certificates",
      detail: `${https.length} https requests, certificates verified`,
    });
  }
  const redirects = ctx.h.log.filter((x) => x.ok && isRedirect(x.reply)) as Extract<Exchange, { ok: true }>[];
  add(ctx, {
    id: "tls.redirects",
    section: "tls",
    title: "no redirects",
    ...(redirects.length > 0
      ? {
          status: "FAIL",
          detail: redirects
            .map(
              (x) => `${x.method} ${x.url} → ${x.reply.status} ${x.reply.headers.get("location") ?? "(no Location)"}`,
            )
            .join("; "),
          fix: "serve each URL directly: clients do not follow redirects for the MCP endpoint and metadata (and a preflight cannot)",
          gatehouseFix:
            "Gatehouse does not redirect these paths: the redirect comes from a proxy or load balancer in front of it — route them to Gatehouse unchanged",
        }
      : {
          status: "PASS",
          detail: `${ctx.h.log.length} request${ctx.h.log.length === 1 ? "" : "s"}, no redirect`,
        }),
  });
}

// The whole run ------------------------------------------------------------------------------------------------

export interface DoctorOptions {
  url: string;
  fetch: typeof fetch;
  timeoutMs: number;
  register: boolean;
}

export async function runDoctor(o: DoctorOptions): Promise<Report> {
  const ctx: DoctorContext = {
    h: { fetch: o.fetch, timeoutMs: o.timeoutMs, log: [] },
    mcpUrl: new URL(o.url),
    register: o.register,
    checks: [],
    gatehouse: false,
    ownAs: false,
    open: false,
    registered: [],
  };
  await checkMcpEndpoint(ctx);
  await checkResourceMetadata(ctx);
  await checkAuthorizationServer(ctx);
  await checkClients(ctx);
  await checkCors(ctx);
  checkTransport(ctx);
  const checks: Check[] = ctx.checks.map(({ gatehouseFix, ...c }) => {
    const fix = ctx.gatehouse && gatehouseFix ? gatehouseFix : c.fix;
    const { fix: _drop, ...rest } = c;
    return fix && (c.status === "FAIL" || c.status === "WARN") ? { ...rest, fix } : rest;
  });
  const count = (s: Status) => checks.filter((c) => c.status === s).length;
  const summary = { pass: count("PASS"), fail: count("FAIL"), warn: count("WARN"), skip: count("SKIP") };
  return {
    url: ctx.mcpUrl.href,
    gatehouse: ctx.gatehouse,
    ok: summary.fail === 0,
    summary,
    checks,
    registeredClients: ctx.registered,
  };
}

export function formatReport(r: Report): string {
  const lines = [`gatehouse doctor ${r.url}${r.gatehouse ? " (a Gatehouse server)" : ""}`];
  let section: Section | undefined;
  for (const c of r.checks) {
    if (c.section !== section) {
      section = c.section;
      lines.push("", SECTION_TITLES[section]);
    }
    lines.push(`  ${c.status.padEnd(4)}  ${c.title}${c.detail ? ` — ${c.detail}` : ""}`);
    if (c.fix) lines.push(`        fix: ${c.fix}`);
  }
  const s = r.summary;
  lines.push(
    "",
    `Summary: ${s.pass} passed, ${s.fail} failed, ${s.warn} warning${s.warn === 1 ? "" : "s"}, ${s.skip} skipped — ${r.ok ? "nothing failed" : "fix the FAIL lines above"}`,
  );
  if (r.registeredClients.length > 0) {
    const kept = r.registeredClients.filter((c) => !c.deleted);
    const endpoint = r.registeredClients[0]?.registrationEndpoint;
    let text = `Registered ${r.registeredClients.length} test client${r.registeredClients.length === 1 ? "" : "s"} named "gatehouse doctor check (…)" at ${endpoint}`;
    if (kept.length === 0) text += ", and deleted them again (RFC 7592).";
    else {
      text += `; still registered: ${kept.map((c) => c.clientId).join(", ")}.`;
      if (r.gatehouse) text += ` Remove ${kept.length === 1 ? "it" : "them"} with \`gatehouse clients revoke ID\`.`;
      text += " Run with --no-register to skip registration.";
    }
    lines.push(text);
  }
  return `${lines.join("\n")}\n`;
}

// The command --------------------------------------------------------------------------------------------------

export async function doctor(
  argv: string[],
  io: { fetch?: typeof fetch; out(s: string): void; err(s: string): void },
): Promise<number> {
  let options: DoctorOptions;
  let json = false;
  try {
    const { flags, positionals } = parseArgs(
      argv,
      { json: {}, "no-register": {}, timeout: { value: true }, help: {}, h: {} },
      1,
    );
    if (flags.help || flags.h) {
      io.out(DOCTOR_HELP);
      return 0;
    }
    json = flags.json === true;
    const raw = positionals[0];
    if (raw === undefined)
      throw new UsageError("give the MCP server URL, e.g. gatehouse doctor https://mcp.example.com/mcp");
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new UsageError(`"${raw}" is not a URL (expected e.g. https://mcp.example.com/mcp)`);
    }
    if (url.protocol !== "https:" && url.protocol !== "http:") {
      throw new UsageError(`"${raw}" is not an http(s) URL`);
    }
    if (url.username || url.password) throw new UsageError("the URL must not contain a user name or password");
    url.hash = "";
    let timeoutMs = 5000;
    if (flags.timeout !== undefined) {
      const t = parseDuration(String(flags.timeout));
      if (t === null || t <= 0) {
        throw new UsageError(`--timeout expects seconds or a duration such as 500ms (got "${flags.timeout}")`);
      }
      timeoutMs = t;
    }
    options = {
      url: url.href,
      fetch: io.fetch ?? fetch,
      timeoutMs,
      register: flags["no-register"] !== true,
    };
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`gatehouse doctor: ${e.message} (see gatehouse doctor --help)\n`);
      return 2;
    }
    throw e;
  }
  let report: Report;
  try {
    report = await runDoctor(options);
  } catch (e) {
    // A check that throws is a bug in doctor, but still one line, not a stack.
    io.err(`gatehouse doctor: ${describeError(e, options.timeoutMs).error}\n`);
    return 1;
  }
  io.out(json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
  return report.ok ? 0 : 1;
}
