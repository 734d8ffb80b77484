// Who is calling, as every provider in the chain describes it, and how a provider says yes or no.

import type { ProviderKind } from "../config/types.ts";
import { bearerChallenge } from "./challenge.ts";

export type { ProviderKind };

export interface Identity {
  /** Stable user id: the bearer token's subject, the forwarded user, the token's `sub`; "anonymous" for none. */
  subject: string;
  /** Roles the ACL evaluates (bearer roles, forwarded groups, token roles, plus the ACL's own subject roles). */
  roles: string[];
  /** Groups as the identity source reported them (forwarded groups, token `groups`). */
  groups: string[];
  provider: ProviderKind;
  /** OAuth scopes granted to the token; undefined when the provider has no notion of scopes. */
  scopes?: string[];
  /** Scopes every request needs (the provider's requiredScopes); a token without them gets 403 insufficient_scope. */
  requiredScopes?: string[];
  /** The protected resource metadata URL to name in challenges (RFC 9728 §5.1), for providers that serve one. */
  resourceMetadata?: string;
  clientId?: string;
  /**
   * The client_name the client registered with (Gatehouse's own tokens: read from the client record the token check
   * loads anyway). Chosen by whoever registered the client: a label, not a proof.
   */
  clientName?: string;
  email?: string;
}

/** Why a provider refused; the first provider's refusal is what the client sees if every provider refuses. */
export interface AuthFailure {
  status: 401 | 403 | 503;
  /** RFC 6750 §3.1 error code, absent when no credentials were presented at all. */
  error?: "invalid_request" | "invalid_token" | "insufficient_scope";
  description: string;
  /** The WWW-Authenticate header value to send. */
  challenge: string;
  /** Every provider's reason, for the log line (`bearer: …; forwarded: …`); set by the chain. */
  tried?: string;
}

export type AuthResult = { ok: true; identity: Identity } | { ok: false; failure: AuthFailure };

/** What a provider may look at: the request and the address of the peer that sent it. */
export interface AuthRequest {
  headers: Headers;
  /** Read only when needed: a getter may work it out on first use. */
  readonly peerAddress: string | undefined;
}

export interface AuthProvider {
  readonly kind: ProviderKind;
  authenticate(req: AuthRequest): Promise<AuthResult> | AuthResult;
}

/** The key a session is bound to: the same human through another provider is another principal. */
export function principalKey(identity: Identity): string {
  return `${identity.provider}:${identity.subject}`;
}

/** 403 for a token without the scopes an operation needs (RFC 6750 §3.1; MCP: all scopes the operation needs). */
export function insufficientScope(identity: Identity, needed: string[], description: string): AuthFailure {
  const challenge = bearerChallenge({
    ...(identity.resourceMetadata ? { resourceMetadata: identity.resourceMetadata } : {}),
    scope: [...new Set(needed)],
    error: "insufficient_scope",
    description,
  });
  return { status: 403, error: "insufficient_scope", description, challenge };
}
