// Sign-in through an OpenID Connect provider (OpenID Connect Core 1.0). The protocol is panva's oauth4webapi
// (OpenID-certified): discovery with the document's `issuer` checked against the configured one, the authorization
// code flow with PKCE, `state` and `nonce`, the callback's RFC 9207 `iss` (checked when sent or advertised), the code
// exchange, and the ID token validated per Core §3.1.3.7: `iss`, `aud`, `azp` with several audiences, `exp`, `nonce`,
// and its signature against the provider's JWKS (fetched and cached by the library). Userinfo, through the library
// too (its `sub` must be the ID token's), fills in claims the ID token lacks. What is ours: which issuer identifiers
// a configured issuer stands for (written with or without its trailing slash; Entra's multi-tenant {tenantid}),
// fetching the JWKS again for a key id it does not know (the provider rotated) at most once per cooldown, an `azp`
// that when present must be us, and the user made of the claims. `resource` is never sent upstream (Entra refuses it).

import * as oauth from "oauth4webapi";
import type { OidcSettings } from "../config/types.ts";
import { UpstreamError } from "../net/upstream.ts";
import { WorkspaceDirectory } from "./google-workspace.ts";
import {
  authorizationUrl,
  bodyOf,
  callbackRefusal,
  type HttpOptions,
  httpOptions,
  isProtocolError,
  statusOf,
  upstreamError,
} from "./oauth-client.ts";
import type { InteractiveLogin, LoginTransaction, UpstreamUser } from "./types.ts";

export type { OidcSettings };

const DISCOVERY_TTL_MS = 3_600_000;
const CLOCK_TOLERANCE_S = 30;
/** A key id the cached JWKS does not know makes us fetch it again at most this often (random kids cannot hammer). */
const UNKNOWN_KID_COOLDOWN_MS = 10_000;

/**
 * oauth4webapi's hook for the `iss` an ID token must carry when it depends on the token (exported for its sibling
 * openid-client, which uses it for Entra multi-tenant sign-in exactly as we do; the version is pinned).
 */
const expectedIssuerHook = (oauth as unknown as { _expectedIssuer?: symbol })._expectedIssuer;

interface Discovered {
  as: oauth.AuthorizationServer;
  /** The object oauth4webapi keys its JWKS cache on; replaced by a copy to make it fetch the keys again. */
  keys: oauth.AuthorizationServer;
  until: number;
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

export class OidcLogin implements InteractiveLogin {
  readonly kind = "oidc" as const;
  readonly id: string;
  readonly label: string;
  private discovered: Discovered | undefined;
  private lastUnknownKidRefetch = Number.NEGATIVE_INFINITY;
  private readonly http: HttpOptions;
  /** Google with `workspace`: where the user's groups come from. */
  private readonly workspace: WorkspaceDirectory | undefined;

  constructor(
    readonly settings: OidcSettings,
    private readonly now: () => number,
    doFetch?: typeof fetch,
  ) {
    this.id = settings.id;
    this.label = settings.label;
    this.http = httpOptions(settings.issuer, {
      provider: settings.id,
      timeoutMs: settings.timeoutMs,
      ...(doFetch ? { fetch: doFetch } : {}),
    });
    this.workspace = settings.workspace
      ? new WorkspaceDirectory(settings.workspace, settings.id, now, doFetch)
      : undefined;
    if (settings.tenantIssuer && !expectedIssuerHook) {
      throw new Error(`login ${settings.id}: this oauth4webapi cannot check multi-tenant (Entra) issuers`);
    }
  }

  /** Our client metadata for oauth4webapi. Its clock is ours (tests move it), by way of the library's clockSkew. */
  private client(): oauth.Client {
    return {
      client_id: this.settings.clientId,
      [oauth.clockSkew]: Math.floor(this.now() / 1000) - Math.floor(Date.now() / 1000),
      [oauth.clockTolerance]: CLOCK_TOLERANCE_S,
    };
  }

  /** client_secret_basic unless the provider lists only other methods; a client without a secret sends its id. */
  private clientAuth(as: oauth.AuthorizationServer): oauth.ClientAuth {
    const secret = this.settings.clientSecret;
    if (!secret) return oauth.None();
    const methods = as.token_endpoint_auth_methods_supported ?? ["client_secret_basic"];
    return methods.includes("client_secret_basic") ? oauth.ClientSecretBasic(secret) : oauth.ClientSecretPost(secret);
  }

  private refusal(e: unknown, explain: (e: Error) => string | undefined): UpstreamError {
    return upstreamError(this.id, e, explain);
  }

  /** The provider's discovery document, cached for an hour; its `issuer` must be the configured one. */
  async discover(): Promise<oauth.AuthorizationServer> {
    return (await this.discovery()).as;
  }

  private async discovery(): Promise<Discovered> {
    if (this.discovered && this.discovered.until > this.now()) return this.discovered;
    const configured = this.settings.issuer;
    let as: oauth.AuthorizationServer;
    try {
      const res = await oauth.discoveryRequest(new URL(configured), this.http);
      as = await oauth.processDiscoveryResponse(await this.expectedIssuer(res.clone()), res);
    } catch (e) {
      if (e instanceof TypeError) throw new UpstreamError(this.id, `its discovery document was refused: ${e.message}`);
      throw this.refusal(e, (e) => {
        const status = statusOf(e);
        if (e instanceof oauth.OperationProcessingError && e.code === oauth.JSON_ATTRIBUTE_COMPARISON) {
          return `its discovery document names issuer ${String(bodyOf(e)?.issuer)}, not ${configured}`;
        }
        return status !== undefined && status !== 200
          ? `its discovery document answered HTTP ${status}`
          : `its discovery document was refused: ${e.message}`;
      });
    }
    for (const key of ["authorization_endpoint", "token_endpoint", "jwks_uri"] as const) {
      if (typeof as[key] !== "string") throw new UpstreamError(this.id, `its discovery document has no ${key}`);
    }
    const template = as.issuer;
    if (this.settings.tenantIssuer && template.includes("{tenantid}") && expectedIssuerHook) {
      // Entra multi-tenant: each ID token's `iss` names its own tenant, the `tid` it carries.
      as = {
        ...as,
        [expectedIssuerHook]: ({ claims }: { claims: Record<string, unknown> }) =>
          template.replace("{tenantid}", String(claims.tid)),
      };
    }
    this.discovered = { as, keys: as, until: this.now() + DISCOVERY_TTL_MS };
    return this.discovered;
  }

  /**
   * The issuer identifier oauth4webapi must find in the discovery document: the configured one; that without its
   * trailing slash when the document names it so; or, for Entra multi-tenant sign-in, the document's {tenantid}
   * template when it stands for the configured issuer (…/common/v2.0, …/organizations/v2.0).
   */
  private async expectedIssuer(res: { json(): Promise<unknown> }): Promise<URL> {
    const configured = this.settings.issuer;
    const bare = configured.replace(/\/$/, "");
    const named: unknown = await res.json().then(
      (b: unknown) => (b as { issuer?: unknown } | null)?.issuer,
      () => undefined,
    );
    if (typeof named === "string" && URL.canParse(named)) {
      if (named === bare) return new URL(named);
      if (this.settings.tenantIssuer && named.includes("{tenantid}")) {
        const pattern = new RegExp(`^${named.split("{tenantid}").map(escapeRegExp).join("[^/]+")}$`);
        if (pattern.test(bare)) return new URL(named);
      }
    }
    return new URL(configured);
  }

  async start(tx: LoginTransaction, callbackUrl: string): Promise<string> {
    const { as } = await this.discovery();
    const params = {
      response_type: "code",
      client_id: this.settings.clientId,
      redirect_uri: callbackUrl,
      scope: this.settings.scopes.join(" "),
      state: tx.state,
      nonce: tx.nonce,
      code_challenge: await oauth.calculatePKCECodeChallenge(tx.verifier),
      code_challenge_method: "S256",
    };
    try {
      return authorizationUrl(as, params, this.settings.authParams, this.http);
    } catch (e) {
      throw this.refusal(e, (e) => `its authorization endpoint was refused: ${e.message}`);
    }
  }

  async finish(params: URLSearchParams, tx: LoginTransaction, callbackUrl: string): Promise<UpstreamUser> {
    const discovered = await this.discovery();
    const { as } = discovered;
    const client = this.client();
    let callback: URLSearchParams;
    try {
      callback = oauth.validateAuthResponse(as, client, params, tx.state);
    } catch (e) {
      throw this.refusal(e, (e) => callbackRefusal(e, "the provider", params, as));
    }
    if (!callback.get("code")) throw new UpstreamError(this.id, "the callback has no code");

    let response: Response;
    let tokens: oauth.TokenEndpointResponse;
    try {
      response = await oauth.authorizationCodeGrantRequest(
        as,
        client,
        this.clientAuth(as),
        callback,
        callbackUrl,
        tx.verifier,
        this.http,
      );
      tokens = await oauth.processAuthorizationCodeResponse(as, client, response, {
        expectedNonce: tx.nonce,
        requireIdToken: true,
      });
    } catch (e) {
      throw this.refusal(e, (e) => tokenRefusal(e, this.settings.clientId));
    }
    await this.verifySignature(discovered, response);
    const claims = oauth.getValidatedIdTokenClaims(tokens) as oauth.IDToken;
    // Core §3.1.3.7 item 5: an azp, when present, must be us (the library checks it only with several audiences).
    if (claims.azp !== undefined && claims.azp !== this.settings.clientId) {
      throw new UpstreamError(this.id, "the ID token was refused: azp is not this client");
    }

    let info: Record<string, unknown> = { ...claims };
    const missing =
      claims[this.settings.subjectClaim] === undefined ||
      claims.email === undefined ||
      claims[this.settings.groupsClaim] === undefined;
    if (missing && as.userinfo_endpoint) {
      try {
        const res = await oauth.userInfoRequest(as, client, tokens.access_token, this.http);
        info = { ...(await oauth.processUserInfoResponse(as, client, claims.sub, res)), ...claims };
      } catch (e) {
        // A userinfo that fails, or names another user (Core §5.3.2), is not used: the ID token's claims stand.
        if (e instanceof UpstreamError || !isProtocolError(e)) throw e;
      }
    }
    const user = this.toUser(info, { ...tokens });
    await this.addWorkspaceGroups(user);
    return user;
  }

  /**
   * Google Workspace groups from the Directory API, for a verified address of the configured domain only (anyone
   * else is refused by the allow rules anyway, and the directory knows nothing of them).
   */
  private async addWorkspaceGroups(user: UpstreamUser): Promise<void> {
    if (!this.workspace || !user.email || !user.emailVerified) return;
    const domain = this.settings.hostedDomain;
    if (domain !== undefined && user.hostedDomain !== domain) return;
    const groups = await this.workspace.groupsOf(user.email);
    user.groups = [...new Set([...user.groups, ...groups])];
  }

  /**
   * The ID token's signature, by oauth4webapi against the provider's JWKS. A key id the cached set does not know
   * (the provider rotated) fetches it again, at most once per cooldown; callers meanwhile join that one fetch.
   */
  private async verifySignature(d: Discovered, response: Response): Promise<void> {
    const used = d.keys;
    try {
      try {
        await oauth.validateApplicationLevelSignature(used, response, this.http);
      } catch (e) {
        if (!(e instanceof oauth.OperationProcessingError && e.code === oauth.KEY_SELECTION)) throw e;
        if (d.keys === used) {
          if (this.now() - this.lastUnknownKidRefetch < UNKNOWN_KID_COOLDOWN_MS) throw e;
          this.lastUnknownKidRefetch = this.now();
          d.keys = { ...d.as };
        }
        await oauth.validateApplicationLevelSignature(d.keys, response, this.http);
      }
    } catch (e) {
      // A key the provider publishes that WebCrypto cannot use is the provider's fault too, not a bug of ours.
      if (!(e instanceof UpstreamError) && !isProtocolError(e)) {
        throw new UpstreamError(this.id, `the ID token was refused: ${(e as Error).message}`);
      }
      throw this.refusal(e, (e) => signatureRefusal(e, d.as));
    }
  }

  private toUser(claims: Record<string, unknown>, tokens: Record<string, unknown>): UpstreamUser {
    const str = (v: unknown) => (typeof v === "string" && v !== "" ? v : undefined);
    const email = str(claims.email);
    const subject = str(claims[this.settings.subjectClaim]) ?? str(claims.sub);
    if (!subject) throw new UpstreamError(this.id, "the provider named no user (no sub)");
    const groupsClaim = claims[this.settings.groupsClaim];
    const groups = Array.isArray(groupsClaim)
      ? groupsClaim.map(String)
      : typeof groupsClaim === "string"
        ? [groupsClaim]
        : [];
    const user: UpstreamUser = {
      subject,
      emailVerified:
        claims.email_verified === true ||
        claims.email_verified === "true" ||
        (this.settings.trustEmail === true && email !== undefined),
      groups,
      upstreamTokens: tokens,
    };
    if (email) user.email = email;
    const name = str(claims.name) ?? str(claims.preferred_username);
    if (name) user.name = name;
    const hd = str(claims.hd);
    if (hd) user.hostedDomain = hd;
    return user;
  }
}

/** How a refused code exchange (the token endpoint's answer, or the ID token's claims) reads on the error page. */
function tokenRefusal(e: Error, clientId: string): string | undefined {
  if (e instanceof oauth.ResponseBodyError) {
    return `its token endpoint answered HTTP ${e.status}: ${`${e.error} ${e.error_description ?? ""}`.trim()}`;
  }
  if (e instanceof oauth.WWWAuthenticateChallengeError) {
    const p = e.cause[0]?.parameters;
    const words = `${p?.error ?? ""} ${p?.error_description ?? ""}`.trim();
    return `its token endpoint answered HTTP ${e.status}${words ? `: ${words}` : ""}`;
  }
  if (!(e instanceof oauth.OperationProcessingError)) return undefined;
  if (e.code === oauth.RESPONSE_IS_NOT_CONFORM || e.code === oauth.RESPONSE_IS_NOT_JSON) {
    return `its token endpoint answered HTTP ${statusOf(e)}`;
  }
  if (e.message.includes('"id_token"')) return "its token response has no id_token";
  const why = idTokenClaimRefusal(e, clientId);
  if (why) return `the ID token was refused: ${why}`;
  if (/JWT|ID Token/.test(e.message)) return `the ID token was refused: ${e.message}`;
  return `its token response was refused: ${e.message}`;
}

/** The ID token claim oauth4webapi refused, in the words of the error page. */
function idTokenClaimRefusal(e: oauth.OperationProcessingError, clientId: string): string | undefined {
  const cause = e.cause as { claim?: string; claims?: Record<string, unknown>; expected?: unknown } | undefined;
  const claims = cause?.claims ?? {};
  if (e.code === oauth.JWT_TIMESTAMP_CHECK) {
    return cause?.claim === "exp" ? "it has expired" : cause?.claim === "nbf" ? "it is not valid yet" : undefined;
  }
  if (e.code !== oauth.JWT_CLAIM_COMPARISON) return undefined;
  switch (cause?.claim) {
    case "iss":
      return `its iss (${String(claims.iss)}) is not ${String(cause.expected)}`;
    case "aud":
      // Core §3.1.3.7 item 4: several audiences need an azp naming us.
      return Array.isArray(claims.aud) && claims.aud.includes(clientId)
        ? "it names other audiences as well, and no azp"
        : `its aud (${JSON.stringify(claims.aud)}) is not this client`;
    case "azp":
      return "azp is not this client";
    case "nonce":
      return "its nonce does not match this sign-in";
  }
  return undefined;
}

/** A signature oauth4webapi refused, or a JWKS it could not use, in the words of the error page. */
function signatureRefusal(e: Error, as: oauth.AuthorizationServer): string | undefined {
  if (e instanceof oauth.UnsupportedOperationError) {
    return `the ID token was refused: it is signed in a way Gatehouse does not accept (${e.message})`;
  }
  if (!(e instanceof oauth.OperationProcessingError)) return undefined;
  if (e.code === oauth.KEY_SELECTION) {
    return e.message.includes("multiple")
      ? "the ID token was refused: it names no key and the provider publishes several"
      : "the ID token was refused: it is signed with a key the provider does not publish";
  }
  if (e.message === "JWT signature verification failed")
    return "the ID token was refused: its signature does not verify";
  const status = statusOf(e);
  return `its JWKS (${as.jwks_uri}) answered HTTP ${status ?? 200} without keys`;
}
