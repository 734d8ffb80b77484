// The in-memory Store, and the base of the JSON-file store. Every change is a list of idempotent mutations (set a
// key, or delete it), applied here at once — so checks and updates happen in one synchronous step and concurrent
// callers cannot both win — and handed to `commit` with the mutations that undo it. The JSON-file store journals
// them; if that fails it applies the undo, so a failed write leaves the state exactly as it was.

import { BoundedMap } from "../bounded-map.ts";
import { consentKey, isEmptySnapshot, type Snapshot } from "./snapshot.ts";
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
} from "./types.ts";
import { activeKey, USED_REFRESH_TOKEN_MEMORY_MS } from "./types.ts";

export type Mutation =
  | { t: "client"; k: string; v: ClientRecord | null }
  | { t: "consent"; k: string; v: ConsentRecord | null }
  | { t: "grant"; k: string; v: GrantRecord | null }
  | { t: "refresh"; k: string; v: RefreshTokenRecord | null }
  | { t: "keys"; k: ""; v: KeyRecord[] }
  | { t: "jti"; k: string; v: number | null }
  | { t: "session"; k: string; v: SessionRecord | null }
  | { t: "secret"; k: string; v: string | null };

/** Flows in progress and repeat answers are bounded: a flood of them cannot exhaust memory. */
const TRANSIENT_MAX = 10_000;
const ANSWERS_MAX = 10_000;

export class MemoryStore implements Store {
  description = "memory";
  writeObserver?: (seconds: number, ok: boolean) => void;
  protected clients = new Map<string, ClientRecord>();
  protected consents = new Map<string, ConsentRecord>();
  protected grants = new Map<string, GrantRecord>();
  protected refresh = new Map<string, RefreshTokenRecord>();
  protected keys: KeyRecord[] = [];
  protected jtis = new Map<string, number>();
  protected sessions = new Map<string, SessionRecord>();
  protected secrets = new Map<string, string>();
  /** Codes, flows in progress and repeat answers are never persisted (and so never journaled). */
  private codes = new Map<string, { record: CodeRecord; replayed: boolean }>();
  private transients = new Map<TransientKind, BoundedMap<string, { value: unknown; expiresAt: number }>>();
  private answers = new BoundedMap<string, { sealed: string; until: number }>(ANSWERS_MAX);
  /** Rotations applied in memory whose commit is still under way. */
  private rotating = new Map<string, Promise<void>>();
  /** Indexes kept in step with the maps. */
  private refreshOfGrant = new Map<string, Set<string>>();
  private grantsOfClientIndex = new Map<string, Set<string>>();

  /** Makes mutations durable; `undo` restores what they replaced. The memory store has nothing to do. */
  protected async commit(_ops: Mutation[], _undo: Mutation[]): Promise<void> {}

  health(): StoreHealth {
    return { ok: true };
  }

  /** Applies one mutation to the maps (also used to replay a journal and to undo a failed change). */
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

  /** The mutation that puts back what `op` is about to replace. */
  private inverse(op: Mutation): Mutation {
    switch (op.t) {
      case "client":
        return { t: op.t, k: op.k, v: this.clients.get(op.k) ?? null };
      case "consent":
        return { t: op.t, k: op.k, v: this.consents.get(op.k) ?? null };
      case "grant":
        return { t: op.t, k: op.k, v: this.grants.get(op.k) ?? null };
      case "refresh":
        return { t: op.t, k: op.k, v: this.refresh.get(op.k) ?? null };
      case "keys":
        return { t: op.t, k: "", v: this.keys };
      case "jti":
        return { t: op.t, k: op.k, v: this.jtis.get(op.k) ?? null };
      case "session":
        return { t: op.t, k: op.k, v: this.sessions.get(op.k) ?? null };
      case "secret":
        return { t: op.t, k: op.k, v: this.secrets.get(op.k) ?? null };
    }
  }

  private change(ops: Mutation[]): Promise<void> {
    const undo: Mutation[] = [];
    for (const op of ops) {
      undo.unshift(this.inverse(op));
      this.apply(op);
    }
    return this.commit(ops, undo);
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

  async putGrant(grant: GrantRecord, firstRefresh?: { hash: string; record: RefreshTokenRecord }, fromCode?: string) {
    if (fromCode !== undefined) {
      // Checked and stored in one synchronous step: a replay either came before (refused here) or comes after and
      // finds the grant to revoke.
      const code = this.codes.get(fromCode);
      if (!code || code.replayed || code.record.grant_id !== grant.id) return false;
    }
    const ops: Mutation[] = [{ t: "grant", k: grant.id, v: grant }];
    if (firstRefresh) ops.push({ t: "refresh", k: firstRefresh.hash, v: firstRefresh.record });
    await this.change(ops);
    return true;
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
    answer?: { sealed: string; until: number },
  ): Promise<RotateOutcome> {
    // Check and update happen in one synchronous step: concurrent callers cannot both see the token unused.
    const old = this.refresh.get(oldHash);
    if (!old) return { status: "missing" };
    const inFlight = this.rotating.get(oldHash);
    if (inFlight) {
      // Rotated a moment ago, not yet durable: its outcome decides (if it failed, the token is unused again).
      await inFlight.catch(() => {});
      return this.rotateRefreshToken(oldHash, newHash, successor, at, answer);
    }
    if (old.rotated_at !== undefined) {
      const kept = this.answers.get(oldHash);
      return {
        status: "already-rotated",
        rotatedAt: old.rotated_at,
        ...(kept && kept.until >= at ? { answer: kept.sealed } : {}),
      };
    }
    const done = this.change([
      { t: "refresh", k: oldHash, v: { ...old, rotated_at: at } },
      { t: "refresh", k: newHash, v: successor },
    ]);
    this.rotating.set(oldHash, done);
    try {
      await done;
      // Shown to later callers only once the rotation is durable: its tokens must never be handed out otherwise.
      if (answer) this.answers.set(oldHash, answer);
    } finally {
      this.rotating.delete(oldHash);
    }
    return { status: "rotated" };
  }

  async rotationAnswer(oldHash: string, at: number) {
    await this.rotating.get(oldHash)?.catch(() => {});
    const kept = this.answers.get(oldHash);
    return kept && kept.until >= at ? kept.sealed : undefined;
  }

  async putCode(hash: string, record: CodeRecord) {
    this.codes.set(hash, { record, replayed: false });
  }
  async consumeCode(hash: string, grantId: string) {
    const code = this.codes.get(hash);
    if (!code) return undefined;
    const { record } = code;
    if (record.grant_id !== undefined) {
      code.replayed = true;
      return { record: { ...record }, replay: true };
    }
    record.grant_id = grantId;
    return { record: { ...record }, replay: false };
  }
  async releaseCode(hash: string, grantId: string) {
    const code = this.codes.get(hash);
    if (code && !code.replayed && code.record.grant_id === grantId) delete code.record.grant_id;
  }

  async getKeys() {
    return [...this.keys];
  }
  async addSigningKey(key: KeyRecord, at: number, retiredExpiresAt: number, ifActive: string | null) {
    const active = activeKey(this.keys);
    if ((active?.kid ?? null) !== ifActive) return false;
    const ring = this.keys.map((k) =>
      k.retired_at === undefined ? { ...k, retired_at: at, expires_at: retiredExpiresAt } : k,
    );
    ring.push(key);
    await this.change([{ t: "keys", k: "", v: ring }]);
    return true;
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
  async initSecret(name: string, value: string) {
    const existing = this.secrets.get(name);
    if (existing !== undefined) return existing;
    await this.change([{ t: "secret", k: name, v: value }]);
    return value;
  }

  async revokeAccessToken(jti: string, exp: number) {
    await this.change([{ t: "jti", k: jti, v: exp }]);
  }
  async isAccessTokenRevoked(jti: string) {
    return this.jtis.has(jti);
  }

  private transientsOf(kind: TransientKind) {
    let m = this.transients.get(kind);
    if (!m) {
      m = new BoundedMap(TRANSIENT_MAX);
      this.transients.set(kind, m);
    }
    return m;
  }
  async putTransient(kind: TransientKind, id: string, value: unknown, expiresAt: number) {
    this.transientsOf(kind).set(id, { value: structuredClone(value), expiresAt });
  }
  async getTransient<T>(kind: TransientKind, id: string) {
    const hit = this.transientsOf(kind).get(id);
    return hit ? (structuredClone(hit.value) as T) : undefined;
  }
  async takeTransient<T>(kind: TransientKind, id: string) {
    const m = this.transientsOf(kind);
    const hit = m.get(id);
    m.delete(id);
    return hit ? (hit.value as T) : undefined;
  }

  async sweep(now: number) {
    // Expired records are simply forgotten; a reload after a crash sweeps them again, so no journaling is needed.
    for (const [k, c] of this.codes) if (c.record.expires_at < now) this.codes.delete(k);
    for (const [k, r] of this.refresh) {
      const forgotten = r.rotated_at !== undefined && r.rotated_at + USED_REFRESH_TOKEN_MEMORY_MS < now;
      if (r.expires_at < now || forgotten) this.apply({ t: "refresh", k, v: null });
    }
    for (const [k, g] of this.grants) if (g.expires_at < now) this.apply({ t: "grant", k, v: null });
    for (const [k, exp] of this.jtis) if (exp < now) this.jtis.delete(k);
    for (const [k, s] of this.sessions) if (s.expires_at < now) this.sessions.delete(k);
    this.keys = this.keys.filter((key) => key.expires_at === undefined || key.expires_at >= now);
    for (const m of this.transients.values()) for (const [k, t] of m) if (t.expiresAt < now) m.delete(k);
    for (const [k, a] of this.answers) if (a.until < now) this.answers.delete(k);
  }

  async stats() {
    return { clients: this.clients.size, grants: this.grants.size, refreshTokens: this.refresh.size };
  }

  async exportSnapshot(): Promise<Snapshot> {
    return this.snapshot();
  }

  async importSnapshot(s: Snapshot): Promise<void> {
    if (!isEmptySnapshot(this.snapshot())) {
      throw new Error(`${this.description} already holds clients, grants or keys: import only into an empty state`);
    }
    await this.change(snapshotOps(s));
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

  /** Loads a snapshot into the maps (a state file being opened): not a change, so not committed. */
  restore(s: Snapshot): void {
    for (const op of snapshotOps(s)) this.apply(op);
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

function snapshotOps(s: Snapshot): Mutation[] {
  const ops: Mutation[] = [];
  for (const [k, v] of Object.entries(s.clients)) ops.push({ t: "client", k, v });
  for (const [k, v] of Object.entries(s.consents)) ops.push({ t: "consent", k, v });
  for (const [k, v] of Object.entries(s.grants)) ops.push({ t: "grant", k, v });
  for (const [k, v] of Object.entries(s.refresh_tokens)) ops.push({ t: "refresh", k, v });
  ops.push({ t: "keys", k: "", v: s.keys });
  for (const [k, v] of Object.entries(s.revoked_access_tokens)) ops.push({ t: "jti", k, v });
  for (const [k, v] of Object.entries(s.sessions)) ops.push({ t: "session", k, v });
  for (const [k, v] of Object.entries(s.secrets)) ops.push({ t: "secret", k, v });
  return ops;
}
