// The backends of the running configuration, kept across reloads: a backend whose connection settings did not
// change keeps its client (its process, its upstream session, the calls in flight); a new one is created; a removed
// or changed one is retired — stopped once its calls in flight have finished. Its broadcasts go to whoever the
// current app says (the gateways of the newest configuration).

import type { BackendConfig } from "../../config/types.ts";
import type { Backend } from "../catalog.ts";
import type { JsonRpcNotification } from "../jsonrpc.ts";
import { type BackendDeps, createBackends } from "./factory.ts";

export interface PoolChange {
  backends: Backend[];
  added: string[];
  changed: string[];
  removed: string[];
}

/** What decides whether a backend's client can be kept: how it is reached and its deadlines. */
function connectionKey(c: BackendConfig): string {
  return JSON.stringify([c.transport, c.requestTimeoutMs, c.startupTimeoutMs]);
}

export class BackendPool {
  private readonly live = new Map<string, { key: string; backend: Backend }>();
  /** Backends retired and not yet stopped. */
  private readonly retiring = new Set<Promise<void>>();
  /** Where backends' messages that belong to no request go, and who is told when one (re)started. */
  listener: { onBroadcast(backend: string, n: JsonRpcNotification): void; onReady(backend: string): void } = {
    onBroadcast() {},
    onReady() {},
  };

  constructor(private deps: Omit<BackendDeps, "onBroadcast" | "onReady">) {}

  /** The environment backends started from now on inherit (the configuration's secrets taken out: config/env.ts). */
  setChildEnv(env: Record<string, string> | undefined): void {
    const { childEnv: _old, ...rest } = this.deps;
    this.deps = env ? { ...rest, childEnv: env } : rest;
  }

  get all(): Backend[] {
    return [...this.live.values()].map((x) => x.backend);
  }

  /** Takes the backends of a configuration: unchanged ones kept (with their new settings), the others replaced. */
  update(configs: BackendConfig[]): PoolChange {
    const out: PoolChange = { backends: [], added: [], changed: [], removed: [] };
    const next = new Map<string, { key: string; backend: Backend }>();
    const fresh: BackendConfig[] = [];
    for (const c of configs) {
      const key = connectionKey(c);
      const had = this.live.get(c.name);
      if (had && had.key === key) {
        // Same process and session; the tool ACL, idle policy, identity headers and route policy are the new ones.
        next.set(c.name, { key, backend: { config: c, client: had.backend.client } });
      } else {
        fresh.push(c);
        (had ? out.changed : out.added).push(c.name);
      }
    }
    const created = createBackends(fresh, {
      ...this.deps,
      onBroadcast: (name, n) => this.listener.onBroadcast(name, n),
      onReady: (name) => this.listener.onReady(name),
    });
    for (const b of created) next.set(b.config.name, { key: connectionKey(b.config), backend: b });
    for (const [name, had] of this.live) {
      const kept = next.get(name);
      if (kept?.backend.client === had.backend.client) continue;
      if (!kept) out.removed.push(name);
      this.retire(had.backend);
    }
    this.live.clear();
    for (const c of configs) {
      const entry = next.get(c.name) as { key: string; backend: Backend };
      this.live.set(c.name, entry);
      out.backends.push(entry.backend);
    }
    return out;
  }

  /** Stops a backend once its calls in flight are done (at most its request timeout later). */
  private retire(b: Backend): void {
    const p = (async () => {
      const { clock } = this.deps;
      const until = clock.now() + b.config.requestTimeoutMs;
      while (b.client.inFlight > 0 && clock.now() < until) await new Promise((r) => clock.setTimeout(() => r(0), 50));
      await b.client.stop().catch(() => {});
    })();
    this.retiring.add(p);
    void p.finally(() => this.retiring.delete(p));
  }

  /** Stops every backend, retired ones included. */
  async stopAll(): Promise<void> {
    await Promise.allSettled([...this.all.map((b) => b.client.stop()), ...this.retiring]);
  }
}
