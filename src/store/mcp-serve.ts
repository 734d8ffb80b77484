// The state file `mcp serve` writes (avelino/mcp src/server_auth/oauth_as/state.rs `PersistedState`, types.rs), read
// into Gatehouse's records so that nobody it signed in is logged out:
//
//   { "clients": { "<client_id>": { "client_id", "client_name"?, "redirect_uris", "grant_types", "created_at_unix" } },
//     "refresh_tokens": { "<token>": { "token", "client_id", "subject", "roles", "expires_at_unix" } } }
//
// Its refresh tokens are stored in clear, keyed by themselves; Gatehouse keeps only their SHA-256, each under a grant
// of its own (one user, one client) that ends when the token would have expired. The conversion is deterministic
// (the same file gives the same records), so it can run again on the same file without a difference.

import { sha256Hex } from "../crypto.ts";
import { GRANT_TYPES } from "../oauth/grant-types.ts";
import { emptySnapshot, parseSnapshot, type Snapshot } from "./snapshot.ts";
import type { ClientRecord, GrantRecord } from "./types.ts";

/** The secret (state.secrets) holding when mcp serve's state was taken over (ms): its access tokens are bounded by it. */
export const MCP_SERVE_MIGRATED_AT = "mcp-serve-migrated-at";

/** What the conversion needs from the configuration: what a grant of Gatehouse holds that mcp serve did not store. */
export interface McpServeContext {
  now: number;
  /** The canonical resource of /mcp (the audience of the tokens refreshed from these grants). */
  resource: string;
  /** oauthAs.injectedRoles: mcp serve added them to every token it issued, not to the refresh token's roles. */
  injectedRoles: string[];
  /** oauthAs.requiredScopes: what /mcp demands, which mcp serve's users had (it required none). */
  scopes: string[];
}

export interface McpServeReport {
  clients: number;
  refreshTokens: number;
  /** Refresh tokens already expired: dropped (mcp serve would have refused them too). */
  expired: number;
  /** Refresh tokens of a client that is not in the file: dropped (nothing could redeem them). */
  orphaned: number;
}

const GATEHOUSE_ONLY = ["version", "consents", "grants", "keys", "revoked_access_tokens", "sessions", "secrets"];

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

const strings = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === "string");

/**
 * Whether a parsed state file is mcp serve's: its two sections (objects, when there), none of Gatehouse's (which
 * always writes `version`). Anything else is read, and refused if need be, as Gatehouse's.
 */
export function isMcpServeState(value: unknown): value is Record<string, unknown> {
  if (!isObject(value) || GATEHOUSE_ONLY.some((k) => k in value)) return false;
  const section = (v: unknown) => v === undefined || v === null || isObject(v);
  return section(value.clients) && section(value.refresh_tokens);
}

/** The grant id of a refresh token of mcp serve: derived from it, so the conversion is the same every time. */
function grantId(token: string): string {
  return `mcp-serve-${sha256Hex(`gatehouse: mcp serve grant\u0000${token}`).slice(0, 32)}`;
}

/**
 * mcp serve's state as a Gatehouse snapshot. Throws a message naming the record at fault when the file is not what
 * mcp serve writes. Without `ctx` (no authorization server configured) only a state without refresh tokens converts.
 */
export function fromMcpServe(
  value: Record<string, unknown>,
  ctx: McpServeContext | undefined,
): { snapshot: Snapshot; report: McpServeReport } {
  const s = emptySnapshot();
  const report: McpServeReport = { clients: 0, refreshTokens: 0, expired: 0, orphaned: 0 };
  const section = (name: string): Record<string, unknown> => {
    const v = value[name];
    if (v === undefined || v === null) return {};
    if (!isObject(v)) throw new Error(`"${name}" is not an object`);
    return v;
  };
  const unknown = Object.keys(value).filter((k) => k !== "clients" && k !== "refresh_tokens");
  if (unknown.length > 0) throw new Error(`unexpected section "${unknown[0]}"`);
  const now = ctx?.now ?? Date.now();
  for (const [id, c] of Object.entries(section("clients"))) {
    if (!isObject(c) || !strings(c.redirect_uris)) throw new Error(`clients["${id}"] has no redirect_uris`);
    const clientId = typeof c.client_id === "string" ? c.client_id : id;
    const issued = Number(c.created_at_unix ?? c.client_id_issued_at ?? 0);
    const record: ClientRecord = {
      client_id: clientId,
      client_id_issued_at: Number.isFinite(issued) ? issued : 0,
      redirect_uris: [...c.redirect_uris],
      // mcp serve registers public clients only (PKCE, no secret: register.rs)…
      token_endpoint_auth_method: "none",
      // …and issues a refresh token at every exchange whatever grant_types it registered (token.rs issue_jwt):
      // both grants, so that those refresh tokens keep working here.
      grant_types: [...GRANT_TYPES],
      response_types: ["code"],
    };
    if (typeof c.client_name === "string" && c.client_name !== "") record.client_name = c.client_name;
    s.clients[clientId] = record;
    report.clients++;
  }
  const tokens = Object.entries(section("refresh_tokens"));
  if (tokens.length > 0 && !ctx) {
    throw new Error(
      "it holds mcp serve's refresh tokens, which only `gatehouse serve` with serverAuth.oauthAs configured converts",
    );
  }
  for (const [key, r] of tokens) {
    const token = isObject(r) && typeof r.token === "string" ? r.token : key;
    if (
      !isObject(r) ||
      token === "" ||
      typeof r.client_id !== "string" ||
      typeof r.subject !== "string" ||
      r.subject === "" ||
      typeof r.expires_at_unix !== "number" ||
      (r.roles !== undefined && !strings(r.roles))
    ) {
      throw new Error(`refresh token #${report.refreshTokens + report.expired + report.orphaned + 1} is malformed`);
    }
    const expiresAt = r.expires_at_unix * 1000;
    if (expiresAt <= now) {
      report.expired++;
      continue;
    }
    if (!s.clients[r.client_id]) {
      report.orphaned++;
      continue;
    }
    const c = ctx as McpServeContext;
    const groups = (r.roles as string[] | undefined) ?? [];
    const grant: GrantRecord = {
      id: grantId(token),
      client_id: r.client_id,
      subject: r.subject,
      // mcp serve's roles are the trusted proxy's groups; the roles of a token add injectedRoles (authorize.ts).
      groups: [...groups],
      roles: [...new Set([...groups, ...c.injectedRoles])],
      scopes: [...c.scopes],
      resource: c.resource,
      created_at: now,
      // Its remaining lifetime: a grant's refresh tokens end with it (rotation does not extend it, README "State file").
      expires_at: expiresAt,
      migrated_from: "mcp-serve",
    };
    s.grants[grant.id] = grant;
    s.refresh_tokens[sha256Hex(token)] = { grant_id: grant.id, created_at: now, expires_at: expiresAt };
    report.refreshTokens++;
  }
  s.secrets[MCP_SERVE_MIGRATED_AT] = String(now);
  return { snapshot: s, report };
}

export function describeReport(r: McpServeReport): string {
  const dropped = [
    r.expired ? `${r.expired} expired refresh token${r.expired === 1 ? "" : "s"}` : "",
    r.orphaned ? `${r.orphaned} refresh token${r.orphaned === 1 ? "" : "s"} of unknown clients` : "",
  ].filter(Boolean);
  return (
    `${r.clients} client${r.clients === 1 ? "" : "s"} and ${r.refreshTokens} refresh token${r.refreshTokens === 1 ? "" : "s"}` +
    (dropped.length ? ` (dropped: ${dropped.join(", ")})` : "")
  );
}

/** A parsed state file, Gatehouse's or mcp serve's (converted, with what the conversion did). */
export function parseState(
  value: unknown,
  ctx: McpServeContext | undefined,
): { snapshot: Snapshot; mcpServe?: McpServeReport } {
  if (!isMcpServeState(value)) return { snapshot: parseSnapshot(value) };
  let converted: ReturnType<typeof fromMcpServe>;
  try {
    converted = fromMcpServe(value, ctx);
  } catch (e) {
    throw new Error(`it looks like mcp serve's state, but ${(e as Error).message}`);
  }
  return { snapshot: converted.snapshot, mcpServe: converted.report };
}
