// The authorization endpoint (RFC 6749 §4.1.1, OAuth 2.1 §4.1) and the consent decision. Until the client and its
// redirect URI are verified, errors are shown as a page and never redirected (RFC 6749 §4.1.2.1); after that they
// go back to the client with `state` and, as in every authorization response, `iss` (RFC 9207 §2).
// The user is the one a trusted reverse proxy names in its header, believed only from trustedSourceCidrs.

import { splitGroups } from "../auth/providers.ts";
import { randomId } from "../crypto.ts";
import { inAnyCidr } from "../net/cidr.ts";
import type { ClientRecord } from "../store/types.ts";
import type { AuthorizationServer } from "./authorization-server.ts";
import { OAuthError } from "./errors.ts";
import { isValidChallenge } from "./pkce.ts";
import { allowedByList, matchesRegistered } from "./redirect-uri.ts";
import { grantableScopes, hasAll, parseScope } from "./scopes.ts";

export interface User {
  subject: string;
  groups: string[];
}

export interface PendingAuthorization {
  id: string;
  /** Must come back in the consent form. */
  csrf: string;
  /** Must come back in the consent cookie: binds the form to this browser. */
  browser: string;
  client: ClientRecord;
  redirectUri: string;
  state: string | undefined;
  codeChallenge: string;
  scopes: string[];
  resource: string;
  user: User;
  expiresAt: number;
}

export type AuthorizeOutcome =
  | { kind: "page"; status: 400 | 403; title: string; detail: string }
  | { kind: "redirect"; location: string; status?: 302 | 303 }
  | { kind: "consent"; pending: PendingAuthorization };

/** How long a consent page stays valid. */
const PENDING_TTL_MS = 10 * 60_000;
const PENDING_MAX = 10_000;

/** Consent requests waiting for the user's answer (in memory, bounded, expiring). */
export class PendingAuthorizations {
  private items = new Map<string, PendingAuthorization>();

  add(p: PendingAuthorization): void {
    if (this.items.size >= PENDING_MAX) this.items.delete(this.items.keys().next().value as string);
    this.items.set(p.id, p);
  }

  /** Removes and returns a pending request (one use), if it has not expired. */
  take(id: string, now: number): PendingAuthorization | undefined {
    const p = this.items.get(id);
    if (!p) return undefined;
    this.items.delete(id);
    return p.expiresAt >= now ? p : undefined;
  }

  peek(id: string): PendingAuthorization | undefined {
    return this.items.get(id);
  }
}

function withParams(uri: string, params: Record<string, string | undefined>): string {
  const u = new URL(uri);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) u.searchParams.set(k, v);
  return u.href;
}

export interface AuthorizeRequest {
  params: URLSearchParams;
  headers: Headers;
  peer: string | undefined;
}

/** Who the reverse proxy says the user is, if the request came through it. */
export function trustedUser(
  as: AuthorizationServer,
  req: Omit<AuthorizeRequest, "params">,
): { user: User } | { page: AuthorizeOutcome } {
  const c = as.config;
  if (!inAnyCidr(c.trustedSourceCidrs, req.peer)) {
    return {
      page: {
        kind: "page",
        status: 403,
        title: "Sign-in must go through your reverse proxy",
        detail: `This request came from ${req.peer ?? "an unknown address"}, which is not in oauthAs.trustedSourceCidrs. Open the sign-in link through the proxy that authenticates you.`,
      },
    };
  }
  const subject = req.headers.get(c.trustedUserHeader)?.trim();
  if (!subject) {
    return {
      page: {
        kind: "page",
        status: 403,
        title: "Your reverse proxy did not say who you are",
        detail: `The ${c.trustedUserHeader} header is missing or empty. The proxy in front of Gatehouse must authenticate you and set it.`,
      },
    };
  }
  return { user: { subject, groups: splitGroups(req.headers.get(c.trustedGroupsHeader)) } };
}

export async function authorize(as: AuthorizationServer, req: AuthorizeRequest): Promise<AuthorizeOutcome> {
  const p = req.params;
  const issuer = as.config.issuerUrl;
  const page = (status: 400 | 403, title: string, detail: string): AuthorizeOutcome => ({
    kind: "page",
    status,
    title,
    detail,
  });

  const proxy = trustedUser(as, req);
  if ("page" in proxy) {
    as.log.info("authorize refused", {
      client_id: p.get("client_id") ?? undefined,
      reason: (proxy.page as { title: string }).title,
      peer: req.peer,
    });
    return proxy.page;
  }

  // 1. Client and redirect URI: until both are verified, nothing is redirected anywhere.
  const clientId = p.get("client_id");
  if (!clientId) return page(400, "The sign-in request is incomplete", "The client_id parameter is missing.");
  let client: ClientRecord | undefined;
  try {
    client = await as.findClient(clientId);
  } catch (e) {
    const detail = e instanceof OAuthError ? e.description : "its client metadata document could not be loaded";
    as.log.info("authorize refused: client metadata document", { client_id: clientId, reason: detail });
    return page(400, "This app could not be identified", detail);
  }
  if (!client) {
    as.log.info("authorize refused: unknown client", { client_id: clientId });
    return page(
      400,
      "Unknown app",
      `No client is registered as ${clientId}. The app may need to register again (remove and re-add the connector).`,
    );
  }
  let redirectUri = p.get("redirect_uri");
  if (!redirectUri) {
    if (client.redirect_uris.length !== 1)
      return page(400, "The sign-in request is incomplete", "The redirect_uri parameter is missing.");
    redirectUri = client.redirect_uris[0] as string;
  }
  if (!matchesRegistered(redirectUri, client.redirect_uris)) {
    as.log.info("authorize refused: redirect_uri not registered", { client_id: clientId, redirect_uri: redirectUri });
    return page(400, "Unexpected redirect address", `The redirect_uri ${redirectUri} is not one this app registered.`);
  }
  if (!allowedByList(new URL(redirectUri), as.config.redirectUriAllowlist)) {
    as.log.info("authorize refused: redirect_uri not in the allowlist", {
      client_id: clientId,
      redirect_uri: redirectUri,
    });
    return page(
      400,
      "Unexpected redirect address",
      `The redirect_uri ${redirectUri} is not allowed by oauthAs.redirectUriAllowlist.`,
    );
  }

  // 2. From here on, errors go back to the client.
  const state = p.get("state") ?? undefined;
  const target = redirectUri;
  const fail = (error: string, description: string): AuthorizeOutcome => {
    as.log.info("authorize refused", { client_id: clientId, error, reason: description });
    return {
      kind: "redirect",
      location: withParams(target, { error, error_description: description, state, iss: issuer }),
    };
  };
  if (p.get("response_type") !== "code") return fail("unsupported_response_type", 'response_type must be "code"');
  const mode = p.get("response_mode");
  if (mode && mode !== "query") return fail("invalid_request", 'response_mode must be "query"');
  if (p.has("request") || p.has("request_uri"))
    return fail("request_not_supported", "request objects are not supported");
  const challenge = p.get("code_challenge");
  if (!challenge) return fail("invalid_request", "code_challenge is required (PKCE with S256)");
  if (p.get("code_challenge_method") !== "S256") return fail("invalid_request", "code_challenge_method must be S256");
  if (!isValidChallenge(challenge)) return fail("invalid_request", "code_challenge is not a base64url SHA-256 value");
  let resource: string;
  try {
    resource = as.resolveResource(p.getAll("resource"));
  } catch (e) {
    return fail("invalid_target", (e as OAuthError).description);
  }
  const scopes = grantableScopes(parseScope(p.get("scope")), as.config.scopesSupported, as.config.requiredScopes);
  const user = proxy.user;

  // 3. Consent: once per (user, client), remembered until revoked; some clients may be exempt by configuration.
  const prompt = parseScope(p.get("prompt"));
  const consent = await as.store.getConsent(user.subject, client.client_id);
  const exempt = as.config.consentSkipClients.includes(client.client_id);
  const covered = consent !== undefined && hasAll(consent.scopes, scopes);
  if (!exempt && (!covered || prompt.includes("consent"))) {
    if (prompt.includes("none")) return fail("consent_required", "the user has not approved this app yet");
    const pending: PendingAuthorization = {
      id: randomId(24),
      csrf: randomId(24),
      browser: randomId(24),
      client,
      redirectUri,
      state,
      codeChallenge: challenge,
      scopes,
      resource,
      user,
      expiresAt: as.clock.now() + PENDING_TTL_MS,
    };
    as.log.info("authorize: asking for consent", {
      client_id: clientId,
      subject: user.subject,
      scopes: scopes.join(" "),
    });
    return { kind: "consent", pending };
  }
  return issue(as, { client, redirectUri, state, codeChallenge: challenge, scopes, resource, user }, 302);
}

async function issue(
  as: AuthorizationServer,
  a: Pick<PendingAuthorization, "client" | "redirectUri" | "state" | "codeChallenge" | "scopes" | "resource" | "user">,
  status: 302 | 303,
): Promise<AuthorizeOutcome> {
  const roles = [...new Set([...a.user.groups, ...as.config.injectedRoles])];
  const code = await as.issueCode({
    client_id: a.client.client_id,
    redirect_uri: a.redirectUri,
    code_challenge: a.codeChallenge,
    scopes: a.scopes,
    resource: a.resource,
    subject: a.user.subject,
    groups: a.user.groups,
    roles,
  });
  as.log.info("authorize: code issued", {
    client_id: a.client.client_id,
    subject: a.user.subject,
    redirect_host: new URL(a.redirectUri).host,
  });
  return {
    kind: "redirect",
    status,
    location: withParams(a.redirectUri, { code, state: a.state, iss: as.config.issuerUrl }),
  };
}

export interface ConsentDecision {
  form: URLSearchParams;
  /** The value of the consent cookie, if the browser sent it. */
  cookie: string | undefined;
  headers: Headers;
  peer: string | undefined;
}

/** The consent form's POST: CSRF-checked, bound to the browser and the user; answered with 303 (RFC 9700 §4.12). */
export async function decideConsent(
  as: AuthorizationServer,
  pendings: PendingAuthorizations,
  d: ConsentDecision,
): Promise<AuthorizeOutcome> {
  const proxy = trustedUser(as, d);
  if ("page" in proxy) return proxy.page;
  const id = d.form.get("request_id") ?? "";
  const known = pendings.peek(id);
  // Both the form token and the cookie must match: a cross-site POST has neither (SameSite=Lax keeps the cookie home).
  if (!known || d.form.get("csrf") !== known.csrf || d.cookie !== known.browser) {
    as.log.warn("consent refused: missing or wrong CSRF token or cookie", { subject: proxy.user.subject });
    return {
      kind: "page",
      status: 403,
      title: "This approval could not be verified",
      detail: "The form did not come from this browser's sign-in page (or it expired). Start again from your app.",
    };
  }
  const pending = pendings.take(id, as.clock.now());
  if (!pending)
    return { kind: "page", status: 400, title: "This approval expired", detail: "Start again from your app." };
  if (pending.user.subject !== proxy.user.subject) {
    return {
      kind: "page",
      status: 403,
      title: "Another user is signed in",
      detail: "The approval belongs to another user. Start again from your app.",
    };
  }
  const iss = as.config.issuerUrl;
  if (d.form.get("decision") !== "approve") {
    as.log.info("consent denied", { client_id: pending.client.client_id, subject: pending.user.subject });
    return {
      kind: "redirect",
      status: 303,
      location: withParams(pending.redirectUri, {
        error: "access_denied",
        error_description: "the user denied access",
        state: pending.state,
        iss,
      }),
    };
  }
  await as.store.putConsent({
    subject: pending.user.subject,
    client_id: pending.client.client_id,
    scopes: pending.scopes,
    granted_at: as.clock.now(),
  });
  as.log.info("consent approved", {
    client_id: pending.client.client_id,
    subject: pending.user.subject,
    scopes: pending.scopes.join(" "),
  });
  return issue(as, { ...pending, user: proxy.user }, 303);
}
