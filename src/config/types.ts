// The configuration as the rest of Gatehouse sees it: validated, defaults applied, durations in milliseconds,
// secrets hashed. Produced by load.ts from servers.json.

// These types are the bottom layer: the domain imports them, config/ imports nothing from the domain.

export type ProviderKind = "none" | "bearer" | "forwarded" | "oauth_as" | "jwt" | "introspection";

/** A range of addresses (net/cidr.ts matches them). */
export interface Cidr {
  text: string;
  address: string;
  prefix: number;
  family: "ipv4" | "ipv6";
}

// --- ACL (policy/acl.ts decides with it) ---------------------------------------------------------------------------

export type Policy = "allow" | "deny";
export type Access = "read" | "write" | "*";

export interface LegacyRule {
  subjects: string[];
  roles: string[];
  /** Globs on the token's client_id or client_name; empty: any caller. */
  clients: string[];
  tools: string[];
  policy: Policy;
}

export interface Grant {
  server: string[];
  access: Access;
  /** Empty: every tool (resource, prompt) of the server. */
  tools: string[];
  resources: string[];
  prompts: string[];
  deny: boolean;
  /** Globs on the token's client_id or client_name; empty: any caller. A grant with clients applies to no other. */
  clients: string[];
}

/** One scope of serverAuth.toolScopes. */
export interface ToolScopeEntry {
  /** Patterns of prefixed tool names (`server__tool`) the scope is required for. */
  tools: string[];
  /** Only tokens of these clients (client_id or client_name globs) can hold the scope; empty: any client. */
  clients: string[];
  /** Words for the consent page. */
  description?: string;
}

export type AclConfig =
  | { kind: "legacy"; default: Policy; rules: LegacyRule[] }
  | {
      kind: "roles";
      default: Policy;
      strict: boolean;
      roles: Record<string, Grant[]>;
      subjects: Record<string, { roles: string[]; extra: Grant[] }>;
    };

// --- sign-in (login/ uses them) ------------------------------------------------------------------------------------

/** Who may sign in or use the gateway, whatever else grants them (every list that is set must match). */
export interface AllowRules {
  subjects?: string[];
  emails?: string[];
  emailDomains?: string[];
  /** Regular expressions matched against the whole email domain. */
  emailDomainPatterns?: string[];
  groups?: string[];
  githubOrgs?: string[];
  githubTeams?: string[];
}

export interface OidcSettings {
  id: string;
  label: string;
  issuer: string;
  clientId: string;
  clientSecret?: string;
  scopes: string[];
  /** Claim naming the user (default "email", falling back to "sub" when absent). */
  subjectClaim: string;
  groupsClaim: string;
  /** Extra parameters of the authorization request (Google's `hd`, `prompt`…). */
  authParams: Record<string, string>;
  /** When set, the ID token's `hd` (Google Workspace domain) must equal it. */
  hostedDomain?: string;
  /** Google: read the user's Workspace groups from the Directory API (login/google-workspace.ts). */
  workspace?: WorkspaceSettings;
  /** Accept an `iss` of the form https://login.microsoftonline.com/{tid}/v2.0 (Entra multi-tenant). */
  tenantIssuer?: boolean;
  /** Treat `email` as verified although the provider sends no email_verified (Entra, single tenant). */
  trustEmail?: boolean;
  timeoutMs: number;
}

/** A Google service account with domain-wide delegation, reading groups from the Admin SDK Directory API. */
export interface WorkspaceSettings {
  clientEmail: string;
  /** PKCS #8 PEM, from the service account's JSON key. */
  privateKey: string;
  /** Where the signed assertion is exchanged for an access token (the key's token_uri). */
  tokenUri: string;
  /** The Workspace user the service account acts as; default: the user signing in (as mcp-oauth2-proxy does). */
  adminEmail?: string;
  /** https://admin.googleapis.com (a loopback stand-in in tests). */
  directoryUrl: string;
  timeoutMs: number;
}

export interface GithubSettings {
  id: string;
  label: string;
  clientId: string;
  clientSecret: string;
  /** https://github.com, or a GitHub Enterprise Server's URL (tests use a loopback stand-in). */
  baseUrl: string;
  /** https://api.github.com, or https://<ghes>/api/v3. */
  apiUrl: string;
  /** Only read:org is needed for private memberships; user:email for private emails. */
  scopes: string[];
  timeoutMs: number;
}

export interface LocalUser {
  passwordHash: string;
  groups: string[];
  email?: string;
  name?: string;
}

export interface LockoutPolicy {
  /** Failures allowed before the username is locked. */
  maxAttempts: number;
  /** The first lock; each further failure doubles it, up to maxLockMs. */
  baseLockMs: number;
  maxLockMs: number;
}

export type IdlePolicy =
  | { kind: "adaptive"; minMs: number; maxMs: number }
  | { kind: "never" }
  | { kind: "fixed"; ms: number };

export type BackendTransportConfig =
  | { kind: "stdio"; command: string; args: string[]; env: Record<string, string>; cwd?: string }
  | { kind: "http"; url: string; headers: Record<string, string>; mode: "auto" | "sse" }
  | {
      kind: "spawned-http";
      command: string;
      args: string[];
      env: Record<string, string>;
      cwd?: string;
      port: number;
      path: string;
      headers: Record<string, string>;
    };

/** Who may use a route, on top of the ACL (simple-rpc-ai-backend's knobs). */
export interface RoutePolicy {
  /** none: no credentials at all; oauth: Gatehouse's own tokens; jwt: tokens from elsewhere; both: any provider. */
  authType: "none" | "oauth" | "jwt" | "both";
  requireAuthForToolsList: boolean;
  requireAuthForToolsCall: boolean;
  /** Tools (patterns on the names the route shows) anyone may call. */
  publicTools: string[];
  /** Audiences jwt / introspection tokens must carry on this route. */
  audience?: string[];
  /** Scopes a token needs per MCP method on this route ("*": any method not listed). */
  methodScopes?: Record<string, string[]>;
}

export interface BackendConfig {
  name: string;
  transport: BackendTransportConfig;
  toolAcl: { read: string[]; write: string[] };
  idle: IdlePolicy;
  requestTimeoutMs: number;
  startupTimeoutMs: number;
  /** HTTP backends: send the caller's subject (and roles) in these headers on calls. */
  forwardIdentity?: { header: string; rolesHeader?: string };
  /** Policy of /servers/<name>/mcp. */
  route: RoutePolicy;
}

export interface BearerEntry {
  /** SHA-256 of the token, hex: tokens are looked up by hash so the clear text need not stay in memory. */
  sha256: string;
  subject: string;
  roles: string[];
}

export interface ForwardedConfig {
  header: string;
  groupsHeader: string;
  /** Undefined: every peer is trusted, which serve only allows on a loopback-only bind. */
  trustedSourceCidrs?: Cidr[];
}

/** What every login method has besides how it signs users in. */
export interface LoginCommon {
  id: string;
  label: string;
  allow?: AllowRules;
  groupRoles: Record<string, string[]>;
  injectedRoles: string[];
  keepUpstreamTokens: boolean;
}

export type LoginConfig =
  | (LoginCommon & { type: "oidc"; oidc: OidcSettings })
  | (LoginCommon & { type: "github"; github: GithubSettings })
  | (LoginCommon & { type: "local"; users: Record<string, LocalUser>; lockout: LockoutPolicy });

export interface OAuthAsConfig {
  issuerUrl: string;
  jwtSecret?: string;
  trustedUserHeader: string;
  trustedGroupsHeader: string;
  /** The trusted proxy's header with the user's email (oauth2-proxy: X-Forwarded-Email). */
  trustedEmailHeader: string;
  trustedSourceCidrs: Cidr[];
  accessTokenTtlSeconds: number;
  refreshTokenTtlSeconds: number;
  authorizationCodeTtlSeconds: number;
  scopesSupported: string[];
  redirectUriAllowlist: string[];
  injectedRoles: string[];
  /** The protected resource: the /mcp endpoint's public URL (default: issuer + "/mcp"). */
  resourceUrl: string;
  /** Scopes a token needs to use /mcp at all (default: none). Always a subset of scopesSupported. */
  requiredScopes: string[];
  consentSkipClients: string[];
  /** "skip": no consent page for a user already known (trusted header, browser session) — mcp serve's flow. */
  consent: "page" | "skip";
  refreshReuseGraceSeconds: number;
  /** How often signing keys rotate, in milliseconds (signingKeyRotation or signingKeyRotationDays); 0: never on a schedule. */
  signingKeyRotationMs: number;
  /**
   * How long a consent page waits for the route's backends to list their tools, so that the scopes they advertise
   * are offered (unticked) from the first consent; 0 (the default): they are not asked.
   */
  offerBackendScopesMs: number;
  /** The algorithm of generated signing keys (ignored with jwtSecret). */
  signingAlgorithm: "ES256" | "RS256";
  /** Resource servers (and other parties) allowed to call /introspect, by client id with the SHA-256 of a secret. */
  introspectionClients: { clientId: string; secretSha256: string }[];
  registrationEnabled: boolean;
  /** Failed token requests per source and per client, browser requests to /authorize and sign-in, registrations per source (per minute). */
  rateLimits: { tokenFailuresPerMinute: number; authorizePerMinute: number; registerPerMinute: number };
  cimd: { enabled: boolean; allowPrivateNetwork: boolean; timeoutMs: number };
  /** The login methods Gatehouse runs itself, in chooser order. */
  logins: LoginConfig[];
  /** The trusted reverse proxy's header is a login method (trustedSourceCidrs is set). */
  trustedHeaderLogin: boolean;
  /** Who may in, whatever the method. */
  allow?: AllowRules;
  sessionLifetimeMs: number;
  sessionSecret?: string;
  /** Encrypts upstream tokens kept for logins with keepUpstreamTokens. */
  upstreamTokenKey?: string;
}

/** Discovery documents served for tokens that another issuer mints (jwt / introspection providers). */
export interface ExternalDiscoveryConfig {
  mode: "direct" | "proxy" | "none";
  /** The public URL of /mcp. */
  resourceUrl?: string;
  /** Proxy mode: Gatehouse's public URL (the rewritten issuer). */
  publicUrl?: string;
  scopesSupported: string[];
  staticClient?: { clientId: string; clientSecret?: string };
}

export interface JwtConfig {
  issuer: string;
  audience: string[];
  jwksUri?: string;
  secret?: string;
  algorithms: string[];
  clockSkewSeconds: number;
  requireTyp?: string;
  requiredScopes: string[];
  allow?: AllowRules;
  subjectClaim: string;
  groupsClaim: string;
  timeoutMs: number;
  discovery: ExternalDiscoveryConfig;
}

export interface IntrospectionConfig {
  endpoint: string;
  clientId: string;
  clientSecret: string;
  authMethod: "client_secret_basic" | "client_secret_post";
  issuer?: string;
  audience?: string[];
  requiredScopes: string[];
  allow?: AllowRules;
  subjectClaim: string;
  groupsClaim: string;
  cacheMaxEntries: number;
  cacheMaxTtlMs: number;
  timeoutMs: number;
  discovery: ExternalDiscoveryConfig;
  /** Providers whose accepted tokens must also be active at this endpoint (AuthSec's "both" validation). */
  alsoFor: "jwt"[];
}

export interface AuthConfig {
  providers: ProviderKind[];
  bearer?: { tokens: BearerEntry[] };
  forwarded?: ForwardedConfig;
  oauthAs?: OAuthAsConfig;
  jwt?: JwtConfig;
  introspection?: IntrospectionConfig;
  /** Per-tool scopes: scope → the tools that need it (and the clients that may hold it). */
  toolScopes: Record<string, ToolScopeEntry>;
  acl?: AclConfig;
}

export interface AuditConfig {
  enabled: boolean;
  logArguments: boolean;
  /** Where audit records go besides nowhere: the log stream, a JSON-lines file, or both. */
  toLog: boolean;
  file?: string;
}

export interface GatewayConfig {
  maxBodyBytes: number;
  /** Browser origins allowed to call /mcp (MCP transports: Origin validation); requests without Origin pass. */
  allowedOrigins: string[];
  sessionIdleTimeoutMs: number;
  maxSessions: number;
  eventBufferSize: number;
  sseKeepaliveMs: number;
  shutdownGraceMs: number;
  /** Reload when the configuration file changes. */
  watchConfig: boolean;
  /** /mcp passes this backend through instead of aggregating. */
  passthrough?: string;
  route: RoutePolicy;
  serverRoutes: boolean;
  publicUrl?: string;
  hosts: Record<string, string>;
  trustedProxies?: Cidr[];
  /** Per caller in a window: MCP requests, and tool calls apart (`rateLimitPerMinute` is the one-minute shorthand). */
  rateLimit?: { windowMs: number; maxRequests?: number; maxToolCalls?: number };
  /** Where /mcp's route is served. */
  paths: string[];
  /** 0: no limit. */
  rateLimitPerMinute: number;
  /** Host header values accepted; undefined: the default (see http/host-check.ts). */
  allowedHosts?: string[];
  /** Every request no Gatehouse endpoint answers, after /mcp's checks, sent on to one upstream (http/forward.ts). */
  forward?: ForwardConfig;
  /** Each authenticated request logged at info: subject, method, path (mcp-oauth-proxy's audit line). */
  accessLog: boolean;
}

/** gateway.forward. */
export interface ForwardConfig {
  /** Where requests go: this URL, the request's query on it. */
  url: string;
  /** The request's path appended to the URL's path (else every path goes to the URL itself). */
  appendPath: boolean;
  /** A backend in mcpServers that serves `url`: started before a request is forwarded, so a spawned one is up. */
  server?: string;
}

/** Where the shared state lives (`state`): nothing set is the JSON file beside the configuration. */
export interface StateConfig {
  redis?: { url: string; keyPrefix: string; timeoutMs: number };
}

/** GET /metrics (`metrics`). */
export interface MetricsConfig {
  enabled: boolean;
  allowFrom: Cidr[];
  bearerToken?: string;
}

export interface Config {
  /** The file it came from, or "MCP_SERVERS_CONFIG". */
  source: string;
  /** How `source` was found ("--config", "MCP_CONFIG_PATH", "MCP_CONFIG_DIR", mcp serve's default …), when loaded by locateConfig. */
  via?: string;
  /** Directory that relative paths in the config are resolved against. */
  dir: string;
  backends: BackendConfig[];
  auth: AuthConfig;
  audit: AuditConfig;
  gateway: GatewayConfig;
  state: StateConfig;
  metrics: MetricsConfig;
  /** Environment variables backend processes do not inherit (config/env.ts secretEnvNames). */
  secretEnv: string[];
  /** What boots but is worth a word (serve logs them, check prints them). */
  warnings: { path: string; message: string }[];
}
