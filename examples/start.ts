// `npm start`: runs Gatehouse on examples/servers.json with a fresh bearer token, and prints how to use it.

import { randomBytes } from "node:crypto";
import { main } from "../src/main.ts";

const token = process.env.GATEHOUSE_DEMO_TOKEN ?? randomBytes(24).toString("base64url");
process.env.GATEHOUSE_DEMO_TOKEN = token;
const bind = process.env.GATEHOUSE_BIND ?? "127.0.0.1:8080";

process.stdout.write(`
Gatehouse demo: server-everything behind http://${bind}/mcp

  Bearer token: ${token}

  curl -s http://${bind}/health
  curl -s http://${bind}/mcp -H "Authorization: Bearer ${token}" \\
       -H "Content-Type: application/json" -H "Accept: application/json, text/event-stream" \\
       -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}'

  MCP Inspector: npx @modelcontextprotocol/inspector  → Transport "Streamable HTTP", URL http://${bind}/mcp,
                 header "Authorization: Bearer ${token}"

`);
process.exit(await main(["serve", "--config", new URL("./servers.json", import.meta.url).pathname, "--bind", bind]));
