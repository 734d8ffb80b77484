// Sign-in through an OpenID Connect provider (OpenID Connect Core 1.0): discovery (§4 of OIDC Discovery, issuer
// checked exactly), the authorization code flow with PKCE, `state` and `nonce`, and the ID token validated per Core
// §3.1.3.7: signature from the provider's JWKS (cached, refetched on an unknown `kid`), `iss`, `aud`, `azp`, `exp`,
// `nonce`. Userinfo fills in claims the ID token lacks. The upstream's RFC 9207 `iss` is checked when it sends or
// advertises one. `resource` is never sent upstream (Entra refuses it).

import { createHash } from "node:crypto";
import { type JWTPayload, jwtVerify } from "jose";
import type { OidcSettings } from "../config/types.ts";
import { RemoteJwks } from "../net/jwks.ts";
import { fetchJson, isObject, UpstreamError } from "../net/upstream.ts";
import type { InteractiveLogin, LoginTransaction, UpstreamUser } from "./types.ts";

export type { OidcSettings };

interface ProviderMetadata {
  issuer: string;
  authorization_endpoint: string;
  token_endpoint: string;
  jwks_uri: string;
  userinfo_endpoint?: string;
  id_token_signing_alg_values_supported?: string[];
  token_endpoint_auth_methods_supported?: string[];
  authorization_response_iss_parameter_supported?: boolean;
}

const DISCOVERY_TTL_MS = 3_600_000;
const CLOCK_SKEW_S = 30;

export function pkceChallenge(verifier: string): string {
  return createHash("sha256").update(verifier).digest("base64url");
}

export class OidcLogin implements InteractiveLogin {
  readonly kind = "oidc" as const;
  readonly id: string;
  readonly label: string;
  private metadata: { value: ProviderMetadata; until: number } | undefined;
  private jwks: RemoteJwks | undefined;

  constructor(
    readonly settings: OidcSettings,
    private readonly now: () => number,
    private readonly doFetch?: typeof fetch,
  ) {
    this.id = settings.id;
    this.label = settings.label;
  }

  private fetch(url: string, init: RequestInit = {}) {
    return fetchJson(url, init, {
      provider: this.id,
      timeoutMs: this.settings.timeoutMs,
      ...(this.doFetch ? { fetch: this.doFetch } : {}),
    });
  }

  /** The provider's discovery document, cached for an hour; its `issuer` must be exactly the configured one. */
  async discover(): Promise<ProviderMetadata> {
    if (this.metadata && this.metadata.until > this.now()) return this.metadata.value;
    const issuer = this.settings.issuer.replace(/\/$/, "");
    const { status, body } = await this.fetch(`${issuer}/.well-known/openid-configuration`, {
      headers: { accept: "application/json" },
    });
    if (status !== 200 || !isObject(body))
      throw new UpstreamError(this.id, `its discovery document answered HTTP ${status}`);
    const m = body as unknown as ProviderMetadata;
    for (const key of ["authorization_endpoint", "token_endpoint", "jwks_uri"] as const) {
      if (typeof m[key] !== "string") throw new UpstreamError(this.id, `its discovery document has no ${key}`);
    }
    const tenantTemplate = this.settings.tenantIssuer && m.issuer.includes("{tenantid}");
    if (m.issuer !== this.settings.issuer && m.issuer !== issuer && !tenantTemplate) {
      throw new UpstreamError(this.id, `its discovery document names issuer ${m.issuer}, not ${this.settings.issuer}`);
    }
    if (!this.jwks || this.metadata?.value.jwks_uri !== m.jwks_uri) {
      this.jwks = new RemoteJwks(m.jwks_uri, {
        provider: this.id,
        timeoutMs: this.settings.timeoutMs,
        now: this.now,
        ...(this.doFetch ? { fetch: this.doFetch } : {}),
      });
    }
    this.metadata = { value: m, until: this.now() + DISCOVERY_TTL_MS };
    return m;
  }

  async start(tx: LoginTransaction, callbackUrl: string): Promise<string> {
    const m = await this.discover();
    const u = new URL(m.authorization_endpoint);
    const params: Record<string, string> = {
      response_type: "code",
      client_id: this.settings.clientId,
      redirect_uri: callbackUrl,
      scope: this.settings.scopes.join(" "),
      state: tx.state,
      nonce: tx.nonce,
      code_challenge: pkceChallenge(tx.verifier),
      code_challenge_method: "S256",
      ...this.settings.authParams,
    };
    for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
    return u.href;
  }

  async finish(params: URLSearchParams, tx: LoginTransaction, callbackUrl: string): Promise<UpstreamUser> {
    const m = await this.discover();
    const error = params.get("error");
    const iss = params.get("iss");
    // RFC 9207 §2.4: a present `iss` must be the provider's; one advertised but missing is a mix-up risk.
    if (iss !== null && iss !== m.issuer)
      throw new UpstreamError(this.id, `the callback's iss (${iss}) is not ${m.issuer}`);
    if (iss === null && m.authorization_response_iss_parameter_supported) {
      throw new UpstreamError(this.id, "the callback has no iss although the provider advertises it (RFC 9207)");
    }
    if (error)
      throw new UpstreamError(
        this.id,
        `the provider refused: ${error}${params.get("error_description") ? ` (${params.get("error_description")})` : ""}`,
      );
    const code = params.get("code");
    if (!code) throw new UpstreamError(this.id, "the callback has no code");

    const form = new URLSearchParams({
      grant_type: "authorization_code",
      code,
      redirect_uri: callbackUrl,
      code_verifier: tx.verifier,
    });
    const headers: Record<string, string> = {
      "content-type": "application/x-www-form-urlencoded",
      accept: "application/json",
    };
    const methods = m.token_endpoint_auth_methods_supported ?? ["client_secret_basic"];
    if (this.settings.clientSecret && methods.includes("client_secret_basic")) {
      const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, "+");
      headers.authorization = `Basic ${btoa(`${enc(this.settings.clientId)}:${enc(this.settings.clientSecret)}`)}`;
    } else {
      form.set("client_id", this.settings.clientId);
      if (this.settings.clientSecret) form.set("client_secret", this.settings.clientSecret);
    }
    const { status, body } = await this.fetch(m.token_endpoint, { method: "POST", headers, body: form.toString() });
    if (status !== 200 || !isObject(body)) {
      const e = isObject(body) ? `${body.error ?? ""} ${body.error_description ?? ""}`.trim() : "";
      throw new UpstreamError(this.id, `its token endpoint answered HTTP ${status}${e ? `: ${e}` : ""}`);
    }
    if (typeof body.id_token !== "string") throw new UpstreamError(this.id, "its token response has no id_token");
    const claims = await this.validateIdToken(body.id_token, tx.nonce, m);

    let info: Record<string, unknown> = claims;
    const missing =
      claims[this.settings.subjectClaim] === undefined ||
      claims.email === undefined ||
      claims[this.settings.groupsClaim] === undefined;
    if (missing && m.userinfo_endpoint && typeof body.access_token === "string") {
      const r = await this.fetch(m.userinfo_endpoint, {
        headers: { authorization: `Bearer ${body.access_token}`, accept: "application/json" },
      });
      // OIDC Core §5.3.2: the userinfo `sub` must be the ID token's.
      if (r.status === 200 && isObject(r.body) && r.body.sub === claims.sub) info = { ...r.body, ...claims };
    }
    return this.toUser(info, body);
  }

  /** OIDC Core §3.1.3.7. Exposed for tests, which show each check refusing a token. */
  async validateIdToken(
    idToken: string,
    nonce: string,
    m?: ProviderMetadata,
  ): Promise<JWTPayload & Record<string, unknown>> {
    const meta = m ?? (await this.discover());
    const jwks = this.jwks;
    if (!jwks) throw new UpstreamError(this.id, "no JWKS");
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(idToken, (header) => jwks.key(header), {
        audience: this.settings.clientId,
        algorithms: meta.id_token_signing_alg_values_supported?.filter((a) => a !== "none") ?? ["RS256"],
        currentDate: new Date(this.now()),
        clockTolerance: CLOCK_SKEW_S,
        requiredClaims: ["iss", "sub", "aud", "exp", "iat"],
        ...(meta.issuer.includes("{tenantid}") ? {} : { issuer: meta.issuer }),
      }));
    } catch (e) {
      if (e instanceof UpstreamError) throw e;
      const code = (e as { code?: string }).code ?? "";
      const why =
        code === "ERR_JWT_EXPIRED"
          ? "it has expired"
          : code === "ERR_JWKS_NO_MATCHING_KEY"
            ? "it is signed with a key the provider does not publish"
            : code === "ERR_JWS_SIGNATURE_VERIFICATION_FAILED"
              ? "its signature does not verify"
              : (e as Error).message;
      throw new UpstreamError(this.id, `the ID token was refused: ${why}`);
    }
    const p = payload as JWTPayload & Record<string, unknown>;
    if (meta.issuer.includes("{tenantid}") && p.iss !== meta.issuer.replace("{tenantid}", String(p.tid))) {
      throw new UpstreamError(this.id, `the ID token was refused: iss ${String(p.iss)} does not match its tenant`);
    }
    // Core §3.1.3.7 items 4–5: with several audiences, azp must be us; an azp, when present, must be us.
    const aud = Array.isArray(p.aud) ? p.aud : [p.aud];
    if ((aud.length > 1 || p.azp !== undefined) && p.azp !== this.settings.clientId) {
      throw new UpstreamError(this.id, "the ID token was refused: azp is not this client");
    }
    if (p.nonce !== nonce)
      throw new UpstreamError(this.id, "the ID token was refused: its nonce does not match this sign-in");
    return p;
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
