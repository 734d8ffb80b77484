// Sign-in with GitHub (OAuth apps and GitHub Apps; GitHub is not an OpenID provider): the authorization code flow
// with `state` and PKCE, then the REST API for the user (GET /user), the primary verified email (GET /user/emails),
// organizations (GET /user/orgs) and teams (GET /user/teams). Organizations become groups `org`, teams `org/team`.
// Endpoint formats relied on are listed in README ("GitHub").

import type { GithubSettings } from "../config/types.ts";
import { fetchJson, isObject, UpstreamError } from "../net/upstream.ts";
import { pkceChallenge } from "./oidc.ts";
import type { InteractiveLogin, LoginTransaction, UpstreamUser } from "./types.ts";

export type { GithubSettings };

export class GithubLogin implements InteractiveLogin {
  readonly kind = "github" as const;
  readonly id: string;
  readonly label: string;

  constructor(
    readonly settings: GithubSettings,
    private readonly doFetch?: typeof fetch,
  ) {
    this.id = settings.id;
    this.label = settings.label;
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

  async start(tx: LoginTransaction, callbackUrl: string): Promise<string> {
    const u = new URL(`${this.settings.baseUrl.replace(/\/$/, "")}/login/oauth/authorize`);
    u.search = new URLSearchParams({
      client_id: this.settings.clientId,
      redirect_uri: callbackUrl,
      scope: this.settings.scopes.join(" "),
      state: tx.state,
      code_challenge: pkceChallenge(tx.verifier),
      code_challenge_method: "S256",
      allow_signup: "false",
    }).toString();
    return u.href;
  }

  async finish(params: URLSearchParams, tx: LoginTransaction, callbackUrl: string): Promise<UpstreamUser> {
    const error = params.get("error");
    if (error)
      throw new UpstreamError(
        this.id,
        `GitHub refused: ${error}${params.get("error_description") ? ` (${params.get("error_description")})` : ""}`,
      );
    const code = params.get("code");
    if (!code) throw new UpstreamError(this.id, "the callback has no code");
    const { status, body } = await fetchJson(
      `${this.settings.baseUrl.replace(/\/$/, "")}/login/oauth/access_token`,
      {
        method: "POST",
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          accept: "application/json",
          "user-agent": "Gatehouse",
        },
        body: new URLSearchParams({
          client_id: this.settings.clientId,
          client_secret: this.settings.clientSecret,
          code,
          redirect_uri: callbackUrl,
          code_verifier: tx.verifier,
        }).toString(),
      },
      { provider: this.id, timeoutMs: this.settings.timeoutMs, ...(this.doFetch ? { fetch: this.doFetch } : {}) },
    );
    // GitHub answers errors with HTTP 200 and an `error` field.
    if (status !== 200 || !isObject(body) || typeof body.access_token !== "string") {
      const e = isObject(body) ? `${body.error ?? ""} ${body.error_description ?? ""}`.trim() : "";
      throw new UpstreamError(
        this.id,
        `GitHub's token endpoint answered HTTP ${status}${e ? `: ${e}` : " without an access_token"}`,
      );
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
      upstreamTokens: body,
    };
    if (primary && typeof primary.email === "string") u.email = primary.email;
    if (typeof user.body.name === "string" && user.body.name) u.name = user.body.name;
    return u;
  }
}
