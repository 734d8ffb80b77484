// resources/subscribe through the aggregate: one subscription upstream per resource, however many sessions of the
// route subscribed; the backend is told to stop when the last one leaves (or its session ends).

import type { Backend } from "./catalog.ts";
import type { ClientSession } from "./session.ts";

export class Subscriptions {
  /** Prefixed resource URI → ids of the sessions subscribed to it. */
  private readonly subscribers = new Map<string, Set<string>>();

  constructor(
    /** The backend and its own URI for a prefixed one (the route's current catalog: see `rebind`). */
    private split: (uri: string) => { backend: Backend; rest: string } | undefined,
  ) {}

  /** After a reload the route's subscriptions live on; names are resolved by the new catalog. */
  rebind(split: (uri: string) => { backend: Backend; rest: string } | undefined): void {
    this.split = split;
  }

  async subscribe(session: ClientSession, uri: string, target: { backend: Backend; uri: string }): Promise<void> {
    if (session.subscriptions.has(uri)) return;
    let set = this.subscribers.get(uri);
    if (!set) {
      await target.backend.client.request("resources/subscribe", { uri: target.uri });
      set = new Set();
      this.subscribers.set(uri, set);
    }
    set.add(session.id);
    session.subscriptions.add(uri);
  }

  /** Drops a session's subscription; the backend is told when the last subscriber leaves. */
  unsubscribe(session: ClientSession, uri: string): void {
    session.subscriptions.delete(uri);
    const set = this.subscribers.get(uri);
    if (!set) return;
    set.delete(session.id);
    if (set.size > 0) return;
    this.subscribers.delete(uri);
    const target = this.split(uri);
    if (target?.backend.client.connected) {
      void target.backend.client.request("resources/unsubscribe", { uri: target.rest }).catch(() => {});
    }
  }

  /** The ids of the sessions subscribed to a prefixed URI. */
  of(uri: string): Iterable<string> {
    return this.subscribers.get(uri) ?? [];
  }

  /** Whether a session is subscribed to a resource of the backend (it must not be reaped then). */
  touches(backend: string): boolean {
    for (const uri of this.subscribers.keys()) if (this.split(uri)?.backend.config.name === backend) return true;
    return false;
  }
}
