// Sign-in with GitHub (OAuth apps and GitHub Apps; GitHub is plain OAuth 2.0, not an OpenID provider): the
// authorization code flow with `state` and PKCE done by oauth4webapi against a hand-built description of GitHub's
// endpoints (github.com, or a GitHub Enterprise Server at baseUrl), then the REST API for the user (GET /user), the
// primary verified email (GET /user/emails), organizations (GET /user/orgs) and teams (GET /user/teams).
// Organizations become groups `org`, teams `org/team`. Endpoint formats relied on are listed in README ("GitHub").

import * as oauth from "oauth4webapi";
import type { GithubSettings } from "../config/types.ts";
import { fetchJson, isObject, UpstreamError } from "../net/upstream.ts";
import {
  authorizationUrl,
  bodyOf,
  callbackRefusal,
  type HttpOptions,
  httpOptions,
  statusOf,
  upstreamError,
} from "./oauth-client.ts";
import type { InteractiveLogin, LoginTransaction, UpstreamUser } from "./types.ts";

export type { GithubSettings };

/** GitHub has no discovery document: its OAuth endpoints, under github.com or a GHES base URL. */
function githubServer(baseUrl: string): oauth.AuthorizationServer {
  const base = baseUrl.replace(/\/$/, "");
  return {
    issuer: base,
    authorization_endpoint: `${base}/login/oauth/authorize`,
    token_endpoint: `${base}/login/oauth/access_token`,
  };
}

export class GithubLogin implements InteractiveLogin {
  readonly kind = "github" as const;
  readonly id: string;
  readonly label: string;
  private readonly as: oauth.AuthorizationServer;
  private readonly client: oauth.Client;
  private readonly http: HttpOptions;

  constructor(
    readonly settings: GithubSettings,
    private readonly doFetch?: typeof fetch,
  ) {
    this.id = settings.id;
    this.label = settings.label;
    this.as = githubServer(settings.baseUrl);
    this.client = { client_id: settings.clientId };
    this.http = httpOptions(
      settings.baseUrl,
      { provider: settings.id, timeoutMs: settings.timeoutMs, ...(doFetch ? { fetch: doFetch } : {}) },
      { "user-agent": "Gatehouse" },
    );
  }

  private get(path: string, token: string) {
    return fetchJson(
      `${this.settings.apiUrl.replace(/\/$/, "")}${path}`,
      {
        headers: {
          authorization: `Bearer ${token}`,
          accept: "application/vnd.github+json",
          "x-github-api-version": "2022-11-28",
          "user-agent": "Gatehouse",
        },
      },
      { provider: this.id, timeoutMs: this.settings.timeoutMs, ...(this.doFetch ? { fetch: this.doFetch } : {}) },
    );
  }

  private refusal(e: unknown, explain: (e: Error) => string | undefined): UpstreamError {
    return upstreamError(this.id, e, explain);
  }

  async start(tx: LoginTransaction, callbackUrl: string): Promise<string> {
    const params = {
      client_id: this.settings.clientId,
      redirect_uri: callbackUrl,
      scope: this.settings.scopes.join(" "),
      state: tx.state,
      code_challenge: await oauth.calculatePKCECodeChallenge(tx.verifier),
      code_challenge_method: "S256",
      allow_signup: "false",
    };
    try {
      return authorizationUrl(this.as, params, {}, this.http);
    } catch (e) {
      throw this.refusal(e, (e) => `its authorization endpoint was refused: ${e.message}`);
    }
  }

  async finish(params: URLSearchParams, tx: LoginTransaction, callbackUrl: string): Promise<UpstreamUser> {
    let callback: URLSearchParams;
    try {
      callback = oauth.validateAuthResponse(this.as, this.client, params, tx.state);
    } catch (e) {
      throw this.refusal(e, (e) => callbackRefusal(e, "GitHub", params, this.as));
    }
    if (!callback.get("code")) throw new UpstreamError(this.id, "the callback has no code");
    let body: oauth.TokenEndpointResponse;
    try {
      const response = await oauth.authorizationCodeGrantRequest(
        this.as,
        this.client,
        oauth.ClientSecretPost(this.settings.clientSecret),
        callback,
        callbackUrl,
        tx.verifier,
        this.http,
      );
      body = await oauth.processAuthorizationCodeResponse(this.as, this.client, response);
    } catch (e) {
      throw this.refusal(e, githubTokenRefusal);
    }
    const token = body.access_token;
    const user = await this.get("/user", token);
    if (user.status !== 200 || !isObject(user.body) || typeof user.body.login !== "string") {
      throw new UpstreamError(this.id, `GitHub's /user answered HTTP ${user.status}`);
    }
    const [emails, orgs, teams] = await Promise.all([
      this.get("/user/emails?per_page=100", token),
      this.get("/user/orgs?per_page=100", token),
      this.get("/user/teams?per_page=100", token),
    ]);
    const list = (r: { status: number; body: unknown }) =>
      r.status === 200 && Array.isArray(r.body) ? r.body.filter(isObject) : [];
    const primary = list(emails).find((e) => e.primary === true && e.verified === true);
    const orgLogins = list(orgs)
      .map((o) => o.login)
      .filter((l): l is string => typeof l === "string");
    const teamSlugs = list(teams)
      .map((t) =>
        isObject(t.organization) && typeof t.organization.login === "string" && typeof t.slug === "string"
          ? `${t.organization.login}/${t.slug}`
          : undefined,
      )
      .filter((x): x is string => x !== undefined);
    const u: UpstreamUser = {
      subject: user.body.login,
      emailVerified: primary !== undefined,
      groups: [...orgLogins, ...teamSlugs],
      githubOrgs: orgLogins,
      githubTeams: teamSlugs,
      upstreamTokens: { ...body },
    };
    if (primary && typeof primary.email === "string") u.email = primary.email;
    if (typeof user.body.name === "string" && user.body.name) u.name = user.body.name;
    return u;
  }
}

/** GitHub's token endpoint refusing, in the words of the error page. It answers errors with HTTP 200 and `error`. */
function githubTokenRefusal(e: Error): string | undefined {
  const status = statusOf(e) ?? 200;
  const body = bodyOf(e);
  const words = body ? `${body.error ?? ""} ${body.error_description ?? ""}`.trim() : "";
  if (words) return `GitHub's token endpoint answered HTTP ${status}: ${words}`;
  if (e instanceof oauth.OperationProcessingError && e.message.includes('"access_token"')) {
    return `GitHub's token endpoint answered HTTP ${status} without an access_token`;
  }
  if (status !== 200) return `GitHub's token endpoint answered HTTP ${status} without an access_token`;
  return `GitHub's token response was refused: ${e.message}`;
}
