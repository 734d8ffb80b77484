import { describe, expect, test } from "bun:test";
import type { Identity } from "../../src/auth/identity.ts";
import { type ConfigError, parseConfig } from "../../src/config/load.ts";
import { Acl, classifyTool, type ToolClass } from "../../src/policy/acl.ts";
import { globMatcher } from "../../src/policy/glob.ts";

const who = (subject: string, roles: string[] = []): Identity => ({ subject, roles, groups: [], provider: "bearer" });
const READ: ToolClass = { kind: "read", source: "annotation" };
const WRITE: ToolClass = { kind: "write", source: "override" };
const UNKNOWN: ToolClass = { kind: "write", source: "fallback" };

function aclOf(acl: unknown): Acl {
  const c = parseConfig(JSON.stringify({ mcpServers: { s: { command: "x" } }, serverAuth: { acl } }), {
    source: "t",
    dir: "/",
    env: {},
  });
  return new Acl(c.auth.acl);
}

describe("glob patterns", () => {
  const cases: [string, string, boolean][] = [
    ["*", "", true],
    ["**", "anything", true],
    ["sentry__*", "sentry__", true],
    ["sentry__*", "slack__send", false],
    ["*admin*", "admin", true],
    ["*_admin_*", "admin_ping", false],
    ["*_admin_*", "_admin", false],
    ["foo*bar", "foobar", true],
    ["foo*bar", "foo", false],
    ["a*b*c", "abc", true],
    ["a*b*c", "abcX", false],
    ["sentry__*_admin__*", "sentry__team_admin__delete", true],
    ["sentry__*_admin__*", "sentry__admin__list", false],
    ["get.*", "getX", false],
    ["Echo", "echo", false],
  ];
  for (const [pattern, value, expected] of cases) {
    test(`${JSON.stringify(pattern)} ${expected ? "matches" : "does not match"} ${JSON.stringify(value)}`, () => {
      expect(globMatcher(pattern)(value)).toBe(expected);
    });
  }
});

describe("tool classification", () => {
  const toolAcl = { read: ["get_*", "list_*"], write: ["list_and_delete", "create_*"] };
  test("tool_acl read globs → read", () =>
    expect(classifyTool(toolAcl, "get_x")).toEqual({ kind: "read", source: "override" }));
  test("matched by both lists → write (fail safe)", () =>
    expect(classifyTool(toolAcl, "list_and_delete")).toEqual({ kind: "write", source: "override" }));
  test("readOnlyHint: true → read", () =>
    expect(classifyTool(toolAcl, "peek", { readOnlyHint: true })).toEqual({ kind: "read", source: "annotation" }));
  test("readOnlyHint that is not literally true does not count", () =>
    expect(classifyTool(toolAcl, "peek", { readOnlyHint: "yes" })).toEqual({ kind: "write", source: "fallback" }));
  test("a tool in neither list and without hints counts as write", () =>
    expect(classifyTool(toolAcl, "mystery")).toEqual({ kind: "write", source: "fallback" }));
  test("tool_acl wins over annotations", () =>
    expect(classifyTool(toolAcl, "create_x", { readOnlyHint: true })).toEqual({ kind: "write", source: "override" }));
});

describe("no ACL", () => {
  test("allows everything", () => {
    const acl = new Acl(undefined);
    expect(acl.tool(who("x"), "s", "t", WRITE)).toEqual({ allow: true, rule: "no-acl" });
    expect(acl.resource(who("x"), "s", "u://x").allow).toBe(true);
  });
});

describe("legacy ACL (proxy-mode.md › Legacy schema): first match wins on prefixed names", () => {
  const acl = aclOf({
    default: "allow",
    rules: [
      { subjects: ["bob"], tools: ["sentry__*"], policy: "deny" },
      { subjects: ["bob"], tools: ["*admin*"], policy: "deny" },
      { roles: ["admin"], tools: ["*"], policy: "allow" },
    ],
  });
  const table: [Identity, string, string, boolean, string][] = [
    [who("bob"), "sentry", "list_issues", false, "rules[0]"],
    [who("bob", ["admin"]), "sentry", "list_issues", false, "rules[0]"],
    [who("bob"), "github", "admin_panel", false, "rules[1]"],
    [who("bob"), "github", "search", true, "default"],
    [who("alice", ["admin"]), "sentry", "anything", true, "rules[2]"],
    [who("carol"), "sentry", "list_issues", true, "default"],
  ];
  for (const [id, server, tool, allow, rule] of table) {
    test(`${id.subject}${id.roles.length ? `(${id.roles})` : ""} on ${server}__${tool} → ${allow ? "allow" : "deny"} by ${rule}`, () => {
      expect(acl.tool(id, server, tool, WRITE)).toEqual({ allow, rule });
    });
  }

  test("a rule with both subjects and roles needs both (config-file.md › ACL config)", () => {
    const a = aclOf({
      default: "allow",
      rules: [{ subjects: ["bob"], roles: ["viewer"], tools: ["sentry__*"], policy: "deny" }],
    });
    expect(a.tool(who("bob", ["viewer"]), "sentry", "x", WRITE).allow).toBe(false);
    expect(a.tool(who("bob"), "sentry", "x", WRITE).allow).toBe(true);
    expect(a.tool(who("eve", ["viewer"]), "sentry", "x", WRITE).allow).toBe(true);
  });

  test("tools: [] matches nothing; subject globs work", () => {
    const a = aclOf({
      default: "deny",
      rules: [
        { subjects: ["*"], tools: [], policy: "allow" },
        { subjects: ["ali*"], tools: ["*"], policy: "allow" },
      ],
    });
    expect(a.tool(who("bob"), "s", "t", WRITE)).toEqual({ allow: false, rule: "default" });
    expect(a.tool(who("alice"), "s", "t", WRITE)).toEqual({ allow: true, rule: "rules[1]" });
  });

  test("resources and prompts follow the default", () => {
    expect(aclOf({ default: "deny", rules: [] }).resource(who("x"), "s", "u://1").allow).toBe(false);
    expect(aclOf({ default: "allow", rules: [] }).prompt(who("x"), "s", "p").allow).toBe(true);
  });
});

describe("role-based ACL (proxy-mode.md › Role-based schema): union of grants, deny wins", () => {
  const acl = aclOf({
    default: "deny",
    strictClassification: false,
    roles: {
      admin: [{ server: "*", access: "*" }],
      dev: [
        { server: ["github", "grafana"], access: "read" },
        { server: "github", access: "write", tools: ["gh_pr", "gh_issue"] },
      ],
      readonly: [{ server: "*", access: "read" }],
    },
    subjects: { charlie: { roles: ["readonly"], extra: [{ server: "sentry", access: "read" }] } },
  });
  const alice = who("alice", ["admin"]);
  const bob = who("bob", ["dev"]);
  const charlie = who("charlie", ["readonly"]);
  const table: [Identity, string, string, ToolClass, boolean][] = [
    [alice, "sentry", "delete_everything", WRITE, true],
    [alice, "x", "mystery", UNKNOWN, true],
    [bob, "github", "list_repos", READ, true],
    [bob, "grafana", "get_dashboard", READ, true],
    [bob, "grafana", "update_dashboard", WRITE, false],
    [bob, "github", "gh_pr", WRITE, true],
    [bob, "github", "gh_repo_delete", WRITE, false],
    [bob, "sentry", "list_issues", READ, false],
    [charlie, "sentry", "list_issues", READ, true],
    [charlie, "anything", "get", READ, true],
    [charlie, "anything", "set", WRITE, false],
    [who("nobody"), "github", "list_repos", READ, false],
  ];
  for (const [id, server, tool, cls, allow] of table) {
    test(`${id.subject} ${allow ? "may" : "may not"} use ${server}__${tool} (${cls.kind})`, () => {
      expect(acl.tool(id, server, tool, cls).allow).toBe(allow);
    });
  }

  test("the ACL's subjects table adds roles to a caller who has none of its own", () => {
    expect(acl.tool(who("charlie"), "x", "get", READ)).toEqual({ allow: true, rule: "roles.readonly[0]" });
  });

  test("resources and prompts: read grants count, write grants do not", () => {
    expect(acl.resource(bob, "github", "repo://x").allow).toBe(true);
    expect(acl.prompt(bob, "grafana", "p").allow).toBe(true);
    expect(acl.resource(bob, "sentry", "issue://1").allow).toBe(false);
    const writer = aclOf({ default: "deny", roles: { w: [{ server: "*", access: "write" }] } });
    expect(writer.resource(who("w", ["w"]), "s", "u://1").allow).toBe(false);
  });

  test("deny always wins (proxy-mode.md › Deny always wins)", () => {
    const a = aclOf({
      roles: {
        dev: [
          { server: "github", access: "*" },
          { server: "github", access: "write", tools: ["gh_repo_delete"], deny: true },
        ],
      },
    });
    const dev = who("d", ["dev"]);
    expect(a.tool(dev, "github", "gh_repo_delete", WRITE)).toEqual({ allow: false, rule: "roles.dev[1]" });
    expect(a.tool(dev, "github", "gh_pr", WRITE)).toEqual({ allow: true, rule: "roles.dev[0]" });
    // A write deny does not reach a read-classified tool, as in mcp serve.
    expect(a.tool(dev, "github", "gh_repo_delete", READ).allow).toBe(true);
  });

  test("strictClassification: allow grants never cover unclassified tools, deny grants always do", () => {
    const a = aclOf({
      default: "deny",
      strictClassification: true,
      roles: { all: [{ server: "*", access: "*" }], no: [{ server: "*", access: "read", deny: true }] },
    });
    expect(a.tool(who("a", ["all"]), "s", "mystery", UNKNOWN).allow).toBe(false);
    expect(a.tool(who("a", ["all"]), "s", "known", WRITE).allow).toBe(true);
    expect(a.tool(who("b", ["all", "no"]), "s", "mystery", UNKNOWN)).toEqual({ allow: false, rule: "roles.no[0]" });
  });

  test("resources/prompts globs match the backend's own URI and name", () => {
    const a = aclOf({
      default: "deny",
      subjects: { c: { extra: [{ server: "sentry", access: "read", resources: ["issue://*"] }] } },
    });
    expect(a.resource(who("c"), "sentry", "issue://42").allow).toBe(true);
    expect(a.resource(who("c"), "sentry", "project://1").allow).toBe(false);
  });

  test("roles named by a token but absent from the ACL grant nothing", () => {
    expect(acl.tool(who("z", ["ghost"]), "github", "x", READ)).toEqual({ allow: false, rule: "default" });
  });

  test("a subject named __proto__ or constructor gets nothing special", () => {
    expect(acl.tool(who("__proto__"), "github", "x", READ).allow).toBe(false);
    expect(acl.tool(who("constructor", ["toString"]), "github", "x", READ).allow).toBe(false);
  });
});

describe("clients on grants and rules (AuthSec's per-scenario policy: the user with this client)", () => {
  const as = (clientId?: string, clientName?: string, roles = ["staff"]): Identity => ({
    ...who("alice", roles),
    provider: "oauth_as",
    ...(clientId ? { clientId } : {}),
    ...(clientName ? { clientName } : {}),
  });
  const claude = as("https://claude.ai/oauth/mcp-oauth-client-metadata", "Claude");
  const desktop = as("c-7f3a", "Claude Desktop");
  const cursor = as("c-9b1e", "Cursor");
  const bearer = who("alice", ["staff"]);

  test("role grants: Alice with Claude Desktop may read but not write; with Cursor she may write", () => {
    const acl = aclOf({
      default: "deny",
      roles: {
        staff: [
          { server: "*", access: "read" },
          { server: "*", access: "write", clients: ["Cursor", "https://claude.ai/*"] },
        ],
      },
    });
    expect(acl.tool(desktop, "files", "read_file", READ).allow).toBe(true);
    expect(acl.tool(desktop, "files", "write_file", WRITE)).toEqual({ allow: false, rule: "default" });
    expect(acl.tool(cursor, "files", "write_file", WRITE)).toEqual({ allow: true, rule: "roles.staff[1]" });
    // A client_id glob (a CIMD client's URL) matches as well as a client_name.
    expect(acl.tool(claude, "files", "write_file", WRITE).allow).toBe(true);
    // A caller without a client (a static bearer token) never matches a grant that names clients.
    expect(acl.tool(bearer, "files", "write_file", WRITE).allow).toBe(false);
    expect(acl.tool(bearer, "files", "read_file", READ).allow).toBe(true);
  });

  test("a deny grant with clients applies to those clients only, and wins over allows for them", () => {
    const acl = aclOf({
      default: "deny",
      roles: {
        staff: [
          { server: "*", access: "*" },
          { server: "*", access: "write", deny: true, clients: ["Claude*"] },
        ],
      },
    });
    expect(acl.tool(desktop, "files", "write_file", WRITE)).toEqual({ allow: false, rule: "roles.staff[1]" });
    expect(acl.tool(desktop, "files", "read_file", READ).allow).toBe(true);
    expect(acl.tool(cursor, "files", "write_file", WRITE).allow).toBe(true);
    // Resources and prompts (read access) are not affected by a write deny.
    expect(acl.resource(desktop, "files", "file:///a").allow).toBe(true);
  });

  test("resources and prompts follow the client of role grants too", () => {
    const acl = aclOf({ default: "deny", roles: { staff: [{ server: "docs", access: "read", clients: ["Cursor"] }] } });
    expect(acl.resource(cursor, "docs", "memo://x").allow).toBe(true);
    expect(acl.resource(desktop, "docs", "memo://x").allow).toBe(false);
    expect(acl.prompt(desktop, "docs", "greet").allow).toBe(false);
  });

  test("legacy rules: a rule with clients matches only tokens of those clients (first match still wins)", () => {
    const acl = aclOf({
      default: "allow",
      rules: [
        { subjects: ["alice"], clients: ["Claude Desktop"], tools: ["*__write_*", "*__delete_*"], policy: "deny" },
        { roles: ["staff"], tools: ["*"], policy: "allow" },
      ],
    });
    expect(acl.tool(desktop, "files", "write_file", WRITE)).toEqual({ allow: false, rule: "rules[0]" });
    expect(acl.tool(desktop, "files", "read_file", READ)).toEqual({ allow: true, rule: "rules[1]" });
    expect(acl.tool(cursor, "files", "write_file", WRITE)).toEqual({ allow: true, rule: "rules[1]" });
    expect(acl.tool(bearer, "files", "write_file", WRITE)).toEqual({ allow: true, rule: "rules[1]" });
  });

  test("clients must be a list of non-empty globs", () => {
    const pathsOf = (acl: unknown) => {
      try {
        aclOf(acl);
        return [];
      } catch (e) {
        return (e as ConfigError).problems.map((p) => p.path);
      }
    };
    expect(pathsOf({ rules: [{ tools: ["*"], policy: "deny", clients: "Claude" }] })).toEqual([
      "serverAuth.acl.rules[0].clients",
    ]);
    expect(pathsOf({ roles: { r: [{ server: "*", access: "*", clients: [""] }] } })).toEqual([
      "serverAuth.acl.roles.r[0].clients[0]",
    ]);
  });
});
