import { describe, expect, test } from "bun:test";
import { ConfigError, loadConfig, locateConfig, parseConfig } from "../../src/config/load.ts";
import { DOC_EXAMPLES } from "../fixtures/mcp-serve-docs.ts";

function load(text: string | object, env: Record<string, string> = {}) {
  return parseConfig(typeof text === "string" ? text : JSON.stringify(text), {
    source: "servers.json",
    dir: "/etc/gatehouse",
    env,
  });
}

/** The problems a config produces (empty when it loads). */
function problems(text: string | object, env: Record<string, string> = {}) {
  try {
    load(text, env);
    return [];
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
}

const server = { mcpServers: { s: { command: "x" } } };

describe("the mcp serve documentation's examples", () => {
  for (const ex of DOC_EXAMPLES) {
    test(`${ex.expect.boots ? "boots" : "is refused"}: ${ex.source}`, () => {
      const found = problems(ex.config, ex.env ?? {});
      if (ex.expect.boots) expect(found).toEqual([]);
      else {
        const { path, message } = ex.expect;
        expect(found.some((p) => p.path === path && p.message.includes(message))).toBe(true);
      }
    });
  }
});

describe("servers.json loading", () => {
  test("/mcp's resource follows gateway.publicUrl unless oauthAs.resourceUrl is set", () => {
    const as = {
      providers: ["oauth_as"],
      oauthAs: { issuerUrl: "https://auth.example.com", trustedSourceCidrs: ["10.0.0.1/32"] },
    };
    const c = load({ ...server, serverAuth: as, gateway: { publicUrl: "https://mcp.example.com" } });
    expect(c.auth.oauthAs?.resourceUrl).toBe("https://mcp.example.com/mcp");
    expect(load({ ...server, serverAuth: as }).auth.oauthAs?.resourceUrl).toBe("https://auth.example.com/mcp");
    const explicit = { ...as, oauthAs: { ...as.oauthAs, resourceUrl: "https://x.example.com/mcp" } };
    const e = load({ ...server, serverAuth: explicit, gateway: { publicUrl: "https://mcp.example.com" } });
    expect(e.auth.oauthAs?.resourceUrl).toBe("https://x.example.com/mcp");
  });

  test("normalises stdio and HTTP servers with their defaults", () => {
    const c = load({
      mcpServers: {
        local: { command: "node", args: ["s.js"], env: { A: "1" }, cwd: "work" },
        remote: { url: "https://h.example/mcp", headers: { "X-Key": "k" }, timeout: "30s" },
        legacy: { type: "sse", url: "http://127.0.0.1:9/sse" },
      },
    });
    const [local, remote, legacy] = c.backends;
    expect(local?.transport).toEqual({
      kind: "stdio",
      command: "node",
      args: ["s.js"],
      env: { A: "1" },
      cwd: "/etc/gatehouse/work",
    });
    expect(local?.idle).toEqual({ kind: "adaptive", minMs: 60_000, maxMs: 300_000 });
    expect(remote?.transport).toEqual({
      kind: "http",
      url: "https://h.example/mcp",
      headers: { "X-Key": "k" },
      mode: "auto",
    });
    expect(remote?.requestTimeoutMs).toBe(30_000);
    expect(legacy?.transport).toMatchObject({ mode: "sse" });
    expect(c.auth.providers).toEqual([]);
    expect(c.gateway.maxBodyBytes).toBe(4 * 1024 * 1024);
  });

  test("accepts // and /* */ comments", () => {
    expect(problems('{ // servers\n "mcpServers": { /* one */ "s": { "command": "x" } } }')).toEqual([]);
  });

  test("substitutes ${VAR} in values and keys, with ${VAR:-default}", () => {
    const c = load(
      {
        mcpServers: { s: { url: "https://${HOST}/mcp", headers: { A: "${MISSING:-fallback}", B: "${EMPTY:-d}" } } },
        serverAuth: { providers: ["bearer"], bearer: { tokens: { "${TOKEN}": "alice" } } },
      },
      { HOST: "h.example", TOKEN: "secret-token", EMPTY: "" },
    );
    expect(c.backends[0]?.transport).toMatchObject({
      url: "https://h.example/mcp",
      headers: { A: "fallback", B: "d" },
    });
    expect(c.auth.bearer?.tokens[0]?.subject).toBe("alice");
  });

  test("an unset variable is an error naming it and where it is used", () => {
    const found = problems({ mcpServers: { s: { command: "x", args: ["--key", "${API_KEY}"] } } });
    expect(found).toEqual([
      { path: "mcpServers.s.args[1]", message: expect.stringContaining("environment variable API_KEY is not set") },
    ]);
  });

  test("a problem with a secret setting names its shape, never its text (check, reload logs and audit print these)", () => {
    const found = problems({
      mcpServers: { s: { command: "x", env: { API_KEY: 42 } } },
      metrics: { bearerToken: "SHORTMETRIC1" },
      serverAuth: { providers: ["bearer"], bearer: { tokens: ["tok-abcdefgh12345678"] } },
    });
    const text = JSON.stringify(found);
    expect(found.length).toBe(3);
    for (const secret of ["SHORTMETRIC1", "tok-abcdefgh12345678"]) expect(text).not.toContain(secret);
    expect(text).toContain("a string of 12 characters (not shown: a secret)");
    expect(text).toContain("an array (not shown: it holds secrets)");
    // Settings that hold secrets among other things, URLs with a password or a key, numbers at secret paths.
    const more = problems({
      mcpServers: {
        a: { command: "x", headers: "Authorization: Bearer sk-live-SECRET1", env: ["GITHUB_TOKEN=ghp_SECRET2"] },
        b: { url: "ftp://u:SECRET3@h/mcp?api_key=SECRET4" },
      },
      metrics: { bearerToken: 123456789123 },
      state: { redis: "redis://:SECRET5@redis:6379" },
      serverAuth: { providers: ["bearer"], bearer: { tokens: {} }, jwt: "SECRET6" },
    });
    const moreText = JSON.stringify(more);
    expect(more.length).toBeGreaterThanOrEqual(6);
    for (const secret of ["SECRET1", "SECRET2", "SECRET3", "SECRET4", "SECRET5", "SECRET6", "123456789123"]) {
      expect([secret, moreText.includes(secret)]).toEqual([secret, false]);
    }
  });

  test("an unset variable is the setting's only problem (no follow-on about the placeholder's length)", () => {
    const found = problems({
      ...server,
      serverAuth: {
        providers: ["oauth_as"],
        oauthAs: { issuerUrl: "https://a.example", jwtSecret: "${JWT_SECRET}", trustedSourceCidrs: ["127.0.0.1/32"] },
      },
    });
    expect(found).toEqual([
      { path: "serverAuth.oauthAs.jwtSecret", message: expect.stringContaining("JWT_SECRET is not set") },
    ]);
    // Nor is the setting then reported missing (it is written, with a variable).
    const written = problems({
      mcpServers: { fs: { command: "${CMD}" }, web: { url: "${URL}" } },
      serverAuth: {
        providers: ["oauth_as"],
        oauthAs: { issuerUrl: "${ISSUER}", trustedSourceCidrs: ["127.0.0.1/32"] },
      },
    });
    expect(written.map((p) => p.path)).toEqual([
      "mcpServers.fs.command",
      "mcpServers.web.url",
      "serverAuth.oauthAs.issuerUrl",
    ]);
    expect(written.every((p) => p.message.startsWith("environment variable "))).toBe(true);
  });

  test("reports every problem at once, each with its path, what was found and what was expected", () => {
    const found = problems({
      mcpServers: {
        a: { command: "x", args: "not-a-list" },
        b: { url: "ftp://h/mcp" },
        c: { command: "x", tool_acl: { read: ["x"], write: ["x"] }, idle_timeout: "sometimes" },
        bad__name: { command: "x" },
        d: { comand: "typo" },
      },
      serverAuth: { providers: ["bearer", "jwtt"], forwarded: { trustedSourceCidrs: ["10.0.0.0/33"] } },
      gateway: { allowedOrigins: ["https://claude.ai/path"] },
      extra: true,
    });
    const byPath = Object.fromEntries(found.map((p) => [p.path, p.message]));
    expect(byPath.extra).toContain("unknown key");
    expect(byPath["mcpServers.a.args"]).toBe('found "not-a-list", expected an array of strings');
    expect(byPath["mcpServers.b.url"]).toContain("expected an http:// or https:// URL");
    expect(byPath["mcpServers.c.tool_acl"]).toContain('appears in both "read" and "write"');
    expect(byPath["mcpServers.c.idle_timeout"]).toContain('expected "adaptive", "never" or a duration');
    expect(byPath.mcpServers__bad__name ?? byPath["mcpServers.bad__name"]).toContain('must not contain "__"');
    expect(byPath["mcpServers.d"]).toContain('needs "command"');
    expect(byPath["serverAuth.providers[1]"]).toContain('unknown auth provider "jwtt"');
    expect(byPath["serverAuth.bearer"]).toContain('is required because "providers" lists "bearer"');
    expect(byPath["serverAuth.forwarded.trustedSourceCidrs[0]"]).toContain("expected a CIDR");
    expect(byPath["gateway.allowedOrigins[0]"]).toContain("expected an origin");
  });

  test("unknown keys inside a server are errors, not ignored", () => {
    expect(problems({ mcpServers: { s: { command: "x", arg: ["typo"] } } })).toEqual([
      { path: "mcpServers.s.arg", message: expect.stringContaining("unknown key") },
    ]);
  });

  test("a server with both command and url is refused", () => {
    expect(problems({ mcpServers: { s: { command: "x", url: "https://h/mcp" } } })[0]?.message).toContain(
      "either stdio",
    );
  });

  test("invalid JSON says where", () => {
    const found = problems('{\n  "mcpServers": {\n    "s": { "command": "x", }\n  }\n}');
    expect(found[0]?.message).toMatch(/^not valid JSON: line 3/);
  });

  test("an empty or absent mcpServers boots with a warning, as mcp serve boots (src/config.rs)", () => {
    for (const [text, word] of [
      [{ mcpServers: {} }, "is empty"],
      [{}, "is absent"],
    ] as const) {
      const c = load(text);
      expect(c.backends).toEqual([]);
      expect(c.warnings).toEqual([{ path: "mcpServers", message: expect.stringContaining(word) }]);
    }
    expect(load(server).warnings).toEqual([]);
    expect(problems({ mcpServers: [] })[0]?.path).toBe("mcpServers");
  });

  test("every provider but none and forwarded needs its block", () => {
    const found = problems({ ...server, serverAuth: { providers: ["forwarded", "oauth_as", "bearer", "none"] } });
    expect(found.map((p) => p.path).sort()).toEqual(["serverAuth.bearer", "serverAuth.oauthAs"]);
  });

  test("forwarded listed without its block uses mcp serve's default headers (config-file.md › Forwarded config)", () => {
    const c = load({ ...server, serverAuth: { providers: ["forwarded"] } });
    expect(c.auth.forwarded).toEqual({ header: "x-forwarded-user", groupsHeader: "x-forwarded-groups" });
    expect(load(server).auth.forwarded).toBeUndefined();
  });

  test("the single provider string fails with a migration hint instead of booting anonymous", () => {
    const found = problems({ ...server, serverAuth: { provider: "bearer", bearer: { tokens: { t: "a" } } } });
    expect(found).toEqual([
      { path: "serverAuth.provider", message: expect.stringContaining('write "providers": ["bearer"]') },
    ]);
  });

  test("bearer tokens: clear, sha256:<hex>, subject objects; malformed ones refused", () => {
    const hash = "a".repeat(64);
    const c = load({
      ...server,
      serverAuth: {
        providers: ["bearer"],
        bearer: { tokens: { plain: "alice", [`sha256:${hash}`]: { subject: "bob", roles: ["dev"] } } },
      },
    });
    expect(c.auth.bearer?.tokens).toEqual([
      { sha256: "a116c9ed46d6207734a43317d30fd88f52ac8634c37d904bbf4e41d865f90475", subject: "alice", roles: [] },
      { sha256: hash, subject: "bob", roles: ["dev"] },
    ]);
    const bad = problems({
      ...server,
      serverAuth: {
        providers: ["bearer"],
        bearer: { tokens: { "sha256:xyz": "a", t2: { roles: ["x"] }, t3: { subject: "c", roles: "admin" } } },
      },
    });
    expect(bad.map((p) => p.message).join("\n")).toContain("64 hex digits");
    expect(
      bad.some((p) => p.message.includes("is required but missing") || p.message.includes("expected a subject string")),
    ).toBe(true);
  });

  test("ACL: both shapes at once is an error; a subject with an unknown role is an error", () => {
    expect(
      problems({ ...server, serverAuth: { acl: { rules: [], roles: { admin: [{ server: "*", access: "*" }] } } } })[0]
        ?.message,
    ).toContain('cannot have both "rules"');
    expect(
      problems({
        ...server,
        serverAuth: { acl: { default: "deny", roles: { admin: [] }, subjects: { alice: { roles: ["nope"] } } } },
      }),
    ).toEqual([
      { path: "serverAuth.acl.subjects.alice.roles[0]", message: "subject 'alice' references unknown role 'nope'" },
    ]);
    expect(problems({ ...server, serverAuth: { acl: { default: "Allow" } } })[0]?.path).toBe("serverAuth.acl.default");
    expect(problems({ ...server, serverAuth: { acl: { default: "deny", roles: ["admin"] } } })[0]?.path).toBe(
      "serverAuth.acl.roles",
    );
  });

  test("ACL defaults: legacy and role-based both default to allow, as in mcp serve", () => {
    expect(load({ ...server, serverAuth: { acl: {} } }).auth.acl).toEqual({
      kind: "legacy",
      default: "allow",
      rules: [],
    });
    expect(load({ ...server, serverAuth: { acl: { roles: {} } } }).auth.acl).toMatchObject({
      kind: "roles",
      default: "allow",
      strict: false,
    });
  });

  test("oauthAs is validated: secret length, CIDRs, issuer, redirect patterns", () => {
    const found = problems({
      ...server,
      serverAuth: {
        oauthAs: {
          issuerUrl: "not a url",
          jwtSecret: "short",
          trustedSourceCidrs: [],
          redirectUriAllowlist: ["https://chat.openai.com/aip/*/oauth/callback"],
        },
      },
    });
    const byPath = Object.fromEntries(found.map((p) => [p.path, p.message]));
    expect(byPath["serverAuth.oauthAs.issuerUrl"]).toContain("expected an https:// URL");
    expect(byPath["serverAuth.oauthAs.jwtSecret"]).toContain("at least 32 bytes (got 5)");
    expect(byPath["serverAuth.oauthAs.trustedSourceCidrs"]).toContain("at least one CIDR");
    expect(byPath["serverAuth.oauthAs.redirectUriAllowlist[0]"]).toContain('only a trailing "*"');
  });

  test("a missing issuerUrl says what to put there (a tunnel's URL too), and nothing derived from it is reported", () => {
    const found = problems({
      ...server,
      serverAuth: { providers: ["oauth_as"], oauthAs: { trustedSourceCidrs: ["127.0.0.1/32"] } },
      gateway: { trustedProxies: ["127.0.0.1/32"] },
    });
    expect(found.map((p) => p.path)).toEqual(["serverAuth.oauthAs.issuerUrl"]);
    expect(found[0]?.message).toContain("the tunnel's URL");
    expect(found[0]?.message).toContain("never builds its issuer from X-Forwarded-*");
  });

  test("scopesSupported keeps mcp serve's meaning (advertised, default []); requiredScopes is its own key", () => {
    const as = (o: Record<string, unknown>) =>
      load({
        ...server,
        serverAuth: {
          providers: ["oauth_as"],
          oauthAs: { issuerUrl: "https://mcp.example.com", trustedSourceCidrs: ["10.0.0.1/32"], ...o },
        },
      }).auth.oauthAs;
    expect(as({})).toMatchObject({ scopesSupported: [], requiredScopes: [] });
    expect(as({ scopesSupported: ["mcp"] })).toMatchObject({ scopesSupported: ["mcp"], requiredScopes: [] });
    expect(as({ scopesSupported: ["mcp", "x"], requiredScopes: ["mcp"] })).toMatchObject({ requiredScopes: ["mcp"] });
    const warned = (o: Record<string, unknown>) =>
      load({
        ...server,
        serverAuth: {
          providers: ["oauth_as"],
          oauthAs: { issuerUrl: "https://mcp.example.com", trustedSourceCidrs: ["10.0.0.1/32"], ...o },
        },
      }).warnings.map((w) => w.path);
    expect(warned({ scopesSupported: ["mcp"] })).toEqual(["serverAuth.oauthAs.scopesSupported"]);
    expect(warned({ scopesSupported: ["mcp"], requiredScopes: [] })).toEqual([]);
    expect(warned({})).toEqual([]);
    expect(as({})?.consent).toBe("page");
    expect(as({ consent: "skip" })?.consent).toBe("skip");
    expect(warned({ consent: "skip" })).toEqual(["serverAuth.oauthAs.consent"]);
    expect(
      problems({
        ...server,
        serverAuth: {
          providers: ["oauth_as"],
          oauthAs: { issuerUrl: "https://x.example", trustedSourceCidrs: ["10.0.0.1/32"], consent: "never" },
        },
      })[0]?.path,
    ).toBe("serverAuth.oauthAs.consent");
    const bad = problems({
      ...server,
      serverAuth: {
        providers: ["oauth_as"],
        oauthAs: { issuerUrl: "https://mcp.example.com", trustedSourceCidrs: ["10.0.0.1/32"], requiredScopes: ["mcp"] },
      },
    });
    expect(bad).toEqual([
      { path: "serverAuth.oauthAs.requiredScopes[0]", message: expect.stringContaining("add it there too") },
    ]);
  });

  test("MCP_PROXY_REQUEST_TIMEOUT and MCP_TIMEOUT set the default deadlines", () => {
    const c = load(server, { MCP_PROXY_REQUEST_TIMEOUT: "5", MCP_TIMEOUT: "7" });
    expect(c.backends[0]?.requestTimeoutMs).toBe(5000);
    expect(c.backends[0]?.startupTimeoutMs).toBe(7000);
  });

  test("audit: MCP_AUDIT_ENABLED wins over the file", () => {
    expect(load({ ...server, audit: { enabled: true } }, { MCP_AUDIT_ENABLED: "false" }).audit.enabled).toBe(false);
    expect(load({ ...server, audit: { enabled: false } }, { MCP_AUDIT_ENABLED: "1" }).audit.enabled).toBe(true);
  });
});

describe("state", () => {
  test("absent: the JSON file; state.redis with its defaults, ${VAR} in the URL", () => {
    expect(load(server).state).toEqual({});
    const c = load(
      { ...server, state: { redis: { url: "redis://:${REDIS_PW}@10.0.0.5:6379/2" } } },
      { REDIS_PW: "pw" },
    );
    expect(c.state.redis).toEqual({ url: "redis://:pw@10.0.0.5:6379/2", keyPrefix: "gatehouse:", timeoutMs: 2000 });
    expect(
      load({ ...server, state: { redis: { url: "rediss://r:6380", keyPrefix: "gh1:", timeout: "500ms" } } }).state,
    ).toEqual({ redis: { url: "rediss://r:6380", keyPrefix: "gh1:", timeoutMs: 500 } });
  });

  test("each bad setting names its path and what is expected", () => {
    const p = (redis: unknown) => problems({ ...server, state: { redis } });
    expect(p({ url: "http://r:6379" })).toEqual([
      { path: "state.redis.url", message: "found the scheme http, expected redis:// or rediss:// (TLS)" },
    ]);
    expect(p({ url: "not a url" })[0]?.path).toBe("state.redis.url");
    expect(p({ url: "redis://r:6379/zero" })[0]?.message).toContain("database number");
    expect(p({ url: "redis://r", keyPrefix: "" })[0]?.path).toBe("state.redis.keyPrefix");
    expect(p({ url: "redis://r", timeout: "2h" })[0]?.path).toBe("state.redis.timeout");
    expect(p({ url: "redis://r", prefix: "x:" })).toEqual([
      { path: "state.redis.prefix", message: "unknown key (check its spelling; unknown keys are not ignored)" },
    ]);
    expect(p({})).toEqual([{ path: "state.redis.url", message: "is required but missing" }]);
    expect(problems({ ...server, state: { file: "x" } })[0]?.path).toBe("state.file");
  });
});

describe("a setting of the wrong type (found from outside)", () => {
  test("gateway lists given as strings are reported, once each, and do not hide the other problems", () => {
    const found = problems({
      ...server,
      gateway: {
        allowedOrigins: "https://claude.ai",
        trustedProxies: "10.0.0.0/8",
        allowedHosts: "mcp.example.com",
        publicUrl: "not a url",
        sessionIdleTimeout: "sometimes",
      },
    });
    const byPath = Object.fromEntries(found.map((p) => [p.path, p.message]));
    expect(byPath["gateway.allowedOrigins"]).toBe('found "https://claude.ai", expected an array of strings');
    expect(byPath["gateway.trustedProxies"]).toBe('found "10.0.0.0/8", expected an array of strings');
    expect(byPath["gateway.allowedHosts"]).toBe('found "mcp.example.com", expected an array of strings');
    expect(byPath["gateway.publicUrl"]).toContain("expected the public base URL");
    expect(byPath["gateway.sessionIdleTimeout"]).toContain("expected a duration");
    expect(new Set(found.map((p) => `${p.path} ${p.message}`)).size).toBe(found.length);
  });

  test("oauthAs with a list of the wrong type still reports its other problems", () => {
    const found = problems({
      ...server,
      serverAuth: {
        providers: ["oauth_as"],
        oauthAs: { issuerUrl: "ftp://x", trustedSourceCidrs: "127.0.0.1/32", scopesSupported: "mcp" },
      },
    });
    const paths = found.map((p) => p.path);
    expect(paths).toContain("serverAuth.oauthAs.trustedSourceCidrs");
    expect(paths).toContain("serverAuth.oauthAs.scopesSupported");
    expect(paths).toContain("serverAuth.oauthAs.issuerUrl");
  });

  test("a misspelled key names the key it was probably meant to be", () => {
    const found = problems({ mcpServers: { files: { comand: "npx", args: ["x"] } } });
    expect(found).toContainEqual({ path: "mcpServers.files.comand", message: 'unknown key (did you mean "command"?)' });
    expect(problems({ mcpServers: { s: { command: "x", arsg: [] } } })).toEqual([
      { path: "mcpServers.s.arsg", message: 'unknown key (did you mean "args"?)' },
    ]);
    expect(problems({ ...server, gateway: { maxSesions: 5 } })).toEqual([
      { path: "gateway.maxSesions", message: 'unknown key (did you mean "maxSessions"?)' },
    ]);
    // nothing close: the plain message
    expect(problems({ ...server, gateway: { zzz: 1 } })[0]?.message).toBe(
      "unknown key (check its spelling; unknown keys are not ignored)",
    );
  });
});

describe("where the configuration is found (as mcp serve finds it, avelino/mcp docs/reference/config-file.md)", () => {
  const at =
    (...present: string[]) =>
    (p: string) =>
      present.includes(p);
  const home = { HOME: "/home/u" };
  const mine = "/home/u/.config/mcp/servers.json";

  test("--config, MCP_SERVERS_CONFIG, MCP_CONFIG_PATH, MCP_CONFIG_DIR, env-only mode, in that order", () => {
    const all = {
      ...home,
      MCP_SERVERS_CONFIG: '{"mcpServers": {}}',
      MCP_CONFIG_PATH: "/etc/p.json",
      MCP_CONFIG_DIR: "/etc/mcp",
      OIDC_ISSUER_URL: "https://idp.example",
    };
    const exists = at(mine, "/w/servers.json");
    expect(locateConfig("x.json", all, "/w", exists)).toEqual({ path: "/w/x.json", via: "--config" });
    expect(locateConfig(undefined, all, "/w", exists)).toMatchObject({ inline: all.MCP_SERVERS_CONFIG });
    const { MCP_SERVERS_CONFIG: _, ...noInline } = all;
    expect(locateConfig(undefined, noInline, "/w", exists)).toEqual({ path: "/etc/p.json", via: "MCP_CONFIG_PATH" });
    const { MCP_CONFIG_PATH: __, ...noPath } = noInline;
    expect(locateConfig(undefined, noPath, "/w", exists)).toEqual({
      path: "/etc/mcp/servers.json",
      via: "MCP_CONFIG_DIR",
    });
    const { MCP_CONFIG_DIR: ___, ...noDir } = noPath;
    expect(locateConfig(undefined, noDir, "/w", exists)).toMatchObject({ fromEnv: true });
  });

  test("then ~/.config/mcp/servers.json when it exists, else ./servers.json; both at once is refused", () => {
    expect(locateConfig(undefined, home, "/w", at(mine))).toEqual({
      path: mine,
      via: "~/.config/mcp/servers.json (mcp serve's default)",
    });
    expect(locateConfig(undefined, home, "/w", at("/w/servers.json"))).toEqual({
      path: "/w/servers.json",
      via: "./servers.json",
      lookedAt: [mine],
    });
    expect(() => locateConfig(undefined, home, "/w", at(mine, "/w/servers.json"))).toThrow(ConfigError);
    try {
      locateConfig(undefined, home, "/w", at(mine, "/w/servers.json"));
    } catch (e) {
      expect((e as ConfigError).problems[0]?.message).toContain("say which one with --config PATH or MCP_CONFIG_PATH");
    }
    // Run from ~/.config/mcp itself: one file, no ambiguity.
    expect(locateConfig(undefined, home, "/home/u/.config/mcp", at(mine)).path).toBe(mine);
    // No home directory: mcp serve would read /tmp/mcp (world-writable); Gatehouse does not look there.
    expect(locateConfig(undefined, {}, "/w", () => true)).toEqual({ path: "/w/servers.json", via: "./servers.json" });
  });

  test("a missing file names every place looked at and how it was found", async () => {
    const where = locateConfig(undefined, home, "/w", () => false);
    const e = await loadConfig(where, home, () => Promise.reject(Object.assign(new Error(), { code: "ENOENT" })), "/w")
      .then(() => undefined)
      .catch((x: unknown) => x as ConfigError);
    expect(e?.problems[0]?.message).toContain(`cannot read the configuration (no such file), nor at ${mine}`);
    expect(e?.problems[0]?.message).toContain("looked for it through ./servers.json");
  });
});
