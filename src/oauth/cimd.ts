// Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document; MCP 2025-11-25 "Client ID Metadata
// Documents"): a client_id that is an https URL names a JSON document describing the client. Fetching it is an
// SSRF risk (draft §6.5), so: https only, the host resolved once and every address checked to be public, the
// connection pinned to that address, no redirects, at most 5 KB and a few seconds. Good documents are cached
// (bounded, per Cache-Control); failures are not.

import { lookup as dnsLookup } from "node:dns/promises";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { BoundedMap } from "../bounded-map.ts";
import type { Logger } from "../log.ts";
import { ipVersion, isPublicAddress } from "../net/cidr.ts";
import type { SharedCache } from "../store/shared.ts";
import type { ClientRecord } from "../store/types.ts";
import { OAuthError } from "./errors.ts";
import { GRANT_TYPES } from "./grant-types.ts";
import { parseRedirectUri } from "./redirect-uri.ts";

export const MAX_DOCUMENT_BYTES = 5 * 1024;
const CACHE_MAX_ENTRIES = 500;
const DEFAULT_CACHE_S = 300;
const MAX_CACHE_S = 86_400;

export interface CimdOptions {
  allowPrivateNetwork: boolean;
  timeoutMs: number;
  now(): number;
  log: Logger;
  /** DNS resolution (injectable for tests). */
  resolve?: (host: string) => Promise<{ address: string; family: number }[]>;
  /** Shared with other replicas (state.redis), behind this process's own cache. */
  shared?: SharedCache;
}

function invalid(description: string): OAuthError {
  return new OAuthError("invalid_client", `client metadata document: ${description}`, 400);
}

export class CimdFetcher {
  private cache = new BoundedMap<string, { client: ClientRecord; until: number }>(CACHE_MAX_ENTRIES);

  constructor(private readonly o: CimdOptions) {}

  /** A client_id in URL form (draft §3). */
  isMetadataUrl(clientId: string): boolean {
    return clientId.startsWith("https://") || (this.o.allowPrivateNetwork && clientId.startsWith("http://"));
  }

  /** Checks the URL form the draft requires (§3): https, a path, no fragment, userinfo, dot segments or query. */
  checkUrl(clientId: string): URL {
    let u: URL;
    try {
      u = new URL(clientId);
    } catch {
      throw invalid("the client_id is not a URL");
    }
    if (u.protocol !== "https:" && !(this.o.allowPrivateNetwork && u.protocol === "http:"))
      throw invalid("the client_id URL must use https");
    if (u.pathname === "/" || u.pathname === "") throw invalid("the client_id URL must have a path");
    if (u.hash || clientId.includes("#")) throw invalid("the client_id URL must not have a fragment");
    if (u.username || u.password) throw invalid("the client_id URL must not have userinfo");
    if (u.search) throw invalid("the client_id URL must not have a query");
    if (u.href !== clientId)
      throw invalid("the client_id URL is not in canonical form (dot segments, case or encoding)");
    return u;
  }

  /** The document this process last loaded for a client_id, even if due for a refresh; never fetches. */
  cached(clientId: string): ClientRecord | undefined {
    return this.cache.get(clientId)?.client;
  }

  async load(clientId: string): Promise<ClientRecord> {
    const hit = this.cache.get(clientId);
    if (hit && hit.until > this.o.now()) return hit.client;
    const url = this.checkUrl(clientId);
    const shared = await this.o.shared?.get(clientId);
    if (shared) {
      const { client, until } = JSON.parse(shared) as { client: ClientRecord; until: number };
      if (until > this.o.now()) {
        this.cache.set(clientId, { client, until });
        return client;
      }
    }
    const address = await this.resolvePublic(url.hostname);
    const { body, maxAge } = await this.fetch(url, address);
    const client = this.parse(clientId, body);
    if (maxAge > 0) {
      const until = this.o.now() + maxAge * 1000;
      this.cache.set(clientId, { client, until });
      await this.o.shared?.set(clientId, JSON.stringify({ client, until }), maxAge * 1000);
    }
    this.o.log.info("client metadata document fetched", {
      client_id: clientId,
      client_name: client.client_name,
      cached_s: maxAge,
    });
    return client;
  }

  private async resolvePublic(hostname: string): Promise<{ address: string; family: number }> {
    const host = hostname.replace(/^\[|\]$/g, "");
    let addresses: { address: string; family: number }[];
    if (ipVersion(host) !== 0) addresses = [{ address: host, family: ipVersion(host) }];
    else {
      try {
        addresses = await (this.o.resolve ?? ((h) => dnsLookup(h, { all: true })))(host);
      } catch {
        throw invalid(`cannot resolve ${host}`);
      }
    }
    if (addresses.length === 0) throw invalid(`cannot resolve ${host}`);
    if (!this.o.allowPrivateNetwork) {
      const bad = addresses.find((a) => !isPublicAddress(a.address));
      if (bad) throw invalid(`${host} resolves to ${bad.address}, which is not a public address`);
    }
    return addresses[0] as { address: string; family: number };
  }

  /** GET pinned to the checked address (no second DNS lookup: no rebinding), without following redirects. */
  private fetch(url: URL, pinned: { address: string; family: number }): Promise<{ body: string; maxAge: number }> {
    const request = url.protocol === "https:" ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      let settled = false;
      const done = (e: OAuthError | null, v?: { body: string; maxAge: number }) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (e) reject(e);
        else resolve(v as { body: string; maxAge: number });
      };
      const req = request(
        url,
        {
          method: "GET",
          headers: { accept: "application/json", "user-agent": "Gatehouse (client metadata fetcher)" },
          lookup: ((_h: string, opts: { all?: boolean }, cb: (...args: unknown[]) => void) => {
            if (opts?.all) cb(null, [pinned]);
            else cb(null, pinned.address, pinned.family);
          }) as never,
        },
        (res) => {
          const status = res.statusCode ?? 0;
          if (status >= 300 && status < 400) {
            res.destroy();
            return done(invalid(`the document URL redirects (HTTP ${status}); redirects are not followed`));
          }
          if (status !== 200) {
            res.destroy();
            return done(invalid(`fetching it returned HTTP ${status}`));
          }
          let size = 0;
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => {
            size += c.length;
            if (size > MAX_DOCUMENT_BYTES) {
              res.destroy();
              done(invalid(`it is larger than ${MAX_DOCUMENT_BYTES} bytes`));
              return;
            }
            chunks.push(c);
          });
          res.on("end", () => {
            const cc = String(res.headers["cache-control"] ?? "");
            const m = /max-age=(\d+)/.exec(cc);
            const maxAge = /no-store|no-cache/.test(cc) ? 0 : Math.min(MAX_CACHE_S, m ? Number(m[1]) : DEFAULT_CACHE_S);
            done(null, { body: Buffer.concat(chunks).toString("utf8"), maxAge });
          });
          res.on("error", () => done(invalid("the connection failed while reading it")));
        },
      );
      const timer = setTimeout(() => {
        req.destroy();
        done(invalid(`no answer within ${this.o.timeoutMs} ms`));
      }, this.o.timeoutMs);
      req.on("error", (e) => done(invalid(`cannot fetch it (${e.message})`)));
      req.end();
    });
  }

  /** Validates the document (draft §4.1) and turns it into a public client. */
  parse(clientId: string, text: string): ClientRecord {
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      throw invalid("it is not JSON");
    }
    if (!doc || typeof doc !== "object" || Array.isArray(doc)) throw invalid("it is not a JSON object");
    const d = doc as Record<string, unknown>;
    if (d.client_id !== clientId) throw invalid("its client_id does not equal the URL it was fetched from");
    if ("client_secret" in d || "client_secret_expires_at" in d) throw invalid("it must not contain a client secret");
    const method = d.token_endpoint_auth_method;
    const methods = Array.isArray(d.token_endpoint_auth_methods_supported)
      ? d.token_endpoint_auth_methods_supported
      : [];
    if (typeof method === "string" && method.startsWith("client_secret")) {
      throw invalid(
        `token_endpoint_auth_method ${method} needs a shared secret, which a metadata document cannot have`,
      );
    }
    if (typeof method === "string" && method !== "none" && !methods.includes("none")) {
      throw invalid(`token_endpoint_auth_method ${method} is not supported here (only "none")`);
    }
    const uris = d.redirect_uris;
    if (!Array.isArray(uris) || uris.length === 0 || uris.some((u) => typeof u !== "string")) {
      throw invalid("redirect_uris must be a non-empty array of strings");
    }
    for (const u of uris as string[]) {
      const p = parseRedirectUri(u);
      if (!p.ok) throw invalid(`redirect_uri ${JSON.stringify(u)} ${p.reason}`);
    }
    const client: ClientRecord = {
      client_id: clientId,
      client_id_issued_at: 0,
      redirect_uris: uris as string[],
      token_endpoint_auth_method: "none",
      grant_types: [...GRANT_TYPES],
      response_types: ["code"],
    };
    if (typeof d.client_name === "string") client.client_name = d.client_name.slice(0, 200);
    if (typeof d.client_uri === "string") client.client_uri = d.client_uri;
    if (typeof d.logo_uri === "string") client.logo_uri = d.logo_uri;
    return client;
  }
}
