// Per-tool scopes as a truth table (policy/tool-scopes.ts, the one place they are decided): the config matrix and a
// tool's own `_meta.scopes` require every scope they name (AND); a backend's tools/list result `_meta.scopes` — a list
// of {name, description, tools} (mcp-oauth2-proxy's format) — opens a tool to ANY scope whose `tools` name it (OR).
// The step-up names, per missing clause, the narrowest scope that would let the call through. A matrix entry with
// `clients` is a scope only tokens of those clients can hold (AuthSec's per-scenario policy).

import { describe, expect, test } from "bun:test";
import type { Identity } from "../../src/auth/identity.ts";
import { ConfigError, parseConfig } from "../../src/config/load.ts";
import { type ScopeNeed, ToolScopes } from "../../src/policy/tool-scopes.ts";
import { TOOLBOX_SCOPES } from "../fixtures/toolbox-scopes.ts";

const base: Identity = { subject: "alice", roles: [], groups: [], provider: "oauth_as" };
const holding = (...scopes: string[]): Identity => ({ ...base, scopes: ["mcp", ...scopes] });

/** What a step-up would ask for ("closed:" when no scope the client can hold would do). */
function missing(ts: ToolScopes, who: Identity, need: ScopeNeed): string[] {
  const s = ts.shortfall(who, need);
  return s.kind === "step-up" ? s.scopes : [`closed:${s.scope}`];
}

const TOOLBOX = TOOLBOX_SCOPES;

describe("tool scopes: the matrix and a tool's own _meta.scopes (every scope required)", () => {
  const scopes = new ToolScopes({ "tools:write": ["web__admin_*"], files: ["files__*", "web__upload"] });

  test("a tool needs every scope that names it, plus the scopes it advertises in _meta.scopes", () => {
    expect(scopes.required("web__echo", { name: "echo" })).toEqual([]);
    expect(scopes.required("web__admin_reset", { name: "admin_reset" })).toEqual([["tools:write"]]);
    const need = scopes.required("web__admin_x", { name: "admin_x", _meta: { scopes: ["vault:read"] } });
    expect(need).toEqual([["tools:write"], ["vault:read"]]);
    expect(scopes.grants(holding("tools:write"), need)).toBe(false);
    expect(scopes.grants(holding("vault:read"), need)).toBe(false);
    expect(scopes.grants(holding("tools:write", "vault:read"), need)).toBe(true);
    expect(missing(scopes, holding("tools:write"), need)).toEqual(["vault:read"]);
    expect(scopes.all()).toContain("vault:read");
  });

  test("advertised scopes that are not RFC 6749 scope tokens are ignored", () => {
    expect(scopes.required("web__x", { name: "x", _meta: { scopes: ['a"b', "c d", 7, "ok"] } })).toEqual([["ok"]]);
  });

  test("tokens without scopes (bearer, forwarded) are not limited; others need all", () => {
    expect(scopes.grants({ ...base, provider: "bearer" }, [["x"]])).toBe(true);
    expect(scopes.grants({ ...base, scopes: ["mcp"] }, [["x"]])).toBe(false);
    expect(scopes.grants({ ...base, scopes: ["mcp", "x"] }, [["x"]])).toBe(true);
  });

  test("the consent page describes a matrix scope by the tools it opens", () => {
    expect(scopes.describe("tools:write")).toBe("call the tools web__admin_*");
    expect(scopes.describe("unknown")).toBeUndefined();
  });
});

describe("tool scopes: a backend's scope list (mcp-oauth2-proxy's format: any granting scope suffices)", () => {
  const scopes = new ToolScopes({});
  const { scopes: listed, problems } = scopes.listed(TOOLBOX);
  const need = (tool: string) => scopes.required(`toolbox__${tool}`, { name: tool }, listed);

  test("the list is read as the backend sent it", () => {
    expect(problems).toEqual([]);
    expect(listed).toHaveLength(7);
  });

  test("get_resource is open to read_only, read_write or get_resource — any one of them", () => {
    expect(need("get_resource")).toEqual([["toolbox:get_resource", "toolbox:read_only", "toolbox:read_write"]]);
    for (const s of ["toolbox:read_only", "toolbox:read_write", "toolbox:get_resource"]) {
      expect(scopes.grants(holding(s), need("get_resource"))).toBe(true);
    }
    expect(scopes.grants(holding("toolbox:list_resources"), need("get_resource"))).toBe(false);
    expect(scopes.grants(holding(), need("get_resource"))).toBe(false);
  });

  test("a write tool is not opened by the read-only scope", () => {
    expect(scopes.grants(holding("toolbox:read_only"), need("delete_resource"))).toBe(false);
    expect(scopes.grants(holding("toolbox:read_write"), need("delete_resource"))).toBe(true);
    expect(scopes.grants(holding("toolbox:delete_resource"), need("delete_resource"))).toBe(true);
  });

  test("the step-up names the narrowest scope that would let the call through", () => {
    expect(missing(scopes, holding(), need("get_resource"))).toEqual(["toolbox:get_resource"]);
    expect(missing(scopes, holding("toolbox:read_only"), need("create_resource"))).toEqual(["toolbox:create_resource"]);
    expect(missing(scopes, holding("toolbox:read_write"), need("create_resource"))).toEqual([]);
  });

  test("a tool the list does not name needs nothing from it", () => {
    expect(need("echo")).toEqual([]);
    expect(scopes.grants(holding(), need("echo"))).toBe(true);
  });

  test("combined with the matrix and a tool's own _meta.scopes, every clause must be held", () => {
    const both = new ToolScopes({ audited: ["toolbox__delete_*"] });
    const l = both.listed(TOOLBOX).scopes;
    const n = both.required("toolbox__delete_resource", { name: "delete_resource", _meta: { scopes: ["danger"] } }, l);
    expect(n).toEqual([["audited"], ["danger"], ["toolbox:delete_resource", "toolbox:read_write"]]);
    expect(both.grants(holding("audited", "danger", "toolbox:read_write"), n)).toBe(true);
    expect(both.grants(holding("audited", "toolbox:read_write"), n)).toBe(false);
    expect(missing(both, holding("audited"), n)).toEqual(["danger", "toolbox:delete_resource"]);
  });

  test("the consent page shows each listed scope's own description", () => {
    expect(scopes.describe("toolbox:read_only")).toBe("Allow all read-only toolbox operations.");
    expect(scopes.all()).toContain("toolbox:delete_resource");
  });

  test("malformed entries are left out and said why; the rest is used; descriptions are bounded", () => {
    const s = new ToolScopes({});
    const r = s.listed([
      { name: "ok", tools: ["a"] },
      { name: "has space", tools: ["a"] },
      { name: "no-tools" },
      { name: "bad-tools", tools: [1] },
      "x",
      { name: "long", description: "d".repeat(5000), tools: ["a"] },
    ]);
    expect(r.scopes.map((x) => x.name)).toEqual(["ok", "long"]);
    expect(r.problems).toHaveLength(4);
    expect((s.describe("long") as string).length).toBe(300);
    expect(s.listed({ not: "a list" }).problems).toEqual(["_meta.scopes is not a list"]);
  });
});

describe("tool scopes: a matrix entry with clients (only tokens of those clients can hold the scope)", () => {
  // "Alice with Claude Desktop may read but not write": tools:write opens the write tools, for Cursor only.
  const scopes = new ToolScopes({
    "tools:read": { tools: ["files__read_*"], clients: [] },
    "tools:write": { tools: ["files__write_*"], clients: ["Cursor", "https://cursor.example/*"], description: "Write" },
  });
  const write = scopes.required("files__write_file", { name: "write_file" });
  const read = scopes.required("files__read_file", { name: "read_file" });
  const claude: Identity = { ...holding("tools:read", "tools:write"), clientId: "c-1", clientName: "Claude Desktop" };
  const cursor: Identity = { ...holding("tools:read", "tools:write"), clientId: "c-2", clientName: "Cursor" };
  const cursorById: Identity = { ...holding("tools:write"), clientId: "https://cursor.example/oauth/client.json" };

  test("a token of a listed client holds the scope; a token of another client does not, whatever it was granted", () => {
    expect(scopes.grants(cursor, write)).toBe(true);
    expect(scopes.grants(cursorById, write)).toBe(true);
    expect(scopes.grants(claude, write)).toBe(false);
    expect(scopes.grants(claude, read)).toBe(true);
  });

  test("no step-up can help another client: the tool is closed to it (hidden), not a 403 to loop on", () => {
    expect(missing(scopes, claude, write)).toEqual(["closed:tools:write"]);
    expect(missing(scopes, { ...cursor, scopes: ["mcp"] }, write)).toEqual(["tools:write"]);
  });

  test("a caller without a client (no client_id, no client_name) holds no client-restricted scope", () => {
    expect(scopes.mayHold("tools:write", {})).toBe(false);
    expect(scopes.mayHold("tools:read", {})).toBe(true);
    // Static bearer tokens and forwarded headers have no scopes: tool scopes do not limit them (the ACL does).
    expect(scopes.grants({ ...base, provider: "bearer" }, write)).toBe(true);
  });

  test("the configured description is what the consent page shows", () => {
    expect(scopes.describe("tools:write")).toBe("Write");
    expect(scopes.describe("tools:read")).toBe("call the tools files__read_*");
  });
});

describe("serverAuth.toolScopes in servers.json", () => {
  const load = (toolScopes: unknown) => {
    const config = { mcpServers: { s: { command: "x" } }, serverAuth: { toolScopes } };
    try {
      return parseConfig(JSON.stringify(config), { source: "servers.json", dir: "/tmp", env: {} }).auth.toolScopes;
    } catch (e) {
      if (e instanceof ConfigError) return e.problems;
      throw e;
    }
  };

  test("both forms load: a list of tool patterns, or {tools, clients, description}", () => {
    expect(
      load({
        "tools:read": ["*__read_*"],
        "tools:write": { tools: ["*__write_*"], clients: ["Cursor"], description: "Change files" },
      }),
    ).toEqual({
      "tools:read": { tools: ["*__read_*"], clients: [] },
      "tools:write": { tools: ["*__write_*"], clients: ["Cursor"], description: "Change files" },
    });
  });

  test("a scope name a client could not ask for, or an unknown key, is refused with its path", () => {
    expect(load({ "tools write": ["x"] })).toMatchObject([{ path: 'serverAuth.toolScopes["tools write"]' }]);
    const typo = load({ w: { tools: ["x"], client: ["Cursor"] } }) as { path: string }[];
    expect(typo[0]?.path).toContain("serverAuth.toolScopes");
  });
});
