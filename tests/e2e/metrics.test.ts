// GET /metrics of a real Gatehouse after real traffic, parsed by the Prometheus reference parser (Debian's
// python3-prometheus-client): every family README documents, with bounded labels; who may scrape it.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { type HttpBackend, startHttpBackend } from "../fixtures/http-backend.ts";
import { connect } from "../helpers/client.ts";
import { type Running, startGatehouse } from "../helpers/gatehouse-process.ts";
import { writeConfig } from "../helpers/temp.ts";

const PYTHON = "/usr/bin/python3";
let backend: HttpBackend;
let gh: Running;

/** The families and samples as the reference parser reads them: name → [{labels, value}]. */
function parse(
  text: string,
): Record<string, { type: string; samples: { name: string; labels: Record<string, string>; value: number }[] }> {
  const script = `
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for f in text_string_to_metric_families(sys.stdin.read()):
    out[f.name] = {"type": f.type, "samples": [{"name": s.name, "labels": s.labels, "value": s.value} for s in f.samples]}
print(json.dumps(out))
`;
  const r = Bun.spawnSync([PYTHON, "-c", script], { stdin: new TextEncoder().encode(text) });
  if (r.exitCode !== 0) throw new Error(`the Prometheus parser refused the metrics: ${r.stderr.toString()}`);
  return JSON.parse(r.stdout.toString());
}

beforeAll(async () => {
  if (!existsSync(PYTHON) || Bun.spawnSync([PYTHON, "-c", "import prometheus_client"]).exitCode !== 0) {
    throw new Error("python3-prometheus-client is needed (apt-get install -y python3-prometheus-client; .ci/run does)");
  }
  backend = await startHttpBackend();
  const config = writeConfig({
    mcpServers: { web: { url: backend.url } },
    serverAuth: {
      providers: ["bearer"],
      bearer: { tokens: { "m-token": { subject: "alice", roles: ["staff"] } } },
      acl: { default: "deny", roles: { staff: [{ server: "web", access: "*", tools: ["echo", "progress"] }] } },
    },
    gateway: { rateLimitPerMinute: 600 },
    metrics: { bearerToken: "scraper-token-0123456789" },
  });
  gh = await startGatehouse({ config });
}, 60_000);

afterAll(async () => {
  await gh?.stop();
  await backend?.stop();
});

describe("/metrics", () => {
  test("every documented family, parsed by the reference parser, with labels bounded", async () => {
    const client = await connect(`${gh.url}/mcp`, { token: "m-token" });
    await client.listTools();
    for (let i = 0; i < 3; i++) await client.callTool({ name: "web__echo", arguments: { message: "m" } });
    await expect(client.callTool({ name: "web__add", arguments: { a: 1, b: 2 } })).rejects.toThrow(); // denied
    // Random paths and methods must not add series.
    for (const p of ["/a", "/b/c", "/mcp/../x", `/${crypto.randomUUID()}`]) await fetch(`${gh.url}${p}`);
    await fetch(`${gh.url}/mcp`, { method: "POST", headers: { authorization: "Bearer nope" }, body: "{}" });

    const res = await fetch(`${gh.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    const m = parse(await res.text());
    for (const family of [
      "gatehouse_build_info",
      "gatehouse_http_requests",
      "gatehouse_mcp_requests",
      "gatehouse_mcp_request_duration_seconds",
      "gatehouse_backend_request_duration_seconds",
      "gatehouse_oauth_events",
      "gatehouse_oauth_tokens_issued",
      "gatehouse_oauth_token_refusals",
      "gatehouse_sign_ins",
      "gatehouse_backend_starts",
      "gatehouse_rate_limited",
      "gatehouse_state_write_duration_seconds",
      "gatehouse_state_write_errors",
      "gatehouse_config_reloads",
      "gatehouse_backend_up",
      "gatehouse_backend_in_flight",
      "gatehouse_sessions",
      "gatehouse_open_streams",
    ]) {
      expect([family, family in m]).toEqual([family, true]);
    }
    const calls = m.gatehouse_mcp_requests?.samples ?? [];
    const allowed = calls.find((s) => s.labels.method === "tools/call" && s.labels.outcome === "allowed");
    expect(allowed).toMatchObject({ labels: { server: "web", tool: "echo" }, value: 3 });
    expect(calls.some((s) => s.labels.method === "tools/call" && s.labels.outcome === "denied")).toBe(true);
    const histogram = m.gatehouse_backend_request_duration_seconds?.samples ?? [];
    expect(histogram.find((s) => s.name.endsWith("_count") && s.labels.server === "web")?.value).toBeGreaterThan(0);
    expect(m.gatehouse_backend_up?.samples).toEqual([
      { name: "gatehouse_backend_up", labels: { server: "web" }, value: 1 },
    ]);
    expect(m.gatehouse_build_info?.samples[0]?.labels.runtime).toStartWith("Bun ");
    const routes = new Set((m.gatehouse_http_requests?.samples ?? []).map((s) => s.labels.route));
    expect([...routes].every((r) => ["mcp", "other", "metrics", "health"].includes(String(r)))).toBe(true);
    expect(routes.has("mcp")).toBe(true);
    await client.close();
  }, 60_000);

  test("who may scrape: loopback yes; through a proxy no; with the bearer token from anywhere; a wrong token 401", async () => {
    expect((await fetch(`${gh.url}/metrics`)).status).toBe(200);
    const proxied = await fetch(`${gh.url}/metrics`, { headers: { "x-forwarded-for": "203.0.113.7" } });
    expect(proxied.status).toBe(403);
    // The token is configured: the answer says to send it (not that it is missing).
    expect(await proxied.text()).toContain("send Authorization: Bearer <metrics.bearerToken>");
    const withToken = await fetch(`${gh.url}/metrics`, {
      headers: { "x-forwarded-for": "203.0.113.7", authorization: "Bearer scraper-token-0123456789" },
    });
    expect(withToken.status).toBe(200);
    const wrong = await fetch(`${gh.url}/metrics`, { headers: { authorization: "Bearer nope-nope-nope-nope" } });
    expect(wrong.status).toBe(401);
  });
});
