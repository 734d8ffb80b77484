// The in-memory Store. Every change is expressed as a list of idempotent mutations (set a key, or delete it) that
// are applied here and handed to `commit`, which the JSON-file store uses to journal them before a call returns.

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
} from "./types.ts";
import { USED_REFRESH_TOKEN_MEMORY_MS } from "./types.ts";

export type Mutation =
  | { t: "client"; k: string; v: ClientRecord | null }
  | { t: "consent"; k: string; v: ConsentRecord | null }
  | { t: "grant"; k: string; v: GrantRecord | null }
  | { t: "refresh"; k: string; v: RefreshTokenRecord | null }
  | { t: "keys"; k: ""; v: KeyRecord[] }
  | { t: "jti"; k: string; v: number | null }
  | { t: "session"; k: string; v: SessionRecord | null }
  | { t: "secret"; k: string; v: string | null };

/** The whole state as the JSON file holds it (see README, "State file"). */
export interface Snapshot {
  version: 1;
  clients: Record<string, ClientRecord>;
  consents: Record<string, ConsentRecord>;
  grants: Record<string, GrantRecord>;
  refresh_tokens: Record<string, RefreshTokenRecord>;
  keys: KeyRecord[];
  revoked_access_tokens: Record<string, number>;
  sessions: Record<string, SessionRecord>;
  secrets: Record<string, string>;
}

const consentKey = (subject: string, clientId: string) => `${clientId}\u0000${subject}`;

export class MemoryStore implements Store {
  description = "memory";
  protected clients = new Map<string, ClientRecord>();
  protected consents = new Map<string, ConsentRecord>();
  protected grants = new Map<string, GrantRecord>();
  protected refresh = new Map<string, RefreshTokenRecord>();
  protected keys: KeyRecord[] = [];
  protected jtis = new Map<string, number>();
  protected sessions = new Map<string, SessionRecord>();
  protected secrets = new Map<string, string>();
  /** Codes are never persisted (and so never journaled). */
  private codes = new Map<string, CodeRecord>();
  /** Indexes kept in step with the maps. */
  private refreshOfGrant = new Map<string, Set<string>>();
  private grantsOfClientIndex = new Map<string, Set<string>>();

  /** Makes mutations durable; the memory store has nothing to do. */
  protected async commit(_ops: Mutation[]): Promise<void> {}

  /** Applies one mutation to the maps (also used to replay a journal). */
  apply(op: Mutation): void {
    switch (op.t) {
      case "client":
        if (op.v) this.clients.set(op.k, op.v);
        else this.clients.delete(op.k);
        break;
      case "consent":
        if (op.v) this.consents.set(op.k, op.v);
        else this.consents.delete(op.k);
        break;
      case "grant": {
        const old = this.grants.get(op.k);
        if (old) this.grantsOfClientIndex.get(old.client_id)?.delete(op.k);
        if (op.v) {
          this.grants.set(op.k, op.v);
          const set = this.grantsOfClientIndex.get(op.v.client_id) ?? new Set<string>();
          this.grantsOfClientIndex.set(op.v.client_id, set);
          set.add(op.k);
        } else this.grants.delete(op.k);
        break;
      }
      case "refresh": {
        const old = this.refresh.get(op.k);
        if (old) this.refreshOfGrant.get(old.grant_id)?.delete(op.k);
        if (op.v) {
          this.refresh.set(op.k, op.v);
          const set = this.refreshOfGrant.get(op.v.grant_id) ?? new Set<string>();
          this.refreshOfGrant.set(op.v.grant_id, set);
          set.add(op.k);
        } else this.refresh.delete(op.k);
        break;
      }
      case "keys":
        this.keys = op.v;
        break;
      case "jti":
        if (op.v === null) this.jtis.delete(op.k);
        else this.jtis.set(op.k, op.v);
        break;
      case "session":
        if (op.v) this.sessions.set(op.k, op.v);
        else this.sessions.delete(op.k);
        break;
      case "secret":
        if (op.v === null) this.secrets.delete(op.k);
        else this.secrets.set(op.k, op.v);
        break;
    }
  }

  private async change(ops: Mutation[]): Promise<void> {
    for (const op of ops) this.apply(op);
    await this.commit(ops);
  }

  async getClient(clientId: string) {
    return this.clients.get(clientId);
  }
  async putClient(client: ClientRecord) {
    await this.change([{ t: "client", k: client.client_id, v: client }]);
  }
  async deleteClient(clientId: string, at: number) {
    if (!this.clients.has(clientId)) return false;
    const ops: Mutation[] = [{ t: "client", k: clientId, v: null }];
    for (const [k, c] of this.consents) if (c.client_id === clientId) ops.push({ t: "consent", k, v: null });
    for (const id of this.grantsOfClientIndex.get(clientId) ?? [])
      ops.push(...this.revokeOps(id, at, "client deleted"));
    await this.change(ops);
    return true;
  }
  async listClients() {
    return [...this.clients.values()];
  }

  async getConsent(subject: string, clientId: string) {
    return this.consents.get(consentKey(subject, clientId));
  }
  async putConsent(consent: ConsentRecord) {
    await this.change([{ t: "consent", k: consentKey(consent.subject, consent.client_id), v: consent }]);
  }

  async putGrant(grant: GrantRecord) {
    await this.change([{ t: "grant", k: grant.id, v: grant }]);
  }
  async getGrant(id: string) {
    return this.grants.get(id);
  }
  private revokeOps(id: string, at: number, reason: string): Mutation[] {
    const g = this.grants.get(id);
    if (!g) return [];
    const ops: Mutation[] = [];
    if (g.revoked_at === undefined)
      ops.push({ t: "grant", k: id, v: { ...g, revoked_at: at, revoked_reason: reason } });
    for (const h of this.refreshOfGrant.get(id) ?? []) ops.push({ t: "refresh", k: h, v: null });
    return ops;
  }
  async revokeGrant(id: string, at: number, reason: string) {
    const ops = this.revokeOps(id, at, reason);
    if (ops.length > 0) await this.change(ops);
  }
  async grantsOfClient(clientId: string) {
    return [...(this.grantsOfClientIndex.get(clientId) ?? [])].map((id) => this.grants.get(id) as GrantRecord);
  }

  async putRefreshToken(hash: string, record: RefreshTokenRecord) {
    await this.change([{ t: "refresh", k: hash, v: record }]);
  }
  async getRefreshToken(hash: string) {
    return this.refresh.get(hash);
  }
  async rotateRefreshToken(
    oldHash: string,
    newHash: string,
    successor: RefreshTokenRecord,
    at: number,
  ): Promise<RotateOutcome> {
    // Check and update happen in one synchronous step: concurrent callers cannot both see the token unused.
    const old = this.refresh.get(oldHash);
    if (!old) return { status: "missing" };
    if (old.rotated_at !== undefined) return { status: "already-rotated", rotatedAt: old.rotated_at };
    await this.change([
      { t: "refresh", k: oldHash, v: { ...old, rotated_at: at } },
      { t: "refresh", k: newHash, v: successor },
    ]);
    return { status: "rotated" };
  }

  async putCode(hash: string, record: CodeRecord) {
    this.codes.set(hash, record);
  }
  async consumeCode(hash: string, grantId: string) {
    const record = this.codes.get(hash);
    if (!record) return undefined;
    if (record.grant_id !== undefined) return { record, replay: true };
    record.grant_id = grantId;
    return { record: { ...record }, replay: false };
  }

  async getKeys() {
    return [...this.keys];
  }
  async putKeys(keys: KeyRecord[]) {
    await this.change([{ t: "keys", k: "", v: keys }]);
  }

  async putSession(session: SessionRecord) {
    await this.change([{ t: "session", k: session.id, v: session }]);
  }
  async getSession(id: string) {
    return this.sessions.get(id);
  }
  async revokeSession(id: string, at: number) {
    const s = this.sessions.get(id);
    if (!s || s.revoked_at !== undefined) return false;
    await this.change([{ t: "session", k: id, v: { ...s, revoked_at: at } }]);
    return true;
  }
  async listSessions() {
    return [...this.sessions.values()];
  }

  async getSecret(name: string) {
    return this.secrets.get(name);
  }
  async putSecret(name: string, value: string) {
    await this.change([{ t: "secret", k: name, v: value }]);
  }

  async revokeAccessToken(jti: string, exp: number) {
    await this.change([{ t: "jti", k: jti, v: exp }]);
  }
  async isAccessTokenRevoked(jti: string) {
    return this.jtis.has(jti);
  }

  async sweep(now: number) {
    // Expired records are simply forgotten; a reload after a crash sweeps them again, so no journaling is needed.
    for (const [k, c] of this.codes) if (c.expires_at < now) this.codes.delete(k);
    for (const [k, r] of this.refresh) {
      const forgotten = r.rotated_at !== undefined && r.rotated_at + USED_REFRESH_TOKEN_MEMORY_MS < now;
      if (r.expires_at < now || forgotten) this.apply({ t: "refresh", k, v: null });
    }
    for (const [k, g] of this.grants) if (g.expires_at < now) this.apply({ t: "grant", k, v: null });
    for (const [k, exp] of this.jtis) if (exp < now) this.jtis.delete(k);
    for (const [k, s] of this.sessions) if (s.expires_at < now) this.sessions.delete(k);
    this.keys = this.keys.filter((key) => key.expires_at === undefined || key.expires_at >= now);
  }

  async stats() {
    return { clients: this.clients.size, grants: this.grants.size, refreshTokens: this.refresh.size };
  }

  async close() {}

  snapshot(): Snapshot {
    return {
      version: 1,
      clients: Object.fromEntries(this.clients),
      consents: Object.fromEntries(this.consents),
      grants: Object.fromEntries(this.grants),
      refresh_tokens: Object.fromEntries(this.refresh),
      keys: this.keys,
      revoked_access_tokens: Object.fromEntries(this.jtis),
      sessions: Object.fromEntries(this.sessions),
      secrets: Object.fromEntries(this.secrets),
    };
  }

  /** Replaces the whole state (loading a snapshot). */
  restore(s: Snapshot): void {
    for (const [k, v] of Object.entries(s.clients)) this.apply({ t: "client", k, v });
    for (const [k, v] of Object.entries(s.consents)) this.apply({ t: "consent", k, v });
    for (const [k, v] of Object.entries(s.grants)) this.apply({ t: "grant", k, v });
    for (const [k, v] of Object.entries(s.refresh_tokens)) this.apply({ t: "refresh", k, v });
    this.apply({ t: "keys", k: "", v: s.keys });
    for (const [k, v] of Object.entries(s.revoked_access_tokens)) this.apply({ t: "jti", k, v });
    for (const [k, v] of Object.entries(s.sessions)) this.apply({ t: "session", k, v });
    for (const [k, v] of Object.entries(s.secrets)) this.apply({ t: "secret", k, v });
  }

  /** Number of records, to decide when a journal is worth compacting. */
  protected size(): number {
    return (
      this.clients.size +
      this.consents.size +
      this.grants.size +
      this.refresh.size +
      this.jtis.size +
      this.sessions.size
    );
  }
}
