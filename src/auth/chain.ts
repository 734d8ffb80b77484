// Builds the provider chain of `serverAuth.providers` from configuration. New provider kinds plug in here.

import type { AuthConfig } from "../config/types.ts";
import type { SharedServices } from "../store/shared.ts";
import type { AuthProvider, AuthRequest, AuthResult } from "./identity.ts";
import { alsoIntrospected, introspectionProvider } from "./introspection.ts";
import { jwtProvider } from "./jwt.ts";
import { bearerProvider, forwardedProvider, noneProvider, providerChain } from "./providers.ts";

/** Providers that need more than configuration (the OAuth authorization server's token verifier). */
export interface ExtraProviders {
  oauth_as?: AuthProvider;
}

export interface ChainDeps {
  now(): number;
  fetch?: typeof fetch;
  /** Caches shared with other replicas (introspection results). */
  shared?: SharedServices;
}

export function buildChain(
  auth: AuthConfig,
  extra: ExtraProviders,
  deps: ChainDeps,
): (req: AuthRequest) => Promise<AuthResult> {
  const providers: AuthProvider[] = auth.providers.map((kind): AuthProvider => {
    switch (kind) {
      case "none":
        return noneProvider;
      case "bearer":
        return bearerProvider(auth.bearer?.tokens ?? []);
      case "forwarded":
        if (!auth.forwarded) throw new Error("forwarded provider without configuration");
        return forwardedProvider(auth.forwarded);
      case "oauth_as":
        if (!extra.oauth_as) throw new Error("the oauth_as provider needs the authorization server");
        return extra.oauth_as;
      case "jwt": {
        if (!auth.jwt) throw new Error("jwt provider without configuration");
        const jwt = jwtProvider(auth.jwt, deps);
        // introspection.alsoFor "jwt": a JWT must verify here and be active at the issuer (revocation before exp).
        return auth.introspection?.alsoFor.includes("jwt")
          ? alsoIntrospected(jwt, auth.introspection, auth.jwt, deps)
          : jwt;
      }
      case "introspection":
        if (!auth.introspection) throw new Error("introspection provider without configuration");
        return introspectionProvider(auth.introspection, deps);
      default:
        throw new Error(`unknown provider ${kind satisfies never}`);
    }
  });
  return providerChain(providers);
}
