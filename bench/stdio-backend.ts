// A stdio MCP backend for the benchmarks: the official SDK McpServer over StdioServerTransport with an `echo` tool
// (and TOOLS-1 more, `tool_1`…, for the aggregated tools/list figure). Run: `TOOLS=50 bun bench/stdio-backend.ts`.

import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { z } from "zod";

const server = new McpServer({ name: "fast-stdio", version: "1.0.0" });
server.registerTool("echo", { description: "Echoes its input", inputSchema: { message: z.string() } }, async (a) => ({
  content: [{ type: "text", text: `echo: ${a.message}` }],
}));
for (let i = 1; i < Number(process.env.TOOLS ?? 1); i++) {
  server.registerTool(
    `tool_${i}`,
    { description: `Benchmark tool number ${i}, which does nothing`, inputSchema: { value: z.string().optional() } },
    async () => ({ content: [{ type: "text", text: "ok" }] }),
  );
}
await server.connect(new StdioServerTransport());
