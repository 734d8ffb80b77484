// The authorization endpoint (RFC 6749 §4.1.1, OAuth 2.1 §4.1) and the consent decision. Until the client and its
// redirect URI are verified, errors are shown as a page and never redirected (RFC 6749 §4.1.2.1); after that they
// go back to the client with `state` and, as in every authorization response, `iss` (RFC 9207 §2).
// The user is the one a trusted reverse proxy names (from trustedSourceCidrs), or the one of a browser session
// opened by a login method (src/login). A user not yet known approves the client first and signs in after — so a
// client nobody approved never rides the user's upstream session (MCP security: "Confused Deputy Problem").

import { splitGroups } from "../auth/providers.ts";
import { randomId } from "../crypto.ts";
import type { LoginMethod } from "../login/registry.ts";
import type { UpstreamUser } from "../login/types.ts";
import { inAnyCidr } from "../net/cidr.ts";
import type { ClientRecord, Store } from "../store/types.ts";
import type { AuthorizationServer } from "./authorization-server.ts";
import { OAuthError } from "./errors.ts";
import { isValidChallenge } from "./pkce.ts";
import { allowedByList, matchesRegistered } from "./redirect-uri.ts";
import { grantableScopes, hasAll, parseScope } from "./scopes.ts";

export interface User {
  subject: string;
  email?: string;
  groups: string[];
  roles: string[];
  /** trusted-header, or the id of the login method that opened the session. */
  method: string;
}

export interface PendingAuthorization {
  id: string;
  /** Must come back in the consent form. */
  csrf: string;
  /** Must come back in the consent cookie: binds the form to this browser. */
  browser: string;
  client: ClientRecord;
  redirectUri: string;
  /** The request sent no redirect_uri (the client's only registered one is used): the token request may omit it. */
  redirectUriOmitted?: true;
  state: string | undefined;
  codeChallenge: string;
  scopes: string[];
  /**
   * Scopes the client did not ask for that the backends advertise (mcp-oauth2-proxy's consent): shown unticked,
   * granted only when the user ticks them.
   */
  offered?: string[];
  resource: string;
  /** Undefined while nobody is signed in: the consent page then offers the login methods. */
  user: User | undefined;
  expiresAt: number;
}

export type AuthorizeOutcome =
  | { kind: "page"; status: 400 | 403 | 429 | 502; title: string; detail: string }
  | { kind: "redirect"; location: string; status?: 302 | 303; cookies?: string[] }
  | { kind: "consent"; pending: PendingAuthorization; logins: LoginMethod[] }
  | {
      kind: "password";
      tx: { state: string; csrf: string; pendingId: string };
      method: LoginMethod;
      error?: string;
      status?: 200 | 401 | 429;
    };

/** How long a consent page stays valid. */
const PENDING_TTL_MS = 10 * 60_000;

/**
 * Consent requests waiting for the user's answer, in the store (bounded, expiring) so that a consent page shown by
 * one replica can be answered through another.
 */
export class PendingAuthorizations {
  constructor(private readonly store: Store) {}

  add(p: PendingAuthorization): Promise<void> {
    return this.store.putTransient("authorization", p.id, p, p.expiresAt);
  }

  /** Removes and returns a pending request (one use, even across replicas), if it has not expired. */
  async take(id: string, now: number): Promise<PendingAuthorization | undefined> {
    if (!id) return undefined;
    const p = await this.store.takeTransient<PendingAuthorization>("authorization", id);
    return p && p.expiresAt >= now ? p : undefined;
  }

  async peek(id: string): Promise<PendingAuthorization | undefined> {
    if (!id) return undefined;
    return this.store.getTransient<PendingAuthorization>("authorization", id);
  }
}

function withParams(uri: string, params: Record<string, string | undefined>): string {
  const u = new URL(uri);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) u.searchParams.set(k, v);
  return u.href;
}

export interface BrowserRequest {
  headers: Headers;
  peer: string | undefined;
  /** The browser session cookie, if any. */
  session: string | undefined;
}

export interface AuthorizeRequest extends BrowserRequest {
  params: URLSearchParams;
}

const page = (status: 400 | 403 | 429 | 502, title: string, detail: string): AuthorizeOutcome => ({
  kind: "page",
  status,
  title,
  detail,
});

/**
 * Who is at the browser: the user the trusted reverse proxy names, else the user of the browser session. When only
 * the trusted header can sign users in, its absence is a page saying what is missing.
 */
export async function identify(
  as: AuthorizationServer,
  req: BrowserRequest,
): Promise<{ user?: User; page?: AuthorizeOutcome }> {
  const c = as.config;
  if (c.trustedHeaderLogin) {
    const trusted = inAnyCidr(c.trustedSourceCidrs, req.peer);
    const subject = trusted ? req.headers.get(c.trustedUserHeader)?.trim() : undefined;
    if (subject) {
      const groups = splitGroups(req.headers.get(c.trustedGroupsHeader));
      const user: User = {
        subject,
        groups,
        roles: [...new Set([...groups, ...c.injectedRoles])],
        method: "trusted-header",
      };
      const email = req.headers.get(c.trustedEmailHeader)?.trim();
      if (email) user.email = email;
      return { user };
    }
    if (as.logins.interactive.length === 0) {
      if (!trusted) {
        return {
          page: page(
            403,
            "Sign-in must go through your reverse proxy",
            `This request came from ${req.peer ?? "an unknown address"}, which is not in oauthAs.trustedSourceCidrs. Open the sign-in link through the proxy that authenticates you.`,
          ),
        };
      }
      return {
        page: page(
          403,
          "Your reverse proxy did not say who you are",
          `The ${c.trustedUserHeader} header is missing or empty. The proxy in front of Gatehouse must authenticate you and set it.`,
        ),
      };
    }
  }
  const s = await as.sessions.read(req.session);
  if (s) {
    const user: User = { subject: s.subject, groups: s.groups, roles: s.roles, method: s.method };
    if (s.email) user.email = s.email;
    return { user };
  }
  return {};
}

export async function authorize(as: AuthorizationServer, req: AuthorizeRequest): Promise<AuthorizeOutcome> {
  const p = req.params;
  const issuer = as.config.issuerUrl;

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
  const redirectUriOmitted = !redirectUri;
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

  // 2. The user, when already known (trusted proxy header or browser session).
  const who = await identify(as, req);
  if (who.page) {
    as.log.info("authorize refused", {
      client_id: clientId,
      reason: (who.page as { title: string }).title,
      peer: req.peer,
    });
    return who.page;
  }

  // 3. From here on, errors go back to the client.
  const state = p.get("state") ?? undefined;
  const target = redirectUri;
  const fail = (error: string, description: string): AuthorizeOutcome => {
    as.log.info("authorize refused", { client_id: clientId, error, reason: description });
    return {
      kind: "redirect",
      location: withParams(target, { error, error_description: description, state, iss: issuer }),
    };
  };
  // RFC 6749 §4.1.2.1: a missing required parameter is invalid_request; a value not supported, unsupported_response_type.
  if (!p.get("response_type")) return fail("invalid_request", 'response_type is required (it must be "code")');
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
  // Scopes only other clients may hold (toolScopes entries with `clients`) are never granted to this one.
  const grantableHere = () => as.scopesSupported().filter((s) => as.clientMayHold(s, client as ClientRecord));
  const supported = grantableHere();
  const requested = parseScope(p.get("scope"));
  const scopes = grantableScopes(requested, supported, as.config.requiredScopes);
  const withheld = requested.filter((s) => !supported.includes(s) && as.scopesSupported().includes(s));
  if (withheld.length > 0) {
    as.log.info("authorize: scopes withheld, they are for other clients (toolScopes clients)", {
      client_id: clientId,
      scopes: withheld.join(" "),
    });
  }
  const prompt = parseScope(p.get("prompt"));
  const user = who.user;

  // 4. Consent: once per (user, client), remembered until revoked; some clients may be exempt by configuration, or
  // every client with consent: "skip" (mcp serve's flow, for trusted-proxy set-ups; its risk: config/oauth-as.ts).
  const exempt = as.config.consent === "skip" || as.config.consentSkipClients.includes(client.client_id);
  const omitted = redirectUriOmitted ? { redirectUriOmitted: true as const } : {};
  if (user) {
    const consent = await as.store.getConsent(user.subject, client.client_id);
    const covered = consent !== undefined && hasAll(consent.scopes, scopes);
    if (exempt || (covered && !prompt.includes("consent"))) {
      return issue(
        as,
        { client, redirectUri, ...omitted, state, codeChallenge: challenge, scopes, resource, user },
        302,
      );
    }
  }
  if (prompt.includes("none"))
    return fail(user ? "consent_required" : "login_required", "user interaction is required");
  const advertised = as.config.offerBackendScopesMs > 0 ? await as.backendScopes(resource) : [];
  // Grantable scopes again: asking the backends may have made theirs known.
  const grantable = new Set(grantableHere());
  const offered = advertised.filter((s) => !scopes.includes(s) && grantable.has(s));
  const pending: PendingAuthorization = {
    id: randomId(24),
    csrf: randomId(24),
    browser: randomId(24),
    client,
    redirectUri,
    ...omitted,
    state,
    codeChallenge: challenge,
    scopes,
    ...(offered.length > 0 ? { offered } : {}),
    resource,
    user,
    expiresAt: as.clock.now() + PENDING_TTL_MS,
  };
  as.log.info(user ? "authorize: asking for consent" : "authorize: asking for consent, then sign-in", {
    client_id: clientId,
    subject: user?.subject,
    scopes: scopes.join(" "),
    ...(offered.length > 0 ? { offered: offered.join(" ") } : {}),
  });
  return { kind: "consent", pending, logins: as.logins.interactive };
}

async function issue(
  as: AuthorizationServer,
  a: Pick<
    PendingAuthorization,
    "client" | "redirectUri" | "redirectUriOmitted" | "state" | "codeChallenge" | "scopes" | "resource"
  > & {
    user: User;
    upstreamTokens?: string;
  },
  status: 302 | 303,
  cookies?: string[],
): Promise<AuthorizeOutcome> {
  const code = await as.issueCode({
    client_id: a.client.client_id,
    redirect_uri: a.redirectUri,
    // RFC 6749 §4.1.3: the token request must repeat redirect_uri only if the authorization request included it.
    ...(a.redirectUriOmitted ? { redirect_uri_omitted: true } : {}),
    code_challenge: a.codeChallenge,
    scopes: a.scopes,
    resource: a.resource,
    subject: a.user.subject,
    groups: a.user.groups,
    roles: a.user.roles,
    ...(a.user.email ? { email: a.user.email } : {}),
    ...(a.upstreamTokens ? { upstream_tokens: a.upstreamTokens } : {}),
  });
  as.log.info("authorize: code issued", {
    client_id: a.client.client_id,
    subject: a.user.subject,
    method: a.user.method,
    redirect_host: new URL(a.redirectUri).host,
  });
  const outcome: AuthorizeOutcome = {
    kind: "redirect",
    status,
    location: withParams(a.redirectUri, { code, state: a.state, iss: as.config.issuerUrl }),
  };
  if (cookies) outcome.cookies = cookies;
  return outcome;
}

export interface ConsentDecision extends BrowserRequest {
  form: URLSearchParams;
  /** The value of the consent cookie, if the browser sent it. */
  cookie: string | undefined;
}

/** The consent form's POST: CSRF-checked, bound to the browser and the user; answered with 303 (RFC 9700 §4.12). */
export async function decideConsent(
  as: AuthorizationServer,
  pendings: PendingAuthorizations,
  d: ConsentDecision,
): Promise<AuthorizeOutcome> {
  const id = d.form.get("request_id") ?? "";
  const known = await pendings.peek(id);
  // Both the form token and the cookie must match: a cross-site POST has neither (SameSite=Lax keeps the cookie home).
  if (!known || d.form.get("csrf") !== known.csrf || d.cookie !== known.browser) {
    as.log.warn("consent refused: missing or wrong CSRF token or cookie", { peer: d.peer });
    return page(
      403,
      "This approval could not be verified",
      "The form did not come from this browser's sign-in page (or it expired). Start again from your app.",
    );
  }
  const who = await identify(as, d);
  if (who.page) return who.page;
  if (known.user && who.user?.subject !== known.user.subject) {
    return page(403, "Another user is signed in", "The approval belongs to another user. Start again from your app.");
  }
  const pending = await pendings.take(id, as.clock.now());
  if (!pending) return page(400, "This approval expired", "Start again from your app.");
  const iss = as.config.issuerUrl;
  const decision = d.form.get("decision") ?? "";
  if (decision !== "approve" && !decision.startsWith("approve:")) {
    as.log.info("consent denied", { client_id: pending.client.client_id, subject: pending.user?.subject });
    as.audit.event({
      event: "authorization_denied",
      success: false,
      client_id: pending.client.client_id,
      ...(pending.user ? { subject: pending.user.subject } : {}),
      reason: "the user denied access on the consent page",
    });
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
  // The user may have narrowed the scopes on the page (checkboxes); required scopes stay whatever is unticked. Of
  // the scopes offered beyond the request, only those ticked are granted — and nothing the page did not offer.
  if (d.form.get("narrowable") === "1") {
    const ticked = d.form.getAll("scope");
    const kept = pending.scopes.filter((s) => as.config.requiredScopes.includes(s) || ticked.includes(s));
    const added = (pending.offered ?? []).filter((s) => ticked.includes(s));
    if (kept.length < pending.scopes.length || added.length > 0) {
      as.log.info("consent: the user chose the scopes", {
        client_id: pending.client.client_id,
        asked: pending.scopes.join(" "),
        granted: [...kept, ...added].join(" "),
      });
    }
    pending.scopes = [...kept, ...added];
  }
  delete pending.offered;
  if (pending.user) {
    await rememberConsent(as, pending, pending.user);
    return issue(as, { ...pending, user: who.user ?? pending.user }, 303);
  }
  // Approved before signing in: now the chosen login method.
  const chosen = decision.startsWith("approve:") ? decision.slice("approve:".length) : "";
  const method =
    as.logins.methods.get(chosen) ?? (as.logins.interactive.length === 1 ? as.logins.interactive[0] : undefined);
  if (!method)
    return page(400, "Choose how to sign in", "The form named no sign-in method. Start again from your app.");
  await pendings.add({ ...pending, expiresAt: as.clock.now() + PENDING_TTL_MS }); // kept until the login completes
  const tx = await as.logins.begin(method.config.id, pending.id);
  const loginCookie = as.cookies.login(tx.browser);
  as.log.info("login: starting", { client_id: pending.client.client_id, method: method.config.id });
  if (method.local) {
    return {
      kind: "redirect",
      status: 303,
      location: `${as.config.issuerUrl}/login/${method.config.id}?state=${tx.state}`,
      cookies: [loginCookie],
    };
  }
  let location: string;
  try {
    location = await (method.upstream as NonNullable<LoginMethod["upstream"]>).start(
      tx,
      as.logins.callbackUrl(method.config.id),
    );
  } catch (e) {
    as.log.warn("login: the identity provider cannot be reached", {
      method: method.config.id,
      error: (e as Error).message,
    });
    return page(502, `Could not reach ${method.config.label}`, `${(e as Error).message}. Try again later.`);
  }
  return { kind: "redirect", status: 303, location, cookies: [loginCookie] };
}

async function rememberConsent(as: AuthorizationServer, pending: PendingAuthorization, user: User): Promise<void> {
  await as.store.putConsent({
    subject: user.subject,
    client_id: pending.client.client_id,
    scopes: pending.scopes,
    granted_at: as.clock.now(),
  });
  as.log.info("consent approved", {
    client_id: pending.client.client_id,
    subject: user.subject,
    scopes: pending.scopes.join(" "),
  });
  as.audit.event({
    event: "authorization_granted",
    success: true,
    client_id: pending.client.client_id,
    subject: user.subject,
    scope: pending.scopes.join(" "),
    ...(pending.resource ? { resource: pending.resource } : {}),
  });
}

/**
 * The end of a login: the user the method signed in passes the allow rules, gets a browser session, and the consent
 * given before the sign-in is recorded for them; then the client gets its code.
 */
export async function completeLogin(
  as: AuthorizationServer,
  pendings: PendingAuthorizations,
  method: LoginMethod,
  pendingId: string,
  upstream: UpstreamUser,
): Promise<AuthorizeOutcome> {
  const label = upstream.email ?? upstream.subject;
  if (!method.allows(upstream)) {
    as.log.warn("login refused: not allowed by the allow rules", {
      method: method.config.id,
      subject: upstream.subject,
      email: upstream.email,
    });
    as.audit.event({
      event: "sign_in_failed",
      success: false,
      method: method.config.id,
      subject: upstream.subject,
      reason: "not allowed by the allow rules",
    });
    return page(
      403,
      "This account is not allowed here",
      `${label} signed in with ${method.config.label}, but is not allowed to use this Gatehouse. Ask its administrator, or sign in with another account.`,
    );
  }
  const pending = await pendings.take(pendingId, as.clock.now());
  if (!pending) return page(400, "This sign-in took too long", "Start again from your app.");
  const roles = as.logins.roles(method, upstream);
  const { cookie } = await as.sessions.create({
    subject: upstream.subject,
    ...(upstream.email && upstream.emailVerified ? { email: upstream.email } : {}),
    groups: upstream.groups,
    roles,
    method: method.config.id,
  });
  const user: User = { subject: upstream.subject, groups: upstream.groups, roles, method: method.config.id };
  if (upstream.email && upstream.emailVerified) user.email = upstream.email;
  as.log.info("login: signed in", {
    method: method.config.id,
    subject: user.subject,
    groups: user.groups.join(","),
    client_id: pending.client.client_id,
  });
  as.audit.event({
    event: "sign_in",
    success: true,
    method: method.config.id,
    subject: user.subject,
    client_id: pending.client.client_id,
  });
  await rememberConsent(as, pending, user);
  const sealed = method.config.keepUpstreamTokens
    ? await as.logins.sealUpstreamTokens(upstream.upstreamTokens)
    : undefined;
  return issue(as, { ...pending, user, ...(sealed ? { upstreamTokens: sealed } : {}) }, 303, [
    as.cookies.session(cookie),
    as.cookies.clearLogin(),
  ]);
}
