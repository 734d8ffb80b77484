// Steps of the OAuth flow through app.handle, for tests that check each rule of the authorization server.

import { createHash, randomBytes } from "node:crypto";
/** Anything that can send a request to Gatehouse: an in-process TestApp, or a running server (see `remote`). */
export interface Requester {
  request(path: string, init?: RequestInit & { peer?: string }): Promise<Response>;
}

/** A running Gatehouse at `base`, reached over loopback. */
export function remote(base: string): Requester {
  return {
    request: (path, init = {}) => {
      const { peer: _peer, ...rest } = init;
      return fetch(`${base}${path}`, { ...rest, redirect: "manual" });
    },
  };
}

export const ISSUER = "https://gh.example";
export const RESOURCE = `${ISSUER}/mcp`;
export const REDIRECT = "http://127.0.0.1:9999/callback";
export const USER = { "x-forwarded-user": "alice", "x-forwarded-groups": "staff" };

export function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString("base64url");
  return { verifier, challenge: createHash("sha256").update(verifier).digest("base64url") };
}

export function oauthConfig(
  extra: Record<string, unknown> = {},
  server: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    mcpServers: { s: { url: "http://127.0.0.1:1/mcp" }, ...server },
    serverAuth: {
      providers: ["oauth_as"],
      oauthAs: { issuerUrl: ISSUER, trustedSourceCidrs: ["127.0.0.1/32"], ...extra },
    },
  };
}

export async function register(
  t: Requester,
  body: Record<string, unknown> = {},
): Promise<Record<string, unknown> & { client_id: string }> {
  const res = await t.request("/register", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      redirect_uris: [REDIRECT],
      token_endpoint_auth_method: "none",
      grant_types: ["authorization_code", "refresh_token"],
      client_name: "Test",
      ...body,
    }),
  });
  if (res.status !== 201) throw new Error(`registration failed: ${res.status} ${await res.text()}`);
  return (await res.json()) as Record<string, unknown> & { client_id: string };
}

export function authorizeQuery(clientId: string, challenge: string, extra: Record<string, string | null> = {}): string {
  const q = new URLSearchParams({
    response_type: "code",
    client_id: clientId,
    redirect_uri: REDIRECT,
    code_challenge: challenge,
    code_challenge_method: "S256",
    state: "st4te",
    resource: RESOURCE,
    scope: "mcp",
  });
  for (const [k, v] of Object.entries(extra)) {
    if (v === null) q.delete(k);
    else q.set(k, v);
  }
  return `/authorize?${q}`;
}

/** Runs /authorize (approving consent when asked) and returns the final redirect location. */
export async function authorizeTo(
  t: Requester,
  query: string,
  options: { headers?: Record<string, string>; peer?: string; decision?: string } = {},
): Promise<Response> {
  const headers = options.headers ?? USER;
  const first = await t.request(query, { headers, peer: options.peer ?? "127.0.0.1" });
  if (first.status !== 200) return first;
  const html = await first.text();
  const field = (name: string) => new RegExp(`name="${name}" value="([^"]+)"`).exec(html)?.[1] ?? "";
  const cookie = (first.headers.get("set-cookie") ?? "").split(";")[0] as string;
  return t.request("/authorize", {
    method: "POST",
    headers: { ...headers, cookie, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      request_id: field("request_id"),
      csrf: field("csrf"),
      decision: options.decision ?? "approve",
    }).toString(),
    peer: options.peer ?? "127.0.0.1",
  });
}

export async function code(
  t: Requester,
  clientId: string,
  challenge: string,
  extra: Record<string, string | null> = {},
): Promise<string> {
  const res = await authorizeTo(t, authorizeQuery(clientId, challenge, extra));
  const location = res.headers.get("location");
  const c = location ? new URL(location).searchParams.get("code") : null;
  if (!c) throw new Error(`no code: ${res.status} ${location} ${await res.text()}`);
  return c;
}

export function tokenRequest(
  t: Requester,
  form: Record<string, string>,
  headers: Record<string, string> = {},
): Promise<Response> {
  return t.request("/token", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams(form).toString(),
  });
}

export async function tokens(
  t: Requester,
  clientId: string,
  resource = RESOURCE,
): Promise<{ access_token: string; refresh_token: string; expires_in: number; scope: string }> {
  const { verifier, challenge } = pkce();
  const c = await code(t, clientId, challenge, { resource });
  const res = await tokenRequest(t, {
    grant_type: "authorization_code",
    code: c,
    redirect_uri: REDIRECT,
    code_verifier: verifier,
    client_id: clientId,
    resource,
  });
  if (res.status !== 200) throw new Error(`token failed: ${res.status} ${await res.text()}`);
  return (await res.json()) as { access_token: string; refresh_token: string; expires_in: number; scope: string };
}
