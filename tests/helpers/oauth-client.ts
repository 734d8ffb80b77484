// A headless OAuth client for the official SDK: an OAuthClientProvider whose "browser" is fetch — it follows the
// authorization redirects with the reverse proxy's user header, keeps the consent cookie, approves (or denies) the
// consent form, and stops at the redirect URI with the code.

import type { OAuthClientProvider } from "@modelcontextprotocol/sdk/client/auth.js";
import type {
  OAuthClientInformationMixed,
  OAuthClientMetadata,
  OAuthTokens,
} from "@modelcontextprotocol/sdk/shared/auth.js";
import { pkce } from "./oauth-flow.ts";

export interface BrowserOptions {
  /** Headers the reverse proxy would add (x-forwarded-user …). */
  headers?: Record<string, string>;
  decision?: "approve" | "deny";
  /** Scopes to untick on the consent page (grant less than asked). */
  untick?: string[];
  /** Unticked scopes to tick on the consent page (those offered beyond what the app asked for). */
  tick?: string[];
  /** The login method to choose on a consent page that offers several. */
  login?: string;
  /** The browser's cookies, shared between runs to act as the same browser (cookies ignore ports, as browsers do). */
  jar?: Map<string, string>;
  /** A local account to sign in with when Gatehouse shows its password form. */
  credentials?: { username: string; password: string };
  /** Stop (without requesting it) at the first URL this returns true for. */
  stopAt?: (url: string) => boolean;
  /** Fetch from this local address (node:http) instead of Bun's fetch; used for 127.0.0.2 tests. */
  fetchImpl?: (
    url: string,
    init: { method: string; headers: Record<string, string>; body?: string },
  ) => Promise<{ status: number; headers: Headers; text: string }>;
}

export interface BrowserResult {
  /** Where the authorization server finally sent the browser (the client's redirect URI with its query). */
  landed?: URL;
  /** The URL where `stopAt` stopped the browser. */
  stoppedAt?: string;
  /** Every URL requested, in order. */
  visited: string[];
  /** The last page shown when it never got there. */
  status: number;
  page?: string;
  consentShown: boolean;
  /** The HTML of the last consent page shown. */
  consentPage?: string;
}

async function defaultFetch(url: string, init: { method: string; headers: Record<string, string>; body?: string }) {
  const res = await fetch(url, { ...init, redirect: "manual" });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/** Drives an authorization URL like a browser would, until it reaches `redirectPrefix`. */
export async function browse(
  authorizationUrl: string,
  redirectPrefix: string,
  options: BrowserOptions = {},
): Promise<BrowserResult> {
  let o = options;
  const doFetch = o.fetchImpl ?? defaultFetch;
  const cookies = o.jar ?? new Map<string, string>();
  const visited: string[] = [];
  let url = authorizationUrl;
  let method = "GET";
  let body: string | undefined;
  let consentShown = false;
  let consentPage: string | undefined;
  for (let hop = 0; hop < 20; hop++) {
    const seen = { consentShown, ...(consentPage ? { consentPage } : {}), visited };
    if (url.startsWith(redirectPrefix)) return { landed: new URL(url), status: 302, ...seen };
    if (o.stopAt?.(url)) return { stoppedAt: url, status: 0, ...seen };
    visited.push(url);
    const headers: Record<string, string> = { ...o.headers };
    if (cookies.size > 0) headers.cookie = [...cookies].map(([k, v]) => `${k}=${v}`).join("; ");
    if (body !== undefined) headers["content-type"] = "application/x-www-form-urlencoded";
    const res = await doFetch(url, { method, headers, ...(body !== undefined ? { body } : {}) });
    for (const c of res.headers.getSetCookie?.() ?? []) {
      const [pair] = c.split(";");
      const eq = (pair as string).indexOf("=");
      cookies.set((pair as string).slice(0, eq), (pair as string).slice(eq + 1));
    }
    const location = res.headers.get("location");
    if (res.status >= 300 && res.status < 400 && location) {
      url = new URL(location, url).href;
      method = "GET";
      body = undefined;
      continue;
    }
    const form = /<form method="post" action="([^"]+)"[^>]*>/.exec(res.text);
    if (res.status === 200 && form && res.text.includes('name="request_id"')) {
      consentShown = true;
      consentPage = res.text;
      const field = (name: string) => new RegExp(`name="${name}" value="([^"]+)"`).exec(res.text)?.[1] ?? "";
      url = new URL(form[1] as string, url).href;
      method = "POST";
      const decision = o.decision === "deny" ? "deny" : o.login ? `approve:${o.login}` : "approve";
      const params = new URLSearchParams({ request_id: field("request_id"), csrf: field("csrf"), decision });
      // Like a browser: the ticked scope checkboxes go with the form (o.untick leaves some out, o.tick adds some).
      if (res.text.includes('name="narrowable"')) {
        params.set("narrowable", "1");
        for (const m of res.text.matchAll(/name="scope" value="([^"]+)"([^>]*)>/g)) {
          const [name, checked] = [m[1] as string, (m[2] as string).includes("checked")];
          if (checked ? !o.untick?.includes(name) : o.tick?.includes(name)) params.append("scope", name);
        }
      }
      body = params.toString();
      continue;
    }
    const password = /<form method="post" action="([^"]+)"[^>]*>/.exec(res.text);
    if (res.status === 200 && password && res.text.includes('name="password"') && o.credentials) {
      const field = (name: string) => new RegExp(`name="${name}" value="([^"]+)"`).exec(res.text)?.[1] ?? "";
      url = new URL(password[1] as string, url).href;
      method = "POST";
      body = new URLSearchParams({
        state: field("state"),
        csrf: field("csrf"),
        username: o.credentials.username,
        password: o.credentials.password,
      }).toString();
      o = { ...o, credentials: undefined }; // once: a second form is a refusal to report
      continue;
    }
    return { status: res.status, page: res.text, consentShown, ...(consentPage ? { consentPage } : {}), visited };
  }
  throw new Error("too many redirects");
}

export class HeadlessOAuthProvider implements OAuthClientProvider {
  private info: OAuthClientInformationMixed | undefined;
  private saved: OAuthTokens | undefined;
  private verifier = "";
  lastBrowse: BrowserResult | undefined;
  authorizationUrls: URL[] = [];

  constructor(
    readonly redirect: string,
    private readonly browser: BrowserOptions = {},
    private readonly metadata: Partial<OAuthClientMetadata> = {},
    readonly clientMetadataUrl?: string,
  ) {}

  get redirectUrl() {
    return this.redirect;
  }
  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: "Gatehouse test client",
      redirect_uris: [this.redirect],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
      ...this.metadata,
    };
  }
  clientInformation() {
    return this.info;
  }
  saveClientInformation(info: OAuthClientInformationMixed) {
    this.info = info;
  }
  tokens() {
    return this.saved;
  }
  saveTokens(tokens: OAuthTokens) {
    this.saved = tokens;
  }
  saveCodeVerifier(v: string) {
    this.verifier = v;
  }
  codeVerifier() {
    return this.verifier;
  }
  async redirectToAuthorization(url: URL) {
    this.authorizationUrls.push(url);
    this.lastBrowse = await browse(url.href, this.redirect, this.browser);
  }
  /** The code the browser brought back, if it got one. */
  code(): string | undefined {
    return this.lastBrowse?.landed?.searchParams.get("code") ?? undefined;
  }
}

/**
 * The authorization code flow by hand, for what the SDK does not let a test choose (the scope or resource asked
 * for): registers a public client, drives /authorize in the headless browser (consent, sign-in) and redeems the code.
 */
export async function tokensByBrowser(
  base: string,
  o: { redirect: string; clientName?: string; scope?: string; resource?: string; browser?: BrowserOptions },
): Promise<{ access_token: string; scope: string }> {
  const reg = await fetch(`${base}/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      redirect_uris: [o.redirect],
      token_endpoint_auth_method: "none",
      ...(o.clientName ? { client_name: o.clientName } : {}),
    }),
  });
  const { client_id } = (await reg.json()) as { client_id: string };
  const { verifier, challenge } = pkce();
  const resource: Record<string, string> = o.resource ? { resource: o.resource } : {};
  const query = new URLSearchParams({
    response_type: "code",
    client_id,
    redirect_uri: o.redirect,
    code_challenge: challenge,
    code_challenge_method: "S256",
    ...resource,
  });
  if (o.scope) query.set("scope", o.scope);
  const result = await browse(`${base}/authorize?${query}`, o.redirect, o.browser);
  const code = result.landed?.searchParams.get("code");
  if (!code) throw new Error(`no code: ${result.status} ${result.page?.slice(0, 300)}`);
  const res = await fetch(`${base}/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code,
      redirect_uri: o.redirect,
      client_id,
      code_verifier: verifier,
      ...resource,
    }),
  });
  if (res.status !== 200) throw new Error(`token failed: ${res.status} ${await res.text()}`);
  return (await res.json()) as { access_token: string; scope: string };
}
