// The framework-free rules of issue 5: route policy for anonymous callers, the per-caller rate limit, and the
// configuration of routes and of env-only mode (each problem names the key or variable at fault). Per-tool scopes
// are in tool-scopes.test.ts.

import { describe, expect, test } from "bun:test";
import { envModeConfig } from "../../src/config/env-mode.ts";
import { ConfigError, loadConfig, locateConfig, parseConfig } from "../../src/config/load.ts";
import { DEFAULT_ROUTE_POLICY } from "../../src/config/routes.ts";
import { prefixedNaming, uriTag } from "../../src/naming.ts";
import { RateLimiter } from "../../src/policy/rate-limit.ts";
import { admitsAnonymous, anonymousMayCall } from "../../src/policy/route.ts";
import { publicBase, requestHost, routeForHost } from "../../src/routing.ts";

function problems(config: object, env: Record<string, string> = {}) {
  try {
    parseConfig(JSON.stringify(config), { source: "servers.json", dir: "/etc/gatehouse", env });
    return [];
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
}

describe("route policy for callers without credentials", () => {
  test("the default lets nobody in anonymously", () => {
    expect(admitsAnonymous(DEFAULT_ROUTE_POLICY)).toBe(false);
  });
  test("requireAuthForToolsList: false lets them initialize and list, not call", () => {
    const p = { ...DEFAULT_ROUTE_POLICY, requireAuthForToolsList: false };
    expect(admitsAnonymous(p)).toBe(true);
    expect(anonymousMayCall(p, "initialize", {})).toBe(true);
    expect(anonymousMayCall(p, "tools/list", {})).toBe(true);
    expect(anonymousMayCall(p, "tools/call", { name: "echo" })).toBe(false);
    expect(anonymousMayCall(p, "resources/read", { uri: "x" })).toBe(false);
  });
  test("publicTools are matched exactly (no case folding, no Unicode look-alikes)", () => {
    const p = { ...DEFAULT_ROUTE_POLICY, publicTools: ["web__echo", "docs__*"] };
    expect(anonymousMayCall(p, "tools/call", { name: "web__echo" })).toBe(true);
    expect(anonymousMayCall(p, "tools/call", { name: "docs__search" })).toBe(true);
    expect(anonymousMayCall(p, "tools/call", { name: "WEB__echo" })).toBe(false);
    expect(anonymousMayCall(p, "tools/call", { name: "web__echo\u200b" })).toBe(false);
    expect(anonymousMayCall(p, "tools/call", { name: "web__\u0435cho" })).toBe(false); // Cyrillic е
    expect(anonymousMayCall(p, "tools/call", {})).toBe(false);
    expect(anonymousMayCall(p, "Tools/Call", { name: "web__echo" })).toBe(false);
    expect(anonymousMayCall(p, "tools/list", {})).toBe(false);
  });
  test('authType "none" lets everything through', () => {
    const p = { ...DEFAULT_ROUTE_POLICY, authType: "none" as const };
    expect(anonymousMayCall(p, "resources/read", {})).toBe(true);
    expect(anonymousMayCall(p, "some/extension", {})).toBe(true);
  });
});

describe("rate limit per caller", () => {
  test("a minute's allowance, then 429 with the wait, then refilled; callers do not share buckets", () => {
    let now = 0;
    const rl = new RateLimiter(3, () => now);
    for (let i = 0; i < 3; i++) expect(rl.take("alice").ok).toBe(true);
    const refused = rl.take("alice");
    expect(refused).toEqual({ ok: false, retryAfterSeconds: 20 });
    expect(rl.take("bob").ok).toBe(true);
    now += 20_000;
    expect(rl.take("alice").ok).toBe(true);
    expect(rl.take("alice").ok).toBe(false);
  });
});

describe("routing helpers", () => {
  test("the public base comes from gateway.publicUrl, else the /mcp resource URL", () => {
    expect(publicBase("https://mcp.example.com/", undefined)).toBe("https://mcp.example.com");
    expect(publicBase(undefined, "https://h.example/gh/mcp")).toBe("https://h.example/gh");
    expect(publicBase(undefined, "https://h.example")).toBe("https://h.example");
    expect(publicBase(undefined, undefined)).toBeUndefined();
  });
  test("X-Forwarded-Host counts only from a trusted proxy; hosts match with or without the port", () => {
    const r = new Request("http://127.0.0.1/mcp", {
      headers: { host: "A.example:8080", "x-forwarded-host": "b.example" },
    });
    expect(requestHost(r, false)).toBe("a.example:8080");
    expect(requestHost(r, true)).toBe("b.example");
    const map = new Map([["a.example", 1]]);
    expect(routeForHost(map, "a.example:8080")).toBe(1);
    expect(routeForHost(map, "b.example")).toBeUndefined();
  });
});

describe("resource URI prefixes", () => {
  test("a valid, case-insensitive scheme tag per server, and back", () => {
    const naming = prefixedNaming(() => ["my_files", "9lives", "Docs"]);
    expect(naming.outwardUri("my_files", "file:///a.txt")).toBe("my-files+file:///a.txt");
    expect(naming.outwardUri("9lives", "demo://x")).toBe("x-9lives+demo://x");
    expect(new URL(naming.outwardUri("Docs", "demo://x/y")).protocol).toBe("docs+demo:");
    expect(naming.inwardUri("MY-FILES+file:///a.txt")).toEqual({ server: "my_files", rest: "file:///a.txt" });
    expect(naming.inwardUri("nope+file:///a.txt")).toBeUndefined();
    expect(naming.inwardUri("file:///a.txt")).toBeUndefined();
    expect(uriTag("a.b-c")).toBe("a.b-c");
  });
  test("two servers whose tags collide are a configuration problem", () => {
    const found = problems({ mcpServers: { my_files: { command: "x" }, "my-files": { command: "y" } } });
    expect(found.some((p) => p.path === "mcpServers.my-files" && p.message.includes('"my-files+"'))).toBe(true);
  });
});

describe("configuration of routes", () => {
  const two = { a: { command: "x" }, b: { url: "http://127.0.0.1:1/mcp" } };
  test("policies, pass-through, hosts and spawned backends load", () => {
    const c = parseConfig(
      JSON.stringify({
        mcpServers: {
          ...two,
          c: { command: "npx", args: ["srv"], port: 8765, route: { authType: "none", publicTools: ["x"] } },
        },
        gateway: {
          passthrough: "a",
          route: { requireAuthForToolsList: false },
          hosts: { "b.example": "b" },
          trustedProxies: ["10.0.0.0/8"],
          publicUrl: "https://mcp.example.com/",
          rateLimitPerMinute: 120,
        },
      }),
      { source: "s", dir: "/", env: {} },
    );
    expect(c.gateway.passthrough).toBe("a");
    expect(c.gateway.route.requireAuthForToolsList).toBe(false);
    expect(c.gateway.publicUrl).toBe("https://mcp.example.com");
    expect(c.gateway.paths).toEqual(["/mcp"]);
    const spawned = c.backends.find((b) => b.name === "c");
    expect(spawned?.transport).toMatchObject({ kind: "spawned-http", port: 8765, path: "/mcp" });
    expect(spawned?.route.authType).toBe("none");
  });
  test("names that do not exist, bad policies and unsatisfiable authTypes are reported with their paths", () => {
    const found = problems({
      mcpServers: { ...two, a: { command: "x", route: { authType: "sometimes" } } },
      serverAuth: { providers: ["bearer"], bearer: { tokens: { t: "alice" } } },
      gateway: {
        passthrough: "nope",
        hosts: { "X.example": "b", "c.example": "zzz" },
        route: { authType: "oauth" },
        trustedProxies: ["not-a-cidr"],
        publicUrl: "ftp://x",
      },
    });
    const paths = found.map((p) => p.path);
    expect(paths).toContain("gateway.passthrough");
    expect(paths).toContain("gateway.hosts.X.example");
    expect(paths).toContain("gateway.hosts.c.example");
    expect(paths).toContain("gateway.route.authType");
    expect(paths).toContain("gateway.trustedProxies[0]");
    expect(paths).toContain("gateway.publicUrl");
    expect(paths.some((p) => p.startsWith("mcpServers.a.route.authType"))).toBe(true);
    expect(found.find((p) => p.path === "gateway.route.authType")?.message).toContain('no "oauth_as" provider');
  });
  test("a spawned backend needs a valid port", () => {
    const found = problems({ mcpServers: { s: { command: "x", port: 70000 } } });
    expect(found.some((p) => p.path.startsWith("mcpServers.s.port"))).toBe(true);
  });
});

describe("env-only mode", () => {
  const base = {
    OIDC_ISSUER_URL: "https://auth.example.com/application/o/mcp/",
    OIDC_AUDIENCE: "my-mcp",
    RESOURCE_URL: "https://mcp.example.com",
    ALLOW_SUBS: "u1, u2",
    MCP_UPSTREAM_URL: "http://127.0.0.1:9000",
    MCP_UPSTREAM_PATH: "/mcp",
  };
  test("the variables become a servers.json that loads: jwt, allow-list, pass-through at /mcp and /", () => {
    const p: { path: string; message: string }[] = [];
    const built = envModeConfig(base, p);
    expect(p).toEqual([]);
    const c = parseConfig(JSON.stringify(built), { source: "env", dir: "/", env: {} });
    expect(c.auth.providers).toEqual(["jwt"]);
    expect(c.auth.jwt?.audience).toEqual(["my-mcp"]);
    expect(c.auth.jwt?.allow?.subjects).toEqual(["u1", "u2"]);
    expect(c.gateway.passthrough).toBe("upstream");
    expect(c.gateway.paths).toEqual(["/mcp", "/"]);
    expect(c.gateway.rateLimitPerMinute).toBe(60);
    expect(c.backends[0]?.transport).toMatchObject({ kind: "http", url: "http://127.0.0.1:9000/mcp" });
  });
  test("MCP_UPSTREAM_PATH as mcp-oauth-proxy rewrote: the gateway where its MCP is, every other path raw", () => {
    const cases: [Record<string, string>, string, string[], Record<string, unknown>][] = [
      // MCP_UPSTREAM_PATH: every path goes to URL+PATH.
      [
        { MCP_UPSTREAM_PATH: "/mcp" },
        "http://127.0.0.1:9000/mcp",
        ["/mcp", "/"],
        { url: "http://127.0.0.1:9000/mcp", appendPath: false },
      ],
      [
        { MCP_UPSTREAM_URL: "http://up:9000/api", MCP_UPSTREAM_PATH: "/mcp" },
        "http://up:9000/api/mcp",
        ["/mcp", "/"],
        { url: "http://up:9000/api/mcp", appendPath: false },
      ],
      // No MCP_UPSTREAM_PATH: P goes to URL+P; MCP is at /mcp of a bare URL, at the URL's own path otherwise.
      [
        { MCP_UPSTREAM_PATH: "" },
        "http://127.0.0.1:9000/mcp",
        ["/mcp"],
        { url: "http://127.0.0.1:9000/", appendPath: true },
      ],
      [
        { MCP_UPSTREAM_URL: "http://up:9000/mcp", MCP_UPSTREAM_PATH: "" },
        "http://up:9000/mcp",
        ["/"],
        { url: "http://up:9000/mcp", appendPath: true },
      ],
    ];
    for (const [vars, backendUrl, paths, forward] of cases) {
      const p: { path: string; message: string }[] = [];
      const c = parseConfig(JSON.stringify(envModeConfig({ ...base, ...vars }, p)), {
        source: "env",
        dir: "/",
        env: {},
      });
      expect(p).toEqual([]);
      expect(c.backends[0]?.transport).toMatchObject({ kind: "http", url: backendUrl });
      expect(c.gateway.paths).toEqual(paths);
      expect(c.gateway.forward).toEqual(forward as never);
      expect(c.gateway.accessLog).toBe(true);
    }
    // A spawned command: the same, with the URL of its port, started before anything is forwarded to it.
    const spawned = { ...base, MCP_UPSTREAM_URL: "", MCP_SPAWN_CMD: "srv", MCP_SPAWN_PORT: "8765" };
    for (const [path, mcpPath, paths, forward] of [
      ["/mcp", "/mcp", ["/mcp", "/"], { url: "http://127.0.0.1:8765/mcp", appendPath: false, server: "upstream" }],
      ["", "/mcp", ["/mcp"], { url: "http://127.0.0.1:8765/", appendPath: true, server: "upstream" }],
    ] as const) {
      const c = parseConfig(JSON.stringify(envModeConfig({ ...spawned, MCP_UPSTREAM_PATH: path }, [])), {
        source: "env",
        dir: "/",
        env: {},
      });
      expect(c.backends[0]?.transport).toMatchObject({ kind: "spawned-http", port: 8765, path: mcpPath });
      expect(c.backends[0]?.idle).toEqual({ kind: "never" } as never);
      expect(c.gateway.paths).toEqual([...paths]);
      expect(c.gateway.forward).toEqual(forward);
    }
  });
  test("mcp-oauth-proxy's defaults: proxy discovery, its scopes, claude.ai and claude.com as origins", () => {
    const p: { path: string; message: string }[] = [];
    const c = parseConfig(JSON.stringify(envModeConfig(base, p)), { source: "env", dir: "/", env: {} });
    expect(p).toEqual([]);
    // Without STATIC_CLIENT_ID too, Gatehouse names itself as the authorization server, as mcp-oauth-proxy did.
    expect(c.auth.jwt?.discovery).toMatchObject({
      mode: "proxy",
      resourceUrl: "https://mcp.example.com",
      publicUrl: "https://mcp.example.com",
      scopesSupported: ["openid", "profile", "email", "offline_access"],
    });
    expect(c.auth.jwt?.discovery.staticClient).toBeUndefined();
    expect(c.gateway.allowedOrigins).toEqual(["https://claude.ai", "https://claude.com"]);
    const any = envModeConfig({ ...base, CORS_ALLOW_ORIGINS: "*" }, p) as { gateway: { allowedOrigins: string[] } };
    expect(any.gateway.allowedOrigins).toEqual(["*"]);
  });
  test("OIDC_ISSUER_URL with a ./servers.json beside it (the image's /etc/gatehouse): refused, saying how to pick", async () => {
    const location = locateConfig(undefined, base, "/etc/gatehouse");
    expect(location.fromEnv).toBe(true);
    const enoent = () => Promise.reject(Object.assign(new Error("no such file"), { code: "ENOENT" }));
    const withFile = (path: string) => (path === "/etc/gatehouse/servers.json" ? Promise.resolve("{}") : enoent());
    const e = (await loadConfig(location, base, withFile, "/etc/gatehouse").catch((x) => x)) as ConfigError;
    expect(e).toBeInstanceOf(ConfigError);
    expect(e.problems.map((p) => p.path)).toEqual(["OIDC_ISSUER_URL"]);
    expect(e.problems[0]?.message).toContain("MCP_CONFIG_PATH=/etc/gatehouse/servers.json");
    // …and mcp serve's ~/.config/mcp/servers.json, the other place read without OIDC_ISSUER_URL.
    const home = { ...base, HOME: "/home/u" };
    const inHome = (path: string) => (path === "/home/u/.config/mcp/servers.json" ? Promise.resolve("{}") : enoent());
    const h = (await loadConfig(locateConfig(undefined, home, "/srv"), home, inHome, "/srv").catch(
      (x) => x,
    )) as ConfigError;
    expect(h.problems[0]?.message).toContain("/home/u/.config/mcp/servers.json exists too");
    // Without the file, the variables; with MCP_CONFIG_PATH, the file.
    expect((await loadConfig(location, base, enoent, "/etc/gatehouse")).auth.providers).toEqual(["jwt"]);
    expect(locateConfig(undefined, { ...base, MCP_CONFIG_PATH: "/etc/gatehouse/servers.json" }, "/").fromEnv).toBe(
      undefined,
    );
  });
  test("an http:// issuer or public URL off loopback is refused, naming the variable (mcp-oauth-proxy took it)", () => {
    for (const name of ["OIDC_ISSUER_URL", "RESOURCE_URL"]) {
      const p: { path: string; message: string }[] = [];
      envModeConfig({ ...base, [name]: "http://auth.internal:9000/application/o/mcp/" }, p);
      expect(p.map((x) => x.path)).toEqual([name]);
      expect(p[0]?.message).toContain("https://");
    }
    const ok: { path: string; message: string }[] = [];
    envModeConfig({ ...base, OIDC_ISSUER_URL: "http://127.0.0.1:9000/", RESOURCE_URL: "http://localhost:8080" }, ok);
    expect(ok).toEqual([]);
  });
  test("an allow-list value with * is refused: mcp-oauth-proxy matched it literally, a glob would widen it", () => {
    for (const name of ["ALLOW_SUBS", "ALLOW_EMAILS", "ALLOW_GROUPS"]) {
      const p: { path: string; message: string }[] = [];
      envModeConfig({ ...base, [name]: "ok, *@example.com" }, p);
      expect(p).toHaveLength(1);
      expect(p[0]?.path).toBe(name);
      expect(p[0]?.message).toContain("wildcard");
    }
  });
  test("a spawn command with its port, static client and scopes", () => {
    const p: { path: string; message: string }[] = [];
    const built = envModeConfig(
      {
        ...base,
        MCP_UPSTREAM_URL: "",
        MCP_SPAWN_CMD: "npx -y srv --port 8765",
        MCP_SPAWN_PORT: "8765",
        STATIC_CLIENT_ID: "cid",
        STATIC_CLIENT_SECRET: "sec",
        SCOPES_SUPPORTED: "openid,mcp",
        RATE_LIMIT_RPM: "10",
        CORS_ALLOW_ORIGINS: "https://claude.ai",
      },
      p,
    );
    expect(p).toEqual([]);
    const c = parseConfig(JSON.stringify(built), { source: "env", dir: "/", env: {} });
    expect(c.backends[0]?.transport).toMatchObject({
      kind: "spawned-http",
      port: 8765,
      args: ["-c", "npx -y srv --port 8765"],
    });
    expect(c.auth.jwt?.discovery).toMatchObject({
      mode: "proxy",
      staticClient: { clientId: "cid", clientSecret: "sec" },
    });
    expect(c.auth.jwt?.discovery.scopesSupported).toEqual(["openid", "mcp"]);
    expect(c.gateway.rateLimitPerMinute).toBe(10);
    expect(c.gateway.allowedOrigins).toEqual(["https://claude.ai"]);
  });
  test("each mistake names its variable", () => {
    const p: { path: string; message: string }[] = [];
    envModeConfig(
      {
        OIDC_ISSUER_URL: "not a url",
        MCP_UPSTREAM_URL: "http://x",
        MCP_SPAWN_CMD: "y",
        STATIC_CLIENT_ID: "only-id",
        RATE_LIMIT_RPM: "fast",
      },
      p,
    );
    const paths = p.map((x) => x.path);
    for (const v of [
      "OIDC_ISSUER_URL",
      "OIDC_AUDIENCE",
      "RESOURCE_URL",
      "ALLOW_SUBS",
      "MCP_UPSTREAM_URL",
      "STATIC_CLIENT_ID",
      "RATE_LIMIT_RPM",
    ]) {
      expect(paths).toContain(v);
    }
    const q: { path: string; message: string }[] = [];
    envModeConfig({ ...base, MCP_UPSTREAM_URL: "", MCP_SPAWN_CMD: "srv" }, q);
    expect(q.map((x) => x.path)).toEqual(["MCP_SPAWN_PORT"]);
  });
});
