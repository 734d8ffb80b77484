// The login methods configured in oauthAs.logins, built once: OpenID Connect (and its presets), GitHub, local
// accounts; with the allow rules and role mapping of each, the transactions of logins in progress, and the
// encryption of upstream tokens that are kept.

import { createHash } from "node:crypto";
import { CompactEncrypt } from "jose";
import type { LoginConfig, OAuthAsConfig } from "../config/types.ts";
import { randomId } from "../crypto.ts";
import type { PasswordHasher } from "../platform/types.ts";
import type { Store } from "../store/types.ts";
import { allowChecker, rolesFor } from "./allow.ts";
import { GithubLogin } from "./github.ts";
import { LocalAccounts } from "./local.ts";
import { OidcLogin } from "./oidc.ts";
import type { InteractiveLogin, LoginTransaction, UpstreamUser } from "./types.ts";

export interface LoginMethod {
  config: LoginConfig;
  /** OIDC and GitHub: the redirect-based flow. */
  upstream?: InteractiveLogin;
  /** Local accounts: Gatehouse's own password form. */
  local?: LocalAccounts;
  allows(user: UpstreamUser): boolean;
}

/** How long a login may take between leaving for the provider and coming back. */
const TRANSACTION_TTL_MS = 10 * 60_000;

export interface PendingLogin extends LoginTransaction {
  /** The consent request this login completes. */
  pendingId: string;
  /** Local accounts: the token the password form must send back. */
  csrf: string;
}

export class Logins {
  readonly methods = new Map<string, LoginMethod>();
  private readonly globalAllow: (u: UpstreamUser) => boolean;
  private readonly upstreamKey: Uint8Array | undefined;

  constructor(
    private readonly config: OAuthAsConfig,
    private readonly now: () => number,
    /** Logins in progress live in the store, so a sign-in that leaves from one replica may come back to another. */
    private readonly store: Store,
    deps: { passwords?: PasswordHasher; fetch?: typeof fetch },
  ) {
    this.globalAllow = allowChecker(config.allow);
    for (const l of config.logins) {
      const methodAllow = allowChecker(l.allow);
      // Google Workspace: only accounts of the configured domain (the `hd` claim), whatever else the rules say.
      const domain = l.type === "oidc" ? l.oidc.hostedDomain : undefined;
      const inDomain = (u: UpstreamUser) => domain === undefined || u.hostedDomain === domain;
      const m: LoginMethod = { config: l, allows: (u) => inDomain(u) && this.globalAllow(u) && methodAllow(u) };
      if (l.type === "oidc") m.upstream = new OidcLogin(l.oidc, now, deps.fetch);
      if (l.type === "github") m.upstream = new GithubLogin(l.github, deps.fetch);
      if (l.type === "local") {
        if (!deps.passwords) throw new Error("local accounts need a password hasher (run Gatehouse under Bun)");
        m.local = new LocalAccounts(l.id, l.label, l.users, deps.passwords, l.lockout, now, store);
      }
      this.methods.set(l.id, m);
    }
    if (config.upstreamTokenKey) {
      this.upstreamKey = new Uint8Array(
        createHash("sha256").update(`gatehouse upstream tokens\u0000${config.upstreamTokenKey}`).digest(),
      );
    }
  }

  get interactive(): LoginMethod[] {
    return [...this.methods.values()];
  }

  /** The callback URL registered at a provider: {issuer}/login/{id}/callback. */
  callbackUrl(id: string): string {
    return `${this.config.issuerUrl}/login/${id}/callback`;
  }

  /** Roles of a user signed in through a method: groups, mapped groups, the method's and the global injected roles. */
  roles(method: LoginMethod, user: UpstreamUser): string[] {
    return rolesFor(user, method.config.groupRoles, [...method.config.injectedRoles, ...this.config.injectedRoles]);
  }

  async begin(method: string, pendingId: string): Promise<PendingLogin> {
    const tx: PendingLogin = {
      id: randomId(18),
      state: randomId(24),
      nonce: randomId(24),
      verifier: randomId(48),
      method,
      browser: randomId(24),
      expiresAt: this.now() + TRANSACTION_TTL_MS,
      pendingId,
      csrf: randomId(18),
    };
    await this.store.putTransient("login", tx.state, tx, tx.expiresAt);
    return tx;
  }

  /** Looks a transaction up by its state without using it (the local password form may be retried). */
  async peek(state: string): Promise<PendingLogin | undefined> {
    const tx = await this.store.getTransient<PendingLogin>("login", state);
    return tx && tx.expiresAt >= this.now() ? tx : undefined;
  }

  /** Uses a transaction up: its state works once, across replicas too (a replayed callback finds nothing). */
  async take(state: string): Promise<PendingLogin | undefined> {
    const tx = await this.store.takeTransient<PendingLogin>("login", state);
    return tx && tx.expiresAt >= this.now() ? tx : undefined;
  }

  /** Upstream tokens, encrypted with oauthAs.upstreamTokenKey, for the grant record. */
  async sealUpstreamTokens(tokens: Record<string, unknown> | undefined): Promise<string | undefined> {
    if (!tokens || !this.upstreamKey) return undefined;
    return new CompactEncrypt(new TextEncoder().encode(JSON.stringify(tokens)))
      .setProtectedHeader({ alg: "dir", enc: "A256GCM" })
      .encrypt(this.upstreamKey);
  }
}
