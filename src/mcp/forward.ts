// Forwarding one client request to a backend: the client's progress token swapped for one unique across sessions
// (and back on the way home, relay.ts), the caller's identity in headers when the backend asked for it
// (forward_identity; never the client's token), the call's deadline and cancellation, and resource URIs in the
// result named as the route shows them.

import { type Naming, outwardResourceUris } from "../naming.ts";
import { headerValue } from "../net/header-value.ts";
import type { RequestOptions, RequestOwner } from "./backends/backend-client.ts";
import type { Call } from "./call.ts";
import type { Backend } from "./catalog.ts";
import { ErrorCode, RpcError } from "./jsonrpc.ts";
import { relayToClient } from "./relay.ts";

export class Forwarder {
  private nextProgressToken = 1;

  constructor(
    private readonly naming: Naming,
    /** Told how long each backend took (metrics). */
    private readonly observe?: (server: string, seconds: number) => void,
  ) {}

  async forward(call: Call, backend: Backend, params: Record<string, unknown>): Promise<Record<string, unknown>> {
    const { session, identity, request, channel } = call;
    const server = backend.config.name;
    const upstream: Record<string, unknown> = { ...params };
    const meta = params._meta as Record<string, unknown> | undefined;
    const clientToken = meta?.progressToken;
    if (clientToken !== undefined) upstream._meta = { ...meta, progressToken: `gatehouse-${this.nextProgressToken++}` };
    const owner: RequestOwner = {
      sessionId: session.id,
      deliver: (m) => relayToClient(session, backend, m, channel, clientToken),
    };
    const options: RequestOptions = { owner, cancellation: call.cancellation };
    const fi = backend.config.forwardIdentity;
    if (fi) {
      if (identity.provider === "none") {
        throw new RpcError(
          ErrorCode.InvalidRequest,
          `backend "${server}" needs the caller's identity, but the caller is anonymous`,
        );
      }
      const headers: Record<string, string> = { [fi.header]: headerValue(identity.subject) };
      if (fi.rolesHeader) headers[fi.rolesHeader] = headerValue(identity.roles.join(","));
      options.headers = headers;
    }
    const started = this.observe ? performance.now() : 0;
    const result = await backend.client.request(request.method, upstream, options);
    this.observe?.(server, (performance.now() - started) / 1000);
    return request.method === "tools/call" || request.method === "resources/read"
      ? outwardResourceUris(this.naming, server, result)
      : result;
  }
}
