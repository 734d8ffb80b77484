// The Store in Redis, shared by every replica (`state.redis`): each write is one atomic script (scripts.ts), so
// rotations, code redemptions and revocations are decided once for all replicas. What every MCP request asks
// (is this client, grant, token still live?) is answered from a local cache — no Redis round trip on the hot path —
// that every write invalidates across replicas over pub/sub; the cache is dropped whenever that channel was down,
// and entries live 60 s at most. Redis down or hung: StoreUnavailableError within the timeout, for reads too.

import { BoundedMap } from "../../bounded-map.ts";
import type { Logger } from "../../log.ts";
import type { RedisFactory } from "../../platform/types.ts";
import { consentKey, type Snapshot } from "../snapshot.ts";
import type {
  ClientRecord,
  CodeRecord,
  ConsentRecord,
  GrantRecord,
  KeyRecord,
  RefreshTokenRecord,
  RotateOutcome,
  SessionRecord,
  Store,
  StoreHealth,
  TransientKind,
} from "../types.ts";
import { RedisConnection, type RedisOptions } from "./connection.ts";
import { SCRIPTS } from "./scripts.ts";

const CACHE_MAX = 20_000;
const CACHE_MAX_AGE_MS = 60_000;
const SWEEP_BATCH = 1000;

type Hash = Record<string, string>;

interface Cached<T> {
  value: T;
  at: number;
}

const isHash = (v: unknown): v is Hash => typeof v === "object" && v !== null && Object.keys(v).length > 0;
const opt = (v: number | string | undefined) => (v === undefined ? "" : String(v));

export class RedisStore implements Store {
  readonly description: string;
  private readonly clients = new BoundedMap<string, Cached<ClientRecord>>(CACHE_MAX);
  private readonly grants = new BoundedMap<string, Cached<GrantRecord>>(CACHE_MAX);
  private readonly jtis = new BoundedMap<string, Cached<boolean>>(CACHE_MAX);
  /**
   * Bumped by every invalidation, and remembered per key: a read during which its key was invalidated caches nothing
   * (it may have read the old value).
   */
  private epoch = 0;
  private droppedAt = 0;
  private readonly invalidatedAt = new BoundedMap<string, number>(CACHE_MAX);
  private readonly keyListeners: (() => void)[] = [];

  private constructor(
    readonly redis: RedisConnection,
    /** Whether close() closes the connection too (it does when the store opened it). */
    private readonly ownsConnection: boolean,
  ) {
    this.description = redis.description;
  }

  /** Every script this replica runs on Redis (the store's, the sessions', the limits'): their durations. */
  set writeObserver(fn: ((seconds: number, ok: boolean) => void) | undefined) {
    this.redis.writeObserver = fn;
  }

  get writeObserver(): ((seconds: number, ok: boolean) => void) | undefined {
    return this.redis.writeObserver;
  }

  /** Connects and opens the store (tests, CLI). */
  static async open(options: RedisOptions, factory: RedisFactory, log: Logger): Promise<RedisStore> {
    const redis = await RedisConnection.open(options, factory, log);
    try {
      return await RedisStore.attach(redis, true);
    } catch (e) {
      redis.close();
      throw e;
    }
  }

  /** The store on a connection shared with the rest of the replica's shared state (sessions, limits, caches). */
  static async attach(redis: RedisConnection, owns = false): Promise<RedisStore> {
    const store = new RedisStore(redis, owns);
    redis.onResync(() => store.dropCaches());
    await redis.subscribe("events", (m) => store.onEvent(m));
    return store;
  }

  private dropCaches(): void {
    this.droppedAt = ++this.epoch;
    this.clients.clear();
    this.grants.clear();
    this.jtis.clear();
    for (const fn of this.keyListeners) fn();
  }

  private onEvent(message: string): void {
    const bar = message.indexOf("|");
    const kind = message.slice(0, bar);
    const id = message.slice(bar + 1);
    if (kind === "c") this.invalidate(this.clients, "c", id);
    else if (kind === "g") this.invalidate(this.grants, "g", id);
    else if (kind === "j") this.invalidate(this.jtis, "j", id);
    else if (kind === "k") for (const fn of this.keyListeners) fn();
    else if (kind === "*") this.dropCaches();
  }

  private invalidate<T>(map: BoundedMap<string, Cached<T>>, kind: string, id: string): void {
    map.delete(id);
    this.invalidatedAt.set(kind + id, ++this.epoch);
  }

  /** A cached value, or `load()` cached when its key was not invalidated meanwhile and invalidations can be trusted. */
  private async cached<T>(
    map: BoundedMap<string, Cached<T>>,
    kind: string,
    key: string,
    load: () => Promise<T | undefined>,
  ): Promise<T | undefined> {
    const live = this.redis.subscriptionsLive;
    if (live) {
      const hit = map.get(key);
      if (hit && Date.now() - hit.at < CACHE_MAX_AGE_MS) return hit.value;
    }
    const start = this.epoch;
    const value = await load();
    const untouched = (this.invalidatedAt.get(kind + key) ?? 0) <= start && this.droppedAt <= start;
    if (live && value !== undefined && untouched && this.redis.subscriptionsLive) {
      map.set(key, { value, at: Date.now() });
    }
    return value;
  }

  health(): StoreHealth {
    const down = this.redis.down;
    return down ? { ok: false, reason: down } : { ok: true };
  }

  onKeysChanged(fn: () => void): void {
    this.keyListeners.push(fn);
  }

  private k(...parts: string[]): string {
    return this.redis.key(...parts);
  }

  private async hash(key: string): Promise<Hash | undefined> {
    const h = await this.redis.send("HGETALL", [key]);
    return isHash(h) ? h : undefined;
  }

  // --- clients and consents ----------------------------------------------------------------------------------------

  getClient(clientId: string): Promise<ClientRecord | undefined> {
    return this.cached(this.clients, "c", clientId, async () => {
      const v = await this.redis.send("GET", [this.k("client", clientId)]);
      return typeof v === "string" ? (JSON.parse(v) as ClientRecord) : undefined;
    });
  }

  async putClient(client: ClientRecord): Promise<void> {
    this.invalidate(this.clients, "c", client.client_id);
    await this.redis.run(SCRIPTS.putClient, [client.client_id, JSON.stringify(client)]);
    this.invalidate(this.clients, "c", client.client_id);
  }

  async deleteClient(clientId: string, at: number): Promise<boolean> {
    const r = (await this.redis.run(SCRIPTS.deleteClient, [clientId, at])) as number[];
    this.invalidate(this.clients, "c", clientId);
    for (const g of [...this.grants.values()])
      if (g.value.client_id === clientId) this.invalidate(this.grants, "g", g.value.id);
    return r[0] === 1;
  }

  async listClients(): Promise<ClientRecord[]> {
    const ids = (await this.redis.send("SMEMBERS", [this.k("clients")])) as string[];
    const out: ClientRecord[] = [];
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = ids.slice(i, i + 500);
      const values = (await this.redis.send(
        "MGET",
        chunk.map((id) => this.k("client", id)),
      )) as (string | null)[];
      for (const v of values) if (typeof v === "string") out.push(JSON.parse(v) as ClientRecord);
    }
    return out;
  }

  async getConsent(subject: string, clientId: string): Promise<ConsentRecord | undefined> {
    const v = await this.redis.send("HGET", [this.k("consents", clientId), subject]);
    return typeof v === "string" ? (JSON.parse(v) as ConsentRecord) : undefined;
  }

  async putConsent(consent: ConsentRecord): Promise<void> {
    await this.redis.run(SCRIPTS.putConsent, [consent.client_id, consent.subject, JSON.stringify(consent)]);
  }

  // --- grants and refresh tokens -----------------------------------------------------------------------------------

  async putGrant(
    grant: GrantRecord,
    firstRefresh?: { hash: string; record: RefreshTokenRecord },
    fromCode?: string,
  ): Promise<boolean> {
    const { revoked_at, revoked_reason, ...record } = grant;
    const args: (string | number)[] = [
      grant.id,
      grant.client_id,
      grant.expires_at,
      JSON.stringify(record),
      opt(revoked_at),
      revoked_reason ?? "",
    ];
    if (firstRefresh) args.push(firstRefresh.hash, firstRefresh.record.created_at, firstRefresh.record.expires_at);
    else args.push("", "", "");
    args.push(fromCode ?? "");
    this.invalidate(this.grants, "g", grant.id);
    const r = (await this.redis.run(SCRIPTS.putGrant, args)) as string[];
    this.invalidate(this.grants, "g", grant.id);
    return r[0] === "ok";
  }

  private async loadGrant(id: string): Promise<GrantRecord | undefined> {
    const h = await this.hash(this.k("grant", id));
    if (!h?.j) return undefined;
    const g = JSON.parse(h.j) as GrantRecord;
    if (h.ra !== undefined) {
      g.revoked_at = Number(h.ra);
      g.revoked_reason = h.rr ?? "";
    }
    return g;
  }

  getGrant(id: string): Promise<GrantRecord | undefined> {
    return this.cached(this.grants, "g", id, () => this.loadGrant(id));
  }

  async revokeGrant(id: string, at: number, reason: string): Promise<void> {
    this.invalidate(this.grants, "g", id);
    await this.redis.run(SCRIPTS.revokeGrant, [id, at, reason]);
    this.invalidate(this.grants, "g", id);
  }

  async grantsOfClient(clientId: string): Promise<GrantRecord[]> {
    const ids = (await this.redis.send("SMEMBERS", [this.k("grants-of", clientId)])) as string[];
    const grants = await Promise.all(ids.map((id) => this.loadGrant(id)));
    return grants.filter((g): g is GrantRecord => g !== undefined);
  }

  async putRefreshToken(hash: string, record: RefreshTokenRecord): Promise<void> {
    await this.redis.run(SCRIPTS.putRefresh, [
      hash,
      record.grant_id,
      record.created_at,
      record.expires_at,
      opt(record.rotated_at),
    ]);
  }

  async getRefreshToken(hash: string): Promise<RefreshTokenRecord | undefined> {
    const h = await this.hash(this.k("rt", hash));
    if (!h?.g) return undefined;
    const r: RefreshTokenRecord = { grant_id: h.g, created_at: Number(h.c), expires_at: Number(h.e) };
    if (h.r !== undefined) r.rotated_at = Number(h.r);
    return r;
  }

  async rotateRefreshToken(
    oldHash: string,
    newHash: string,
    successor: RefreshTokenRecord,
    at: number,
    answer?: { sealed: string; until: number },
  ): Promise<RotateOutcome> {
    const r = (await this.redis.run(SCRIPTS.rotate, [
      oldHash,
      newHash,
      successor.grant_id,
      successor.created_at,
      successor.expires_at,
      at,
      answer?.sealed ?? "",
      answer?.until ?? 0,
      Math.max(1000, (answer?.until ?? 0) - at),
    ])) as (string | null)[];
    if (r[0] === "missing") return { status: "missing" };
    if (r[0] === "already") {
      const outcome: RotateOutcome = { status: "already-rotated", rotatedAt: Number(r[1]) };
      if (typeof r[2] === "string") outcome.answer = r[2];
      return outcome;
    }
    return { status: "rotated" };
  }

  async rotationAnswer(oldHash: string, at: number): Promise<string | undefined> {
    const v = await this.redis.send("GET", [this.k("answer", oldHash)]);
    if (typeof v !== "string") return undefined;
    const bar = v.indexOf("|");
    return Number(v.slice(0, bar)) >= at ? v.slice(bar + 1) : undefined;
  }

  // --- codes ------------------------------------------------------------------------------------------------------

  async putCode(hash: string, record: CodeRecord): Promise<void> {
    const { grant_id: _bound, ...rest } = record;
    const px = Math.max(1000, record.expires_at - Date.now() + 60_000);
    await this.redis.run(SCRIPTS.putCode, [hash, JSON.stringify(rest), px]);
  }

  async consumeCode(hash: string, grantId: string): Promise<{ record: CodeRecord; replay: boolean } | undefined> {
    const r = (await this.redis.run(SCRIPTS.consumeCode, [hash, grantId])) as string[];
    if (r[0] === "none") return undefined;
    const record = JSON.parse(r[1] as string) as CodeRecord;
    if (r[0] === "replay") return { record: { ...record, grant_id: r[2] as string }, replay: true };
    return { record: { ...record, grant_id: grantId }, replay: false };
  }

  async releaseCode(hash: string, grantId: string): Promise<void> {
    await this.redis.run(SCRIPTS.releaseCode, [hash, grantId]);
  }

  // --- keys ---------------------------------------------------------------------------------------------------------

  async getKeys(): Promise<KeyRecord[]> {
    const kids = (await this.redis.send("ZRANGE", [this.k("keys"), "0", "-1"])) as string[];
    const hashes = await Promise.all(kids.map((kid) => this.hash(this.k("key", kid))));
    const out: KeyRecord[] = [];
    for (const h of hashes) {
      if (!h?.j) continue;
      const key = JSON.parse(h.j) as KeyRecord;
      if (h.ra !== undefined) key.retired_at = Number(h.ra);
      if (h.ea !== undefined) key.expires_at = Number(h.ea);
      out.push(key);
    }
    return out;
  }

  async addSigningKey(key: KeyRecord, at: number, retiredExpiresAt: number, ifActive: string | null) {
    const { retired_at: _r, expires_at: _e, ...record } = key;
    const r = (await this.redis.run(SCRIPTS.addKey, [
      key.kid,
      JSON.stringify(record),
      key.created_at,
      at,
      retiredExpiresAt,
      ifActive ?? "",
    ])) as string[];
    return r[0] === "added";
  }

  // --- browser sessions, secrets, revoked access tokens ---------------------------------------------------------------

  async putSession(session: SessionRecord): Promise<void> {
    const { revoked_at, ...record } = session;
    await this.redis.run(SCRIPTS.putSession, [session.id, JSON.stringify(record), session.expires_at, opt(revoked_at)]);
  }

  async getSession(id: string): Promise<SessionRecord | undefined> {
    const h = await this.hash(this.k("bs", id));
    if (!h?.j) return undefined;
    const s = JSON.parse(h.j) as SessionRecord;
    if (h.ra !== undefined) s.revoked_at = Number(h.ra);
    return s;
  }

  async revokeSession(id: string, at: number): Promise<boolean> {
    const r = (await this.redis.run(SCRIPTS.revokeSession, [id, at])) as number[];
    return r[0] === 1;
  }

  async listSessions(): Promise<SessionRecord[]> {
    const ids = (await this.redis.send("ZRANGE", [this.k("bss"), "0", "-1"])) as string[];
    const sessions = await Promise.all(ids.map((id) => this.getSession(id)));
    return sessions.filter((s): s is SessionRecord => s !== undefined);
  }

  async getSecret(name: string): Promise<string | undefined> {
    const v = await this.redis.send("HGET", [this.k("secrets"), name]);
    return typeof v === "string" ? v : undefined;
  }

  async initSecret(name: string, value: string): Promise<string> {
    const r = (await this.redis.run(SCRIPTS.initSecret, [name, value])) as string[];
    return r[0] as string;
  }

  async revokeAccessToken(jti: string, exp: number): Promise<void> {
    this.invalidate(this.jtis, "j", jti);
    await this.redis.run(SCRIPTS.revokeJti, [jti, exp]);
    this.invalidate(this.jtis, "j", jti);
  }

  async isAccessTokenRevoked(jti: string): Promise<boolean> {
    const v = await this.cached(this.jtis, "j", jti, async () => {
      const score = await this.redis.send("ZSCORE", [this.k("jtis"), jti]);
      return score !== null && score !== undefined;
    });
    return v === true;
  }

  // --- flows in progress --------------------------------------------------------------------------------------------

  async putTransient(kind: TransientKind, id: string, value: unknown, expiresAt: number): Promise<void> {
    const px = Math.max(1000, expiresAt - Date.now() + 60_000);
    await this.redis.run(SCRIPTS.putTransient, [`${kind}:${id}`, JSON.stringify(value), px]);
  }

  async getTransient<T>(kind: TransientKind, id: string): Promise<T | undefined> {
    const v = await this.redis.send("GET", [this.k("tr", `${kind}:${id}`)]);
    return typeof v === "string" ? (JSON.parse(v) as T) : undefined;
  }

  async takeTransient<T>(kind: TransientKind, id: string): Promise<T | undefined> {
    const r = (await this.redis.run(SCRIPTS.takeTransient, [`${kind}:${id}`])) as string[];
    return typeof r[0] === "string" ? (JSON.parse(r[0]) as T) : undefined;
  }

  // --- upkeep -------------------------------------------------------------------------------------------------------

  async sweep(now: number): Promise<void> {
    for (let i = 0; i < 1000; i++) {
      const r = (await this.redis.run(SCRIPTS.sweep, [now, SWEEP_BATCH])) as number[];
      if ((r[0] ?? 0) < SWEEP_BATCH) return;
    }
  }

  async stats(): Promise<{ clients: number; grants: number; refreshTokens: number }> {
    const [clients, grants, refreshTokens] = await Promise.all([
      this.redis.send("SCARD", [this.k("clients")]),
      this.redis.send("ZCARD", [this.k("grants")]),
      this.redis.send("ZCARD", [this.k("rts")]),
    ]);
    return { clients: Number(clients), grants: Number(grants), refreshTokens: Number(refreshTokens) };
  }

  async exportSnapshot(): Promise<Snapshot> {
    const snap: Snapshot = {
      version: 1,
      clients: {},
      consents: {},
      grants: {},
      refresh_tokens: {},
      keys: await this.getKeys(),
      revoked_access_tokens: {},
      sessions: {},
      secrets: {},
    };
    for (const c of await this.listClients()) snap.clients[c.client_id] = c;
    for (const client of (await this.redis.send("SMEMBERS", [this.k("consent-clients")])) as string[]) {
      const h = (await this.hash(this.k("consents", client))) ?? {};
      for (const json of Object.values(h)) {
        const c = JSON.parse(json) as ConsentRecord;
        snap.consents[consentKey(c.subject, c.client_id)] = c;
      }
    }
    for (const id of (await this.redis.send("ZRANGE", [this.k("grants"), "0", "-1"])) as string[]) {
      const g = await this.loadGrant(id);
      if (g) snap.grants[id] = g;
    }
    for (const h of (await this.redis.send("ZRANGE", [this.k("rts"), "0", "-1"])) as string[]) {
      const r = await this.getRefreshToken(h);
      if (r) snap.refresh_tokens[h] = r;
    }
    const jtis = (await this.redis.send("ZRANGE", [this.k("jtis"), "0", "-1", "WITHSCORES"])) as unknown[];
    for (const entry of pairs(jtis)) snap.revoked_access_tokens[entry[0]] = Number(entry[1]);
    for (const s of await this.listSessions()) snap.sessions[s.id] = s;
    const secrets = (await this.hash(this.k("secrets"))) ?? {};
    for (const [name, value] of Object.entries(secrets)) snap.secrets[name] = value;
    return snap;
  }

  async importSnapshot(s: Snapshot): Promise<void> {
    const stats = await this.stats();
    const keys = Number(await this.redis.send("ZCARD", [this.k("keys")]));
    if (stats.clients + stats.grants + stats.refreshTokens + keys > 0) {
      throw new Error(`${this.description} already holds clients, grants or keys: import only into an empty state`);
    }
    const batch = async (jobs: (() => Promise<unknown>)[]) => {
      for (let i = 0; i < jobs.length; i += 200) await Promise.all(jobs.slice(i, i + 200).map((j) => j()));
    };
    await batch(Object.values(s.clients).map((c) => () => this.putClient(c)));
    await batch(Object.values(s.consents).map((c) => () => this.putConsent(c)));
    await batch(Object.values(s.grants).map((g) => () => this.putGrant(g)));
    await batch(
      Object.entries(s.refresh_tokens).map(
        ([h, r]) =>
          () =>
            this.putRefreshToken(h, r),
      ),
    );
    await batch(
      s.keys.map((k) => () => {
        const { retired_at, expires_at, ...record } = k;
        return this.redis.run(SCRIPTS.putKey, [
          k.kid,
          JSON.stringify(record),
          k.created_at,
          opt(retired_at),
          opt(expires_at),
        ]);
      }),
    );
    await batch(
      Object.entries(s.revoked_access_tokens).map(
        ([j, exp]) =>
          () =>
            this.revokeAccessToken(j, exp),
      ),
    );
    await batch(Object.values(s.sessions).map((x) => () => this.putSession(x)));
    await batch(
      Object.entries(s.secrets).map(
        ([n, v]) =>
          () =>
            this.initSecret(n, v),
      ),
    );
    await this.redis.publish("events", "*|");
  }

  async close(): Promise<void> {
    if (this.ownsConnection) this.redis.close();
  }
}

function pairs(flat: unknown[]): [string, string][] {
  // RESP3 answers WITHSCORES as [member, score] pairs; RESP2 as a flat list.
  if (flat.length > 0 && Array.isArray(flat[0])) return flat as [string, string][];
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([String(flat[i]), String(flat[i + 1])]);
  return out;
}
