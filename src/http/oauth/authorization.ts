// The authorization server's browser pages: GET /authorize (the authorization request), POST /authorize (the
// consent form's answer), and the login steps — GET /login/{id}/callback (back from an identity provider),
// GET/POST /login/{id} (the local password form) and /logout. Pages carry anti-framing, no-referrer and no-store
// headers; forms are bound to the browser by SameSite=Lax cookies and answered with 303 (RFC 9700 §4.12).

import { Elysia } from "elysia";
import { Cookies } from "../../login/cookies.ts";
import { loginCallback, logout, passwordForm, passwordSubmit } from "../../login/flow.ts";
import { readLimited } from "../../net/body.ts";
import { type AuthorizeOutcome, authorize, decideConsent, type PendingAuthorization } from "../../oauth/authorize.ts";
import { isLoopback } from "../../oauth/redirect-uri.ts";
import { StoreUnavailableError } from "../../store/types.ts";
import { type OAuthHttpDeps, routes } from "./common.ts";
import { AuthLimits } from "./limits.ts";
import { consentPage, errorPage, logoutPage, pageHeaders, passwordPage } from "./pages.ts";

const SCOPE_DESCRIPTIONS: Record<string, string> = {
  mcp: "use the MCP tools, resources and prompts you are allowed to use",
  offline_access: "stay connected while you are away (refresh tokens)",
};

/** The CSP form-action must allow where the 303 after the form goes (browsers check redirects of form posts). */
function formAction(p: PendingAuthorization, extra: string[]): string {
  const u = new URL(p.redirectUri);
  const target = u.protocol === "http:" || u.protocol === "https:" ? u.origin : u.protocol;
  return ["'self'", target, ...extra].join(" ");
}

async function readForm(request: Request): Promise<URLSearchParams> {
  const body = await readLimited(request, 16 * 1024);
  return new URLSearchParams(body.ok ? body.text : "");
}

export const authorization = (deps: OAuthHttpDeps) => {
  const { as, pendings } = deps;
  const issuer = as.config.issuerUrl;
  const base = new URL(issuer).pathname.replace(/\/$/, "");
  // Where a login may send the browser after the consent form (the providers' authorization endpoints).
  const upstreamOrigins = as.logins.interactive.flatMap((m) => {
    const c = m.config;
    if (c.type === "oidc") return [new URL(c.oidc.issuer).origin];
    if (c.type === "github") return [new URL(c.github.baseUrl).origin];
    return [];
  });

  const render = async (outcome: AuthorizeOutcome): Promise<Response> => {
    switch (outcome.kind) {
      case "page":
        return new Response(errorPage(outcome.title, outcome.detail), {
          status: outcome.status,
          headers: pageHeaders(),
        });
      case "redirect": {
        const headers = new Headers({
          location: outcome.location,
          "cache-control": "no-store",
          "referrer-policy": "no-referrer",
        });
        for (const c of outcome.cookies ?? []) headers.append("set-cookie", c);
        return new Response(null, { status: outcome.status ?? 302, headers });
      }
      case "password": {
        // After the form, the browser goes on to the app: the CSP must let the form's redirect go there.
        const pending = await pendings.peek(outcome.tx.pendingId);
        const action = pending ? formAction(pending, []) : "'self'";
        return new Response(
          passwordPage({
            action: `${base}/login/${outcome.method.config.id}`,
            state: outcome.tx.state,
            csrf: outcome.tx.csrf,
            label: outcome.method.config.label,
            ...(outcome.error ? { error: outcome.error } : {}),
          }),
          { status: outcome.status ?? 200, headers: pageHeaders(action) },
        );
      }
      case "consent": {
        const p = outcome.pending;
        await pendings.add(p);
        const redirect = new URL(p.redirectUri);
        const html = consentPage({
          requestId: p.id,
          csrf: p.csrf,
          action: `${base}/authorize`,
          clientName: p.client.client_name,
          clientId: p.client.client_id,
          redirectHost: redirect.host || redirect.protocol,
          redirectIsLoopback: isLoopback(redirect),
          user: p.user?.subject,
          logins: outcome.logins.map((l) => ({ id: l.config.id, label: l.config.label })),
          scopes: [
            ...p.scopes.map((name) => ({ name, required: as.config.requiredScopes.includes(name), offered: false })),
            ...(p.offered ?? []).map((name) => ({ name, required: false, offered: true })),
          ].map((s) => ({
            ...s,
            description: SCOPE_DESCRIPTIONS[s.name] ?? as.describeScope(s.name) ?? "a scope this server defines",
          })),
        });
        const extra = p.user ? [] : [`${issuer}`, ...upstreamOrigins];
        return new Response(html, {
          status: 200,
          headers: { ...pageHeaders(formAction(p, extra)), "set-cookie": as.cookies.consent(p.browser) },
        });
      }
    }
  };

  /** A page while the state store is failing: the user can simply try again (nothing was half-done). */
  const orUnavailable =
    <A extends unknown[]>(h: (...args: A) => Promise<Response>) =>
    async (...args: A): Promise<Response> => {
      try {
        return await h(...args);
      } catch (e) {
        if (!(e instanceof StoreUnavailableError)) throw e;
        const headers = new Headers(pageHeaders());
        headers.set("retry-after", String(e.retryAfterSeconds));
        return new Response(
          errorPage(
            "Please try again in a moment",
            "Gatehouse cannot save your sign-in right now (its state store is unavailable). Nothing was changed: reload this page, or start again from your app, in a little while.",
          ),
          { status: 503, headers },
        );
      }
    };

  const browser = (request: Request) => ({
    headers: request.headers,
    peer: deps.peerAddress(request),
    session: Cookies.read(request.headers, as.cookies.sessionName),
  });

  // /authorize, the sign-in pages and their callbacks, per source (oauthAs.rateLimits.authorizePerMinute).
  const app = new Elysia({ name: "authorization" }).onBeforeHandle(async ({ request }) => {
    const wait = await deps.limits.authorize(AuthLimits.source(request, deps.peerAddress));
    if (wait === undefined) return undefined;
    const headers = new Headers(pageHeaders());
    headers.set("retry-after", String(wait));
    return new Response(errorPage("Too many requests", `Try again in ${wait} seconds.`), { status: 429, headers });
  });
  for (const path of routes(issuer, "/authorize")) {
    app.get(
      path,
      orUnavailable(async ({ request }: { request: Request }) =>
        render(await authorize(as, { params: new URL(request.url).searchParams, ...browser(request) })),
      ),
    );
    app.post(
      path,
      orUnavailable(async ({ request }: { request: Request }) =>
        render(
          await decideConsent(as, pendings, {
            form: await readForm(request),
            cookie: Cookies.read(request.headers, as.cookies.consentName),
            ...browser(request),
          }),
        ),
      ),
      { parse: "none" },
    );
  }
  type WithId = { request: Request; params: Record<string, string> };
  for (const path of routes(issuer, "/login/:id/callback")) {
    app.get(
      path,
      orUnavailable(async ({ request, params }: WithId) =>
        render(
          await loginCallback(
            as,
            pendings,
            (params as { id: string }).id,
            new URL(request.url).searchParams,
            request.headers,
          ),
        ),
      ),
    );
  }
  for (const path of routes(issuer, "/login/:id")) {
    app.get(
      path,
      orUnavailable(async ({ request, params }: WithId) =>
        render(
          await passwordForm(as, (params as { id: string }).id, new URL(request.url).searchParams, request.headers),
        ),
      ),
    );
    app.post(
      path,
      orUnavailable(async ({ request, params }: WithId) =>
        render(
          await passwordSubmit(as, pendings, (params as { id: string }).id, await readForm(request), request.headers),
        ),
      ),
      {
        parse: "none",
      },
    );
  }
  for (const path of routes(issuer, "/logout")) {
    app.get(path, () => new Response(logoutPage(undefined, `${base}/logout`), { headers: pageHeaders() }));
    app.post(
      path,
      orUnavailable(async ({ request }: { request: Request }) => {
        const subject = await logout(as, request.headers);
        const headers = new Headers(pageHeaders());
        headers.append("set-cookie", as.cookies.clearSession());
        return new Response(logoutPage(subject ?? "", `${base}/logout`), { headers });
      }),
      { parse: "none" },
    );
  }
  return app;
};
