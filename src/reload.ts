// Reloading the configuration without dropping anyone (SIGHUP, `gatehouse reload`, gateway.watchConfig): the new
// servers.json is loaded and checked completely first — with any problem the running configuration stays and every
// problem is logged; else the next app is built from it, taking over the sessions, unchanged backends, subscriptions,
// tasks and (when its settings are unchanged) the authorization server (app.ts Carry), and requests go to it from then
// on. Settings that cannot change while running are named in the log and keep their running value.

import { type FSWatcher, watch } from "node:fs";
import { basename, dirname, isAbsolute } from "node:path";
import type { Auditor } from "./audit.ts";
import type { Config } from "./config/types.ts";
import type { Logger } from "./log.ts";

export interface ReloadResult {
  ok: boolean;
  /** Why the new configuration was refused (each problem with its path). */
  problems?: string[];
  added?: string[];
  changed?: string[];
  removed?: string[];
  /** Settings that changed but only take effect after a restart. */
  restartNeeded?: string[];
  /** What the change does to people already connected (tokens refused from now on). */
  warnings?: string[];
}

export interface Reloadable {
  readonly gatehouse: {
    change: { added: string[]; changed: string[]; removed: string[] };
    announce(method: string): void;
    retire(): void;
  };
}

export interface ReloaderDeps<A extends Reloadable> {
  /** Loads and checks the configuration from where it was found at start (throws ConfigError with its problems). */
  load(): Promise<Config>;
  /** The configuration running now. */
  config(): Config;
  /** Builds the next app from a configuration, taking over from the running one. */
  build(config: Config): Promise<A>;
  /** Puts the next app in front of the listener. */
  swap(app: A, config: Config): void;
  /** The running app, retired once the next one serves. */
  current(): A;
  log: Logger;
  audit?: Pick<Auditor, "event">;
  /** Told each reload's outcome (metrics). */
  observe?: (ok: boolean) => void;
}

/** Settings read once at start: a reload that changes them says a restart is needed, and keeps the running ones. */
export function restartOnly(running: Config, next: Config): { names: string[]; config: Config } {
  const names: string[] = [];
  const kept: Config = { ...next };
  if (JSON.stringify(running.state) !== JSON.stringify(next.state)) {
    names.push("state");
    kept.state = running.state;
  }
  if (running.audit.file !== next.audit.file) {
    names.push("audit.path");
    kept.audit = { ...next.audit, ...(running.audit.file ? { file: running.audit.file } : {}) };
    if (!running.audit.file) delete (kept.audit as { file?: string }).file;
  }
  return { names, config: kept };
}

/**
 * What a valid change still breaks for those already connected: tokens are bound to the issuer, the resource and
 * the signing secret they were made with (RFC 9068 iss/aud), so changing one refuses every token issued before.
 */
export function reloadConsequences(running: Config, next: Config): string[] {
  const a = running.auth.oauthAs;
  const b = next.auth.oauthAs;
  if (!a || !b) return [];
  const out: string[] = [];
  const refused = "every token issued before is refused from now on: clients must sign in again";
  if (a.issuerUrl !== b.issuerUrl)
    out.push(`serverAuth.oauthAs.issuerUrl changed (${a.issuerUrl} → ${b.issuerUrl}): ${refused}`);
  if (a.resourceUrl !== b.resourceUrl) {
    out.push(`serverAuth.oauthAs.resourceUrl changed (${a.resourceUrl} → ${b.resourceUrl}): ${refused}`);
  }
  if (a.jwtSecret !== b.jwtSecret) out.push(`serverAuth.oauthAs.jwtSecret changed: ${refused}`);
  return out;
}

export function reloader<A extends Reloadable>(deps: ReloaderDeps<A>) {
  const once = async (trigger: string): Promise<ReloadResult> => {
    const { log } = deps;
    let next: Config;
    try {
      next = await deps.load();
    } catch (e) {
      const problems = (e as { problems?: { path: string; message: string }[] }).problems?.map(
        (p) => `${p.path || "(root)"}: ${p.message}`,
      ) ?? [(e as Error).message];
      log.error("configuration reload refused; the running configuration stays", {
        trigger,
        problems: problems.length,
      });
      for (const p of problems) log.error(`  ${p}`);
      deps.audit?.event({ event: "config_reload_refused", success: false, reason: problems.join("; ") });
      deps.observe?.(false);
      return { ok: false, problems };
    }
    const { names, config } = restartOnly(deps.config(), next);
    const warnings = reloadConsequences(deps.config(), config);
    let app: A;
    try {
      app = await deps.build(config);
    } catch (e) {
      const problem = (e as Error).message;
      log.error("configuration reload failed while starting it; the running configuration stays", { trigger, problem });
      deps.audit?.event({ event: "config_reload_refused", success: false, reason: problem });
      deps.observe?.(false);
      return { ok: false, problems: [problem] };
    }
    const old = deps.current();
    deps.swap(app, config);
    old.gatehouse.retire();
    // Lists may differ now (backends, ACL, scopes): every session is told to fetch them again.
    for (const m of ["tools", "prompts", "resources"]) app.gatehouse.announce(`notifications/${m}/list_changed`);
    const { added, changed, removed } = app.gatehouse.change;
    log.info("configuration reloaded", {
      trigger,
      added: added.join(",") || undefined,
      changed: changed.join(",") || undefined,
      removed: removed.join(",") || undefined,
    });
    if (names.length > 0) {
      log.warn("these settings changed but need a restart to take effect; the running values stay", {
        settings: names.join(","),
      });
    }
    for (const w of warnings) log.warn(`reload: ${w}`);
    deps.audit?.event({ event: "config_reloaded", success: true, reason: trigger });
    deps.observe?.(true);
    return {
      ok: true,
      added,
      changed,
      removed,
      ...(names.length > 0 ? { restartNeeded: names } : {}),
      ...(warnings.length > 0 ? { warnings } : {}),
    };
  };

  /** One reload at a time, in the order asked for (each reads the file as it is then). */
  let chain: Promise<unknown> = Promise.resolve();
  const reload = (trigger: string): Promise<ReloadResult> => {
    const next = chain.then(() => once(trigger));
    chain = next.catch(() => undefined);
    return next;
  };
  return { reload };
}

/**
 * gateway.watchConfig: reloads when the configuration file changes. The directory is watched, not the file: editors
 * and config managers replace the file (a rename), which ends a watch on the old one. Bursts of events (an editor
 * writes in several steps) make one reload, 300 ms after the last.
 */
export function configWatcher(path: string, onChange: () => void, log: Logger): { update(on: boolean): void } {
  let watcher: FSWatcher | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const file = basename(path);
  return {
    update(on) {
      if (on && !watcher) {
        if (!isAbsolute(path)) return; // inline (MCP_SERVERS_CONFIG) or env-only: no file to watch
        try {
          watcher = watch(dirname(path), (_event, name) => {
            if (name !== null && name !== file) return;
            clearTimeout(timer);
            timer = setTimeout(onChange, 300);
          });
          log.info("watching the configuration file for changes", { path });
        } catch (e) {
          log.warn("cannot watch the configuration file (gateway.watchConfig)", { path, error: (e as Error).message });
        }
      } else if (!on && watcher) {
        watcher.close();
        watcher = undefined;
        clearTimeout(timer);
      }
    },
  };
}
