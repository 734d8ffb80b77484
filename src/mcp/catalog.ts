// The aggregated view of every backend: tools, resources, resource templates and prompts, named as naming.ts says
// (`server__name`, resource URIs `server+uri`, descriptions prefixed `[server]`), cached per backend until it
// reports list_changed or restarts, and filtered per caller by the ACL and tool scopes (policy/tool-scopes.ts, fed the
// scopes a backend advertises in tools/list). Routing goes the other way: a prefixed name back to (backend, original
// name). Anything the caller may not use is reported exactly like something that does not exist.

import type { Identity } from "../auth/identity.ts";
import type { BackendConfig } from "../config/types.ts";
import type { Logger } from "../log.ts";
import { type Naming, prefixed } from "../naming.ts";
import { type Acl, classifyTool, type ToolClass } from "../policy/acl.ts";
import { type ListedScope, type ScopeNeed, scopesNamed, type ToolScopes } from "../policy/tool-scopes.ts";
import type { BackendClient } from "./backends/backend-client.ts";
import type { Target } from "./call.ts";
import { ErrorCode, RpcError } from "./jsonrpc.ts";

export interface Backend {
  config: BackendConfig;
  client: BackendClient;
}

export interface ToolEntry {
  backend: string;
  name: string;
  class: ToolClass;
  /** OAuth scopes a token needs to see and call it (policy/tool-scopes.ts). */
  needs: ScopeNeed;
  /** The definition as clients see it (prefixed). */
  definition: Record<string, unknown>;
}

type Kind = "tools" | "resources" | "resourceTemplates" | "prompts";

/** A backend's list as it answered: the items, and the scopes its tools/list result advertised (`_meta.scopes`). */
interface Listing {
  items: Record<string, unknown>[];
  /** The pages' `_meta.scopes`, concatenated; undefined when no page had one. */
  scopes?: unknown[];
}

const LIST: Record<Kind, { method: string; field: string; capability: string }> = {
  tools: { method: "tools/list", field: "tools", capability: "tools" },
  resources: { method: "resources/list", field: "resources", capability: "resources" },
  resourceTemplates: { method: "resources/templates/list", field: "resourceTemplates", capability: "resources" },
  prompts: { method: "prompts/list", field: "prompts", capability: "prompts" },
};

/** A backend asked for more pages than this is misbehaving; what we have is used. */
const MAX_PAGES = 100;

export class Catalog {
  private readonly cache = new Map<string, Map<Kind, Promise<Listing>>>();
  /** A backend's tools by name, as entries (classified, scoped, named): built once per fetched list. */
  private readonly toolIndexes = new WeakMap<Promise<Listing>, Promise<Map<string, ToolEntry>>>();

  constructor(
    private readonly backends: Map<string, Backend>,
    private readonly acl: Acl,
    private readonly log: Logger,
    readonly naming: Naming,
    private readonly toolScopes: ToolScopes,
  ) {}

  /** Drops cached lists of one backend (all kinds when `kind` is omitted). */
  invalidate(backend: string, kind?: Kind): void {
    if (kind) this.cache.get(backend)?.delete(kind);
    else this.cache.delete(backend);
  }

  /** The backend a client-side name designates, and the backend's own name; undefined when none matches. */
  split(name: unknown): { backend: Backend; rest: string } | undefined {
    if (typeof name !== "string") return undefined;
    return this.found(this.naming.inward(name));
  }

  /** The same for a resource URI. */
  splitUri(uri: unknown): { backend: Backend; rest: string } | undefined {
    if (typeof uri !== "string") return undefined;
    return this.found(this.naming.inwardUri(uri));
  }

  private found(target: { server: string; rest: string } | undefined) {
    const backend = target && this.backends.get(target.server);
    return backend && target ? { backend, rest: target.rest } : undefined;
  }

  private async fetchAll(b: Backend, kind: Kind): Promise<Listing> {
    await b.client.ensureReady();
    const spec = LIST[kind];
    if (!b.client.info?.capabilities[spec.capability]) return { items: [] };
    const listing: Listing = { items: [] };
    let cursor: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const result = await b.client.request(spec.method, cursor ? { cursor } : undefined);
      const list = result[spec.field];
      if (Array.isArray(list)) for (const item of list) if (item && typeof item === "object") listing.items.push(item);
      const scopes = (result._meta as Record<string, unknown> | undefined)?.scopes;
      if (kind === "tools" && scopes !== undefined) listing.scopes = [...(listing.scopes ?? []), scopes].flat();
      cursor = typeof result.nextCursor === "string" && result.nextCursor !== "" ? result.nextCursor : undefined;
      if (!cursor) break;
    }
    return listing;
  }

  /** The backend's own list, cached; a failed fetch is not cached so the next call retries. */
  raw(b: Backend, kind: Kind): Promise<Listing> {
    let perBackend = this.cache.get(b.config.name);
    if (!perBackend) {
      perBackend = new Map();
      this.cache.set(b.config.name, perBackend);
    }
    const hit = perBackend.get(kind);
    if (hit) return hit;
    const p = this.fetchAll(b, kind);
    perBackend.set(kind, p);
    p.catch(() => {
      if (this.cache.get(b.config.name)?.get(kind) === p) this.cache.get(b.config.name)?.delete(kind);
    });
    return p;
  }

  /** Lists of every backend, in parallel; a backend that fails is left out (and logged) so the others still serve. */
  private async gather(kind: Kind): Promise<{ backend: Backend; items: Record<string, unknown>[] }[]> {
    const all = [...this.backends.values()];
    const results = await Promise.allSettled(all.map((b) => this.raw(b, kind)));
    const out: { backend: Backend; items: Record<string, unknown>[] }[] = [];
    results.forEach((r, i) => {
      const backend = all[i] as Backend;
      if (r.status === "fulfilled") out.push({ backend, items: r.value.items });
      else {
        this.log.warn(`${LIST[kind].method} failed on a backend; it is left out of the list`, {
          backend: backend.config.name,
          error: (r.reason as Error).message,
        });
      }
    });
    return out;
  }

  private toolEntry(b: Backend, t: Record<string, unknown>, listed: readonly ListedScope[]): ToolEntry {
    const name = String(t.name);
    const cls = classifyTool(b.config.toolAcl, name, t.annotations as Record<string, unknown> | undefined);
    return {
      backend: b.config.name,
      name,
      class: cls,
      needs: this.toolScopes.required(prefixed(b.config.name, name), t, listed),
      definition: this.outwardItem(b.config.name, t, "name"),
    };
  }

  /** The tools of a backend by their own name, from its cached list (a failed fetch rejects, and is retried). */
  private tools(b: Backend): Promise<Map<string, ToolEntry>> {
    const list = this.raw(b, "tools");
    let index = this.toolIndexes.get(list);
    if (!index) {
      index = list.then(({ items, scopes }) => {
        const listed = this.toolScopes.listed(scopes);
        for (const problem of listed.problems) {
          this.log.warn("a backend's tools/list scopes are partly unusable", { backend: b.config.name, problem });
        }
        const m = new Map<string, ToolEntry>();
        for (const t of items) {
          if (typeof t.name === "string" && !m.has(t.name)) m.set(t.name, this.toolEntry(b, t, listed.scopes));
        }
        return m;
      });
      this.toolIndexes.set(list, index);
    }
    return index;
  }

  async listTools(identity: Identity): Promise<Record<string, unknown>[]> {
    const all = [...this.backends.values()];
    const results = await Promise.allSettled(all.map((b) => this.tools(b)));
    const out: Record<string, unknown>[] = [];
    results.forEach((r, i) => {
      if (r.status === "rejected") {
        this.log.warn("tools/list failed on a backend; it is left out of the list", {
          backend: (all[i] as Backend).config.name,
          error: (r.reason as Error).message,
        });
        return;
      }
      for (const e of r.value.values()) {
        if (this.acl.tool(identity, e.backend, e.name, e.class).allow && this.toolScopes.grants(identity, e.needs)) {
          out.push(e.definition);
        }
      }
    });
    return out;
  }

  /**
   * The scopes these backends advertise in tools/list (either form), for a consent page: each backend's list as
   * cached, else fetched — but a backend that has not answered when `deadline` settles (or fails) is left out and
   * logged; its list goes on loading, so a later consent or step-up finds its scopes.
   */
  async advertisedScopes(deadline: Promise<unknown>, waitMs: number): Promise<string[]> {
    const out = new Set<string>();
    await Promise.all(
      [...this.backends.values()].map(async (b) => {
        const tools = this.tools(b);
        tools.catch(() => {}); // the answer may come after the deadline: nobody waits for it then
        let index: Map<string, ToolEntry> | "late";
        try {
          index = await Promise.race([tools, deadline.then(() => "late" as const)]);
        } catch (e) {
          this.log.warn("consent: a backend could not list its tools; its scopes are not offered on this page", {
            backend: b.config.name,
            error: (e as Error).message,
          });
          return;
        }
        if (index === "late") {
          this.log.warn("consent: a backend did not list its tools in time; its scopes are not offered on this page", {
            backend: b.config.name,
            waited_ms: waitMs,
          });
          return;
        }
        for (const e of index.values()) {
          for (const s of scopesNamed(e.needs)) if (this.toolScopes.isAdvertised(s)) out.add(s);
        }
      }),
    );
    return [...out];
  }

  /** Total number of tools across backends whose lists are cached (for /health; not filtered). */
  async cachedToolCount(): Promise<number> {
    let n = 0;
    for (const perBackend of this.cache.values()) {
      const p = perBackend.get("tools");
      if (!p) continue;
      try {
        n += (await p).items.length;
      } catch {
        // not counted
      }
    }
    return n;
  }

  /**
   * What a tools/call names, resolved once for admission and dispatch: the tool when the caller may use it; else a
   * refusal. Unknown and forbidden tools get the same answer, so a caller learns nothing about tools hidden from it;
   * a tool the token's scopes do not cover names the scopes needed, so the client can step up.
   */
  async resolveTool(identity: Identity, name: unknown): Promise<Target> {
    const shown = typeof name === "string" ? name : "(none)";
    // The backend and rule are for the audit record only: the caller gets the same error as for no such tool.
    const unknown = (rule?: string, backend?: string): Target => ({
      kind: "refused",
      error: new RpcError(ErrorCode.InvalidParams, `Unknown tool: ${shown}`),
      ...(rule ? { rule } : {}),
      ...(backend ? { backend } : {}),
    });
    const target = this.split(name);
    if (!target) return unknown();
    let tools: Map<string, ToolEntry>;
    try {
      tools = await this.tools(target.backend);
    } catch (e) {
      const error = e instanceof RpcError ? e : new RpcError(ErrorCode.InternalError, (e as Error).message);
      return { kind: "refused", error, backend: target.backend.config.name, failed: true };
    }
    const tool = tools.get(target.rest);
    if (!tool) return unknown();
    const decision = this.acl.tool(identity, tool.backend, tool.name, tool.class);
    if (!decision.allow) {
      this.log.info("tool call refused by the ACL", {
        subject: identity.subject,
        tool: shown,
        rule: decision.rule,
        access: tool.class.kind,
      });
      return unknown(decision.rule, tool.backend);
    }
    if (!this.toolScopes.grants(identity, tool.needs)) {
      const short = this.toolScopes.shortfall(identity, tool.needs);
      if (short.kind === "closed") {
        // No scope this client can be granted opens it: hidden, like a tool the ACL denies (no step-up to loop on).
        this.log.info("tool call refused: its scope is for other clients", {
          subject: identity.subject,
          tool: shown,
          scope: short.scope,
          client_id: identity.clientId,
        });
        return unknown(`toolScopes.${short.scope}.clients`, tool.backend);
      }
      const error = insufficientScopeError(shown, short.scopes);
      return { kind: "refused", error, backend: tool.backend, rule: decision.rule, scopes: short.scopes };
    }
    return { kind: "tool", backend: target.backend, tool, rule: decision.rule };
  }

  async listResources(identity: Identity): Promise<Record<string, unknown>[]> {
    const out: Record<string, unknown>[] = [];
    for (const { backend, items } of await this.gather("resources")) {
      const server = backend.config.name;
      for (const r of items) {
        if (typeof r.uri !== "string" || !this.acl.resource(identity, server, r.uri).allow) continue;
        out.push(this.outwardItem(server, r, "uri"));
      }
    }
    return out;
  }

  async listResourceTemplates(identity: Identity): Promise<Record<string, unknown>[]> {
    const out: Record<string, unknown>[] = [];
    for (const { backend, items } of await this.gather("resourceTemplates")) {
      const server = backend.config.name;
      for (const r of items) {
        if (typeof r.uriTemplate !== "string" || !this.acl.resource(identity, server, r.uriTemplate).allow) continue;
        const item = this.outwardItem(server, r, "uriTemplate");
        out.push(item);
      }
    }
    return out;
  }

  async listPrompts(identity: Identity): Promise<Record<string, unknown>[]> {
    const out: Record<string, unknown>[] = [];
    for (const { backend, items } of await this.gather("prompts")) {
      const server = backend.config.name;
      for (const p of items) {
        if (typeof p.name !== "string" || !this.acl.prompt(identity, server, p.name).allow) continue;
        out.push(this.outwardItem(server, p, "name"));
      }
    }
    return out;
  }

  /** A list item as clients see it: its key (name, uri or uriTemplate) and, for resources, its name, mapped. */
  private outwardItem(
    server: string,
    item: Record<string, unknown>,
    key: "name" | "uri" | "uriTemplate",
  ): Record<string, unknown> {
    if (!this.naming.prefixed) return item;
    const out: Record<string, unknown> = {
      ...item,
      [key]:
        key === "name"
          ? this.naming.outward(server, String(item[key]))
          : this.naming.outwardUri(server, String(item[key])),
      description: this.naming.describe(server, item.description),
    };
    if (key !== "name" && typeof item.name === "string") out.name = this.naming.outward(server, item.name);
    return out;
  }

  /** A prefixed resource URI the caller may read, subscribe to or complete → (backend, original URI). */
  resolveResource(identity: Identity, uri: unknown): Target {
    const target = this.splitUri(uri);
    const decision = target && this.acl.resource(identity, target.backend.config.name, target.rest);
    if (!target || !decision?.allow) {
      const error = new RpcError(
        ErrorCode.InvalidParams,
        `Unknown resource: ${typeof uri === "string" ? uri : "(none)"}`,
      );
      return { kind: "refused", error, ...(decision?.rule ? { rule: decision.rule } : {}) };
    }
    return { kind: "resource", backend: target.backend, uri: target.rest, rule: decision.rule };
  }

  resolvePrompt(identity: Identity, name: unknown): Target {
    const target = this.split(name);
    const decision = target && this.acl.prompt(identity, target.backend.config.name, target.rest);
    if (!target || !decision?.allow) {
      const error = new RpcError(
        ErrorCode.InvalidParams,
        `Unknown prompt: ${typeof name === "string" ? name : "(none)"}`,
      );
      return { kind: "refused", error, ...(decision?.rule ? { rule: decision.rule } : {}) };
    }
    return { kind: "prompt", backend: target.backend, name: target.rest, rule: decision.rule };
  }
}

/** JSON-RPC error for a call the token's scopes do not cover (code -32003; data says which scopes are needed). */
export const INSUFFICIENT_SCOPE = -32003;

export function insufficientScopeError(tool: string, needed: string[]): RpcError {
  return new RpcError(INSUFFICIENT_SCOPE, `insufficient_scope: ${tool} needs the scope(s) ${needed.join(" ")}`, {
    error: "insufficient_scope",
    scope: needed.join(" "),
  });
}
