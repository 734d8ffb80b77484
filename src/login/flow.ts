// The steps of a login after the consent page: the callback from an upstream provider (state single-use, bound to
// the browser by the login cookie, 10 minutes at most), the local password form, and logout.

import { UpstreamError } from "../net/upstream.ts";
import type { AuthorizationServer } from "../oauth/authorization-server.ts";
import { type AuthorizeOutcome, completeLogin, type PendingAuthorizations } from "../oauth/authorize.ts";
import { Cookies } from "./cookies.ts";
import type { LoginMethod, PendingLogin } from "./registry.ts";

const page = (status: 400 | 403 | 429 | 502, title: string, detail: string): AuthorizeOutcome => ({
  kind: "page",
  status,
  title,
  detail,
});

/** The transaction a request continues, if this browser started it. */
async function transaction(
  as: AuthorizationServer,
  methodId: string,
  state: string | null,
  headers: Headers,
  use: boolean,
): Promise<{ tx: PendingLogin; method: LoginMethod } | { page: AuthorizeOutcome }> {
  const tx = state ? await as.logins.peek(state) : undefined;
  if (!tx) {
    as.log.warn("login refused: unknown, used or expired state", { method: methodId });
    return {
      page: page(
        400,
        "This sign-in link is no longer valid",
        "It was already used or it expired. Start again from your app.",
      ),
    };
  }
  // The state must come back to the browser that left with it (RFC 9700 §4.7: CSRF on the redirect).
  if (Cookies.read(headers, as.cookies.loginName) !== tx.browser) {
    as.log.warn("login refused: the callback came to another browser", { method: methodId });
    return {
      page: page(
        403,
        "This sign-in was started in another browser",
        "Finish it in the browser where you started, or start again from your app.",
      ),
    };
  }
  const method = as.logins.methods.get(methodId);
  if (!method || tx.method !== methodId) {
    return { page: page(400, "This sign-in link is no longer valid", "It does not belong to this sign-in method.") };
  }
  // Used up only once the right browser brings it back: a foreign callback does not burn the owner's sign-in. Of two
  // callbacks racing (on two replicas), one gets it.
  if (use && !(await as.logins.take(tx.state))) {
    return {
      page: page(400, "This sign-in link is no longer valid", "It was already used. Start again from your app."),
    };
  }
  return { tx, method };
}

export async function loginCallback(
  as: AuthorizationServer,
  pendings: PendingAuthorizations,
  methodId: string,
  params: URLSearchParams,
  headers: Headers,
): Promise<AuthorizeOutcome> {
  const found = await transaction(as, methodId, params.get("state"), headers, true);
  if ("page" in found) return found.page;
  const { tx, method } = found;
  if (!method.upstream) return page(400, "This sign-in link is no longer valid", "This method has no callback.");
  try {
    const user = await method.upstream.finish(params, tx, as.logins.callbackUrl(methodId));
    return await completeLogin(as, pendings, method, tx.pendingId, user);
  } catch (e) {
    if (!(e instanceof UpstreamError)) throw e;
    as.log.warn("login failed", { method: methodId, reason: e.message });
    as.audit.event({ event: "sign_in_failed", success: false, method: methodId, reason: e.message });
    return page(502, `Could not sign you in with ${method.config.label}`, `${e.message}.`);
  }
}

export async function passwordForm(
  as: AuthorizationServer,
  methodId: string,
  params: URLSearchParams,
  headers: Headers,
): Promise<AuthorizeOutcome> {
  const found = await transaction(as, methodId, params.get("state"), headers, false);
  if ("page" in found) return found.page;
  if (!found.method.local)
    return page(400, "This sign-in link is no longer valid", "This method has no password form.");
  return { kind: "password", tx: found.tx, method: found.method };
}

export async function passwordSubmit(
  as: AuthorizationServer,
  pendings: PendingAuthorizations,
  methodId: string,
  form: URLSearchParams,
  headers: Headers,
): Promise<AuthorizeOutcome> {
  const found = await transaction(as, methodId, form.get("state"), headers, false);
  if ("page" in found) return found.page;
  const { tx, method } = found;
  if (!method.local) return page(400, "This sign-in link is no longer valid", "This method has no password form.");
  if (form.get("csrf") !== tx.csrf) return page(403, "This form could not be verified", "Start again from your app.");
  const username = form.get("username") ?? "";
  const outcome = await method.local.verify(username, form.get("password") ?? "");
  if (!outcome.ok) {
    as.log.info("login failed: local account", {
      method: methodId,
      username: username.slice(0, 64),
      reason: outcome.reason,
    });
    as.audit.event({
      event: "sign_in_failed",
      success: false,
      method: methodId,
      username: username.slice(0, 64),
      reason: outcome.reason,
    });
    const error =
      outcome.reason === "locked"
        ? `Too many failed attempts for this username. Try again in ${Math.ceil((outcome.retryAfterMs ?? 0) / 1000)} seconds.`
        : "Wrong username or password.";
    return { kind: "password", tx, method, error, status: outcome.reason === "locked" ? 429 : 401 };
  }
  if (!(await as.logins.take(tx.state))) {
    return page(400, "This sign-in link is no longer valid", "It was already used. Start again from your app.");
  }
  return completeLogin(as, pendings, method, tx.pendingId, outcome.user);
}

/** Ends the browser's session (the cookie is cleared by the caller). */
export async function logout(as: AuthorizationServer, headers: Headers): Promise<string | undefined> {
  const s = await as.sessions.read(Cookies.read(headers, as.cookies.sessionName));
  if (!s) return undefined;
  await as.sessions.revoke(s.id);
  as.log.info("logout", { subject: s.subject, method: s.method });
  as.audit.event({ event: "browser_session_revoked", success: true, subject: s.subject, reason: "logout" });
  return s.subject;
}
