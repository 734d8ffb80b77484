// The Store contract: what the authorization server keeps between requests, and the guarantees every store
// implementation (memory, JSON file, Redis) gives. tests/store/contract.ts runs the same suite against each one.
// Only hashes of codes, refresh tokens and client secrets are stored (never the values themselves).

import type { Snapshot } from "./snapshot.ts";

/** A registered OAuth client (RFC 7591 §2 metadata, as echoed at registration). */
export interface ClientRecord {
  client_id: string;
  /** SHA-256 (hex) of the secret of a confidential client. */
  client_secret_sha256?: string;
  client_id_issued_at: number;
  redirect_uris: string[];
  token_endpoint_auth_method: "none" | "client_secret_post" | "client_secret_basic";
  grant_types: string[];
  response_types: string[];
  client_name?: string;
  client_uri?: string;
  logo_uri?: string;
  tos_uri?: string;
  policy_uri?: string;
  contacts?: string[];
  scope?: string;
  software_id?: string;
  software_version?: string;
  application_type?: string;
}

/** A user's approval of a client, remembered until revoked. */
export interface ConsentRecord {
  subject: string;
  client_id: string;
  scopes: string[];
  granted_at: number;
}

/** What one authorization produced: every refresh and access token issued from it belongs to the grant. */
export interface GrantRecord {
  id: string;
  client_id: string;
  subject: string;
  groups: string[];
  roles: string[];
  scopes: string[];
  /** The resource (audience) the tokens are for. */
  resource: string;
  email?: string;
  created_at: number;
  /** The refresh tokens of this grant stop working after this time (refreshTokenTtlSeconds from creation). */
  expires_at: number;
  revoked_at?: number;
  revoked_reason?: string;
  /** The user's upstream identity-provider tokens, as a JWE encrypted with oauthAs.upstreamTokenKey. */
  upstream_tokens?: string;
  /** Converted from a refresh token of mcp serve's state (store/mcp-serve.ts). */
  migrated_from?: "mcp-serve";
}

export interface RefreshTokenRecord {
  grant_id: string;
  created_at: number;
  expires_at: number;
  /** Set when the token was used: a later use after the grace window is a replay and revokes the grant. */
  rotated_at?: number;
}

/** An authorization code in flight. Codes live only in memory (or Redis): they are never written to disk. */
export interface CodeRecord {
  client_id: string;
  redirect_uri: string;
  code_challenge: string;
  scopes: string[];
  resource: string;
  subject: string;
  groups: string[];
  roles: string[];
  /** The user's address, when the sign-in said (login methods; the trusted proxy's email header). */
  email?: string;
  expires_at: number;
  /** Set when the code was exchanged, so that a replay can revoke what it produced (RFC 6749 §4.1.2). */
  grant_id?: string;
  /**
   * The authorization request did not send redirect_uri (the client's only registered one was used): then the token
   * request need not send it either (RFC 6749 §4.1.3). Absent (codes issued before this field existed): required.
   */
  redirect_uri_omitted?: boolean;
  /** The user's upstream tokens, encrypted (kept only when a login method asks for it). */
  upstream_tokens?: string;
}

/** A browser session at the authorization server (a user signed in through one of the login methods). */
export interface SessionRecord {
  id: string;
  subject: string;
  email?: string;
  groups: string[];
  roles: string[];
  /** The login method (its id) that signed the user in. */
  method: string;
  created_at: number;
  expires_at: number;
  revoked_at?: number;
}

export interface KeyRecord {
  kid: string;
  /** The key's algorithm: ES256 (default), or RS256 with oauthAs.signingAlgorithm. */
  alg: "ES256" | "RS256";
  private_jwk: Record<string, unknown>;
  public_jwk: Record<string, unknown>;
  created_at: number;
  /** No longer used for signing after this; kept for verification until `expires_at`. */
  retired_at?: number;
  /** Dropped after this (the last token it signed has expired). */
  expires_at?: number;
}

/** The key that signs: the newest one not retired. */
export function activeKey(keys: readonly KeyRecord[]): KeyRecord | undefined {
  let best: KeyRecord | undefined;
  for (const k of keys) if (k.retired_at === undefined && (!best || k.created_at > best.created_at)) best = k;
  return best;
}

/** A used refresh token is remembered this long after its use, to recognise a replay; then it is swept. */
export const USED_REFRESH_TOKEN_MEMORY_MS = 24 * 3_600_000;

export type RotateOutcome =
  | { status: "rotated" }
  /** `answer`: what the winning rotation stored for repeats within the grace window (sealed; see token.ts). */
  | { status: "already-rotated"; rotatedAt: number; answer?: string }
  | { status: "missing" };

/**
 * Short-lived records: consent requests and logins waiting for the user, and the failed sign-ins of a local
 * account (its lockout). Never exported.
 */
export type TransientKind = "authorization" | "login" | "lockout";

/** Whether the store can write now; when it cannot, why (for /health; the store logs the outage itself). */
export type StoreHealth = { ok: true } | { ok: false; reason: string };

/** The state could not be opened at start (a damaged file, Redis unreachable): Gatehouse stops with this message. */
export class StateOpenError extends Error {
  override name = "StateOpenError";
}

/**
 * The state cannot be written — or, for a store on the network, reached — right now (a full disk, an I/O error, a
 * read-only filesystem, a lost lock, Redis down). The change was not made: nothing of it is left, in memory or on
 * disk. OAuth endpoints answer 503 temporarily_unavailable with Retry-After, /mcp a JSON-RPC error.
 */
export class StoreUnavailableError extends Error {
  override name = "StoreUnavailableError";
  constructor(
    message: string,
    readonly retryAfterSeconds = 2,
  ) {
    super(message);
  }
}

/**
 * Every method either completes durably or throws (StoreUnavailableError for storage faults) leaving the state as it
 * was: a write is acknowledged (its promise resolves) only once every byte of it is durable, and a write that fails
 * has no effect, even on what later reads of this process see. Operations documented as atomic are atomic across
 * every process sharing the store.
 */
export interface Store {
  /** A short name for logs: "memory", "json-file /var/lib/gatehouse/auth_server.json", "redis 127.0.0.1:6379/0". */
  readonly description: string;
  health(): StoreHealth;
  /** Told how long each durable write took, or that it failed (metrics); set by whoever watches. */
  writeObserver?: (seconds: number, ok: boolean) => void;

  getClient(clientId: string): Promise<ClientRecord | undefined>;
  putClient(client: ClientRecord): Promise<void>;
  /** Deletes the client with its consents and revokes all of its grants, atomically. False if it did not exist. */
  deleteClient(clientId: string, at: number): Promise<boolean>;
  listClients(): Promise<ClientRecord[]>;

  getConsent(subject: string, clientId: string): Promise<ConsentRecord | undefined>;
  putConsent(consent: ConsentRecord): Promise<void>;

  /**
   * Stores a grant, and with it (atomically: both or neither) the first refresh token issued under it. With
   * `fromCode` (the hash of the code the grant is redeemed from), only if that code is still bound to `grant.id` and
   * was not replayed meanwhile, checked in the same atomic step: otherwise nothing is stored and the result is false
   * (a replay may come before the grant is stored, when revoking it would find nothing; RFC 6749 §4.1.2).
   */
  putGrant(
    grant: GrantRecord,
    firstRefresh?: { hash: string; record: RefreshTokenRecord },
    fromCode?: string,
  ): Promise<boolean>;
  getGrant(id: string): Promise<GrantRecord | undefined>;
  /** Marks the grant revoked and deletes its refresh tokens, atomically: every token issued under it stops working. */
  revokeGrant(id: string, at: number, reason: string): Promise<void>;
  grantsOfClient(clientId: string): Promise<GrantRecord[]>;

  putRefreshToken(hash: string, record: RefreshTokenRecord): Promise<void>;
  getRefreshToken(hash: string): Promise<RefreshTokenRecord | undefined>;
  /**
   * Atomically marks `oldHash` used at `at` and stores its successor (and `answer`, the sealed response, kept until
   * `answer.until` for repeats of the same refresh). Exactly one of several concurrent callers — in any process —
   * gets "rotated"; the others get "already-rotated" with the time of the first use and the answer if still kept.
   */
  rotateRefreshToken(
    oldHash: string,
    newHash: string,
    successor: RefreshTokenRecord,
    at: number,
    answer?: { sealed: string; until: number },
  ): Promise<RotateOutcome>;

  /** The answer the rotation of `oldHash` stored, if it is still kept at `at` (a repeat of that refresh). */
  rotationAnswer(oldHash: string, at: number): Promise<string | undefined>;

  putCode(hash: string, record: CodeRecord): Promise<void>;
  /**
   * One-time use, atomically: the first call gets `replay: false` and binds the code to `grantId`; every later
   * call gets `replay: true` with the record (and the grant it produced), so the caller can revoke that grant, and
   * marks the code replayed in the same step: the grant bound to it can no longer be stored (putGrant `fromCode`),
   * so the revocation holds even when the first redemption has not stored its grant yet.
   */
  consumeCode(hash: string, grantId: string): Promise<{ record: CodeRecord; replay: boolean } | undefined>;
  /**
   * Undoes consumeCode when the grant it was for could not be stored: the code can be redeemed once more — unless
   * it was replayed meanwhile (a replayed code stays spent).
   */
  releaseCode(hash: string, grantId: string): Promise<void>;

  getKeys(): Promise<KeyRecord[]>;
  /**
   * Starts signing with `key`, atomically: every key still active is retired at `at` (kept for verification until
   * `retiredExpiresAt`) and `key` is added — unless the active key is no longer `ifActive` (another process rotated
   * first, or there was none when `ifActive` is null): then nothing changes and the result is false.
   */
  addSigningKey(key: KeyRecord, at: number, retiredExpiresAt: number, ifActive: string | null): Promise<boolean>;

  putSession(session: SessionRecord): Promise<void>;
  getSession(id: string): Promise<SessionRecord | undefined>;
  /** Marks a session revoked: its cookie no longer signs anyone in. */
  revokeSession(id: string, at: number): Promise<boolean>;
  listSessions(): Promise<SessionRecord[]>;

  /** Secrets Gatehouse generates for itself (the session cookie key), by name. */
  getSecret(name: string): Promise<string | undefined>;
  /** Stores `value` unless the secret exists; returns the stored one (the first process to start wins). */
  initSecret(name: string, value: string): Promise<string>;

  /** Access tokens revoked before their expiry (RFC 7009), by `jti`, remembered until `exp`. */
  revokeAccessToken(jti: string, exp: number): Promise<void>;
  isAccessTokenRevoked(jti: string): Promise<boolean>;

  /** Records of flows in progress, kept until `expiresAt` at the latest (callers check their own expiry too). */
  putTransient(kind: TransientKind, id: string, value: unknown, expiresAt: number): Promise<void>;
  getTransient<T>(kind: TransientKind, id: string): Promise<T | undefined>;
  /** Reads and deletes, atomically: of several concurrent takers, in any process, one gets the record. */
  takeTransient<T>(kind: TransientKind, id: string): Promise<T | undefined>;

  /** Forgets what expired before `now` (codes, refresh tokens, used refresh tokens after a day, grants, revoked jtis, old keys). */
  sweep(now: number): Promise<void>;
  /** Counts, for health and logs. */
  stats(): Promise<{ clients: number; grants: number; refreshTokens: number }>;
  /** Calls `fn` when another process changed the signing keys (a store shared between replicas). */
  onKeysChanged?(fn: () => void): void;
  /** Every durable record, in the state file's format (`gatehouse state export`). */
  exportSnapshot(): Promise<Snapshot>;
  /** Loads a snapshot into a store that holds no client, grant or key yet (`gatehouse state import`). */
  importSnapshot(snapshot: Snapshot): Promise<void>;
  close(): Promise<void>;
}
