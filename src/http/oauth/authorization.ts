// GET /authorize (the authorization request) and POST /authorize (the consent form's answer). Pages carry
// anti-framing, no-referrer and no-store headers; the consent form is bound to the browser by a cookie — `__Host-`
// prefixed and Secure on an https issuer — with SameSite=Lax, and answered with 303 (RFC 9700 §4.12).

import { Elysia } from "elysia";
import { type AuthorizeOutcome, authorize, decideConsent, type PendingAuthorization } from "../../oauth/authorize.ts";
import { isLoopback } from "../../oauth/redirect-uri.ts";
import { readLimited } from "../body.ts";
import { type OAuthHttpDeps, routes } from "./common.ts";
import { consentPage, errorPage, pageHeaders } from "./pages.ts";

const SCOPE_DESCRIPTIONS: Record<string, string> = {
  mcp: "use the MCP tools, resources and prompts you are allowed to use",
  offline_access: "stay connected while you are away (refresh tokens)",
};

/**
 * Browsers keep Secure (and so `__Host-`) cookies only for https pages — and for http://localhost, which they
 * treat as a secure context. On any other plain-http issuer the cookie goes without the prefix.
 */
function secureCookies(issuer: string): boolean {
  const u = new URL(issuer);
  return u.protocol === "https:" || u.hostname === "localhost";
}

function readCookie(request: Request, name: string): string | undefined {
  for (const part of (request.headers.get("cookie") ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** The CSP form-action must allow where the 303 after the form goes (browsers check redirects of form posts). */
function formAction(p: PendingAuthorization): string {
  const u = new URL(p.redirectUri);
  const target = u.protocol === "http:" || u.protocol === "https:" ? u.origin : u.protocol;
  return `'self' ${target}`;
}

export const authorization = (deps: OAuthHttpDeps) => {
  const { as, pendings } = deps;
  const issuer = as.config.issuerUrl;
  const secure = secureCookies(issuer);
  const cookie = secure ? "__Host-gatehouse-consent" : "gatehouse-consent";
  const action = `${new URL(issuer).pathname.replace(/\/$/, "")}/authorize`;

  const render = (outcome: AuthorizeOutcome): Response => {
    if (outcome.kind === "page") {
      return new Response(errorPage(outcome.title, outcome.detail), { status: outcome.status, headers: pageHeaders() });
    }
    if (outcome.kind === "redirect") {
      return new Response(null, {
        status: outcome.status ?? 302,
        headers: { location: outcome.location, "cache-control": "no-store", "referrer-policy": "no-referrer" },
      });
    }
    const p = outcome.pending;
    pendings.add(p);
    const cookieValue = `${cookie}=${p.browser}; Path=/; HttpOnly; SameSite=Lax; Max-Age=600${secure ? "; Secure" : ""}`;
    const redirect = new URL(p.redirectUri);
    const html = consentPage({
      requestId: p.id,
      csrf: p.csrf,
      action,
      clientName: p.client.client_name,
      clientId: p.client.client_id,
      redirectHost: redirect.host || redirect.protocol,
      redirectIsLoopback: isLoopback(redirect),
      user: p.user.subject,
      scopes: p.scopes.map((name) => ({
        name,
        description: SCOPE_DESCRIPTIONS[name] ?? "a scope this server defines",
      })),
    });
    return new Response(html, { status: 200, headers: { ...pageHeaders(formAction(p)), "set-cookie": cookieValue } });
  };

  const app = new Elysia({ name: "authorization" });
  for (const path of routes(issuer, "/authorize")) {
    app.get(path, async ({ request }) =>
      render(
        await authorize(as, {
          params: new URL(request.url).searchParams,
          headers: request.headers,
          peer: deps.peerAddress(request),
        }),
      ),
    );
    app.post(
      path,
      async ({ request }) => {
        const body = await readLimited(request, 16 * 1024);
        const form = new URLSearchParams(body.ok ? body.text : "");
        const outcome = await decideConsent(as, pendings, {
          form,
          cookie: readCookie(request, cookie),
          headers: request.headers,
          peer: deps.peerAddress(request),
        });
        return render(outcome);
      },
      { parse: "none" },
    );
  }
  return app;
};
