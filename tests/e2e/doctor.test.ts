// `gatehouse doctor <mcp-url>`, called in-process with the real fetch against real loopback servers: Gatehouse
// processes (healthy, and deliberately misconfigured: a public URL or issuer that is not the URL used, an origin
// allowlist without https://claude.ai, a redirect allowlist refusing the hosted clients, registration off without
// CIMD), and servers that are not Gatehouse — an MCP stub naming panva's oidc-provider as its authorization server
// (with and without dynamic registration), a stub that redirects and says the wrong resource, an open MCP server,
// a self-signed certificate, a server that never answers and a closed port.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type Check, DOCTOR_HELP, doctor, type Report } from "../../src/cli/doctor.ts";
import { DEFAULTS } from "../../src/config/defaults.ts";
import {
  type RegistrationProvider,
  type Stub,
  startMcpStub,
  startRegistrationProvider,
  startSelfSignedServer,
  startSilentServer,
} from "../fixtures/doctor-servers.ts";
import { type HttpBackend, startHttpBackend } from "../fixtures/http-backend.ts";
import { type OidcFixture, startOidcProvider } from "../fixtures/oidc-provider.ts";
import { type Running, startGatehouse } from "../helpers/gatehouse-process.ts";
import { freePort } from "../helpers/net.ts";
import { writeConfig } from "../helpers/temp.ts";

const CURSOR = "cursor://anysphere.cursor-mcp/oauth/callback";
const CLAUDE = "https://claude.ai/api/mcp/auth_callback";

interface Run {
  code: number;
  out: string;
  err: string;
}

async function run(...argv: string[]): Promise<Run> {
  let out = "";
  let err = "";
  const code = await doctor(argv, {
    out: (s) => {
      out += s;
    },
    err: (s) => {
      err += s;
    },
  });
  return { code, out, err };
}

async function report(...argv: string[]): Promise<Report & { code: number }> {
  const r = await run(...argv, "--json");
  expect(r.err).toBe("");
  return { ...(JSON.parse(r.out) as Report), code: r.code };
}

function check(r: Report, id: string): Check {
  const c = r.checks.find((x) => x.id === id);
  if (!c) throw new Error(`no check ${id} in ${r.checks.map((x) => x.id).join(", ")}`);
  return c;
}

/** The checklist lines of the text output: status and text. */
function statusLines(out: string): { status: string; line: string }[] {
  return out
    .split("\n")
    .map((line) => ({ line, m: /^ {2}(PASS|FAIL|WARN|SKIP) {2}/.exec(line) }))
    .filter((x) => x.m)
    .map((x) => ({ status: (x.m as RegExpExecArray)[1] as string, line: x.line }));
}

/** A Gatehouse on a free loopback port, its issuer that port's URL unless the config says otherwise. */
async function gatehouse(
  oauthAs: Record<string, unknown> = {},
  gateway: Record<string, unknown> = {},
  port?: number,
): Promise<Running> {
  port ??= await freePort();
  const config = writeConfig({
    mcpServers: { web: { url: backend.url } },
    gateway,
    serverAuth: {
      providers: ["oauth_as"],
      oauthAs: { issuerUrl: `http://127.0.0.1:${port}`, trustedSourceCidrs: ["127.0.0.1/32"], ...oauthAs },
    },
  });
  return startGatehouse({ config, port });
}

let backend: HttpBackend;
/** Healthy: the default settings, and Cursor's callback added to the redirect allowlist. */
let healthy: Running;
/** gateway.publicUrl is not where it is reached; gateway.allowedOrigins lacks https://claude.ai; default allowlist. */
let misnamed: Running;
/** oauthAs.redirectUriAllowlist: loopback only. */
let loopbackOnly: Running;
/** oauthAs.registrationEnabled false, client ID metadata documents off. */
let noRegistration: Running;
/** An issuer with a path (/gh): its metadata at the path-inserted and path-appended locations. */
let pathIssuer: Running;
/** oauthAs.issuerUrl names a port nothing listens on. */
let wrongIssuer: Running;
let deadIssuer: string;

beforeAll(async () => {
  backend = await startHttpBackend();
  deadIssuer = `http://127.0.0.1:${await freePort()}`;
  const pathPort = await freePort();
  [healthy, misnamed, loopbackOnly, noRegistration, wrongIssuer, pathIssuer] = await Promise.all([
    gatehouse({ redirectUriAllowlist: [...DEFAULTS.oauthAs.redirectUriAllowlist, CURSOR] }),
    gatehouse({}, { publicUrl: "https://mcp.example.test", allowedOrigins: ["http://localhost:6274"] }),
    gatehouse({ redirectUriAllowlist: ["http://127.0.0.1/*", "http://localhost/*"] }),
    gatehouse({ registrationEnabled: false, clientIdMetadataDocuments: { enabled: false } }),
    gatehouse({ issuerUrl: deadIssuer }),
    gatehouse(
      { issuerUrl: `http://127.0.0.1:${pathPort}/gh`, resourceUrl: `http://127.0.0.1:${pathPort}/mcp` },
      {},
      pathPort,
    ),
  ]);
}, 60_000);

afterAll(async () => {
  await Promise.all([
    healthy?.stop(),
    misnamed?.stop(),
    loopbackOnly?.stop(),
    noRegistration?.stop(),
    wrongIssuer?.stop(),
    pathIssuer?.stop(),
  ]);
  await backend?.stop();
});

describe("gatehouse doctor against a healthy Gatehouse", () => {
  test("every check passes but plain http on loopback; the known clients' test registrations are accepted", async () => {
    const r = await run(`${healthy.url}/mcp`);
    expect(r.err).toBe("");
    expect(r.out).toStartWith(`gatehouse doctor ${healthy.url}/mcp (a Gatehouse server)\n`);
    const lines = statusLines(r.out);
    expect(lines.length).toBeGreaterThan(20);
    const notPass = lines.filter((l) => l.status !== "PASS");
    expect(notPass.map((l) => l.status)).toEqual(["WARN"]);
    expect(notPass[0]?.line).toContain("plain http on loopback");
    expect(r.out).toContain("hosted clients (Claude.ai, ChatGPT) need https on port 443");
    // The WARN names the servers.json settings; no FAIL, so exit 0.
    expect(r.out).toContain("fix: put a TLS reverse proxy");
    expect(r.out).toContain("serverAuth.oauthAs.issuerUrl");
    expect(r.code).toBe(0);
    for (const client of ["Claude.ai", "ChatGPT", "VS Code", "Cursor", "Claude Code"]) {
      expect(lines.find((l) => l.line.includes(`${client}: `))?.status).toBe("PASS");
    }
    // It says it registered test clients, and how to remove them from a Gatehouse.
    expect(r.out).toContain(`Registered 5 test clients named "gatehouse doctor check (…)" at ${healthy.url}/register`);
    expect(r.out).toContain("gatehouse clients revoke ID");
    const logs = await healthy.waitForLog("gatehouse doctor check (Claude Code)");
    for (const name of ["Claude.ai", "ChatGPT", "VS Code", "Cursor"])
      expect(logs).toContain(`gatehouse doctor check (${name})`);
    // Claude.ai registers as a confidential client (client_secret_post), as its hosted connector does.
    expect(logs).toMatch(
      /client registered .*client_name="gatehouse doctor check \(Claude\.ai\)" auth_method=client_secret_post/,
    );
  });

  test("--json gives the same checks, machine-readable; --no-register registers nothing", async () => {
    const before = (healthy.logs().match(/client registered/g) ?? []).length;
    const r = await report(`${healthy.url}/mcp`, "--no-register");
    expect(r.code).toBe(0);
    expect(r.ok).toBe(true);
    expect(r.gatehouse).toBe(true);
    expect(r.summary.fail).toBe(0);
    expect(r.registeredClients).toEqual([]);
    expect(check(r, "mcp.initialize").detail).toContain(
      `Bearer resource_metadata="${healthy.url}/.well-known/oauth-protected-resource/mcp"`,
    );
    for (const id of [
      "prm.path_aware",
      "prm.root",
      "prm.resource",
      "prm.authorization_servers",
      "as.rfc8414",
      "as.oidc",
      "as.pkce",
      "as.response_types",
      "as.endpoints",
      "as.registration",
      "as.grant_types",
      "cors.mcp.claude.ai",
      "cors.mcp.localhost:6274",
      "cors.token.claude.ai",
      "cors.token.localhost:6274",
      "cors.registration.localhost:6274",
      "cors.metadata",
      "tls.redirects",
    ]) {
      expect(`${id} ${check(r, id).status}`).toBe(`${id} PASS`);
    }
    expect(check(r, "cors.mcp.claude.ai").detail).toContain("Mcp-Session-Id, WWW-Authenticate");
    expect(check(r, `tls.127.0.0.1:${healthy.port}`).status).toBe("WARN");
    for (const c of r.checks.filter((x) => x.section === "clients")) {
      expect(c.status).toBe("SKIP");
      expect(c.detail).toBe("not registered (--no-register)");
    }
    expect((healthy.logs().match(/client registered/g) ?? []).length).toBe(before);
  });

  test("an issuer with a path: RFC 8414 path-inserted, OpenID path-inserted and path-appended, all checked", async () => {
    const r = await report(`${pathIssuer.url}/mcp`, "--no-register");
    expect(r.code).toBe(0);
    const issuer = `${pathIssuer.url}/gh`;
    expect(check(r, "prm.authorization_servers").detail).toBe(issuer);
    expect(check(r, "as.rfc8414")).toMatchObject({
      status: "PASS",
      detail: `${pathIssuer.url}/.well-known/oauth-authorization-server/gh: issuer ${issuer}`,
    });
    expect(check(r, "as.oidc_inserted")).toMatchObject({
      status: "PASS",
      detail: `${pathIssuer.url}/.well-known/openid-configuration/gh: issuer ${issuer}`,
    });
    expect(check(r, "as.oidc_appended")).toMatchObject({
      status: "PASS",
      detail: `${pathIssuer.url}/gh/.well-known/openid-configuration: issuer ${issuer}`,
    });
    expect(check(r, "as.endpoints").detail).toBe(`authorization ${issuer}/authorize, token ${issuer}/token`);
    expect(check(r, "cors.token.claude.ai").status).toBe("PASS");
  });

  test("the URL with a trailing slash: Gatehouse answers there but publishes the resource without it", async () => {
    const r = await report(`${healthy.url}/mcp/`, "--no-register");
    const c = check(r, "prm.resource");
    expect(c.status).toBe("FAIL");
    expect(c.detail).toContain("(only a trailing slash apart)");
    expect(c.detail).toContain('VS Code stops ("does not match")');
    expect(c.fix).toStartWith(`give clients ${healthy.url}/mcp, without the trailing slash`);
    expect(check(r, "mcp.initialize").status).toBe("PASS");
  });

  test("reached by another name than its issuer (localhost): the resource mismatch, fixed by oauthAs.issuerUrl", async () => {
    const used = `http://localhost:${healthy.port}/mcp`;
    const r = await report(used, "--no-register");
    expect(r.code).toBe(1);
    const c = check(r, "prm.resource");
    expect(c.status).toBe("FAIL");
    expect(c.detail).toContain(`the document says ${healthy.url}/mcp, the URL used is ${used}`);
    expect(c.detail).toContain("RFC 9728 §3.3");
    expect(c.fix).toContain(`set serverAuth.oauthAs.issuerUrl to "http://localhost:${healthy.port}"`);
    expect(c.fix).toContain(`or give clients the URL Gatehouse publishes, ${healthy.url}/mcp`);
    // Only that fails.
    expect(r.checks.filter((x) => x.status === "FAIL").map((x) => x.id)).toEqual(["prm.resource"]);
    const text = await run(used, "--no-register");
    expect(text.out).toMatch(
      / {2}FAIL {2}resource equals the MCP URL — .*\n {8}fix: set serverAuth\.oauthAs\.issuerUrl to "http:\/\/localhost:/,
    );
  });
});

describe("gatehouse doctor against misconfigured Gatehouses", () => {
  test("gateway.publicUrl is not the URL used: /servers/<name>/mcp's resource mismatch names gateway.publicUrl", async () => {
    const used = `${misnamed.url}/servers/web/mcp`;
    const r = await report(used, "--no-register");
    expect(r.code).toBe(1);
    const c = check(r, "prm.resource");
    expect(c.status).toBe("FAIL");
    expect(c.detail).toContain("the document says https://mcp.example.test/servers/web/mcp");
    expect(c.fix).toStartWith(`set gateway.publicUrl to "${misnamed.url}"`);
    // The challenge and the path-aware document are this route's own.
    expect(check(r, "mcp.initialize").detail).toContain(
      'resource_metadata="https://mcp.example.test/.well-known/oauth-protected-resource/servers/web/mcp"',
    );
  });

  test("oauthAs.issuerUrl is not where Gatehouse is reached: every discovery step fails, each fixed by issuerUrl", async () => {
    const r = await report(`${wrongIssuer.url}/mcp`, "--no-register");
    expect(r.code).toBe(1);
    const fix = `set serverAuth.oauthAs.issuerUrl to the URL clients reach Gatehouse at, "${wrongIssuer.url}" (it is "${deadIssuer}")`;
    // The challenge names the metadata URL of the configured resource: on the issuer's address, which is down.
    const challenge = check(r, "prm.challenge_url");
    expect(challenge.status).toBe("FAIL");
    expect(challenge.detail).toMatch(/ECONNREFUSED|Unable to connect/);
    expect(challenge.fix).toBe(
      `set serverAuth.oauthAs.issuerUrl to "${wrongIssuer.url}": the challenge names the metadata URL of the configured resource, on another origin`,
    );
    expect(check(r, "prm.path_aware").status).toBe("PASS");
    expect(check(r, "prm.resource").fix).toStartWith(`set serverAuth.oauthAs.issuerUrl to "${wrongIssuer.url}"`);
    expect(check(r, "prm.authorization_servers").detail).toBe(deadIssuer);
    for (const id of ["as.rfc8414", "as.oidc"]) {
      const c = check(r, id);
      expect(c.status).toBe("FAIL");
      expect(c.detail).toStartWith(`${deadIssuer}/.well-known/`);
      expect(c.fix).toBe(fix);
    }
  });

  test("gateway.allowedOrigins without https://claude.ai: CORS fails on the MCP and token endpoints, with the key", async () => {
    const r = await report(`${misnamed.url}/mcp`, "--no-register");
    expect(r.code).toBe(1);
    for (const id of ["cors.mcp.claude.ai", "cors.token.claude.ai"]) {
      const c = check(r, id);
      expect(c.status).toBe("FAIL");
      expect(c.detail).toContain("preflight refused (403");
      expect(c.fix).toBe('add "https://claude.ai" to gateway.allowedOrigins');
    }
    // The listed origin still works.
    expect(check(r, "cors.mcp.localhost:6274").status).toBe("PASS");
    expect(check(r, "cors.token.localhost:6274").status).toBe("PASS");
    // /mcp's resource follows gateway.publicUrl too: reached elsewhere, it does not match.
    expect(check(r, "prm.resource").status).toBe("FAIL");
    expect(check(r, "prm.resource").fix).toContain("gateway.publicUrl");
  });

  test("the default oauthAs.redirectUriAllowlist accepts every known client's callback, Cursor's included", async () => {
    const r = await report(`${misnamed.url}/mcp`);
    for (const id of ["client.claude-ai", "client.chatgpt", "client.vscode", "client.cursor", "client.claude-code"]) {
      expect(`${id} ${check(r, id).status}`).toBe(`${id} PASS`);
    }
    expect(r.registeredClients.map((c) => c.client)).toEqual([
      "Claude.ai",
      "ChatGPT",
      "VS Code",
      "Cursor",
      "Claude Code",
    ]);
  });

  test("oauthAs.redirectUriAllowlist without the hosted callbacks: each refusal shown with the entry to add", async () => {
    const r = await report(`${loopbackOnly.url}/mcp`);
    expect(r.code).toBe(1);
    const claude = check(r, "client.claude-ai");
    expect(claude.status).toBe("FAIL");
    expect(claude.detail).toContain(`redirect_uri "${CLAUDE}" is not allowed by oauthAs.redirectUriAllowlist`);
    expect(claude.fix).toStartWith(`add "${CLAUDE}" to serverAuth.oauthAs.redirectUriAllowlist`);
    expect(check(r, "client.chatgpt").fix).toContain('add "https://chatgpt.com/connector_platform_oauth_redirect"');
    // VS Code registers its web redirects and loopback together: the first refused is named.
    expect(check(r, "client.vscode").fix).toContain('add "https://insiders.vscode.dev/redirect"');
    expect(check(r, "client.cursor").status).toBe("FAIL");
    // Loopback (any port) is still allowed.
    expect(check(r, "client.claude-code").status).toBe("PASS");
    const text = await run(`${loopbackOnly.url}/mcp`, "--no-register");
    expect(text.code).toBe(0); // nothing else is wrong
  });

  test("registration disabled without client ID metadata documents: the keys that turn either on", async () => {
    const r = await report(`${noRegistration.url}/mcp`);
    expect(r.code).toBe(1);
    const c = check(r, "as.registration");
    expect(c.status).toBe("FAIL");
    expect(c.detail).toContain("no registration_endpoint; no client ID metadata documents");
    expect(c.fix).toContain("serverAuth.oauthAs.registrationEnabled");
    expect(c.fix).toContain("serverAuth.oauthAs.clientIdMetadataDocuments.enabled");
    for (const client of r.checks.filter((x) => x.section === "clients")) {
      expect(client.status).toBe("FAIL");
      expect(client.detail).toContain("cannot register");
      expect(client.fix).toBe("set serverAuth.oauthAs.registrationEnabled to true");
    }
    expect(r.registeredClients).toEqual([]);
    expect(r.checks.some((x) => x.id.startsWith("cors.registration"))).toBe(false);
  });
});

describe("gatehouse doctor against servers that are not Gatehouse", () => {
  let op: RegistrationProvider;
  let idp: OidcFixture;
  let stub: Stub;
  let stubNoDcr: Stub;
  let broken: Stub;

  beforeAll(async () => {
    op = await startRegistrationProvider();
    idp = await startOidcProvider({
      redirectUris: ["http://127.0.0.1:1/unused"],
      accounts: { alice: { sub: "alice", email: "alice@example.com" } },
    });
    stub = startMcpStub({ authorizationServer: op.issuer });
    stubNoDcr = startMcpStub({ authorizationServer: idp.issuer });
    broken = startMcpStub({
      authorizationServer: op.issuer,
      cors: false,
      redirectPathAware: true,
      resource: (base) => base,
    });
  }, 60_000);

  afterAll(async () => {
    await Promise.all([stub?.stop(), stubNoDcr?.stop(), broken?.stop(), op?.stop(), idp?.stop()]);
  });

  test("an MCP stub and oidc-provider: discovery passes, test clients are registered and deleted (RFC 7592)", async () => {
    const r = await report(stub.mcpUrl);
    expect(r.gatehouse).toBe(false);
    expect(check(r, "mcp.initialize").status).toBe("PASS");
    for (const id of ["prm.path_aware", "prm.root", "prm.resource", "prm.authorization_servers", "prm.scopes"]) {
      expect(`${id} ${check(r, id).status}`).toBe(`${id} PASS`);
    }
    expect(check(r, "prm.authorization_servers").detail).toBe(op.issuer);
    // Its OpenID configuration (and RFC 8414 twin) found and checked: issuer equality, PKCE, registration.
    expect(check(r, "as.oidc").detail).toBe(`${op.issuer}/.well-known/openid-configuration: issuer ${op.issuer}`);
    for (const id of ["as.rfc8414", "as.oidc", "as.pkce", "as.response_types", "as.endpoints", "as.registration"]) {
      expect(`${id} ${check(r, id).status}`).toBe(`${id} PASS`);
    }
    expect(check(r, "as.registration").detail).toContain(`registration_endpoint ${op.issuer}/reg`);
    for (const id of ["client.claude-ai", "client.chatgpt", "client.vscode", "client.claude-code"]) {
      expect(check(r, id).status).toBe("PASS");
      expect(check(r, id).detail).toContain("(deleted again, RFC 7592)");
    }
    // oidc-provider registers web clients by default: no private-use scheme. Its own words, and the spec rule.
    const cursor = check(r, "client.cursor");
    expect(cursor.status).toBe("FAIL");
    expect(cursor.detail).toBe(
      "registration refused: 400 invalid_redirect_uri: redirect_uris must only contain web uris.",
    );
    expect(cursor.fix).toContain(`the authorization server must accept redirect_uri ${CURSOR}`);
    expect(cursor.fix).toContain("RFC 8252 §7.1");
    expect(r.registeredClients).toHaveLength(4);
    expect(r.registeredClients.every((c) => c.deleted)).toBe(true);
    // No servers.json keys for a server that is not Gatehouse.
    for (const c of r.checks) expect(c.fix ?? "").not.toMatch(/oauthAs\.|gateway\.|servers\.json/);
    expect(check(r, "cors.mcp.claude.ai").status).toBe("PASS");
    expect(check(r, "cors.token.claude.ai").status).toBe("PASS");
    // oidc-provider answers no preflight at its registration endpoint: only the Inspector's direct mode minds.
    expect(check(r, "cors.registration.localhost:6274").status).toBe("WARN");
    expect(r.code).toBe(1);
    const text = await run(stub.mcpUrl, "--no-register");
    expect(text.out).not.toContain("Registered");
  });

  test("oidc-provider without registration: its metadata checked, the missing registration a FAIL with the rule", async () => {
    const r = await report(stubNoDcr.mcpUrl);
    expect(r.code).toBe(1);
    expect(check(r, "as.oidc").status).toBe("PASS");
    expect(check(r, "as.pkce").detail).toBe("code_challenge_methods_supported: S256");
    const c = check(r, "as.registration");
    expect(c.status).toBe("FAIL");
    expect(c.fix).toContain('"registration_endpoint", RFC 7591');
    expect(c.fix).toContain("client_id_metadata_document_supported");
    expect(check(r, "client.claude-ai").status).toBe("FAIL");
    expect(check(r, "client.claude-ai").fix).toContain("offer dynamic client registration (RFC 7591)");
  });

  test("a broken stub: redirected metadata (with its Location), origin-only resource, no CORS", async () => {
    const r = await run(broken.mcpUrl, "--no-register");
    expect(r.code).toBe(1);
    expect(r.out).toMatch(
      / {2}FAIL {2}path-aware location \(the challenge's URL\) — .*redirected \(307\) to \/\.well-known\/oauth-protected-resource/,
    );
    expect(r.out).toContain(
      `FAIL  no redirects — GET ${broken.url}/.well-known/oauth-protected-resource/mcp → 307 /.well-known/oauth-protected-resource`,
    );
    const json = await report(broken.mcpUrl, "--no-register");
    const resource = check(json, "prm.resource");
    expect(resource.status).toBe("FAIL");
    expect(resource.detail).toContain(`the document says ${broken.url}, the URL used is ${broken.mcpUrl}`);
    expect(resource.fix).toBe(
      `make the protected resource metadata say "resource": "${broken.mcpUrl}" (RFC 9728 §3.3) — or connect clients to ${broken.url}`,
    );
    const cors = check(json, "cors.mcp.claude.ai");
    expect(cors.status).toBe("FAIL");
    expect(cors.detail).toBe("preflight refused (405)");
    expect(cors.fix).toContain("Access-Control-Allow-Origin: https://claude.ai");
    expect(check(json, "cors.metadata").status).toBe("WARN");
    // Every FAIL of the text output has its fix line right below.
    const lines = r.out.split("\n");
    lines.forEach((line, i) => {
      if (/^ {2}FAIL {2}/.test(line)) expect(lines[i + 1]).toMatch(/^ {8}fix: /);
    });
  });

  test("an open MCP server: said to be open, the OAuth checks skipped; only its missing CORS fails", async () => {
    const r = await report(backend.url);
    const c = check(r, "mcp.initialize");
    expect(c.status).toBe("WARN");
    expect(c.detail).toContain("the server is open (no OAuth)");
    for (const id of ["prm", "as", "client"]) expect(check(r, id).status).toBe("SKIP");
    // The SDK's server answers no preflight (405): browsers at claude.ai cannot call it.
    expect(r.checks.filter((x) => x.status === "FAIL").map((x) => x.id)).toEqual(["cors.mcp.claude.ai"]);
    expect(check(r, "cors.mcp.claude.ai").detail).toContain("preflight refused (405");
    expect(r.code).toBe(1);
  });

  test("a self-signed certificate: FAIL with the TLS error's message", async () => {
    const tls = startSelfSignedServer();
    if (!tls) return; // no openssl here
    try {
      const r = await report(tls.mcpUrl);
      expect(r.code).toBe(1);
      expect(check(r, "mcp.initialize").detail).toMatch(/self[- ]signed certificate/i);
      const cert = check(r, "tls.certificate");
      expect(cert.status).toBe("FAIL");
      expect(cert.detail).toContain(`127.0.0.1:${new URL(tls.url).port}: `);
      expect(cert.fix).toContain("public CA");
    } finally {
      await tls.stop();
    }
  });

  test("no answer and a closed port: a FAIL with the message within the timeout — no hang, no stack", async () => {
    const silent = startSilentServer();
    try {
      const started = Date.now();
      const r = await run(silent.mcpUrl, "--timeout", "300ms");
      expect(Date.now() - started).toBeLessThan(5000);
      expect(r.code).toBe(1);
      expect(r.out).toContain(`FAIL  unauthenticated POST initialize — ${silent.mcpUrl}: no answer within 300 ms`);
    } finally {
      await silent.stop();
    }
    const closed = `http://127.0.0.1:${await freePort()}/mcp`;
    const r = await report(closed, "--timeout", "2");
    expect(r.code).toBe(1);
    expect(check(r, "mcp.initialize").detail).toMatch(/ECONNREFUSED|Unable to connect|refused/i);
    expect(JSON.stringify(r)).not.toMatch(/\n\s+at /);
  });
});

describe("gatehouse doctor's command line", () => {
  test("--help, and usage errors exit 2 with one line", async () => {
    const help = await run("--help");
    expect(help.code).toBe(0);
    expect(help.out).toBe(DOCTOR_HELP);
    for (const argv of [
      [],
      ["ftp://example.com/mcp"],
      ["not a url"],
      ["http://x/mcp", "--bogus"],
      ["http://x/mcp", "--timeout", "soon"],
    ]) {
      const r = await run(...argv);
      expect(r.code).toBe(2);
      expect(r.out).toBe("");
      expect(r.err).toMatch(/^gatehouse doctor: .+\n$/);
    }
  });
});
