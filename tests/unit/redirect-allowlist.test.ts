// oauthAs.redirectUriAllowlist entries as regular expressions (mcp-oauth2-proxy's allowedRedirectURLs), beside the
// exact and trailing-* forms: anchored at both ends, compiled at load, dots in the host escaped — anything else is
// refused at load with the entry named, never silently read as an exact URL that matches nothing.

import { describe, expect, test } from "bun:test";
import { ConfigError, parseConfig } from "../../src/config/load.ts";
import { allowedByList, registrationProblem } from "../../src/oauth/redirect-uri.ts";

function problemsOf(allowlist: string[]) {
  const config = {
    mcpServers: { s: { command: "x" } },
    serverAuth: {
      providers: ["oauth_as"],
      oauthAs: {
        issuerUrl: "https://mcp.example.com",
        trustedSourceCidrs: ["127.0.0.1/32"],
        redirectUriAllowlist: allowlist,
      },
    },
  };
  try {
    parseConfig(JSON.stringify(config), { source: "servers.json", dir: "/tmp", env: {} });
    return [];
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
}

describe("redirect allowlist: regular expressions", () => {
  const list = ["^https://claude\\.ai/api/mcp/auth_callback$", "^https://[a-z0-9-]+\\.example\\.com/oauth/cb$"];

  test("an anchored expression loads, and matches the whole canonical URL", () => {
    expect(problemsOf(list)).toEqual([]);
    expect(allowedByList(new URL("https://claude.ai/api/mcp/auth_callback"), list)).toBe(true);
    expect(allowedByList(new URL("https://team-a.example.com/oauth/cb"), list)).toBe(true);
    expect(registrationProblem("https://team-a.example.com/oauth/cb", list)).toBeUndefined();
  });

  test("it matches nothing beyond its anchors: other hosts, suffixes, look-alike hosts", () => {
    for (const url of [
      "https://claude.ai/api/mcp/auth_callback/more",
      "https://evil.example/?u=https://claude.ai/api/mcp/auth_callback",
      "https://claudexai/api/mcp/auth_callback",
      "https://a.b.example.com/oauth/cb",
      "https://evil.com/x.example.com/oauth/cb",
    ]) {
      expect(allowedByList(new URL(url), list)).toBe(false);
    }
    expect(registrationProblem("https://evil.example/cb", list)).toContain(
      "not allowed by oauthAs.redirectUriAllowlist",
    );
  });

  test("exact and trailing-* entries keep working beside expressions", () => {
    const mixed = ["http://127.0.0.1/*", "https://vscode.dev/redirect", ...list];
    expect(problemsOf(mixed)).toEqual([]);
    expect(allowedByList(new URL("http://127.0.0.1:3333/callback"), mixed)).toBe(true);
    expect(allowedByList(new URL("https://vscode.dev/redirect"), mixed)).toBe(true);
  });

  test("an expression that starts with ^ but does not end with $ is refused at load, naming the entry", () => {
    const found = problemsOf(["https://vscode.dev/redirect", "^https://claude\\.ai/.*"]);
    expect(found).toHaveLength(1);
    expect(found[0]?.path).toBe("serverAuth.oauthAs.redirectUriAllowlist[1]");
    expect(found[0]?.message).toContain("anchored at both ends");
    // An escaped \$ is a literal dollar, not the end anchor.
    expect(problemsOf(["^https://a\\.example/cb\\$"])[0]?.message).toContain("anchored at both ends");
  });

  test("an expression that does not compile is refused at load with the reason", () => {
    const found = problemsOf(["^https://a\\.example/(cb$"]);
    expect(found[0]?.path).toBe("serverAuth.oauthAs.redirectUriAllowlist[0]");
    expect(found[0]?.message).toContain("not a valid regular expression");
  });

  test("an unescaped dot (or .*) in the host is refused: it would admit look-alike and foreign hosts", () => {
    for (const entry of ["^https://app.example.com/cb$", "^https://.*\\.example\\.com/cb$"]) {
      const found = problemsOf([entry]);
      expect(found[0]?.message).toContain('unescaped "." in the host');
    }
    // Dots in the path are the user's business (they cannot change the host).
    expect(problemsOf(["^https://app\\.example\\.com/v1.0/cb$"])).toEqual([]);
  });

  test("an unanchored expression (as mcp-oauth2-proxy accepted) is refused, not read as an exact URL", () => {
    for (const entry of ["https://claude\\.ai/api/mcp/auth_callback", "https://claude.ai/api/mcp/auth_callback$"]) {
      const found = problemsOf([entry]);
      expect(found[0]?.message).toContain("looks like a regular expression");
    }
  });
});
