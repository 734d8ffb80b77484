// The whole durable state as one JSON document: the format of auth_server.json (README "State file"), of
// `gatehouse state export` / `import`, and of MCP_AUTH_SERVER_CONFIG. parseSnapshot checks the shape before anything
// is loaded from it (the state `mcp serve` wrote is converted by mcp-serve.ts).

import { GRANT_TYPES } from "../oauth/grant-types.ts";
import type {
  ClientRecord,
  ConsentRecord,
  GrantRecord,
  KeyRecord,
  RefreshTokenRecord,
  SessionRecord,
} from "./types.ts";

export interface Snapshot {
  version: 1;
  clients: Record<string, ClientRecord>;
  /** Keyed by client id + NUL + subject. */
  consents: Record<string, ConsentRecord>;
  grants: Record<string, GrantRecord>;
  /** Keyed by the SHA-256 of the token. */
  refresh_tokens: Record<string, RefreshTokenRecord>;
  keys: KeyRecord[];
  /** jti → expiry (ms). */
  revoked_access_tokens: Record<string, number>;
  sessions: Record<string, SessionRecord>;
  secrets: Record<string, string>;
}

export const consentKey = (subject: string, clientId: string) => `${clientId}\u0000${subject}`;

export function emptySnapshot(): Snapshot {
  return {
    version: 1,
    clients: {},
    consents: {},
    grants: {},
    refresh_tokens: {},
    keys: [],
    revoked_access_tokens: {},
    sessions: {},
    secrets: {},
  };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Checks the shape of a snapshot (sections and the fields the code relies on); throws a message naming the part. */
export function parseSnapshot(value: unknown): Snapshot {
  if (!isObject(value)) throw new Error("the top level is not a JSON object");
  const section = (name: string): Record<string, unknown> => {
    const s = value[name];
    if (s === undefined) return {};
    if (!isObject(s)) throw new Error(`"${name}" is not an object`);
    return s;
  };
  const clients = section("clients");
  for (const [id, c] of Object.entries(clients)) {
    if (!isObject(c) || !Array.isArray(c.redirect_uris)) throw new Error(`clients["${id}"] has no redirect_uris`);
    if (c.client_id === undefined) c.client_id = id;
    c.token_endpoint_auth_method ??= "none";
    c.grant_types ??= [...GRANT_TYPES];
    c.response_types ??= ["code"];
    c.client_id_issued_at ??= 0;
  }
  const grants = section("grants");
  for (const [id, g] of Object.entries(grants)) {
    if (
      !isObject(g) ||
      typeof g.client_id !== "string" ||
      typeof g.subject !== "string" ||
      typeof g.expires_at !== "number"
    ) {
      throw new Error(`grants["${id}"] is malformed`);
    }
    g.id ??= id;
  }
  const refresh = section("refresh_tokens");
  for (const [h, r] of Object.entries(refresh)) {
    if (!isObject(r) || typeof r.grant_id !== "string" || typeof r.expires_at !== "number") {
      // Not a refresh token of Gatehouse's: nothing could redeem it, it is dropped (mcp serve's are converted first).
      delete refresh[h];
    }
  }
  const keys = value.keys ?? [];
  if (!Array.isArray(keys)) throw new Error('"keys" is not an array');
  for (const [i, k] of keys.entries()) {
    if (!isObject(k) || typeof k.kid !== "string" || !isObject(k.private_jwk) || !isObject(k.public_jwk)) {
      throw new Error(`keys[${i}] is malformed`);
    }
  }
  const jtis = section("revoked_access_tokens");
  for (const [j, exp] of Object.entries(jtis)) {
    if (typeof exp !== "number") throw new Error(`revoked_access_tokens["${j}"] is not a number`);
  }
  const sessions = section("sessions");
  for (const [id, s] of Object.entries(sessions)) {
    if (!isObject(s) || typeof s.subject !== "string" || typeof s.expires_at !== "number") {
      throw new Error(`sessions["${id}"] is malformed`);
    }
  }
  const secrets = section("secrets");
  for (const [name, v] of Object.entries(secrets)) {
    if (typeof v !== "string") throw new Error(`secrets["${name}"] is not a string`);
  }
  return {
    version: 1,
    clients: clients as Snapshot["clients"],
    consents: section("consents") as Snapshot["consents"],
    grants: grants as Snapshot["grants"],
    refresh_tokens: refresh as Snapshot["refresh_tokens"],
    keys: keys as Snapshot["keys"],
    revoked_access_tokens: jtis as Snapshot["revoked_access_tokens"],
    sessions: sessions as Snapshot["sessions"],
    secrets: secrets as Snapshot["secrets"],
  };
}

/** Whether a snapshot holds anything an import would overwrite. */
export function isEmptySnapshot(s: Snapshot): boolean {
  return (
    Object.keys(s.clients).length === 0 &&
    Object.keys(s.grants).length === 0 &&
    Object.keys(s.refresh_tokens).length === 0 &&
    s.keys.length === 0
  );
}
