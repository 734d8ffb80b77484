// What a reload says about a valid change that still cuts people off: tokens are bound to the issuer, the resource
// and the secret they were made with, so changing one refuses every token issued before (the reload says so).

import { expect, test } from "bun:test";
import { parseConfig } from "../../src/config/load.ts";
import { reloadConsequences, restartOnly } from "../../src/reload.ts";

const config = (oauthAs: Record<string, unknown>, state?: Record<string, unknown>) =>
  parseConfig(
    JSON.stringify({
      mcpServers: { s: { command: "x" } },
      serverAuth: {
        providers: ["oauth_as"],
        oauthAs: { issuerUrl: "https://a.example", trustedSourceCidrs: ["127.0.0.1/32"], ...oauthAs },
      },
      ...(state ? { state } : {}),
    }),
    { source: "servers.json", dir: "/etc/gatehouse", env: {} },
  );

test("changing the issuer, the resource or the HS256 secret is named with what it does to issued tokens", () => {
  const before = config({ jwtSecret: "a".repeat(32) });
  expect(reloadConsequences(before, config({ jwtSecret: "a".repeat(32) }))).toEqual([]);
  const moved = reloadConsequences(before, config({ issuerUrl: "https://b.example", jwtSecret: "b".repeat(32) }));
  expect(moved.map((w) => w.split(" changed")[0])).toEqual([
    "serverAuth.oauthAs.issuerUrl",
    "serverAuth.oauthAs.resourceUrl",
    "serverAuth.oauthAs.jwtSecret",
  ]);
  expect(moved[0]).toContain("https://a.example → https://b.example");
  expect(moved.every((w) => w.endsWith("clients must sign in again"))).toBe(true);
  expect(moved.join(" ")).not.toContain("a".repeat(32)); // a secret is named, never shown
});

test("settings read once at start are kept, and named as needing a restart", () => {
  const running = config({});
  const { names, config: kept } = restartOnly(running, config({}, { redis: { url: "redis://127.0.0.1:6379" } }));
  expect(names).toEqual(["state"]);
  expect(kept.state).toEqual(running.state);
});
