// The provider chain's one answer when every provider refused: a whole refusal of one provider (status, challenge,
// error and description agree), the one that points at protected resource metadata if any, a 503 before all.

import { expect, test } from "bun:test";
import type { AuthFailure, AuthProvider } from "../../src/auth/identity.ts";
import { providerChain, unauthorized, unavailable } from "../../src/auth/providers.ts";

const refusing = (kind: AuthProvider["kind"], failure: AuthFailure): AuthProvider => ({
  kind,
  authenticate: () => ({ ok: false, failure }),
});
const req = { headers: new Headers({ authorization: "Bearer x" }), peerAddress: undefined };

test("the discoverable provider's refusal is the answer, its description with it", async () => {
  const revoked: AuthFailure = {
    status: 401,
    error: "invalid_token",
    description: "the token has been revoked",
    challenge:
      'Bearer error="invalid_token", error_description="the token has been revoked", resource_metadata="https://m/"',
  };
  const r = await providerChain([
    refusing("bearer", unauthorized("invalid bearer token", "invalid_token")),
    refusing("oauth_as", revoked),
  ])(req);
  expect(r.ok).toBe(false);
  if (!r.ok) {
    expect(r.failure).toMatchObject({
      status: 401,
      description: "the token has been revoked",
      challenge: revoked.challenge,
    });
    expect(r.failure.tried).toBe("bearer: invalid bearer token; oauth_as: the token has been revoked");
  }
});

test("a provider that could not check the token makes the answer 503, not a refusal", async () => {
  const r = await providerChain([
    refusing("bearer", unauthorized("invalid bearer token", "invalid_token")),
    refusing("oauth_as", unavailable("the state store cannot be read now")),
  ])(req);
  expect(r.ok).toBe(false);
  if (!r.ok) {
    expect(r.failure).toMatchObject({
      status: 503,
      description: "the token cannot be checked right now; retry shortly",
    });
    expect(r.failure.tried).toContain("oauth_as: the state store cannot be read now"); // the log has the detail
  }
});

test("a discoverable provider's verdict on the token wins over another provider being down", async () => {
  const expired: AuthFailure = {
    status: 401,
    error: "invalid_token",
    description: "the token has expired",
    challenge: 'Bearer error="invalid_token", resource_metadata="https://m/"',
  };
  const r = await providerChain([
    refusing("oauth_as", expired),
    refusing("jwt", unavailable("cannot fetch its JWKS (http://idp.internal/jwks)")),
  ])(req);
  expect(r.ok).toBe(false);
  if (!r.ok) expect(r.failure).toMatchObject({ status: 401, description: "the token has expired" });
});
