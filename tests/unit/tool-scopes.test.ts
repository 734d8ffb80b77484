// Per-tool scopes as a truth table (policy/tool-scopes.ts, the one place they are decided): the config matrix and a
// tool's own `_meta.scopes` require every scope they name (AND); a backend's tools/list result `_meta.scopes` — a list
// of {name, description, tools} (mcp-oauth2-proxy's format) — opens a tool to ANY scope whose `tools` name it (OR).
// The step-up names, per missing clause, the narrowest scope that would let the call through.

import { describe, expect, test } from "bun:test";
import type { Identity } from "../../src/auth/identity.ts";
import { grants, missingScopes, ToolScopes } from "../../src/policy/tool-scopes.ts";

const base: Identity = { subject: "alice", roles: [], groups: [], provider: "oauth_as" };
const holding = (...scopes: string[]): Identity => ({ ...base, scopes: ["mcp", ...scopes] });

/** The example of mcp-oauth2-proxy's README, as a backend's tools/list result carries it in `_meta.scopes`. */
const TOOLBOX = [
  {
    name: "toolbox:read_only",
    description: "Allow all read-only toolbox operations.",
    tools: ["get_resource", "list_resources"],
  },
  {
    name: "toolbox:read_write",
    description: "Allow all toolbox operations.",
    tools: ["get_resource", "list_resources", "create_resource", "update_resource", "delete_resource"],
  },
  { name: "toolbox:get_resource", description: "Allow getting a resource.", tools: ["get_resource"] },
  { name: "toolbox:list_resources", description: "Allow listing resources.", tools: ["list_resources"] },
  { name: "toolbox:create_resource", description: "Allow creating resources.", tools: ["create_resource"] },
  { name: "toolbox:update_resource", description: "Allow updating resources.", tools: ["update_resource"] },
  { name: "toolbox:delete_resource", description: "Allow deleting resources.", tools: ["delete_resource"] },
];

describe("tool scopes: the matrix and a tool's own _meta.scopes (every scope required)", () => {
  const scopes = new ToolScopes({ "tools:write": ["web__admin_*"], files: ["files__*", "web__upload"] });

  test("a tool needs every scope that names it, plus the scopes it advertises in _meta.scopes", () => {
    expect(scopes.required("web__echo", { name: "echo" })).toEqual([]);
    expect(scopes.required("web__admin_reset", { name: "admin_reset" })).toEqual([["tools:write"]]);
    const need = scopes.required("web__admin_x", { name: "admin_x", _meta: { scopes: ["vault:read"] } });
    expect(need).toEqual([["tools:write"], ["vault:read"]]);
    expect(grants(holding("tools:write"), need)).toBe(false);
    expect(grants(holding("vault:read"), need)).toBe(false);
    expect(grants(holding("tools:write", "vault:read"), need)).toBe(true);
    expect(missingScopes(holding("tools:write"), need)).toEqual(["vault:read"]);
    expect(scopes.all()).toContain("vault:read");
  });

  test("advertised scopes that are not RFC 6749 scope tokens are ignored", () => {
    expect(scopes.required("web__x", { name: "x", _meta: { scopes: ['a"b', "c d", 7, "ok"] } })).toEqual([["ok"]]);
  });

  test("tokens without scopes (bearer, forwarded) are not limited; others need all", () => {
    expect(grants({ ...base, provider: "bearer" }, [["x"]])).toBe(true);
    expect(grants({ ...base, scopes: ["mcp"] }, [["x"]])).toBe(false);
    expect(grants({ ...base, scopes: ["mcp", "x"] }, [["x"]])).toBe(true);
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
      expect(grants(holding(s), need("get_resource"))).toBe(true);
    }
    expect(grants(holding("toolbox:list_resources"), need("get_resource"))).toBe(false);
    expect(grants(holding(), need("get_resource"))).toBe(false);
  });

  test("a write tool is not opened by the read-only scope", () => {
    expect(grants(holding("toolbox:read_only"), need("delete_resource"))).toBe(false);
    expect(grants(holding("toolbox:read_write"), need("delete_resource"))).toBe(true);
    expect(grants(holding("toolbox:delete_resource"), need("delete_resource"))).toBe(true);
  });

  test("the step-up names the narrowest scope that would let the call through", () => {
    expect(missingScopes(holding(), need("get_resource"))).toEqual(["toolbox:get_resource"]);
    expect(missingScopes(holding("toolbox:read_only"), need("create_resource"))).toEqual(["toolbox:create_resource"]);
    expect(missingScopes(holding("toolbox:read_write"), need("create_resource"))).toEqual([]);
  });

  test("a tool the list does not name needs nothing from it", () => {
    expect(need("echo")).toEqual([]);
    expect(grants(holding(), need("echo"))).toBe(true);
  });

  test("combined with the matrix and a tool's own _meta.scopes, every clause must be held", () => {
    const both = new ToolScopes({ audited: ["toolbox__delete_*"] });
    const l = both.listed(TOOLBOX).scopes;
    const n = both.required("toolbox__delete_resource", { name: "delete_resource", _meta: { scopes: ["danger"] } }, l);
    expect(n).toEqual([["audited"], ["danger"], ["toolbox:delete_resource", "toolbox:read_write"]]);
    expect(grants(holding("audited", "danger", "toolbox:read_write"), n)).toBe(true);
    expect(grants(holding("audited", "toolbox:read_write"), n)).toBe(false);
    expect(missingScopes(holding("audited"), n)).toEqual(["danger", "toolbox:delete_resource"]);
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
