// Dynamic Client Registration (RFC 7591): public (`none`) and confidential (`client_secret_post`,
// `client_secret_basic`) clients. The 201 response echoes every registered field and has no null values (the MCP
// TypeScript SDK refuses nulls); a confidential client gets its secret once, and only its hash is stored.

import { randomId, sha256Hex } from "../crypto.ts";
import type { ClientRecord } from "../store/types.ts";
import { OAuthError } from "./errors.ts";
import { isGrantType } from "./grant-types.ts";
import { registrationProblem } from "./redirect-uri.ts";

const AUTH_METHODS = ["none", "client_secret_post", "client_secret_basic"] as const;
const MAX_STRING = 2000;

function optionalString(body: Record<string, unknown>, key: string): string | undefined {
  const v = body[key];
  if (v === undefined || v === null || v === "") return undefined;
  if (typeof v !== "string" || v.length > MAX_STRING)
    throw new OAuthError("invalid_client_metadata", `${key} must be a string`);
  return v;
}

function optionalUrl(body: Record<string, unknown>, key: string): string | undefined {
  const v = optionalString(body, key);
  if (v === undefined) return undefined;
  try {
    const u = new URL(v);
    if (u.protocol !== "https:" && u.protocol !== "http:") throw new Error();
  } catch {
    throw new OAuthError("invalid_client_metadata", `${key} must be an http(s) URL`);
  }
  return v;
}

export interface Registered {
  record: ClientRecord;
  /** The RFC 7591 §3.2.1 response body. */
  response: Record<string, unknown>;
}

export function registerClient(body: unknown, allowlist: readonly string[], nowSeconds: number): Registered {
  if (!body || typeof body !== "object" || Array.isArray(body)) {
    throw new OAuthError("invalid_client_metadata", "the body must be a JSON object of client metadata");
  }
  const b = body as Record<string, unknown>;
  const uris = b.redirect_uris;
  if (!Array.isArray(uris) || uris.length === 0 || uris.some((u) => typeof u !== "string")) {
    throw new OAuthError("invalid_redirect_uri", "redirect_uris must be a non-empty array of strings");
  }
  if (uris.length > 20) throw new OAuthError("invalid_redirect_uri", "at most 20 redirect_uris");
  for (const u of uris as string[]) {
    const problem = registrationProblem(u, allowlist);
    if (problem) throw new OAuthError("invalid_redirect_uri", problem);
  }
  // RFC 7591 §2: the default method is client_secret_basic.
  const method = (b.token_endpoint_auth_method ?? "client_secret_basic") as string;
  if (!(AUTH_METHODS as readonly string[]).includes(method)) {
    throw new OAuthError(
      "invalid_client_metadata",
      `token_endpoint_auth_method must be one of ${AUTH_METHODS.join(", ")} (got ${JSON.stringify(method)})`,
    );
  }
  const requestedGrants = Array.isArray(b.grant_types)
    ? b.grant_types.filter((g): g is string => typeof g === "string")
    : ["authorization_code"];
  // Grant types Gatehouse does not offer (device_code, client_credentials…) are left out of the registration.
  const grantTypes = requestedGrants.filter(isGrantType);
  if (!grantTypes.includes("authorization_code")) {
    throw new OAuthError("invalid_client_metadata", 'grant_types must include "authorization_code"');
  }
  const responseTypes = Array.isArray(b.response_types) ? b.response_types : ["code"];
  if (responseTypes.length !== 1 || responseTypes[0] !== "code") {
    throw new OAuthError("invalid_client_metadata", 'response_types must be ["code"]');
  }
  if (b.contacts !== undefined && (!Array.isArray(b.contacts) || b.contacts.some((c) => typeof c !== "string"))) {
    throw new OAuthError("invalid_client_metadata", "contacts must be an array of strings");
  }

  const record: ClientRecord = {
    client_id: randomId(18),
    client_id_issued_at: nowSeconds,
    redirect_uris: uris as string[],
    token_endpoint_auth_method: method as ClientRecord["token_endpoint_auth_method"],
    grant_types: grantTypes,
    response_types: ["code"],
  };
  const strings = ["client_name", "scope", "software_id", "software_version", "application_type"] as const;
  for (const key of strings) {
    const v = optionalString(b, key);
    if (v !== undefined) record[key] = v;
  }
  for (const key of ["client_uri", "logo_uri", "tos_uri", "policy_uri"] as const) {
    const v = optionalUrl(b, key);
    if (v !== undefined) record[key] = v;
  }
  if (Array.isArray(b.contacts) && b.contacts.length > 0) record.contacts = b.contacts as string[];

  const { client_secret_sha256: _none, ...echo } = record;
  const response: Record<string, unknown> = { ...echo };
  if (method !== "none") {
    const secret = randomId(32);
    record.client_secret_sha256 = sha256Hex(secret);
    response.client_secret = secret;
    response.client_secret_expires_at = 0;
  }
  return { record, response };
}

/** What `gatehouse clients show` and the registration echo display: the record without its secret hash. */
export function publicClientView(c: ClientRecord): Record<string, unknown> {
  const { client_secret_sha256, ...rest } = c;
  return { ...rest, confidential: client_secret_sha256 !== undefined };
}
