// Builds the provider chain of `serverAuth.providers` from configuration. New provider kinds plug in here.

import type { AuthConfig } from "../config/types.ts";
import type { AuthProvider, AuthRequest, AuthResult } from "./identity.ts";
import { bearerProvider, forwardedProvider, noneProvider, providerChain } from "./providers.ts";

/** Providers that need more than configuration (the OAuth authorization server's token verifier). */
export interface ExtraProviders {
  oauth_as?: AuthProvider;
}

export function buildChain(auth: AuthConfig, extra: ExtraProviders = {}): (req: AuthRequest) => Promise<AuthResult> {
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
      default:
        throw new Error(`unknown provider ${kind satisfies never}`);
    }
  });
  return providerChain(providers);
}
