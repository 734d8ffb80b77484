// POST /token (RFC 6749 §3.2), /revoke (RFC 7009 §2) and /introspect (RFC 7662 §2): form in, JSON out, never cached.

import { Elysia } from "elysia";
import { OAuthError } from "../../oauth/errors.ts";
import { introspect, revoke } from "../../oauth/revocation.ts";
import { token, tokenRefused } from "../../oauth/token.ts";
import { preflight, withCors } from "../cors.ts";
import { noStoreJson, type OAuthHttpDeps, readForm, refuseForeignOrigin, routes } from "./common.ts";

export const tokenEndpoints = (deps: OAuthHttpDeps) => {
  const { as, origins } = deps;
  const app = new Elysia({ name: "token" });
  const endpoints: [string, (request: Request) => Promise<Response>][] = [
    [
      "/token",
      async (request) => {
        let form: URLSearchParams;
        try {
          form = await readForm(request);
        } catch (e) {
          if (e instanceof OAuthError) tokenRefused(as, e);
          throw e;
        }
        return noStoreJson(await token(as, request.headers, form));
      },
    ],
    [
      "/revoke",
      async (request) => {
        await revoke(as, request.headers, await readForm(request));
        return noStoreJson({});
      },
    ],
    ["/introspect", async (request) => noStoreJson(await introspect(as, request.headers, await readForm(request)))],
  ];
  for (const [name, handle] of endpoints) {
    for (const path of routes(as.config.issuerUrl, name)) {
      app.post(
        path,
        async ({ request }) => {
          refuseForeignOrigin(request, deps);
          return withCors(await handle(request), request, origins);
        },
        { parse: "none" },
      );
      app.options(path, ({ request }) => preflight(request, origins, "POST, OPTIONS"));
    }
  }
  return app;
};
