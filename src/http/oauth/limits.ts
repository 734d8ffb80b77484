// Limits on the authorization server's endpoints, on by default, per source address (the client's, behind a trusted
// proxy: net/forwarded.ts; never a loopback peer, which is a proxy or a local process) and per client: failed token, revocation and introspection requests (a client secret or a
// refresh token cannot be guessed at full speed; requests that succeed are never counted), browser requests to
// /authorize and the sign-in pages, and registrations. Settings: oauthAs.rateLimits (0 turns one off).

import type { Logger } from "../../log.ts";
import type { RateLimit } from "../../policy/rate-limit.ts";
import { currentRequest } from "../../request-context.ts";
import type { SharedServices } from "../../store/shared.ts";

export interface AuthLimitSettings {
  tokenFailuresPerMinute: number;
  authorizePerMinute: number;
  registerPerMinute: number;
}

/** How long a source or client that used up its failures is refused, at most (its bucket refills meanwhile). */
const MAX_BLOCK_MS = 5 * 60_000;

export class AuthLimits {
  private readonly failures?: RateLimit;
  private readonly browser?: RateLimit;
  private readonly registrations?: RateLimit;
  /** Keys that used up their failures, until when (this replica; the counts are shared through Redis). */
  private readonly blocked = new Map<string, number>();

  constructor(
    settings: AuthLimitSettings,
    shared: SharedServices,
    private readonly now: () => number,
    private readonly log: Logger,
    private readonly onLimited?: (limit: string) => void,
  ) {
    if (settings.tokenFailuresPerMinute > 0)
      this.failures = shared.rateLimit("token-failures", settings.tokenFailuresPerMinute);
    if (settings.authorizePerMinute > 0) this.browser = shared.rateLimit("authorize", settings.authorizePerMinute);
    if (settings.registerPerMinute > 0)
      this.registrations = shared.rateLimit("register-source", settings.registerPerMinute);
  }

  /**
   * The client address per-source limits count, or undefined when there is none to count: a loopback peer is a
   * reverse proxy on the same host (everyone would share its bucket — set gateway.trustedProxies so its
   * X-Forwarded-For is used) or a local process. Per-client limits apply either way.
   */
  static source(request: Request, peer: (r: Request) => string | undefined): string | undefined {
    const address = currentRequest()?.peer() ?? peer(request);
    if (!address || /^127\.|^::1$|^::ffff:127\./.test(address)) return undefined;
    return address;
  }

  /** Seconds to wait when this source or client is refused for its failures; undefined: go ahead. */
  tokenBlocked(source: string | undefined, clientId: string | undefined): number | undefined {
    const now = this.now();
    for (const key of this.keys(source, clientId)) {
      const until = this.blocked.get(key);
      if (until === undefined) continue;
      if (until > now) return Math.ceil((until - now) / 1000);
      this.blocked.delete(key);
    }
    return undefined;
  }

  /** A refused token request (invalid_client, invalid_grant…): counted against its source and its client. */
  async tokenFailed(source: string | undefined, clientId: string | undefined): Promise<void> {
    if (!this.failures) return;
    for (const key of this.keys(source, clientId)) {
      const a = await this.failures.take(key);
      if (!a.ok) {
        if (!this.blocked.has(key)) {
          this.log.warn("token requests refused for a while: too many failures", {
            key,
            retry_after: a.retryAfterSeconds,
          });
          this.onLimited?.("token_failures");
        }
        if (this.blocked.size > 10_000) this.blocked.clear();
        this.blocked.set(key, this.now() + Math.min(MAX_BLOCK_MS, a.retryAfterSeconds * 1000));
      }
    }
  }

  /** A browser request to /authorize or a sign-in page. */
  async authorize(source: string | undefined): Promise<number | undefined> {
    return source ? this.takeOne(this.browser, `src:${source}`, "authorize") : undefined;
  }

  /** A registration, per source (the global limit stays). */
  async register(source: string | undefined): Promise<number | undefined> {
    return source ? this.takeOne(this.registrations, `src:${source}`, "register") : undefined;
  }

  private async takeOne(limit: RateLimit | undefined, key: string, name: string): Promise<number | undefined> {
    if (!limit) return undefined;
    const a = await limit.take(key);
    if (a.ok) return undefined;
    this.log.warn(`${name} refused: rate limit`, { key });
    this.onLimited?.(name);
    return a.retryAfterSeconds;
  }

  private keys(source: string | undefined, clientId: string | undefined): string[] {
    const keys: string[] = [];
    if (source) keys.push(`src:${source}`);
    if (clientId) keys.push(`client:${clientId}`);
    return keys;
  }
}
