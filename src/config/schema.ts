// The servers.json schema: the format of `mcp serve` (avelino/mcp: mcpServers, serverAuth, audit) plus Gatehouse's
// own `gateway` block. Every object is closed (additionalProperties: false) so a typo fails at boot instead of
// passing silently. Rules that a schema cannot express (globs, CIDRs, durations, cross-references) live in load.ts.

import { type Static, Type as T } from "@sinclair/typebox";

const closed = { additionalProperties: false } as const;
const StringList = T.Array(T.String(), { description: "an array of strings" });
const StringMap = T.Record(T.String(), T.String(), { description: "an object of string values" });
/** `"30s"`, `"2m"`, `"1h"`, or a number of seconds. */
export const Duration = T.Union([T.String(), T.Number({ minimum: 0 })], {
  description: 'a duration such as "30s", "5m", "1h" or a number of seconds',
});

export const ToolAcl = T.Object(
  {
    read: T.Optional(StringList),
    write: T.Optional(StringList),
  },
  closed,
);

/** Who may use a route, per simple-rpc-ai-backend's policy knobs (on top of the ACL). */
export const RoutePolicy = T.Object(
  {
    authType: T.Optional(
      T.Union(
        ["none", "oauth", "jwt", "both"].map((v) => T.Literal(v)),
        { description: '"none", "oauth", "jwt" or "both"' },
      ),
    ),
    requireAuthForToolsList: T.Optional(T.Boolean()),
    requireAuthForToolsCall: T.Optional(T.Boolean()),
    publicTools: T.Optional(StringList),
    /** jwt / introspection tokens on this route must carry one of these audiences (default: the route's URL). */
    audience: T.Optional(StringList),
    /** Scopes a token needs for an MCP method on this route ("tools/call": ["mcp:call"]; "*": every other method). */
    methodScopes: T.Optional(T.Record(T.String(), StringList)),
  },
  closed,
);

/** Keys every backend accepts, whatever its transport. */
const commonServerKeys = {
  /** Policy of the backend's own route /servers/<name>/mcp. */
  route: T.Optional(RoutePolicy),
  tool_acl: T.Optional(ToolAcl),
  /** `adaptive` (default), `never`, or a duration. */
  idle_timeout: T.Optional(T.String({ description: '"adaptive", "never" or a duration such as "2m"' })),
  min_idle_timeout: T.Optional(T.String()),
  max_idle_timeout: T.Optional(T.String()),
  /** Gatehouse: deadline for one request to this backend (default 120 s, env MCP_PROXY_REQUEST_TIMEOUT). */
  timeout: T.Optional(Duration),
  /** Gatehouse: deadline for starting/connecting and completing initialize (default 60 s, env MCP_TIMEOUT). */
  startup_timeout: T.Optional(Duration),
};

export const StdioServer = T.Object(
  {
    type: T.Optional(T.Literal("stdio")),
    command: T.String({ minLength: 1 }),
    args: T.Optional(StringList),
    env: T.Optional(StringMap),
    cwd: T.Optional(T.String()),
    ...commonServerKeys,
  },
  closed,
);

/** An HTTP MCP server Gatehouse starts itself (MCP_SPAWN_CMD style), then reaches on 127.0.0.1:<port><path>. */
export const SpawnedHttpServer = T.Object(
  {
    type: T.Optional(T.Literal("spawn")),
    command: T.String({ minLength: 1 }),
    args: T.Optional(StringList),
    env: T.Optional(StringMap),
    cwd: T.Optional(T.String()),
    port: T.Integer({ minimum: 1, maximum: 65535 }),
    path: T.Optional(T.String({ pattern: "^/" })),
    headers: T.Optional(StringMap),
    ...commonServerKeys,
  },
  closed,
);

export const ForwardIdentity = T.Object(
  {
    header: T.Optional(T.String({ minLength: 1 })),
    roles_header: T.Optional(T.String({ minLength: 1 })),
  },
  closed,
);

export const HttpServer = T.Object(
  {
    type: T.Optional(
      T.Union([T.Literal("http"), T.Literal("streamable-http"), T.Literal("streamableHttp"), T.Literal("sse")], {
        description: '"http", "streamable-http" or "sse"',
      }),
    ),
    url: T.String({ minLength: 1 }),
    headers: T.Optional(StringMap),
    forward_identity: T.Optional(ForwardIdentity),
    ...commonServerKeys,
  },
  closed,
);

export const BearerToken = T.Union(
  [T.String(), T.Object({ subject: T.String({ minLength: 1 }), roles: T.Optional(StringList) }, closed)],
  { description: 'a subject string, or {"subject": string, "roles": [string]}' },
);

export const Forwarded = T.Object(
  {
    header: T.Optional(T.String({ minLength: 1 })),
    groups_header: T.Optional(T.String({ minLength: 1 })),
    trustedSourceCidrs: T.Optional(StringList),
  },
  closed,
);

export const AllowRules = T.Object(
  {
    subjects: T.Optional(StringList),
    emails: T.Optional(StringList),
    emailDomains: T.Optional(StringList),
    emailDomainPatterns: T.Optional(StringList),
    groups: T.Optional(StringList),
    githubOrgs: T.Optional(StringList),
    githubTeams: T.Optional(StringList),
  },
  closed,
);

/** Keys every login method accepts. */
const loginCommon = {
  id: T.Optional(
    T.String({ minLength: 1, pattern: "^[a-z0-9][a-z0-9_-]*$", description: "lower-case letters, digits, _ and -" }),
  ),
  label: T.Optional(T.String({ minLength: 1 })),
  allow: T.Optional(AllowRules),
  groupRoles: T.Optional(T.Record(T.String(), StringList, { description: "an object of group → [role]" })),
  injectedRoles: T.Optional(StringList),
  keepUpstreamTokens: T.Optional(T.Boolean()),
  timeout: T.Optional(Duration),
};
const clientKeys = { clientId: T.String({ minLength: 1 }), clientSecret: T.Optional(T.String()) };
const claimKeys = {
  subjectClaim: T.Optional(T.String({ minLength: 1 })),
  groupsClaim: T.Optional(T.String({ minLength: 1 })),
  scopes: T.Optional(StringList),
};

export const LoginSchemas = {
  oidc: T.Object(
    {
      type: T.Literal("oidc"),
      issuer: T.String({ minLength: 1 }),
      ...clientKeys,
      ...claimKeys,
      authParams: T.Optional(StringMap),
      ...loginCommon,
    },
    closed,
  ),
  google: T.Object(
    {
      type: T.Literal("google"),
      ...clientKeys,
      hostedDomain: T.Optional(T.String()),
      /** Read the user's Workspace groups from the Admin SDK Directory API with a service account. */
      workspace: T.Optional(
        T.Object(
          {
            serviceAccountKeyFile: T.Optional(T.String({ minLength: 1 })),
            serviceAccountKey: T.Optional(T.String({ minLength: 1 })),
            adminEmail: T.Optional(T.String({ minLength: 3 })),
            directoryUrl: T.Optional(T.String({ minLength: 1 })),
          },
          closed,
        ),
      ),
      issuer: T.Optional(T.String()),
      ...claimKeys,
      ...loginCommon,
    },
    closed,
  ),
  microsoft: T.Object(
    {
      type: T.Literal("microsoft"),
      tenant: T.String({ minLength: 1 }),
      ...clientKeys,
      issuer: T.Optional(T.String()),
      ...claimKeys,
      ...loginCommon,
    },
    closed,
  ),
  keycloak: T.Object(
    {
      type: T.Literal("keycloak"),
      baseUrl: T.String({ minLength: 1 }),
      realm: T.String({ minLength: 1 }),
      ...clientKeys,
      ...claimKeys,
      ...loginCommon,
    },
    closed,
  ),
  authentik: T.Object(
    {
      type: T.Literal("authentik"),
      baseUrl: T.String({ minLength: 1 }),
      application: T.String({ minLength: 1 }),
      ...clientKeys,
      ...claimKeys,
      ...loginCommon,
    },
    closed,
  ),
  okta: T.Object(
    {
      type: T.Literal("okta"),
      domain: T.String({ minLength: 1 }),
      authorizationServer: T.Optional(T.String()),
      ...clientKeys,
      ...claimKeys,
      ...loginCommon,
    },
    closed,
  ),
  github: T.Object(
    {
      type: T.Literal("github"),
      clientId: T.String({ minLength: 1 }),
      clientSecret: T.String({ minLength: 1 }),
      baseUrl: T.Optional(T.String()),
      apiUrl: T.Optional(T.String()),
      scopes: T.Optional(StringList),
      ...loginCommon,
    },
    closed,
  ),
  local: T.Object(
    {
      type: T.Literal("local"),
      users: T.Record(
        T.String(),
        T.Object(
          {
            passwordHash: T.String({ minLength: 1 }),
            groups: T.Optional(StringList),
            email: T.Optional(T.String()),
            name: T.Optional(T.String()),
          },
          closed,
        ),
        { description: "an object of username → {passwordHash, groups, email, name}" },
      ),
      lockout: T.Optional(
        T.Object(
          {
            maxAttempts: T.Optional(T.Integer({ minimum: 1 })),
            baseLock: T.Optional(Duration),
            maxLock: T.Optional(Duration),
          },
          closed,
        ),
      ),
      ...loginCommon,
    },
    closed,
  ),
} as const;

/** Which discovery documents Gatehouse serves for tokens from another issuer. */
const ExternalDiscovery = T.Object(
  {
    /** "direct": protected resource metadata names the issuer; "proxy": it names Gatehouse, which republishes the
     *  issuer's metadata with `issuer` rewritten; "none": nothing is served. */
    mode: T.Optional(
      T.Union([T.Literal("direct"), T.Literal("proxy"), T.Literal("none")], {
        description: '"direct", "proxy" or "none"',
      }),
    ),
    /** The public URL of /mcp (the `resource` of its metadata). */
    resourceUrl: T.Optional(T.String({ minLength: 1 })),
    /** Proxy mode: the public URL of Gatehouse (the rewritten `issuer`). */
    publicUrl: T.Optional(T.String({ minLength: 1 })),
    scopesSupported: T.Optional(StringList),
    /** Registration shim for issuers without open registration: every caller gets this pre-registered client. */
    staticClient: T.Optional(
      T.Object({ clientId: T.String({ minLength: 1 }), clientSecret: T.Optional(T.String()) }, closed),
    ),
  },
  closed,
);

export const Jwt = T.Object(
  {
    issuer: T.String({ minLength: 1 }),
    audience: T.Union([T.String({ minLength: 1 }), StringList], { description: "a string or an array of strings" }),
    jwksUri: T.Optional(T.String({ minLength: 1 })),
    secret: T.Optional(T.String()),
    algorithms: T.Optional(StringList),
    clockSkew: T.Optional(Duration),
    requireTyp: T.Optional(T.String({ minLength: 1 })),
    requiredScopes: T.Optional(StringList),
    allow: T.Optional(AllowRules),
    subjectClaim: T.Optional(T.String({ minLength: 1 })),
    groupsClaim: T.Optional(T.String({ minLength: 1 })),
    timeout: T.Optional(Duration),
    discovery: T.Optional(ExternalDiscovery),
  },
  closed,
);

export const Introspection = T.Object(
  {
    endpoint: T.String({ minLength: 1 }),
    clientId: T.String({ minLength: 1 }),
    clientSecret: T.String(),
    authMethod: T.Optional(
      T.Union([T.Literal("client_secret_basic"), T.Literal("client_secret_post")], {
        description: '"client_secret_basic" or "client_secret_post"',
      }),
    ),
    issuer: T.Optional(T.String()),
    audience: T.Optional(
      T.Union([T.String({ minLength: 1 }), StringList], { description: "a string or an array of strings" }),
    ),
    requiredScopes: T.Optional(StringList),
    allow: T.Optional(AllowRules),
    subjectClaim: T.Optional(T.String({ minLength: 1 })),
    groupsClaim: T.Optional(T.String({ minLength: 1 })),
    cacheMaxEntries: T.Optional(T.Integer({ minimum: 0 })),
    cacheMaxTtl: T.Optional(Duration),
    timeout: T.Optional(Duration),
    discovery: T.Optional(ExternalDiscovery),
    /** "jwt": tokens the jwt provider accepts must also be active here (revocation before they expire). */
    alsoFor: T.Optional(T.Union([T.Literal("jwt"), T.Array(T.Literal("jwt"))], { description: '"jwt" (or ["jwt"])' })),
  },
  closed,
);

export const OAuthAs = T.Object(
  {
    issuerUrl: T.String({ minLength: 1 }),
    jwtSecret: T.Optional(T.String()),
    trustedUserHeader: T.Optional(T.String({ minLength: 1 })),
    trustedGroupsHeader: T.Optional(T.String({ minLength: 1 })),
    trustedEmailHeader: T.Optional(T.String({ minLength: 1 })),
    trustedSourceCidrs: T.Optional(StringList),
    accessTokenTtlSeconds: T.Optional(T.Integer({ minimum: 1 })),
    refreshTokenTtlSeconds: T.Optional(T.Integer({ minimum: 1 })),
    authorizationCodeTtlSeconds: T.Optional(T.Integer({ minimum: 1, maximum: 600 })),
    scopesSupported: T.Optional(StringList),
    redirectUriAllowlist: T.Optional(StringList),
    injectedRoles: T.Optional(StringList),
    // Gatehouse additions
    resourceUrl: T.Optional(T.String({ minLength: 1 })),
    requiredScopes: T.Optional(StringList),
    consentSkipClients: T.Optional(StringList),
    /** "page" (default): the consent page; "skip": none for a user already known, as mcp serve (trusted proxy set-ups). */
    consent: T.Optional(T.Union([T.Literal("page"), T.Literal("skip")], { description: '"page" or "skip"' })),
    refreshReuseGraceSeconds: T.Optional(T.Integer({ minimum: 0, maximum: 600 })),
    signingKeyRotationDays: T.Optional(T.Integer({ minimum: 0 })),
    /** The same as a duration ("12h", "30d"); only one of the two may be set. */
    signingKeyRotation: T.Optional(Duration),
    /** Ask the backends for the scopes they advertise when a consent page is shown: true (3 s), a wait, or false. */
    offerBackendScopes: T.Optional(
      T.Union([T.Boolean(), Duration], { description: 'false, or how long to wait, such as "3s"' }),
    ),
    /** Algorithm of generated signing keys: ES256 (default) or RS256 for resource servers that accept only RSA. */
    signingAlgorithm: T.Optional(
      T.Union([T.Literal("ES256"), T.Literal("RS256")], { description: '"ES256" or "RS256"' }),
    ),
    introspectionClients: T.Optional(
      T.Record(T.String(), T.String(), { description: "an object of client id → secret (or sha256:<hex>)" }),
    ),
    registrationEnabled: T.Optional(T.Boolean()),
    /** Per source address and client; 0 turns one off. */
    rateLimits: T.Optional(
      T.Object(
        {
          tokenFailuresPerMinute: T.Optional(T.Integer({ minimum: 0 })),
          authorizePerMinute: T.Optional(T.Integer({ minimum: 0 })),
          registerPerMinute: T.Optional(T.Integer({ minimum: 0 })),
        },
        closed,
      ),
    ),
    logins: T.Optional(T.Array(T.Unknown(), { description: "an array of login methods" })),
    allow: T.Optional(AllowRules),
    sessionLifetime: T.Optional(Duration),
    sessionSecret: T.Optional(T.String()),
    upstreamTokenKey: T.Optional(T.String()),
    clientIdMetadataDocuments: T.Optional(
      T.Object(
        {
          enabled: T.Optional(T.Boolean()),
          allowPrivateNetwork: T.Optional(T.Boolean()),
          timeoutMs: T.Optional(T.Integer({ minimum: 100, maximum: 30_000 })),
        },
        closed,
      ),
    ),
  },
  closed,
);

const Policy = T.Union([T.Literal("allow"), T.Literal("deny")], { description: '"allow" or "deny"' });

/** Globs on the token's client: its client_id, or the client_name it registered with. */
const Clients = T.Array(T.String({ minLength: 1 }), { description: "an array of client_id or client_name globs" });

export const LegacyRule = T.Object(
  {
    subjects: T.Optional(StringList),
    roles: T.Optional(StringList),
    clients: T.Optional(Clients),
    tools: StringList,
    policy: Policy,
  },
  closed,
);

export const LegacyAcl = T.Object({ default: T.Optional(Policy), rules: T.Optional(T.Array(LegacyRule)) }, closed);

export const Grant = T.Object(
  {
    server: T.Union([T.String(), StringList], { description: "a server name glob or an array of them" }),
    access: T.Union([T.Literal("read"), T.Literal("write"), T.Literal("*")], { description: '"read", "write" or "*"' }),
    tools: T.Optional(StringList),
    resources: T.Optional(StringList),
    prompts: T.Optional(StringList),
    deny: T.Optional(T.Boolean()),
    clients: T.Optional(Clients),
  },
  closed,
);

/** A toolScopes entry: the tool patterns, or those with the clients that may hold the scope and its words. */
export const ToolScopeEntry = T.Union(
  [
    StringList,
    T.Object(
      {
        tools: StringList,
        clients: T.Optional(Clients),
        description: T.Optional(T.String({ minLength: 1, maxLength: 300 })),
      },
      closed,
    ),
  ],
  { description: 'an array of tool patterns, or {"tools": [patterns], "clients": [globs], "description": string}' },
);

export const RoleAcl = T.Object(
  {
    default: T.Optional(Policy),
    strictClassification: T.Optional(T.Boolean()),
    roles: T.Optional(T.Record(T.String(), T.Array(Grant), { description: "an object of role name → [grant]" })),
    subjects: T.Optional(
      T.Record(T.String(), T.Object({ roles: T.Optional(StringList), extra: T.Optional(T.Array(Grant)) }, closed), {
        description: "an object of subject → {roles, extra}",
      }),
    ),
  },
  closed,
);

/** The blocks are checked one by one in load.ts (so one bad block does not hide problems in another). */
export const ServerAuth = T.Object(
  {
    providers: T.Optional(StringList),
    bearer: T.Optional(T.Unknown()),
    forwarded: T.Optional(T.Unknown()),
    oauthAs: T.Optional(T.Unknown()),
    jwt: T.Optional(T.Unknown()),
    introspection: T.Optional(T.Unknown()),
    /** Per-tool scopes: scope → tool patterns (prefixed names), as AuthSec's scope matrix. */
    toolScopes: T.Optional(
      T.Record(T.String(), ToolScopeEntry, { description: "an object of scope → [tool pattern] or {tools, clients}" }),
    ),
    /** Legacy ({default, rules}) or role-based ({default, roles, subjects}). */
    acl: T.Optional(T.Unknown()),
  },
  closed,
);

export const Audit = T.Object(
  {
    enabled: T.Optional(T.Boolean()),
    log_arguments: T.Optional(T.Boolean()),
    output: T.Optional(
      T.Union(
        ["file", "stdout", "stderr", "file+stdout", "file+stderr", "none"].map((v) => T.Literal(v)),
        { description: '"file", "stdout", "stderr", "file+stdout", "file+stderr" or "none"' },
      ),
    ),
    path: T.Optional(T.String()),
    index_path: T.Optional(T.String()),
  },
  closed,
);

/** Gatehouse's own settings, absent from `mcp serve` configs. */
export const Gateway = T.Object(
  {
    maxBodyBytes: T.Optional(T.Integer({ minimum: 1024 })),
    allowedOrigins: T.Optional(StringList),
    sessionIdleTimeout: T.Optional(Duration),
    maxSessions: T.Optional(T.Integer({ minimum: 1 })),
    eventBufferSize: T.Optional(T.Integer({ minimum: 1, maximum: 100_000 })),
    sseKeepalive: T.Optional(Duration),
    shutdownGrace: T.Optional(Duration),
    /** Reload when servers.json changes (as SIGHUP and `gatehouse reload` do). */
    watchConfig: T.Optional(T.Boolean()),
    /** Serve one backend at /mcp unchanged instead of the aggregate. */
    passthrough: T.Optional(T.String({ minLength: 1 })),
    /** Policy of /mcp. */
    route: T.Optional(RoutePolicy),
    /** Serve every backend at /servers/<name>/mcp too (default true). */
    serverRoutes: T.Optional(T.Boolean()),
    /** Public base URL (https://mcp.example.com): routes' resource URLs derive from it. */
    publicUrl: T.Optional(T.String()),
    /** Host → backend: requests for that host reach the backend's own route at /mcp. */
    hosts: T.Optional(StringMap),
    /** Peers whose X-Forwarded-Host is believed (CIDRs). */
    trustedProxies: T.Optional(StringList),
    /** Per caller: requests and tool calls in a window (simple-rpc-ai-backend's rateLimiting). */
    rateLimit: T.Optional(
      T.Object(
        {
          window: T.Optional(Duration),
          maxRequests: T.Optional(T.Integer({ minimum: 1 })),
          maxToolCalls: T.Optional(T.Integer({ minimum: 1 })),
        },
        closed,
      ),
    ),
    /** Paths the /mcp route is served at (default ["/mcp"]; env-only mode adds "/"). */
    paths: T.Optional(T.Array(T.String({ pattern: "^/" }), { minItems: 1 })),
    /** Host header values served (DNS-rebinding defence); default: the configured URLs' hosts and loopback. */
    allowedHosts: T.Optional(StringList),
    /** MCP requests per minute per caller; 0 (default) for no limit. */
    rateLimitPerMinute: T.Optional(T.Integer({ minimum: 0 })),
    /** Every other request, after /mcp's checks, sent on to one upstream (env-only mode: mcp-oauth-proxy's). */
    forward: T.Optional(
      T.Object(
        {
          url: T.String(),
          appendPath: T.Optional(T.Boolean()),
          server: T.Optional(T.String({ minLength: 1 })),
        },
        closed,
      ),
    ),
    /** Each authenticated request logged at info (subject, method, path). */
    accessLog: T.Optional(T.Boolean()),
  },
  closed,
);

/** Where the shared state lives: absent, the JSON file; `redis` for several replicas. */
export const State = T.Object(
  {
    redis: T.Optional(
      T.Object(
        {
          /** redis://[user:password@]host:port/db or rediss:// for TLS; ${VAR} allowed. */
          url: T.String({ minLength: 1 }),
          keyPrefix: T.Optional(T.String()),
          timeout: T.Optional(Duration),
        },
        closed,
      ),
    ),
  },
  closed,
);

/** `metrics` (Gatehouse only): GET /metrics in the Prometheus text format. */
export const Metrics = T.Object(
  {
    enabled: T.Optional(T.Boolean()),
    /** Sources allowed to scrape (CIDRs); default loopback only. */
    allowFrom: T.Optional(T.Array(T.String())),
    /** A token a scraper sends as `Authorization: Bearer …`, from anywhere (≥ 16 characters; ${VAR} allowed). */
    bearerToken: T.Optional(T.String({ minLength: 16 })),
  },
  closed,
);

export const ServersFile = T.Object(
  {
    $schema: T.Optional(T.String()),
    mcpServers: T.Optional(T.Record(T.String(), T.Unknown(), { description: "an object of server name → server" })),
    serverAuth: T.Optional(T.Unknown()),
    audit: T.Optional(Audit),
    gateway: T.Optional(Gateway),
    state: T.Optional(State),
    metrics: T.Optional(Metrics),
  },
  closed,
);

export type StdioServerInput = Static<typeof StdioServer>;
export type HttpServerInput = Static<typeof HttpServer>;
export type SpawnedHttpServerInput = Static<typeof SpawnedHttpServer>;
export type RoutePolicyInput = Static<typeof RoutePolicy>;
export type ServerAuthInput = Static<typeof ServerAuth>;
export type ForwardedInput = Static<typeof Forwarded>;
export type LegacyAclInput = Static<typeof LegacyAcl>;
export type RoleAclInput = Static<typeof RoleAcl>;
export type GrantInput = Static<typeof Grant>;
export type ToolScopeInput = Static<typeof ToolScopeEntry>;
export type OAuthAsInput = Static<typeof OAuthAs>;
export type JwtInput = Static<typeof Jwt>;
export type IntrospectionInput = Static<typeof Introspection>;
export type AuditInput = Static<typeof Audit>;
export type GatewayInput = Static<typeof Gateway>;
