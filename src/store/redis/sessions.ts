// MCP sessions shared by replicas through Redis (mcp/backplane.ts): the session in a hash that expires after the idle
// timeout, its own stream as a capped list of numbered events, published on the session's channel to whichever
// replica holds the GET stream (the publish says whether one did, which is what "never delivered" means on replay),
// and messages between replicas on a channel per replica and one for all.

import { randomBytes } from "node:crypto";
import type { BackplaneMessage, SessionBackplane, SharedSessionMeta, StreamEvent } from "../../mcp/backplane.ts";
import type { JsonRpcMessage } from "../../mcp/jsonrpc.ts";
import { type RedisConnection, script } from "./connection.ts";

const SAVE = script(
  "save_session",
  `local k = ARGV[2] .. 'mcp:' .. ARGV[3]
local fields = {}
for i = 5, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', k, unpack(fields))
redis.call('PEXPIRE', k, ARGV[4])
return {'ok'}`,
);

const REMOVE = script(
  "remove_session",
  `redis.call('DEL', ARGV[2] .. 'mcp:' .. ARGV[3], ARGV[2] .. 'mcp-ev:' .. ARGV[3])
redis.call('PUBLISH', ARGV[2] .. 'mcp-all', ARGV[4])
return {'ok'}`,
);

/** 3 id, 4 message json, 5 buffer size, 6 ttl → {seq, receivers} | {'gone'} */
const APPEND = script(
  "append_event",
  `local P, id = ARGV[2], ARGV[3]
local mk = P .. 'mcp:' .. id
if redis.call('EXISTS', mk) == 0 then return {'gone'} end
local seq = redis.call('HINCRBY', mk, 'seq', 1)
local n = redis.call('PUBLISH', P .. 'mcp-ch:' .. id, seq .. '\\n' .. ARGV[4])
local ek = P .. 'mcp-ev:' .. id
local d = 0
if n > 0 then d = 1 end
redis.call('RPUSH', ek, seq .. '|' .. d .. '|' .. ARGV[4])
redis.call('LTRIM', ek, -tonumber(ARGV[5]), -1)
redis.call('PEXPIRE', ek, ARGV[6])
return {seq, n}`,
);

/** 3 id, 4 after|-1 (never delivered) → {current, replayed-up-to, entries…} | {'gone'} */
const REPLAY = script(
  "replay_events",
  `local P, id = ARGV[2], ARGV[3]
local mk = P .. 'mcp:' .. id
if redis.call('EXISTS', mk) == 0 then return {'gone'} end
local cur = tonumber(redis.call('HGET', mk, 'seq') or '0')
local upto = tonumber(redis.call('HGET', mk, 'rep') or '0')
if ARGV[4] == '-1' then redis.call('HSET', mk, 'rep', cur) end
local out = {cur, upto}
for _, e in ipairs(redis.call('LRANGE', P .. 'mcp-ev:' .. id, 0, -1)) do out[#out + 1] = e end
return out`,
);

export class RedisBackplane implements SessionBackplane {
  readonly replica: string;
  private readonly handlers: ((m: BackplaneMessage) => void)[] = [];

  private constructor(
    private readonly redis: RedisConnection,
    /** How long an unused session is kept (gateway.sessionIdleTimeout). */
    private readonly idleTimeoutMs: number,
    private readonly bufferSize: number,
  ) {
    // Letters and digits only: the tag goes into stream labels and request ids that are parsed back.
    this.replica = `r${randomBytes(4).readUInt32BE(0).toString(36)}`;
  }

  static async attach(redis: RedisConnection, idleTimeoutMs: number, bufferSize: number): Promise<RedisBackplane> {
    const b = new RedisBackplane(redis, idleTimeoutMs, bufferSize);
    const dispatch = (raw: string) => {
      let m: BackplaneMessage;
      try {
        m = JSON.parse(raw) as BackplaneMessage;
      } catch {
        return;
      }
      for (const h of b.handlers) h(m);
    };
    await redis.subscribe("mcp-all", dispatch);
    await redis.subscribe(`mcp-replica:${b.replica}`, dispatch);
    return b;
  }

  async save(meta: SharedSessionMeta): Promise<void> {
    const fields: string[] = [
      "r",
      meta.route,
      "p",
      meta.principal,
      "v",
      meta.protocolVersion,
      "caps",
      JSON.stringify(meta.clientCapabilities),
      "info",
      JSON.stringify(meta.clientInfo),
      "t",
      meta.transport,
      "i",
      meta.initialized ? "1" : "0",
      "c",
      String(meta.createdAt),
    ];
    if (meta.logLevel) fields.push("l", meta.logLevel);
    await this.redis.run(SAVE, [meta.id, this.idleTimeoutMs, ...fields]);
  }

  async load(id: string): Promise<SharedSessionMeta | undefined> {
    const h = (await this.redis.send("HGETALL", [this.redis.key("mcp", id)])) as Record<string, string> | null;
    if (!h?.p || !h.r) return undefined;
    const meta: SharedSessionMeta = {
      id,
      route: h.r,
      principal: h.p,
      protocolVersion: h.v ?? "",
      clientCapabilities: JSON.parse(h.caps ?? "{}") as Record<string, unknown>,
      clientInfo: JSON.parse(h.info ?? "{}") as SharedSessionMeta["clientInfo"],
      transport: h.t === "sse" ? "sse" : "streamable-http",
      initialized: h.i === "1",
      createdAt: Number(h.c ?? 0),
    };
    if (h.l) meta.logLevel = h.l;
    return meta;
  }

  touch(id: string): void {
    const ttl = String(this.idleTimeoutMs);
    void this.redis.send("PEXPIRE", [this.redis.key("mcp", id), ttl]).catch(() => {});
    void this.redis.send("PEXPIRE", [this.redis.key("mcp-ev", id), ttl]).catch(() => {});
  }

  async remove(id: string): Promise<void> {
    const closed: BackplaneMessage = { type: "closed", session: id };
    await this.redis.run(REMOVE, [id, JSON.stringify(closed)]);
  }

  async append(id: string, message: JsonRpcMessage): Promise<number | undefined> {
    const r = (await this.redis.run(APPEND, [id, JSON.stringify(message), this.bufferSize, this.idleTimeoutMs])) as (
      | number
      | string
    )[];
    return r[0] === "gone" ? undefined : Number(r[0]);
  }

  async replay(
    id: string,
    afterSeq: number | undefined,
  ): Promise<{ current: number; events: StreamEvent[] } | undefined> {
    const r = (await this.redis.run(REPLAY, [id, afterSeq ?? -1])) as (number | string)[];
    if (r[0] === "gone") return undefined;
    const current = Number(r[0]);
    const upTo = Number(r[1]);
    const events: StreamEvent[] = [];
    for (const entry of r.slice(2) as string[]) {
      const a = entry.indexOf("|");
      const b = entry.indexOf("|", a + 1);
      const seq = Number(entry.slice(0, a));
      const delivered = entry.slice(a + 1, b) === "1";
      const wanted = afterSeq !== undefined ? seq > afterSeq : !delivered && seq > upTo;
      if (wanted) events.push({ seq, message: JSON.parse(entry.slice(b + 1)) as JsonRpcMessage });
    }
    return { current, events };
  }

  async listen(id: string, onEvent: (e: StreamEvent) => void): Promise<void> {
    await this.redis.subscribe(`mcp-ch:${id}`, (raw) => {
      const nl = raw.indexOf("\n");
      onEvent({ seq: Number(raw.slice(0, nl)), message: JSON.parse(raw.slice(nl + 1)) as JsonRpcMessage });
    });
  }

  async unlisten(id: string): Promise<void> {
    await this.redis.unsubscribe(`mcp-ch:${id}`);
  }

  async send(replica: string, message: BackplaneMessage): Promise<void> {
    await this.redis.publish(`mcp-replica:${replica}`, JSON.stringify(message));
  }

  async broadcast(message: BackplaneMessage): Promise<void> {
    await this.redis.publish("mcp-all", JSON.stringify(message));
  }

  onMessage(handler: (m: BackplaneMessage) => void): void {
    this.handlers.push(handler);
  }

  health(): { ok: true } | { ok: false; reason: string } {
    const down = this.redis.down;
    return down ? { ok: false, reason: down } : { ok: true };
  }
}
