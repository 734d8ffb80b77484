// The official MCP SDK client, connected to a Gatehouse URL with a bearer token (or other headers).

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

export async function connect(
  url: string,
  options: {
    token?: string;
    headers?: Record<string, string>;
    capabilities?: Record<string, unknown>;
    sse?: boolean;
  } = {},
): Promise<Client> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.Authorization = `Bearer ${options.token}`;
  const client = new Client({ name: "gatehouse-test", version: "1.0.0" }, { capabilities: options.capabilities ?? {} });
  const transport = options.sse
    ? new SSEClientTransport(new URL(url), {
        requestInit: { headers },
        eventSourceInit: {
          fetch: (u, i) => fetch(u, { ...i, headers: { ...(i?.headers as Record<string, string>), ...headers } }),
        },
      })
    : new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } });
  await client.connect(transport);
  return client;
}
