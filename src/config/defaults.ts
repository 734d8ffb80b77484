// Every default of servers.json, in one place: the sections apply them, README's configuration reference lists them.
// Durations are in milliseconds unless the name says seconds.

import type { RoutePolicy } from "./types.ts";

export const DEFAULTS = {
  server: {
    /** MCP_PROXY_REQUEST_TIMEOUT (seconds) overrides it. */
    requestTimeoutMs: 120_000,
    /** MCP_TIMEOUT (seconds) overrides it. */
    startupTimeoutMs: 60_000,
    minIdleMs: 60_000,
    maxIdleMs: 300_000,
    forwardIdentityHeader: "X-MCP-Subject",
    spawnedPath: "/mcp",
  },
  route: {
    authType: "both",
    requireAuthForToolsList: true,
    requireAuthForToolsCall: true,
    publicTools: [],
  } satisfies RoutePolicy as RoutePolicy,
  forwarded: { header: "x-forwarded-user", groupsHeader: "x-forwarded-groups" },
  acl: { default: "allow" as const },
  oauthAs: {
    trustedUserHeader: "x-forwarded-user",
    trustedGroupsHeader: "x-forwarded-groups",
    trustedEmailHeader: "x-forwarded-email",
    accessTokenTtlSeconds: 3600,
    refreshTokenTtlSeconds: 2_592_000,
    authorizationCodeTtlSeconds: 60,
    /** mcp serve's meaning: what metadata advertises (avelino/mcp docs/howto/oauth-as.md: default []). */
    scopesSupported: [] as string[],
    /** Gatehouse: what /mcp demands of a token; none by default, as in mcp serve. */
    requiredScopes: [] as string[],
    refreshReuseGraceSeconds: 30,
    signingKeyRotationDays: 30,
    signingAlgorithm: "ES256" as const,
    /** Off unless set: a consent page that asks the backends starts the ones not yet running. */
    offerBackendScopesMs: 0,
    /** How long `offerBackendScopes: true` waits. */
    offerBackendScopesWaitMs: 3000,
    registrationEnabled: true,
    rateLimits: { tokenFailuresPerMinute: 30, authorizePerMinute: 120, registerPerMinute: 30 },
    consent: "page" as "page" | "skip",
    cimd: { enabled: true, allowPrivateNetwork: false, timeoutMs: 3000 },
    sessionLifetimeMs: 12 * 3_600_000,
    /** Redirect URIs accepted when oauthAs.redirectUriAllowlist is not set (a trailing "*" matches any suffix). */
    redirectUriAllowlist: [
      "https://claude.ai/api/mcp/auth_callback",
      "https://claude.com/api/mcp/auth_callback",
      "https://chatgpt.com/connector_platform_oauth_redirect",
      "https://chatgpt.com/connector/oauth/*",
      "https://vscode.dev/redirect",
      "https://insiders.vscode.dev/redirect",
      // Cursor registers dynamically with its private-use scheme (RFC 8252 §7.1).
      "cursor://anysphere.cursor-mcp/oauth/callback",
      "http://127.0.0.1/*",
      "http://localhost/*",
      "http://[::1]/*",
    ],
  },
  login: {
    timeoutMs: 5000,
    oidcScopes: ["openid", "email", "profile"],
    subjectClaim: "email",
    groupsClaim: "groups",
    githubBaseUrl: "https://github.com",
    githubApiUrl: "https://api.github.com",
    githubScopes: ["read:user", "user:email", "read:org"],
    lockout: { maxAttempts: 5, baseLockMs: 30_000, maxLockMs: 900_000 },
    labels: {
      oidc: "single sign-on",
      google: "Google",
      microsoft: "Microsoft",
      keycloak: "Keycloak",
      authentik: "Authentik",
      okta: "Okta",
      github: "GitHub",
      local: "a local account",
    } as Record<string, string>,
  },
  jwt: {
    asymmetricAlgorithms: ["RS256", "PS256", "ES256", "EdDSA"],
    symmetricAlgorithms: ["HS256"],
    clockSkewMs: 30_000,
    subjectClaim: "sub",
    groupsClaim: "groups",
    timeoutMs: 5000,
  },
  introspection: {
    authMethod: "client_secret_basic" as const,
    cacheMaxEntries: 10_000,
    cacheMaxTtlMs: 300_000,
    timeoutMs: 5000,
  },
  discovery: { mode: "direct" as const },
  audit: { enabled: true, output: "stderr" },
  gateway: {
    allowedOrigins: ["https://claude.ai", "https://claude.com", "http://localhost:6274"],
    maxBodyBytes: 4 * 1024 * 1024,
    sessionIdleTimeoutMs: 3_600_000,
    maxSessions: 10_000,
    eventBufferSize: 256,
    sseKeepaliveMs: 25_000,
    shutdownGraceMs: 10_000,
    watchConfig: false,
    serverRoutes: true,
    paths: ["/mcp"],
    rateLimitPerMinute: 0,
    accessLog: false,
  },
  state: { keyPrefix: "gatehouse:", redisTimeoutMs: 2_000 },
  metrics: { enabled: true, allowFrom: ["127.0.0.0/8", "::1/128"] },
} as const;
