// Client authentication at the token, revocation and introspection endpoints (RFC 6749 §2.3.1): HTTP Basic
// (client_secret_basic), body parameters (client_secret_post), or none for public clients — each client only by
// the method it registered. Failures are invalid_client with 401 (which also tells Claude to register again).

import { constantTimeEqual, sha256Hex } from "../crypto.ts";
import type { ClientRecord } from "../store/types.ts";
import { OAuthError } from "./errors.ts";
import { optional } from "./grants/common.ts";

export interface PresentedCredentials {
  clientId: string;
  secret?: string;
  method: "none" | "client_secret_post" | "client_secret_basic";
}

/** Reads client credentials from the Authorization header or the form; throws on malformed or conflicting ones. */
export function presentedCredentials(headers: Headers, form: URLSearchParams): PresentedCredentials | undefined {
  const auth = headers.get("authorization");
  if (auth && /^basic /i.test(auth)) {
    let decoded: string;
    try {
      decoded = atob(auth.slice(6).trim());
    } catch {
      throw new OAuthError("invalid_client", "malformed Basic credentials", 401, {
        "www-authenticate": 'Basic realm="gatehouse"',
      });
    }
    const malformed = (why: string) =>
      new OAuthError("invalid_client", `malformed Basic credentials (${why})`, 401, {
        "www-authenticate": 'Basic realm="gatehouse"',
      });
    const colon = decoded.indexOf(":");
    if (colon < 0) throw malformed("no colon between client id and secret");
    // RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding.
    const formDecode = (s: string) => {
      try {
        return decodeURIComponent(s.replace(/\+/g, " "));
      } catch {
        throw malformed("a bad percent-escape");
      }
    };
    const clientId = formDecode(decoded.slice(0, colon));
    const secret = formDecode(decoded.slice(colon + 1));
    const bodyId = optional(form, "client_id");
    if (bodyId !== null && bodyId !== clientId)
      throw new OAuthError("invalid_request", "client_id in the body differs from the Basic credentials");
    if (form.has("client_secret"))
      throw new OAuthError("invalid_request", "use one client authentication method, not two");
    return { clientId, secret, method: "client_secret_basic" };
  }
  // RFC 6749 §3.2: no parameter twice (which client_id, or which secret, would be meant?).
  const clientId = optional(form, "client_id");
  const secret = optional(form, "client_secret");
  if (!clientId) return undefined;
  return secret !== null ? { clientId, secret, method: "client_secret_post" } : { clientId, method: "none" };
}

/** Checks presented credentials against the registered client. */
export function authenticateClient(client: ClientRecord | undefined, creds: PresentedCredentials): ClientRecord {
  const fail = (why: string) =>
    new OAuthError(
      "invalid_client",
      why,
      401,
      creds.method === "client_secret_basic" ? { "www-authenticate": 'Basic realm="gatehouse"' } : {},
    );
  if (!client) throw fail(`unknown client ${creds.clientId} (it may have been deleted: register again)`);
  const expected = client.token_endpoint_auth_method;
  if (expected === "none") {
    if (creds.method !== "none") throw fail("this client is public: it must not send a secret");
    return client;
  }
  if (creds.method !== expected) throw fail(`this client authenticates with ${expected}, not ${creds.method}`);
  if (
    !creds.secret ||
    !client.client_secret_sha256 ||
    !constantTimeEqual(sha256Hex(creds.secret), client.client_secret_sha256)
  ) {
    throw fail("client authentication failed");
  }
  return client;
}
