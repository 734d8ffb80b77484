// POST /register: Dynamic Client Registration (RFC 7591 §3), open (no initial access token: MCP clients cannot
// send one), bounded by a global rate so that a flood of registrations cannot fill the state.

import { Elysia } from "elysia";
import { readLimited } from "../../net/body.ts";
import { OAuthError } from "../../oauth/errors.ts";
import { registerClient } from "../../oauth/registration.ts";
import { StoreUnavailableError } from "../../store/types.ts";
import { preflight, withCors } from "../cors.ts";
import { noStoreJson, type OAuthHttpDeps, refuseForeignOrigin, routes } from "./common.ts";
import { AuthLimits } from "./limits.ts";

const BODY_LIMIT = 16 * 1024;
/** Registrations accepted per minute, all clients together. */
export const REGISTRATIONS_PER_MINUTE = 60;

export const registration = (deps: OAuthHttpDeps) => {
  const { as, log, origins } = deps;
  const app = new Elysia({ name: "registration" });
  const register = async (request: Request): Promise<Response> => {
    refuseForeignOrigin(request, deps);
    // registrationEnabled: false takes the endpoint out of the metadata, and refuses whoever calls it anyway.
    if (!as.config.registrationEnabled) {
      throw new OAuthError(
        "access_denied",
        "dynamic client registration is disabled on this server (oauthAs.registrationEnabled: false)",
        403,
      );
    }
    // RFC 7591 §3.1: the metadata is sent as application/json (which also makes a browser preflight it).
    const type = request.headers.get("content-type");
    if (type !== null && !type.toLowerCase().startsWith("application/json")) {
      throw new OAuthError("invalid_client_metadata", `Content-Type must be application/json (got ${type})`);
    }
    const wait = await deps.limits.register(AuthLimits.source(request, deps.peerAddress));
    if (wait !== undefined) {
      as.audit.event({ event: "client_registration_refused", success: false, reason: "rate limit (per source)" });
      return withCors(
        noStoreJson(
          {
            error: "temporarily_unavailable",
            error_description: `too many registrations from here; retry in ${wait} s`,
          },
          429,
          { "retry-after": String(wait) },
        ),
        request,
        origins,
      );
    }
    const allowance = await deps.registrations.take("all");
    if (!allowance.ok) {
      log.warn("registration refused: too many registrations this minute", { limit: REGISTRATIONS_PER_MINUTE });
      as.audit.event({ event: "client_registration_refused", success: false, reason: "rate limit" });
      return withCors(
        noStoreJson(
          { error: "temporarily_unavailable", error_description: "too many registrations; retry in a minute" },
          429,
          { "retry-after": String(allowance.retryAfterSeconds) },
        ),
        request,
        origins,
      );
    }
    const body = await readLimited(request, BODY_LIMIT);
    if (!body.ok) throw new OAuthError("invalid_client_metadata", `the body is larger than ${BODY_LIMIT} bytes`, 413);
    let json: unknown;
    try {
      json = JSON.parse(body.text);
    } catch {
      throw new OAuthError("invalid_client_metadata", "the body is not JSON");
    }
    const registered = registerClient(json, as.config.redirectUriAllowlist, as.nowSeconds());
    await as.store.putClient(registered.record);
    const redirectHosts = [...new Set(registered.record.redirect_uris.map((u) => new URL(u).host))].join(",");
    log.info("client registered", {
      client_id: registered.record.client_id,
      client_name: registered.record.client_name,
      auth_method: registered.record.token_endpoint_auth_method,
      redirect_hosts: redirectHosts,
    });
    as.audit.event({
      event: "client_registered",
      success: true,
      client_id: registered.record.client_id,
      client_name: registered.record.client_name,
      redirect_hosts: redirectHosts,
    });
    return withCors(noStoreJson(registered.response, 201), request, origins);
  };
  for (const path of routes(as.config.issuerUrl, "/register")) {
    app.post(
      path,
      async ({ request }) => {
        try {
          return await register(request);
        } catch (e) {
          if (e instanceof OAuthError) {
            log.info("registration refused", {
              error: e.error,
              reason: e.description,
              peer: deps.peerAddress(request),
            });
            as.audit.event({
              event: "client_registration_refused",
              success: false,
              reason: `${e.error}: ${e.description}`,
            });
          } else if (e instanceof StoreUnavailableError) {
            // Answered 503 by the error serializer; the outage itself is logged once by the store.
            log.info("registration refused: the state store cannot be written now", {
              peer: deps.peerAddress(request),
            });
            as.audit.event({
              event: "client_registration_refused",
              success: false,
              reason: "temporarily_unavailable: the state store cannot be written now",
            });
          }
          throw e;
        }
      },
      { parse: "none" },
    );
    app.options(path, ({ request }) => preflight(request, origins, "POST, OPTIONS"));
  }
  return app;
};
