// Administration of the authorization server's state, for `gatehouse clients …` and `gatehouse keys rotate`:
// the operations themselves (on a Store and a KeyRing), and a small HTTP surface for them that the running server
// exposes on a Unix socket beside its state file (mode 0600: only the same user can reach it).

import { Elysia } from "elysia";
import type { Auditor } from "./audit.ts";
import type { KeyRing } from "./oauth/keys.ts";
import { publicClientView } from "./oauth/registration.ts";
import type { ReloadResult } from "./reload.ts";
import type { Store } from "./store/types.ts";

export interface AdminDeps {
  store: Store;
  keys: KeyRing;
  now(): number;
  /** The audit log: the running server's, or (the CLI working on a stopped server's state) audit.path's file. */
  audit?: Auditor;
  /** Reloads the running server's configuration (`gatehouse reload`). */
  reload?: () => Promise<ReloadResult>;
}

export interface ClientSummary extends Record<string, unknown> {
  client_id: string;
  active_grants: number;
}

export async function listClients(d: AdminDeps): Promise<ClientSummary[]> {
  const out: ClientSummary[] = [];
  for (const c of await d.store.listClients()) {
    const grants = await d.store.grantsOfClient(c.client_id);
    const now = d.now();
    out.push({
      ...publicClientView(c),
      client_id: c.client_id,
      active_grants: grants.filter((g) => g.revoked_at === undefined && g.expires_at > now).length,
    });
  }
  return out.sort((a, b) => Number(a.client_id_issued_at) - Number(b.client_id_issued_at));
}

export async function showClient(d: AdminDeps, id: string): Promise<Record<string, unknown> | undefined> {
  const c = await d.store.getClient(id);
  if (!c) return undefined;
  const grants = (await d.store.grantsOfClient(id)).map((g) => ({
    id: g.id,
    subject: g.subject,
    scopes: g.scopes.join(" "),
    created_at: new Date(g.created_at).toISOString(),
    expires_at: new Date(g.expires_at).toISOString(),
    ...(g.revoked_at !== undefined
      ? { revoked_at: new Date(g.revoked_at).toISOString(), revoked_reason: g.revoked_reason }
      : {}),
  }));
  return { ...publicClientView(c), grants };
}

export async function revokeClient(d: AdminDeps, id: string): Promise<boolean> {
  const revoked = await d.store.deleteClient(id, d.now());
  if (revoked)
    d.audit?.event({ event: "client_revoked", success: true, client_id: id, reason: "gatehouse clients revoke" });
  return revoked;
}

export async function listSessions(d: AdminDeps): Promise<Record<string, unknown>[]> {
  const now = d.now();
  return (await d.store.listSessions())
    .filter((s) => s.revoked_at === undefined && s.expires_at > now)
    .sort((a, b) => a.created_at - b.created_at)
    .map((s) => ({
      id: s.id,
      subject: s.subject,
      method: s.method,
      created_at: new Date(s.created_at).toISOString(),
      expires_at: new Date(s.expires_at).toISOString(),
    }));
}

/** Revokes one session by id, or every session of a subject (`subject:alice`). Returns how many. */
export async function revokeSessions(d: AdminDeps, target: string): Promise<number> {
  const subject = target.startsWith("subject:") ? target.slice("subject:".length) : undefined;
  let n = 0;
  for (const s of await d.store.listSessions()) {
    if (subject !== undefined ? s.subject === subject : s.id === target) {
      if (await d.store.revokeSession(s.id, d.now())) {
        n++;
        d.audit?.event({
          event: "browser_session_revoked",
          success: true,
          subject: s.subject,
          reason: "gatehouse sessions revoke",
        });
      }
    }
  }
  return n;
}

export async function rotateKeys(d: AdminDeps): Promise<string> {
  return d.keys.rotate(d.now(), "gatehouse keys rotate");
}

/** POST /reload: `gatehouse reload` (a refused configuration is 422 with its problems). */
export const reloadApi = (reload: () => Promise<ReloadResult>) =>
  new Elysia({ name: "admin-reload" }).post("/reload", async () => {
    const result = await reload();
    return Response.json(result, { status: result.ok ? 200 : 422 });
  });

/** The admin API the running server offers on its Unix socket. */
export const adminApi = (d: AdminDeps) =>
  new Elysia({ name: "admin" })
    .use(d.reload ? reloadApi(d.reload) : new Elysia())
    .get("/clients", async () => Response.json(await listClients(d)))
    .get("/clients/:id", async ({ params }) => {
      const c = await showClient(d, decodeURIComponent(params.id));
      return c ? Response.json(c) : Response.json({ error: "not_found" }, { status: 404 });
    })
    .delete("/clients/:id", async ({ params }) => {
      const ok = await revokeClient(d, decodeURIComponent(params.id));
      return ok ? Response.json({ revoked: true }) : Response.json({ error: "not_found" }, { status: 404 });
    })
    .get("/sessions", async () => Response.json(await listSessions(d)))
    .delete("/sessions/:id", async ({ params }) => {
      const n = await revokeSessions(d, decodeURIComponent(params.id));
      return n > 0 ? Response.json({ revoked: n }) : Response.json({ error: "not_found" }, { status: 404 });
    })
    .post("/keys/rotate", async () => {
      try {
        return Response.json({ kid: await rotateKeys(d) });
      } catch (e) {
        return Response.json({ error: (e as Error).message }, { status: 409 });
      }
    });
