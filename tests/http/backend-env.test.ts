// What a backend process inherits: Gatehouse's environment without its secrets. A variable servers.json uses outside
// mcpServers (a bearer token, a client secret, a Redis password) reaches a backend only through its own `env`.

import { expect, test } from "bun:test";
import { testApp } from "../helpers/app.ts";
import { everythingStdio } from "../helpers/paths.ts";

test("a stdio backend sees neither Gatehouse's secrets nor its inline configuration; its own env it does", async () => {
  const t = await testApp(
    {
      mcpServers: { everything: everythingStdio({ env: { FOR_THE_BACKEND: "${BACKEND_KEY}" } }) },
      serverAuth: { providers: ["bearer"], bearer: { tokens: { "${GATEHOUSE_TOKEN}": "alice" } } },
    },
    {
      env: {
        GATEHOUSE_TOKEN: "tok-secret-9f2c",
        BACKEND_KEY: "backend-key-77",
        MCP_AUTH_SERVER_CONFIG: '{"clients":{}}',
        UNRELATED_VAR: "plain-value",
      },
    },
  );
  try {
    const auth = { authorization: "Bearer tok-secret-9f2c" };
    const sid = await t.session(auth);
    const res = await t.rpc(
      { jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "everything__get-env", arguments: {} } },
      { ...auth, "mcp-session-id": sid, accept: "application/json" },
    );
    const text = JSON.stringify(await res.json());
    expect(text).toContain("backend-key-77"); // its own env
    expect(text).toContain("plain-value"); // the rest of the environment
    expect(text).not.toContain("tok-secret-9f2c");
    expect(text).not.toContain("GATEHOUSE_TOKEN");
    expect(text).not.toContain("MCP_AUTH_SERVER_CONFIG");
  } finally {
    await t.close();
  }
});
