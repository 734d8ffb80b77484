// An MCP server in memory, as a BackendTransport: for unit tests of the gateway core (dispatch, forwarding, the way
// back) without processes or sockets. It answers what a real server would, records every request it gets, and lets
// a tool handler send progress and server→client requests on the call's own stream.

import type { BackendConfig } from "../../src/config/types.ts";
import { memoryLogger } from "../../src/log.ts";
import { BackendClient } from "../../src/mcp/backends/backend-client.ts";
import type { BackendTransport, TransportHandlers } from "../../src/mcp/backends/transport.ts";
import type { Backend } from "../../src/mcp/catalog.ts";
import type {
  JsonRpcId,
  JsonRpcMessage,
  JsonRpcNotification,
  JsonRpcRequest,
  JsonRpcResponse,
} from "../../src/mcp/jsonrpc.ts";
import type { Clock } from "../../src/platform/types.ts";

type Params = Record<string, unknown>;

/** What a tool handler can do while it runs: talk to the client on the call's stream. */
export interface ToolContext {
  notify(method: string, params: Params): void;
  /** Sends a request to the client and waits for its answer. */
  ask(method: string, params: Params): Promise<JsonRpcResponse>;
  params: Params;
}

export interface FakeServerOptions {
  tools?: Params[];
  resources?: Params[];
  prompts?: Params[];
  capabilities?: Params;
  /** tools/call by tool name; default: echo the arguments. */
  handlers?: Record<string, (ctx: ToolContext) => Promise<Params> | Params>;
  /** Answers for methods the fake does not know (an extension); default: method not found. */
  extra?: Record<string, (params: Params) => Params>;
}

export class FakeServer implements BackendTransport {
  handlers: TransportHandlers | undefined;
  /** Every request received, in order (initialize included). */
  readonly received: JsonRpcRequest[] = [];
  /** Every notification received. */
  readonly notifications: JsonRpcNotification[] = [];
  /** Answers the client sent to this server's own requests. */
  readonly answers: JsonRpcResponse[] = [];
  private readonly waiting = new Map<string, (r: JsonRpcResponse) => void>();
  private nextId = 1;

  constructor(private readonly options: FakeServerOptions = {}) {}

  async start(h: TransportHandlers): Promise<void> {
    this.handlers = h;
  }
  setProtocolVersion(): void {}
  async close(): Promise<void> {}
  describe(): string {
    return "fake";
  }

  /** The requests received with this method. */
  calls(method: string): JsonRpcRequest[] {
    return this.received.filter((r) => r.method === method);
  }

  /** Sends a notification that belongs to no request (list_changed, resources/updated). */
  broadcast(method: string, params?: Params): void {
    this.handlers?.onMessage({ jsonrpc: "2.0", method, ...(params ? { params } : {}) });
  }

  async send(m: JsonRpcMessage): Promise<void> {
    if (!("method" in m)) {
      const r = m as JsonRpcResponse;
      this.answers.push(r);
      this.waiting.get(String(r.id))?.(r);
      return;
    }
    if (!("id" in m)) {
      this.notifications.push(m as JsonRpcNotification);
      return;
    }
    const req = m as JsonRpcRequest;
    this.received.push(req);
    queueMicrotask(() => void this.answer(req));
  }

  private reply(id: JsonRpcId, result: Params): void {
    this.handlers?.onMessage({ jsonrpc: "2.0", id, result });
  }

  private fail(id: JsonRpcId, code: number, message: string): void {
    this.handlers?.onMessage({ jsonrpc: "2.0", id, error: { code, message } });
  }

  private async answer(req: JsonRpcRequest): Promise<void> {
    const o = this.options;
    const params = req.params ?? {};
    switch (req.method) {
      case "initialize":
        return this.reply(req.id, {
          protocolVersion: "2025-11-25",
          capabilities: o.capabilities ?? { tools: {}, resources: { subscribe: true }, prompts: {}, completions: {} },
          serverInfo: { name: "fake", version: "1" },
          instructions: "the fake's own instructions",
        });
      case "tools/list":
        return this.reply(req.id, { tools: o.tools ?? [] });
      case "resources/list":
        return this.reply(req.id, { resources: o.resources ?? [] });
      case "resources/templates/list":
        return this.reply(req.id, { resourceTemplates: [] });
      case "prompts/list":
        return this.reply(req.id, { prompts: o.prompts ?? [] });
      case "resources/read":
        return this.reply(req.id, { contents: [{ uri: params.uri, text: `contents of ${params.uri}` }] });
      case "prompts/get":
        return this.reply(req.id, {
          messages: [{ role: "user", content: { type: "text", text: String(params.name) } }],
        });
      case "completion/complete":
        return this.reply(req.id, { completion: { values: ["x"] } });
      case "resources/subscribe":
      case "resources/unsubscribe":
      case "logging/setLevel":
        return this.reply(req.id, {});
      case "tools/call": {
        const handler = o.handlers?.[String(params.name)];
        if (!handler)
          return this.reply(req.id, { content: [{ type: "text", text: JSON.stringify(params.arguments) }] });
        const ctx: ToolContext = {
          params,
          notify: (method, p) => this.handlers?.onMessage({ jsonrpc: "2.0", method, params: p }, req.id),
          ask: (method, p) => {
            const id = `srv-${this.nextId++}`;
            const answered = new Promise<JsonRpcResponse>((resolve) => this.waiting.set(id, resolve));
            this.handlers?.onMessage({ jsonrpc: "2.0", id, method, params: p }, req.id);
            return answered;
          },
        };
        try {
          return this.reply(req.id, await handler(ctx));
        } catch (e) {
          return this.fail(req.id, -32603, (e as Error).message);
        }
      }
      default: {
        const extra = o.extra?.[req.method];
        if (extra) return this.reply(req.id, extra(params));
        return this.fail(req.id, -32601, `Method not found: ${req.method}`);
      }
    }
  }
}

/** A backend for the gateway over a FakeServer. */
export function fakeBackend(
  config: BackendConfig,
  server: FakeServer,
  clock: Clock,
  onBroadcast: (backend: string, n: JsonRpcNotification) => void = () => {},
): Backend {
  return {
    config,
    client: new BackendClient({
      name: config.name,
      transport: server,
      clock,
      log: memoryLogger(),
      version: "test",
      requestTimeoutMs: config.requestTimeoutMs,
      startupTimeoutMs: config.startupTimeoutMs,
      onBroadcast,
    }),
  };
}
