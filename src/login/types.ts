// The contract of a login method: how Gatehouse signs a human in before issuing its own tokens. Interactive methods
// send the browser somewhere (an upstream provider, or Gatehouse's own password form) and come back to a callback.

/** Who the upstream provider (or the local password check) says the user is. */
export interface UpstreamUser {
  subject: string;
  email?: string;
  /** Only verified addresses count for email rules. */
  emailVerified: boolean;
  name?: string;
  /** Upstream groups (OIDC groups claim, GitHub orgs and org/team slugs, local groups). */
  groups: string[];
  /** Google Workspace domain (the ID token's `hd`). */
  hostedDomain?: string;
  /** Extra facts allow rules can check (GitHub orgs and teams). */
  githubOrgs?: string[];
  githubTeams?: string[];
  /** The provider's own tokens: never given to MCP clients; kept (encrypted) only when configured. */
  upstreamTokens?: Record<string, unknown>;
}

/** What an interactive login keeps between the redirect and the callback (bound to the browser by a cookie). */
export interface LoginTransaction {
  id: string;
  /** The `state` sent upstream (single use). */
  state: string;
  nonce: string;
  /** PKCE verifier for the upstream authorization code. */
  verifier: string;
  method: string;
  /** The browser binding, compared with the login cookie at the callback. */
  browser: string;
  expiresAt: number;
}

export interface InteractiveLogin {
  readonly id: string;
  readonly kind: "oidc" | "github" | "local";
  /** Shown on the chooser: "Google", "Corp SSO", "GitHub", "a local account". */
  readonly label: string;
  /** Where to send the browser to start (for local accounts: Gatehouse's own form). */
  start(tx: LoginTransaction, callbackUrl: string): Promise<string>;
  /** Completes the login from the callback's parameters (code, state, iss …). Throws UpstreamError. */
  finish(params: URLSearchParams, tx: LoginTransaction, callbackUrl: string): Promise<UpstreamUser>;
}
