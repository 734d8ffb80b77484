// A Google sign-in's Workspace groups, read from the Admin SDK Directory API with a service account (domain-wide
// delegation), so that `allow.groups` and `groupRoles` can require group membership — Google's ID tokens carry no
// groups. The service account signs an RFC 7523 assertion (iss: its client_email, sub: the user it acts as, aud: its
// token_uri, scope: admin.directory.group.readonly), exchanges it at token_uri for an access token (cached until a
// minute before it expires), and lists `groups?userKey=<email>` (the groups the user is a direct member of; each
// group is named by its email). Every request is bounded by the login's timeout, the pages by MAX_PAGES; any failure
// is an UpstreamError, so the sign-in fails (closed) with a page saying why.

import { importPKCS8, SignJWT } from "jose";
import { BoundedMap } from "../bounded-map.ts";
import type { WorkspaceSettings } from "../config/types.ts";
import { fetchJson, isObject, UpstreamError } from "../net/upstream.ts";

export const DIRECTORY_GROUP_SCOPE = "https://www.googleapis.com/auth/admin.directory.group.readonly";
const JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/** 200 per page (the API's maximum), 10 pages: 2,000 groups is more than any allow rule needs to find one in. */
const PAGE_SIZE = 200;
const MAX_PAGES = 10;

export class WorkspaceDirectory {
  private key: Promise<CryptoKey> | undefined;
  /** Access tokens by the user the service account acts as. */
  private readonly tokens = new BoundedMap<string, { token: string; until: number }>(1000);

  constructor(
    private readonly s: WorkspaceSettings,
    /** The login method's id, for errors. */
    private readonly provider: string,
    private readonly now: () => number,
    private readonly doFetch?: typeof fetch,
  ) {}

  private get http() {
    return { provider: this.provider, timeoutMs: this.s.timeoutMs, ...(this.doFetch ? { fetch: this.doFetch } : {}) };
  }

  /** The access token of the service account acting as `subject`. */
  private async accessToken(subject: string): Promise<string> {
    const hit = this.tokens.get(subject);
    if (hit && hit.until > this.now()) return hit.token;
    this.key ??= importPKCS8(this.s.privateKey, "RS256");
    const now = Math.floor(this.now() / 1000);
    const assertion = await new SignJWT({ scope: DIRECTORY_GROUP_SCOPE })
      .setProtectedHeader({ alg: "RS256", typ: "JWT" })
      .setIssuer(this.s.clientEmail)
      .setSubject(subject)
      .setAudience(this.s.tokenUri)
      .setIssuedAt(now)
      .setExpirationTime(now + 600)
      .sign(await this.key);
    const { status, body } = await fetchJson(
      this.s.tokenUri,
      {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
        body: new URLSearchParams({ grant_type: JWT_BEARER, assertion }).toString(),
      },
      this.http,
    );
    if (status !== 200 || !isObject(body) || typeof body.access_token !== "string") {
      const why =
        isObject(body) && typeof body.error === "string" ? `: ${body.error} ${body.error_description ?? ""}` : "";
      throw new UpstreamError(
        this.provider,
        `the Workspace service account ${this.s.clientEmail} could not get a token (HTTP ${status}${why.trimEnd()}); check its domain-wide delegation for ${DIRECTORY_GROUP_SCOPE}`,
      );
    }
    const ttl = typeof body.expires_in === "number" ? body.expires_in : 3600;
    this.tokens.set(subject, { token: body.access_token, until: this.now() + Math.max(0, ttl - 60) * 1000 });
    return body.access_token;
  }

  /** The emails of the groups `email` is a direct member of. */
  async groupsOf(email: string): Promise<string[]> {
    const token = await this.accessToken(this.s.adminEmail ?? email);
    const groups: string[] = [];
    let pageToken: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const url = new URL(`${this.s.directoryUrl}/admin/directory/v1/groups`);
      url.searchParams.set("userKey", email);
      url.searchParams.set("maxResults", String(PAGE_SIZE));
      if (pageToken) url.searchParams.set("pageToken", pageToken);
      const { status, body } = await fetchJson(
        url.href,
        { headers: { authorization: `Bearer ${token}`, accept: "application/json" } },
        this.http,
      );
      if (status !== 200 || !isObject(body)) {
        const message = isObject(body) && isObject(body.error) ? String(body.error.message ?? "") : "";
        throw new UpstreamError(
          this.provider,
          `the Workspace directory answered HTTP ${status}${message ? ` (${message})` : ""} when listing the groups of ${email}`,
        );
      }
      if (Array.isArray(body.groups)) {
        for (const g of body.groups) if (isObject(g) && typeof g.email === "string") groups.push(g.email);
      }
      pageToken = typeof body.nextPageToken === "string" && body.nextPageToken !== "" ? body.nextPageToken : undefined;
      if (!pageToken) break;
    }
    return groups;
  }
}
