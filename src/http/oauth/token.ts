// POST /token (RFC 6749 §3.2), /revoke (RFC 7009 §2) and /introspect (RFC 7662 §2): form in, JSON out, never cached.

import { Elysia } from "elysia";
import { OAuthError } from "../../oauth/errors.ts";
import { introspect, revoke } from "../../oauth/revocation.ts";
import { namedClientId, token, tokenRefused } from "../../oauth/token.ts";
import { preflight, withCors } from "../cors.ts";
import { noStoreJson, type OAuthHttpDeps, readForm, refuseForeignOrigin, routes } from "./common.ts";
import { AuthLimits } from "./limits.ts";

/** The client id of Basic credentials, if any (the form's client_id is read by the endpoint itself). */
function basicClientId(headers: Headers): string | undefined {
  const auth = headers.get("authorization");
  if (!auth?.toLowerCase().startsWith("basic ")) return undefined;
  try {
    const decoded = atob(auth.slice(6).trim());
    const id = decoded.slice(0, Math.max(0, decoded.indexOf(":")));
    return id ? decodeURIComponent(id.replace(/\+/g, " ")).slice(0, 200) : undefined;
  } catch {
    return undefined;
  }
}

/** The form's client_id, read from a copy of the request (the endpoint reads the original). */
async function formClientId(request: Request): Promise<string | undefined> {
  if (!(request.headers.get("content-type") ?? "").toLowerCase().startsWith("application/x-www-form-urlencoded")) {
    return undefined;
  }
  try {
    return (await readForm(request.clone() as Request)).get("client_id")?.slice(0, 200) ?? undefined;
  } catch {
    return undefined;
  }
}

export const tokenEndpoints = (deps: OAuthHttpDeps) => {
  const { as, origins } = deps;
  const app = new Elysia({ name: "token" });
  /**
   * /revoke and /introspect: a refusal (a wrong client secret, a missing token, a wrong content type) gets one log
   * line and an audit record of the endpoint's event with success false, as /token's do.
   */
  const refusalsRecorded =
    (
      event: "token_revoked" | "token_introspected",
      handle: (request: Request, form: URLSearchParams) => Promise<Response>,
    ) =>
    async (request: Request): Promise<Response> => {
      let form: URLSearchParams | undefined;
      try {
        form = await readForm(request);
        return await handle(request, form);
      } catch (e) {
        if (e instanceof OAuthError) {
          const clientId = namedClientId(request.headers, form);
          const what = event === "token_revoked" ? "revocation" : "introspection";
          as.log.info(`${what} refused`, { client_id: clientId, error: e.error, reason: e.description });
          as.audit.event({
            event,
            success: false,
            ...(clientId ? { client_id: clientId } : {}),
            reason: `${e.error}: ${e.description}`,
          });
        }
        throw e;
      }
    };
  const endpoints: [string, (request: Request) => Promise<Response>][] = [
    [
      "/token",
      async (request) => {
        let form: URLSearchParams;
        try {
          form = await readForm(request);
        } catch (e) {
          if (e instanceof OAuthError) {
            as.onTokenRefused?.(e.error);
            tokenRefused(as, e, undefined, request.headers);
          }
          throw e;
        }
        return noStoreJson(await token(as, request.headers, form));
      },
    ],
    [
      "/revoke",
      refusalsRecorded("token_revoked", async (request, form) => {
        await revoke(as, request.headers, form);
        return noStoreJson({});
      }),
    ],
    [
      "/introspect",
      refusalsRecorded("token_introspected", async (request, form) =>
        noStoreJson(await introspect(as, request.headers, form)),
      ),
    ],
  ];
  for (const [name, handle] of endpoints) {
    for (const path of routes(as.config.issuerUrl, name)) {
      app.post(
        path,
        async ({ request }) => {
          refuseForeignOrigin(request, deps);
          // Failures are counted per source and per client (oauthAs.rateLimits.tokenFailuresPerMinute): past the
          // limit both are refused for a while, so a secret or a refresh token cannot be guessed at full speed.
          const source = AuthLimits.source(request, deps.peerAddress);
          const clientId = basicClientId(request.headers) ?? (await formClientId(request));
          const wait = deps.limits.tokenBlocked(source, clientId);
          if (wait !== undefined) {
            deps.log.info(`${name} refused: too many failed requests`, { source, client_id: clientId });
            return withCors(
              noStoreJson(
                { error: "slow_down", error_description: `too many failed requests; retry in ${wait} s` },
                429,
                { "retry-after": String(wait) },
              ),
              request,
              origins,
            );
          }
          try {
            return withCors(await handle(request), request, origins);
          } catch (e) {
            if (e instanceof OAuthError && e.status !== 503) await deps.limits.tokenFailed(source, clientId);
            throw e;
          }
        },
        { parse: "none" },
      );
      app.options(path, ({ request }) => preflight(request, origins, "POST, OPTIONS"));
    }
  }
  return app;
};
