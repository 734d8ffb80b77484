// The fast backend of the benchmarks: the official MCP SDK McpServer (one `echo` tool) behind its web-standard
// Streamable HTTP transport inside Bun.serve, answering with JSON (enableJsonResponse). MODE=stateful (default)
// keeps one server+transport per session; MODE=stateless builds a fresh server+transport per request, since the SDK
// forbids reusing a stateless transport. Run: `PORT=… MODE=stateful|stateless bun bench/fast-backend.ts`.

import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import { z } from "zod";

const stateless = process.env.MODE === "stateless";

function buildServer(): McpServer {
  const server = new McpServer({ name: "fast", version: "1.0.0" });
  server.registerTool("echo", { description: "Echoes its input", inputSchema: { message: z.string() } }, async (a) => ({
    content: [{ type: "text", text: `echo: ${a.message}` }],
  }));
  return server;
}

async function transportFor(sessions: Map<string, WebStandardStreamableHTTPServerTransport>) {
  const transport = new WebStandardStreamableHTTPServerTransport({
    sessionIdGenerator: stateless ? undefined : () => crypto.randomUUID(),
    enableJsonResponse: true,
    onsessioninitialized: (id) => void sessions.set(id, transport),
    onsessionclosed: (id) => void sessions.delete(id),
  });
  await buildServer().connect(transport);
  return transport;
}

const sessions = new Map<string, WebStandardStreamableHTTPServerTransport>();
const server = Bun.serve({
  hostname: "127.0.0.1",
  port: Number(process.env.PORT ?? 0),
  idleTimeout: 0,
  async fetch(req) {
    if (stateless) {
      // A GET stream is of no use without sessions (and would pin a transport); answer as the spec allows.
      if (req.method === "GET") return new Response(null, { status: 405, headers: { allow: "POST" } });
      return (await transportFor(sessions)).handleRequest(req);
    }
    const sid = req.headers.get("mcp-session-id");
    if (!sid) return (await transportFor(sessions)).handleRequest(req);
    const t = sessions.get(sid);
    if (t) return t.handleRequest(req);
    return Response.json(
      { jsonrpc: "2.0", id: null, error: { code: -32001, message: "Session not found" } },
      { status: 404 },
    );
  },
});
console.log(`listening http://127.0.0.1:${server.port}/mcp (${stateless ? "stateless" : "stateful"})`);
