// What the grant handlers share: the request they handle and its one-value parameters.

import type { ClientRecord } from "../../store/types.ts";
import type { AuthorizationServer, TokenResponse } from "../authorization-server.ts";
import { OAuthError } from "../errors.ts";

/** A token request, once its client is authenticated and allowed the grant. */
export interface GrantRequest {
  as: AuthorizationServer;
  client: ClientRecord;
  form: URLSearchParams;
  /** Set by a handler once it logged (and audited) its refusal, so the token endpoint does not do it twice. */
  outcome?: { logged: boolean };
}

export type GrantHandler = (r: GrantRequest) => Promise<TokenResponse>;

/** A parameter that must be present once (RFC 6749 §3.2: "Request and response parameters MUST NOT be included more than once"). */
export function required(form: URLSearchParams, name: string): string {
  const v = optional(form, name);
  if (!v) throw new OAuthError("invalid_request", `${name} is required`);
  return v;
}

/** A parameter that may be absent, but never sent more than once (RFC 6749 §3.2); null when absent. */
export function optional(form: URLSearchParams, name: string): string | null {
  if (form.getAll(name).length > 1) throw new OAuthError("invalid_request", `${name} was sent more than once`);
  return form.get(name);
}
