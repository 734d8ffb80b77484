// README's "From download to Claude.ai connected", step by step, on loopback: the compiled binary; a password hash
// from `gatehouse hash-password`; the servers.json of the README itself (only its public URL, the hash and the
// backend swapped for the test's); `gatehouse check`; then Gatehouse behind each of the walkthrough's proxy files,
// read from examples/ with only the host name, ports and certificate paths swapped — Caddy
// (examples/gateway.Caddyfile, certificates from its internal CA: `local_certs`, i.e. `tls internal` for every site)
// and nginx (examples/nginx-gateway.conf, with a certificate for "localhost" from a CA made here with openssl).
// Through each, over https, the official MCP SDK client does what Claude.ai does: discovery, registration with
// Claude's callback, the consent page, the local account's password form, the token, then tools — with progress
// notifications streamed through the proxy as they are sent. The client trusts the test CA through Bun's
// `fetch(url, { tls: { ca } })`, passed to the SDK transport (which uses it for discovery, registration and token
// requests too) and to the headless browser.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { type HttpBackend, startHttpBackend } from "../fixtures/http-backend.ts";
import { type Caddy, caddyAvailable, startCaddy } from "../helpers/caddy.ts";
import { type Running, startGatehouse } from "../helpers/gatehouse-process.ts";
import { freePort } from "../helpers/net.ts";
import { type Nginx, nginxAvailable, startNginx } from "../helpers/nginx.ts";
import { HeadlessOAuthProvider } from "../helpers/oauth-client.ts";
import { BINARY, ensureBinary, ROOT } from "../helpers/paths.ts";
import { tempDir } from "../helpers/temp.ts";

const withCaddy = caddyAvailable();
const withNginx = nginxAvailable();

const HOST = "localhost";
const USER = "alice";
const PASSWORD = "correct horse battery staple";
/** Claude.ai's callback (in the default redirectUriAllowlist): the browser stops there, with the code. */
const CLAUDE_CALLBACK = "https://claude.ai/api/mcp/auth_callback";

/** `text` with `from` (a regular expression matched per line) replaced, which must be there exactly once. */
function swap(text: string, file: string, from: RegExp, to: string): string {
  const found = text.match(new RegExp(from.source, "gm"))?.length ?? 0;
  if (found !== 1) throw new Error(`${file}: expected one ${from}, found ${found}`);
  return text.replace(new RegExp(from.source, "m"), to);
}

const readme = readFileSync(join(ROOT, "README.md"), "utf8");
/** The walkthrough section of README.md. */
const section = (() => {
  const start = readme.indexOf("\n## From download to Claude.ai connected\n");
  if (start < 0) throw new Error('README.md has no "From download to Claude.ai connected" section');
  const end = readme.indexOf("\n## ", start + 1);
  return readme.slice(start, end < 0 ? undefined : end);
})();

/** The section's code block in `lang`, without the list item's indentation. */
function readmeBlock(lang: string): string {
  const m = new RegExp(`\\n( *)\`\`\`${lang}\\n([\\s\\S]*?)\\n\\1\`\`\`\\n`).exec(section);
  if (!m) throw new Error(`the walkthrough has no \`\`\`${lang} block`);
  const indent = m[1] as string;
  return (m[2] as string)
    .split("\n")
    .map((l) => (l.startsWith(indent) ? l.slice(indent.length) : l))
    .join("\n");
}

const CADDYFILE = join(ROOT, "examples/gateway.Caddyfile");
const NGINX_CONF = join(ROOT, "examples/nginx-gateway.conf");

/** The walkthrough's servers.json, for Gatehouse at `publicUrl`. */
function serversJson(publicUrl: string, passwordHash: string, backendUrl: string): string {
  let text = readmeBlock("jsonc");
  text = swap(text, "README servers.json", /"https:\/\/mcp\.example\.com"/, JSON.stringify(publicUrl));
  text = swap(text, "README servers.json", /"\$argon2id\$[^"]*…"/, JSON.stringify(passwordHash));
  text = swap(
    text,
    "README servers.json",
    /^(\s*)"files": \{ "command": .*\}$/,
    `$1"files": { "url": "${backendUrl}" }`,
  );
  return text;
}

let passwordHash: string;
let backend: HttpBackend;

beforeAll(async () => {
  if (!withCaddy && !withNginx) return;
  await ensureBinary();
  // Step 3: `printf %s "$pw" | gatehouse hash-password`.
  const hashed = Bun.spawnSync([BINARY, "hash-password"], {
    stdin: Buffer.from(PASSWORD),
    stdout: "pipe",
    stderr: "pipe",
  });
  if (hashed.exitCode !== 0) throw new Error(`hash-password failed: ${hashed.stderr.toString()}`);
  passwordHash = hashed.stdout.toString().trim();
  backend = await startHttpBackend();
}, 120_000);

afterAll(async () => {
  await backend?.stop();
});

/** Writes the walkthrough's servers.json for `publicUrl`, checks it with `gatehouse check`, and starts the binary. */
async function startWalkthroughGatehouse(publicUrl: string, port: number): Promise<Running> {
  const config = join(tempDir("gatehouse-walkthrough-"), "servers.json");
  writeFileSync(config, serversJson(publicUrl, passwordHash, backend.url));
  const check = Bun.spawnSync([BINARY, "check", "--config", config], { stdout: "pipe", stderr: "pipe" });
  if (check.exitCode !== 0) throw new Error(`gatehouse check failed:\n${check.stdout}${check.stderr}`);
  return startGatehouse({ config, port, binary: true });
}

/** Bun's fetch, trusting `ca` (the proxy's certificate authority) on top of the system's. */
function fetchTrusting(ca: string): typeof fetch {
  return ((input: string | URL | Request, init?: RequestInit) =>
    fetch(input, { ...init, tls: { ca } })) as typeof fetch;
}

/** What a user and Claude.ai do at step 7, through the proxy at `base`; `ca` is the proxy's certificate authority. */
async function connectLikeClaude(base: string, ca: string, gatehouse: Running): Promise<void> {
  const tlsFetch = fetchTrusting(ca);
  const mcpUrl = new URL(`${base}/mcp`);

  // The last check of README: an unauthenticated POST gets the 401 naming the metadata at the public URL.
  const unauthenticated = await tlsFetch(mcpUrl, { method: "POST" });
  expect(unauthenticated.status).toBe(401);
  expect(unauthenticated.headers.get("www-authenticate")).toBe(
    // No scope: the walkthrough's servers.json requires none (oauthAs.requiredScopes), as README says.
    `Bearer resource_metadata="${base}/.well-known/oauth-protected-resource/mcp"`,
  );
  const metadata = await (await tlsFetch(`${base}/.well-known/oauth-protected-resource/mcp`)).json();
  expect(metadata).toMatchObject({ resource: `${base}/mcp`, authorization_servers: [base] });

  const provider = new HeadlessOAuthProvider(
    CLAUDE_CALLBACK,
    {
      login: "local",
      credentials: { username: USER, password: PASSWORD },
      fetchImpl: async (url, init) => {
        const res = await tlsFetch(url, { ...init, redirect: "manual" });
        return { status: res.status, headers: res.headers, text: await res.text() };
      },
    },
    { client_name: "Claude" },
  );
  const first = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider, fetch: tlsFetch });
  await expect(new Client({ name: "claude-ai", version: "1" }).connect(first)).rejects.toThrow(UnauthorizedError);
  const code = provider.code();
  if (!code) throw new Error(`no code: ${provider.lastBrowse?.status} ${provider.lastBrowse?.page?.slice(0, 500)}`);

  // The browser went through the proxy only: consent page, then the password form, then back to Claude.
  const browse = provider.lastBrowse;
  expect(browse?.consentShown).toBe(true);
  expect(browse?.visited.every((u) => u.startsWith(`${base}/`))).toBe(true);
  expect(browse?.visited.some((u) => new URL(u).pathname === "/login/local")).toBe(true);
  expect(browse?.landed?.searchParams.get("iss")).toBe(base);
  const authUrl = provider.authorizationUrls[0] as URL;
  expect(authUrl.origin).toBe(base);
  expect(authUrl.searchParams.get("resource")).toBe(mcpUrl.href);

  // The consent page as the user sees it (a fresh one for the same request).
  const page = await (await tlsFetch(authUrl, { redirect: "manual" })).text();
  expect(page).toContain("Allow <strong>Claude</strong> to use your MCP tools?");
  expect(page).toContain("<dt>Returns to</dt><dd><strong>claude.ai</strong></dd>");
  expect(page).toContain("Allow and sign in with a local account");

  await first.finishAuth(code);
  const client = new Client({ name: "claude-ai", version: "1" });
  await client.connect(new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider, fetch: tlsFetch }));
  expect((await client.listTools()).tools.map((t) => t.name)).toContain("files__echo");
  expect(await client.callTool({ name: "files__echo", arguments: { message: "from Claude" } })).toMatchObject({
    content: [{ text: "echo: from Claude" }],
  });

  // Server-sent events pass the proxy unbuffered: the first progress notification (sent after 20 ms) arrives well
  // before the result (after 40 × 20 ms).
  const started = Date.now();
  const progressAt: number[] = [];
  const result = await client.callTool({ name: "files__progress", arguments: { steps: 40 } }, undefined, {
    onprogress: () => {
      progressAt.push(Date.now() - started);
    },
  });
  const resultAt = Date.now() - started;
  expect(result).toMatchObject({ content: [{ text: "done 40" }] });
  expect(progressAt.length).toBe(40);
  expect(progressAt[0] as number).toBeLessThan(resultAt - 400);
  await client.close();

  const logs = await gatehouse.waitForLog("token: authorization_code");
  for (const step of ["client registered", "authorize: asking for consent", "authorize: code issued"]) {
    expect(logs).toContain(step);
  }
}

describe.skipIf(!withCaddy)("the walkthrough behind Caddy (examples/gateway.Caddyfile)", () => {
  let caddy: Caddy;
  let gh: Running;
  let base: string;

  beforeAll(async () => {
    const ghPort = await freePort();
    let text = readFileSync(CADDYFILE, "utf8");
    text = swap(text, "examples/gateway.Caddyfile", /^mcp\.example\.com \{/, `${HOST} {`);
    text = swap(
      text,
      "examples/gateway.Caddyfile",
      /^(\s*)reverse_proxy 127\.0\.0\.1:8080 \{/,
      `$1reverse_proxy 127.0.0.1:${ghPort} {`,
    );
    caddy = await startCaddy(text, HOST);
    base = `https://${HOST}:${caddy.port}`;
    gh = await startWalkthroughGatehouse(base, ghPort);
  }, 60_000);

  afterAll(async () => {
    await caddy?.stop();
    await gh?.stop();
  });

  test("README shows the file's directives exactly", () => {
    const directives = readFileSync(CADDYFILE, "utf8")
      .split("\n")
      .filter((l) => l.trim() !== "" && !l.trim().startsWith("#"))
      .join("\n");
    expect(readmeBlock("caddy")).toBe(directives);
  });

  test("Claude.ai's flow through Caddy with TLS: discovery, consent, local sign-in, token, tools", async () => {
    await connectLikeClaude(base, caddy.rootCa(), gh);
  });
});

describe.skipIf(!withNginx)("the walkthrough behind nginx (examples/nginx-gateway.conf)", () => {
  let nginx: Nginx;
  let gh: Running;
  let base: string;
  let ca: string;

  beforeAll(async () => {
    const dir = tempDir("gatehouse-walkthrough-tls-");
    const certs = makeCertificates(dir);
    ca = readFileSync(certs.ca, "utf8");
    const [port, ghPort] = [await freePort(), await freePort()];
    base = `https://${HOST}:${port}`;
    gh = await startWalkthroughGatehouse(base, ghPort);
    const file = "examples/nginx-gateway.conf";
    let text = readFileSync(NGINX_CONF, "utf8");
    text = swap(text, file, /^(\s*)listen 443 ssl;/, "$1listen {{listen}} ssl;");
    text = swap(text, file, /^(\s*)server_name mcp\.example\.com;/, `$1server_name ${HOST};`);
    text = swap(text, file, /^(\s*)ssl_certificate\s+\S+;/, `$1ssl_certificate ${certs.chain};`);
    text = swap(text, file, /^(\s*)ssl_certificate_key\s+\S+;/, `$1ssl_certificate_key ${certs.key};`);
    text = swap(text, file, /^(\s*)proxy_pass http:\/\/127\.0\.0\.1:8080;/, `$1proxy_pass http://127.0.0.1:${ghPort};`);
    nginx = await startNginx(text, { port });
  }, 60_000);

  afterAll(async () => {
    await nginx?.stop();
    await gh?.stop();
  });

  test("every directive README shows is in the file", () => {
    const normalize = (s: string) =>
      s
        .split("\n")
        .map((l) => l.replace(/#.*$/, ""))
        .join(" ")
        .split(/[;{}]/)
        .map((d) => d.trim().replace(/\s+/g, " "))
        .filter((d) => d !== "");
    const file = new Set(normalize(readFileSync(NGINX_CONF, "utf8")));
    for (const d of normalize(readmeBlock("nginx"))) expect(file.has(d) ? d : `missing: ${d}`).toBe(d);
  });

  test("Claude.ai's flow through nginx with TLS: discovery, consent, local sign-in, token, tools", async () => {
    await connectLikeClaude(base, ca, gh);
    expect(nginx.errorLog()).not.toContain("[error]");
  });

  test("a name other than issuerUrl's gets README's 403 (nginx passes the Host it was sent)", async () => {
    const res = await fetchTrusting(ca)(`${base}/mcp`, { method: "POST", headers: { host: "www.example.com" } });
    expect(res.status).toBe(403);
    expect(await res.text()).toContain("Host www.example.com is not served here");
  });
});

/** A CA and a certificate it signs for "localhost" and 127.0.0.1 (certbot's file names: fullchain.pem, privkey.pem). */
function makeCertificates(dir: string): { ca: string; chain: string; key: string } {
  const run = (...args: string[]) => {
    const r = Bun.spawnSync(["openssl", ...args], { cwd: dir, stdout: "pipe", stderr: "pipe" });
    if (r.exitCode !== 0) throw new Error(`openssl ${args[0]} failed:\n${r.stderr.toString()}`);
  };
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  run(
    "req",
    "-x509",
    ...ec,
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    "-days",
    "2",
    "-subj",
    "/CN=Gatehouse walkthrough test CA",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  );
  run("req", ...ec, "-keyout", "privkey.pem", "-out", "leaf.csr", "-subj", `/CN=${HOST}`);
  writeFileSync(
    join(dir, "leaf.ext"),
    `subjectAltName=DNS:${HOST},IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n`,
  );
  run(
    "x509",
    "-req",
    "-in",
    "leaf.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-set_serial",
    "1",
    "-days",
    "2",
    "-extfile",
    "leaf.ext",
    "-out",
    "fullchain.pem",
  );
  return { ca: join(dir, "ca.pem"), chain: join(dir, "fullchain.pem"), key: join(dir, "privkey.pem") };
}
