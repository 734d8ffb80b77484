// The authorization server's state and shared steps, composed once at start: configuration, store, signing keys,
// client lookup (registered or metadata document), codes, grants and token issuance. The endpoint flows live in
// authorize.ts, token.ts and revocation.ts; HTTP plugins in src/http/oauth/.

import { type Auditor, noAudit } from "../audit.ts";
import type { OAuthAsConfig } from "../config/types.ts";
import { randomId, sha256Hex } from "../crypto.ts";
import type { Logger } from "../log.ts";
import { Cookies } from "../login/cookies.ts";
import { Logins } from "../login/registry.ts";
import { BrowserSessions } from "../login/sessions.ts";
import type { Clock, PasswordHasher } from "../platform/types.ts";
import type { SharedServices } from "../store/shared.ts";
import type { ClientRecord, CodeRecord, GrantRecord, RefreshTokenRecord, Store } from "../store/types.ts";
import { AccessTokens } from "./access-tokens.ts";
import { CimdFetcher } from "./cimd.ts";
import { OAuthError } from "./errors.ts";
import { KeyRing } from "./keys.ts";
import { canonicalResource } from "./resource.ts";

export interface AuthorizationServerDeps {
  config: OAuthAsConfig;
  store: Store;
  clock: Clock;
  log: Logger;
  /** DNS for metadata documents (tests inject one). */
  resolve?: (host: string) => Promise<{ address: string; family: number }[]>;
  /** argon2id for local accounts. */
  passwords?: PasswordHasher;
  /** fetch for identity providers (tests may inject one). */
  fetch?: typeof fetch;
  /** Caches and limits shared with other replicas (state.redis); default: this process only. */
  shared?: SharedServices;
}

/** A token response (RFC 6749 §5.1). */
export interface TokenResponse {
  access_token: string;
  token_type: "Bearer";
  expires_in: number;
  refresh_token?: string;
  scope: string;
}

export class AuthorizationServer {
  readonly config: OAuthAsConfig;
  readonly store: Store;
  readonly clock: Clock;
  readonly log: Logger;
  readonly keys: KeyRing;
  readonly tokens: AccessTokens;
  readonly cimd: CimdFetcher;
  readonly logins: Logins;
  readonly cookies: Cookies;
  /** Set by init(). */
  sessions!: BrowserSessions;
  /** Canonical forms of the resources this server issues tokens for. */
  readonly resources: string[];
  /**
   * Refreshes in flight or answered in the grace window, by client, hash of the refresh token used and what was
   * asked (scope, resource), so a client that sends the same refresh twice at once gets the same answer twice from
   * this process while the grant is live (other processes sharing the store find the sealed answer the rotation
   * stored, see grants/refresh-token.ts).
   */
  readonly recentRefreshes = new Map<string, { response: Promise<TokenResponse>; until: number }>();
  /** Where security decisions are recorded (set by the app; replaced when a reload changes `audit`). */
  audit: Auditor = noAudit;
  /** Told the error code of every refused token request (metrics). */
  onTokenRefused?: (error: string) => void;

  constructor(deps: AuthorizationServerDeps) {
    this.config = deps.config;
    this.store = deps.store;
    this.clock = deps.clock;
    this.log = deps.log;
    this.keys = new KeyRing(
      deps.store,
      {
        ...(deps.config.jwtSecret ? { jwtSecret: deps.config.jwtSecret } : {}),
        algorithm: deps.config.signingAlgorithm,
        accessTokenTtlSeconds: deps.config.accessTokenTtlSeconds,
        rotationMs: deps.config.signingKeyRotationMs,
      },
      deps.log,
    );
    this.tokens = new AccessTokens(this.keys, deps.config.issuerUrl);
    this.cimd = new CimdFetcher({
      allowPrivateNetwork: deps.config.cimd.allowPrivateNetwork,
      timeoutMs: deps.config.cimd.timeoutMs,
      now: () => deps.clock.now(),
      log: deps.log,
      ...(deps.resolve ? { resolve: deps.resolve } : {}),
      ...(deps.shared ? { shared: deps.shared.cache("cimd", 500) } : {}),
    });
    this.resources = [canonicalResource(deps.config.resourceUrl) as string];
    this.logins = new Logins(deps.config, () => deps.clock.now(), deps.store, {
      ...(deps.passwords ? { passwords: deps.passwords } : {}),
      ...(deps.fetch ? { fetch: deps.fetch } : {}),
    });
    this.cookies = new Cookies(deps.config.issuerUrl, Math.floor(deps.config.sessionLifetimeMs / 1000));
  }

  async init(): Promise<void> {
    this.keys.onRotated = (kid, reason) =>
      this.audit.event({ event: "signing_key_rotated", success: true, kid, reason });
    await this.keys.init(this.clock.now());
    this.sessions = await BrowserSessions.open(
      this.store,
      this.clock,
      this.config.sessionLifetimeMs,
      this.config.sessionSecret,
    );
    await this.store.sweep(this.clock.now());
  }

  nowSeconds(): number {
    return Math.floor(this.clock.now() / 1000);
  }

  /** Periodic upkeep: expired records swept, signing key rotated when due. */
  async maintain(): Promise<void> {
    const now = this.clock.now();
    await this.store.sweep(now);
    await this.keys.maybeRotate(now);
    for (const [k, v] of this.recentRefreshes) if (v.until < now) this.recentRefreshes.delete(k);
  }

  /** A registered client, or one described by its metadata document (client_id is an https URL). */
  /** Another protected resource this server issues tokens for (a route such as /servers/<name>/mcp). */
  serveResource(url: string): void {
    const c = canonicalResource(url);
    if (c && !this.resources.includes(c)) this.resources.push(c);
  }

  /** Scopes beyond scopesSupported that may be granted: per-tool scopes (config matrix, advertised by backends). */
  extraScopes: () => string[] = () => [];

  /**
   * The scopes the backends behind a resource advertise (their tools/list), asked for when a consent page is shown
   * so that it offers them from the first consent. Bounded by oauthAs.offerBackendScopes; a backend that cannot
   * answer in time is left out (set by the app: the gateway knows the backends).
   */
  backendScopes: (resource: string) => Promise<string[]> = async () => [];

  /** Whether a client may be granted a scope at all (toolScopes entries with `clients`; set by the app). */
  clientMayHold: (scope: string, client: ClientRecord) => boolean = () => true;

  /** Words for a scope on the consent page, beyond the built-in ones. */
  describeScope: (scope: string) => string | undefined = () => undefined;

  /** Every scope a client may be granted. */
  scopesSupported(): string[] {
    return [...new Set([...this.config.scopesSupported, ...this.extraScopes()])];
  }

  async findClient(clientId: string): Promise<ClientRecord | undefined> {
    const registered = await this.store.getClient(clientId);
    if (registered) return registered;
    if (this.config.cimd.enabled && this.cimd.isMetadataUrl(clientId)) return this.cimd.load(clientId);
    return undefined;
  }

  /** The resource a request names (RFC 8707), canonical; the default is the /mcp endpoint. */
  resolveResource(values: string[]): string {
    if (values.length === 0) return this.resources[0] as string;
    if (values.length > 1) throw new OAuthError("invalid_target", "only one resource may be requested at a time");
    const c = canonicalResource(values[0] as string);
    if (!c || !this.resources.includes(c)) {
      throw new OAuthError(
        "invalid_target",
        `resource ${JSON.stringify(values[0])} is not served here (expected ${this.config.resourceUrl}${this.resources.length > 1 ? " or another route's URL" : ""})`,
      );
    }
    return c;
  }

  async issueCode(record: Omit<CodeRecord, "expires_at">): Promise<string> {
    const code = randomId(32);
    await this.store.putCode(sha256Hex(code), {
      ...record,
      expires_at: this.clock.now() + this.config.authorizationCodeTtlSeconds * 1000,
    });
    return code;
  }

  /** Mints an access token for a grant; no refresh token yet (see `newRefreshToken`). */
  async accessToken(grant: GrantRecord, client: ClientRecord, scopes: string[]): Promise<TokenResponse> {
    const now = this.nowSeconds();
    // An access token never outlives its grant (whose record is what revocation checks).
    const ttl = Math.max(1, Math.min(this.config.accessTokenTtlSeconds, Math.floor(grant.expires_at / 1000) - now));
    const { token } = await this.tokens.mint({
      subject: grant.subject,
      clientId: client.client_id,
      audience: grant.resource,
      scopes,
      groups: grant.groups,
      roles: grant.roles,
      ...(grant.email ? { email: grant.email } : {}),
      grantId: grant.id,
      now,
      ttlSeconds: ttl,
    });
    return { access_token: token, token_type: "Bearer", expires_in: ttl, scope: scopes.join(" ") };
  }

  /** A new refresh token of a grant, and the record to store under its hash (undefined: the client may not refresh). */
  newRefreshToken(
    grant: GrantRecord,
    client: ClientRecord,
  ): { token: string; hash: string; record: RefreshTokenRecord } | undefined {
    if (!client.grant_types.includes("refresh_token")) return undefined;
    const token = randomId(32);
    return {
      token,
      hash: sha256Hex(token),
      record: { grant_id: grant.id, created_at: this.clock.now(), expires_at: grant.expires_at },
    };
  }

  /** An access token and a refresh token of an existing grant (a sibling pair: the grant's other tokens stay). */
  async issueTokens(grant: GrantRecord, client: ClientRecord, scopes: string[]): Promise<TokenResponse> {
    const response = await this.accessToken(grant, client, scopes);
    const rt = this.newRefreshToken(grant, client);
    if (rt) {
      await this.store.putRefreshToken(rt.hash, rt.record);
      response.refresh_token = rt.token;
    }
    return response;
  }

  newGrant(code: CodeRecord, id: string): GrantRecord {
    const now = this.clock.now();
    return {
      id,
      client_id: code.client_id,
      subject: code.subject,
      groups: code.groups,
      roles: code.roles,
      scopes: code.scopes,
      resource: code.resource,
      ...(code.email ? { email: code.email } : {}),
      created_at: now,
      expires_at: now + this.config.refreshTokenTtlSeconds * 1000,
      ...(code.upstream_tokens ? { upstream_tokens: code.upstream_tokens } : {}),
    };
  }

  /** Revokes every grant of a client and deletes it (gatehouse clients revoke). */
  async revokeClient(clientId: string): Promise<boolean> {
    const deleted = await this.store.deleteClient(clientId, this.clock.now());
    if (deleted) this.log.info("client revoked: its grants and tokens no longer work", { client_id: clientId });
    return deleted;
  }
}
