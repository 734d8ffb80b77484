// The one error type of the authorization server: RFC 6749 §5.2 / RFC 7591 §3.2.2 / RFC 6750 §3.1 error codes with
// their description and HTTP status. The global error handler serializes it as {error, error_description}.

export type OAuthErrorCode =
  | "invalid_request"
  | "invalid_client"
  | "invalid_grant"
  | "unauthorized_client"
  | "unsupported_grant_type"
  | "invalid_scope"
  | "invalid_target"
  | "access_denied"
  | "unsupported_response_type"
  | "server_error"
  | "temporarily_unavailable"
  | "invalid_redirect_uri"
  | "invalid_client_metadata"
  | "invalid_token"
  | "insufficient_scope"
  | "unsupported_token_type";

export class OAuthError extends Error {
  override name = "OAuthError";
  constructor(
    /** Named `error` as in the RFCs (not `code`: Elysia's onError reads `code` itself). */
    readonly error: OAuthErrorCode,
    readonly description: string,
    readonly status = 400,
    readonly headers: Record<string, string> = {},
  ) {
    super(description);
  }
}
