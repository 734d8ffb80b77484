// Gatehouse's authorization server checked by panva's oauth4webapi, an OpenID-certified strict client: discovery and
// issuer, `iss` in the authorization response (RFC 9207), the token response, RFC 9068 access token validation for
// the resource, refresh, revocation and introspection — with a registered client and with a client identified by a
// metadata document served on loopback (the test allowance for private networks on).

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as oauth from "oauth4webapi";
import { type HttpBackend, startHttpBackend } from "../fixtures/http-backend.ts";
import { type Running, startGatehouse } from "../helpers/gatehouse-process.ts";
import { freePort } from "../helpers/net.ts";
import { browse } from "../helpers/oauth-client.ts";
import { writeConfig } from "../helpers/temp.ts";

const insecure = { [oauth.allowInsecureRequests]: true };
const PROXY = { "x-forwarded-user": "grace", "x-forwarded-groups": "ops" };
const REDIRECT = "http://127.0.0.1:7777/cb";

let backend: HttpBackend;
let gh: Running;
let metadataServer: ReturnType<typeof Bun.serve>;
let cimdClientId: string;
let as: oauth.AuthorizationServer;
let resource: string;

beforeAll(async () => {
  backend = await startHttpBackend();
  metadataServer = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: (req) =>
      new URL(req.url).pathname === "/oauth/client.json"
        ? Response.json(
            {
              client_id: cimdClientId,
              client_name: "Metadata Document Client",
              redirect_uris: [REDIRECT],
              token_endpoint_auth_method: "none",
            },
            { headers: { "cache-control": "max-age=60" } },
          )
        : new Response("not found", { status: 404 }),
  });
  cimdClientId = `http://127.0.0.1:${metadataServer.port}/oauth/client.json`;
  const port = await freePort();
  resource = `http://127.0.0.1:${port}/mcp`;
  const config = writeConfig({
    mcpServers: { web: { url: backend.url } },
    serverAuth: {
      providers: ["oauth_as"],
      oauthAs: {
        issuerUrl: `http://127.0.0.1:${port}`,
        trustedSourceCidrs: ["127.0.0.1/32"],
        scopesSupported: ["mcp"],
        requiredScopes: ["mcp"],
        introspectionClients: { "resource-server": "resource-server-secret" },
        clientIdMetadataDocuments: { allowPrivateNetwork: true },
      },
    },
  });
  gh = await startGatehouse({ config, port });
  const issuer = new URL(gh.url);
  as = await oauth.processDiscoveryResponse(
    issuer,
    await oauth.discoveryRequest(issuer, { algorithm: "oauth2", ...insecure }),
  );
}, 60_000);

afterAll(async () => {
  await gh?.stop();
  await backend?.stop();
  metadataServer?.stop(true);
});

async function authorizationCode(client: oauth.Client): Promise<oauth.TokenEndpointResponse> {
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const url = new URL(as.authorization_endpoint as string);
  url.search = new URLSearchParams({
    response_type: "code",
    client_id: client.client_id,
    redirect_uri: REDIRECT,
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256",
    state,
    scope: "mcp",
    resource,
  }).toString();
  const landed = (await browse(url.href, REDIRECT, { headers: PROXY })).landed;
  if (!landed) throw new Error("the browser did not come back");
  // validateAuthResponse demands `iss` equal to the issuer, since the metadata advertises RFC 9207 support.
  const params = oauth.validateAuthResponse(as, client, landed, state);
  const response = await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, REDIRECT, verifier, {
    additionalParameters: { resource },
    ...insecure,
  });
  return oauth.processAuthorizationCodeResponse(as, client, response);
}

describe("oauth4webapi against Gatehouse", () => {
  test("discovery: the metadata issuer is exactly the issuer", () => {
    expect(as.issuer).toBe(gh.url);
    expect(as.code_challenge_methods_supported).toEqual(["S256"]);
    expect(as.authorization_response_iss_parameter_supported).toBe(true);
  });

  test("a registered client: code (iss checked) → tokens → RFC 9068 validation → refresh → introspect → revoke", async () => {
    const registered = await oauth.processDynamicClientRegistrationResponse(
      await oauth.dynamicClientRegistrationRequest(
        as,
        {
          redirect_uris: [REDIRECT],
          token_endpoint_auth_method: "none",
          grant_types: ["authorization_code", "refresh_token"],
          client_name: "strict",
        },
        insecure,
      ),
    );
    const client: oauth.Client = { client_id: registered.client_id, token_endpoint_auth_method: "none" };
    const tokens = await authorizationCode(client);
    expect(tokens.token_type).toBe("bearer");
    expect(tokens.refresh_token).toBeDefined();

    const claims = await oauth.validateJwtAccessToken(
      as,
      new Request(resource, { headers: { authorization: `Bearer ${tokens.access_token}` } }),
      resource,
      insecure,
    );
    expect(claims).toMatchObject({
      sub: "grace",
      client_id: client.client_id,
      aud: resource,
      iss: gh.url,
      scope: "mcp",
    });

    const refreshed = await oauth.processRefreshTokenResponse(
      as,
      client,
      await oauth.refreshTokenGrantRequest(as, client, oauth.None(), tokens.refresh_token as string, {
        additionalParameters: { resource },
        ...insecure,
      }),
    );
    expect(refreshed.access_token).not.toBe(tokens.access_token);

    const rs: oauth.Client = { client_id: "resource-server" };
    const active = await oauth.processIntrospectionResponse(
      as,
      rs,
      await oauth.introspectionRequest(
        as,
        rs,
        oauth.ClientSecretBasic("resource-server-secret"),
        refreshed.access_token,
        insecure,
      ),
    );
    expect(active).toMatchObject({ active: true, sub: "grace", client_id: client.client_id });

    await oauth.processRevocationResponse(
      await oauth.revocationRequest(as, client, oauth.None(), refreshed.refresh_token as string, insecure),
    );
    const after = await oauth.processIntrospectionResponse(
      as,
      rs,
      await oauth.introspectionRequest(
        as,
        rs,
        oauth.ClientSecretBasic("resource-server-secret"),
        refreshed.access_token,
        insecure,
      ),
    );
    expect(after.active).toBe(false);
    const mcp = await fetch(resource, {
      method: "POST",
      headers: { authorization: `Bearer ${refreshed.access_token}`, "content-type": "application/json" },
      body: "{}",
    });
    expect(mcp.status).toBe(401);
  });

  test("a client identified by its metadata document completes the flow", async () => {
    const client: oauth.Client = { client_id: cimdClientId, token_endpoint_auth_method: "none" };
    const tokens = await authorizationCode(client);
    const claims = await oauth.validateJwtAccessToken(
      as,
      new Request(resource, { headers: { authorization: `Bearer ${tokens.access_token}` } }),
      resource,
      insecure,
    );
    expect(claims.client_id).toBe(cimdClientId);
    await gh.waitForLog("client metadata document fetched");
  });
});
