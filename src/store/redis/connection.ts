// The connection to Redis that the shared state rides on: commands with a time bound (no request ever waits on a hung
// Redis longer than `timeoutMs`), writes as Lua scripts that do nothing when they run after their deadline (a command
// that reached a stopped Redis and runs once it resumes must not change anything the client was told failed),
// reconnection without end, subscriptions renewed after every reconnect, and one log line per outage.

import { createHash } from "node:crypto";
import type { Logger } from "../../log.ts";
import type { RedisClientLike, RedisFactory } from "../../platform/types.ts";
import { OutageLog } from "../outage.ts";
import { StateOpenError, StoreUnavailableError } from "../types.ts";

export interface RedisOptions {
  url: string;
  /** Prepended to every key and channel ("gatehouse:"), so several deployments can share one Redis. */
  keyPrefix: string;
  /** The longest a request waits for Redis (default 2 s). */
  timeoutMs: number;
}

/** A Lua script, sent by its SHA-1 once Redis knows it (EVALSHA), by its text otherwise. */
export interface Script {
  name: string;
  source: string;
  sha: string;
}

export function script(name: string, body: string): Script {
  // ARGV[1] is always the deadline in Redis's own clock (ms): a script that starts later changes nothing.
  const source = `local __t = redis.call('TIME')
if tonumber(__t[1]) * 1000 + math.floor(tonumber(__t[2]) / 1000) > tonumber(ARGV[1]) then return {'late'} end
${body}`;
  return { name, source, sha: sha1(source) };
}

function sha1(text: string): string {
  return createHash("sha1").update(text).digest("hex");
}

/** "redis 127.0.0.1:6379/0" — the URL without its password, for logs. */
export function describeRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    const db = u.pathname.replace(/^\//, "") || "0";
    return `${u.protocol === "rediss:" ? "rediss" : "redis"} ${u.hostname}:${u.port || 6379}/${db}`;
  } catch {
    return "redis (unparseable URL)";
  }
}

type Listener = (message: string, channel: string) => void;

export class RedisConnection {
  readonly prefix: string;
  readonly description: string;
  private commands: RedisClientLike;
  private subscriber: RedisClientLike;
  private readonly outage: OutageLog;
  /** Redis's clock minus ours, measured at every connect (the deadlines are in Redis's clock). */
  private offsetMs = 0;
  private readonly known = new Set<string>();
  private readonly channels = new Map<string, Listener>();
  /** Bumped at every (re)connect of the subscriber; `subscribedEpoch` catches up once every channel is renewed. */
  private epoch = 0;
  private subscribedEpoch = -1;
  private readonly resyncs: (() => void)[] = [];
  /** One listener for every channel: Bun's client calls each listener passed, so it must be passed once per channel. */
  private readonly dispatch: Listener = (m, ch) => this.channels.get(ch)?.(m, ch);
  private timer: ReturnType<typeof setInterval> | undefined;
  private closed = false;

  private constructor(
    private readonly options: RedisOptions,
    factory: RedisFactory,
    log: Logger,
  ) {
    this.prefix = options.keyPrefix;
    this.description = describeRedisUrl(options.url);
    this.outage = new OutageLog(
      log,
      `state store ${this.description}`,
      "OAuth requests get 503 and MCP requests that need the shared state fail until it is back",
    );
    this.commands = factory(options.url);
    this.subscriber = factory(options.url);
  }

  /**
   * Connects, checking that Redis answers and that the password (if any) is accepted: a bad URL stops the start
   * with a message naming it. Later outages are survived.
   */
  static async open(options: RedisOptions, factory: RedisFactory, log: Logger): Promise<RedisConnection> {
    const c = new RedisConnection(options, factory, log);
    try {
      await withTimeout(c.commands.connect(), options.timeoutMs * 2, "connect");
      await c.measureOffset();
      await withTimeout(c.subscriber.connect(), options.timeoutMs * 2, "connect");
    } catch (e) {
      c.commands.close();
      c.subscriber.close();
      const tls = options.url.startsWith("rediss:")
        ? ", and that its TLS certificate is trusted (a private CA: NODE_EXTRA_CA_CERTS=/path/to/ca.pem)"
        : "";
      throw new StateOpenError(
        `cannot connect to ${c.description}: ${(e as Error).message} (check state.redis.url, its password, that Redis runs${tls})`,
      );
    }
    c.commands.onconnect = () => void c.measureOffset().catch(() => {});
    c.commands.onclose = () => c.reconnectLater(c.commands);
    c.subscriber.onconnect = () => c.resubscribe();
    c.subscriber.onclose = () => c.reconnectLater(c.subscriber);
    c.subscribedEpoch = c.epoch;
    // A ping a second: an outage is noticed (and its end) even when nothing else is asked of Redis.
    c.timer = setInterval(() => void c.ping(), 1000);
    (c.timer as { unref?: () => void }).unref?.();
    return c;
  }

  /** Why Redis is failing right now, if it is. */
  get down(): string | undefined {
    return this.outage.down;
  }

  /** Whether every subscription is in place now: caches invalidated by messages can be trusted only then. */
  get subscriptionsLive(): boolean {
    return this.subscriber.connected && this.subscribedEpoch === this.epoch;
  }

  /** Called after a reconnect of the subscriber, once the subscriptions are renewed (messages may have been missed). */
  onResync(fn: () => void): void {
    this.resyncs.push(fn);
  }

  key(...parts: string[]): string {
    return this.prefix + parts.join(":");
  }

  /** Sends one command, bounded by the timeout; every failure is a StoreUnavailableError (503 upstream). */
  async send(command: string, args: string[]): Promise<unknown> {
    if (this.closed) throw new StoreUnavailableError(`${this.description} is closed`);
    if (!this.commands.connected) {
      const e = new StoreUnavailableError(`${this.description} is not connected`);
      this.outage.failed("not connected (reconnecting)");
      throw e;
    }
    try {
      const result = await withTimeout(this.commands.send(command, args), this.options.timeoutMs, command);
      this.outage.recovered();
      return result;
    } catch (e) {
      if (e instanceof RedisReplyError) throw e;
      const message = (e as Error).message ?? String(e);
      const code = (e as { code?: string }).code;
      // Errors Redis itself answered with are about this command; connection errors and timeouts about Redis.
      if (code === "ERR_REDIS_SERVER_ERROR" && !/^(OOM|MISCONF|READONLY|LOADING|BUSY|MASTERDOWN)/.test(message)) {
        throw new RedisReplyError(message);
      }
      this.outage.failed(/did not answer/.test(message) ? `Redis does not answer (${message})` : message);
      throw new StoreUnavailableError(`${this.description}: ${message}`);
    }
  }

  /** Told how long each script took, or that it failed (metrics). */
  writeObserver?: (seconds: number, ok: boolean) => void;

  /** Runs a script (EVALSHA, EVAL the first time); its deadline is put first in ARGV. "late" is a failure. */
  async run(s: Script, args: (string | number)[]): Promise<unknown> {
    const started = performance.now();
    try {
      const result = await this.runScript(s, args);
      this.writeObserver?.((performance.now() - started) / 1000, true);
      return result;
    } catch (e) {
      this.writeObserver?.((performance.now() - started) / 1000, false);
      throw e;
    }
  }

  private async runScript(s: Script, args: (string | number)[]): Promise<unknown> {
    const deadline = Date.now() + this.offsetMs + Math.floor(this.options.timeoutMs / 2);
    const argv = [String(deadline), this.prefix, ...args.map(String)];
    let result: unknown;
    if (this.known.has(s.sha)) {
      try {
        result = await this.send("EVALSHA", [s.sha, "0", ...argv]);
      } catch (e) {
        if (!(e instanceof RedisReplyError) || !e.message.startsWith("NOSCRIPT")) throw e;
        this.known.delete(s.sha); // Redis restarted and forgot it
        result = await this.send("EVAL", [s.source, "0", ...argv]);
      }
    } else {
      result = await this.send("EVAL", [s.source, "0", ...argv]);
    }
    this.known.add(s.sha);
    if (Array.isArray(result) && result[0] === "late") {
      this.outage.failed("a write reached Redis after its deadline (Redis was stalled)");
      throw new StoreUnavailableError(`${this.description} answered too late; the change was not made`);
    }
    return result;
  }

  async publish(channel: string, message: string): Promise<number> {
    return Number(await this.send("PUBLISH", [this.prefix + channel, message]));
  }

  /** Subscribes to a channel (prefixed), renewed after every reconnect. */
  async subscribe(channel: string, listener: Listener): Promise<void> {
    const full = this.prefix + channel;
    const had = this.channels.has(full);
    this.channels.set(full, listener);
    if (had || !this.subscriber.connected) return; // renewed on reconnect
    await withTimeout(this.subscriber.subscribe(full, this.dispatch), this.options.timeoutMs, "SUBSCRIBE").catch(
      (e: Error) => {
        this.outage.failed(`subscribe failed: ${e.message}`);
        throw new StoreUnavailableError(`${this.description}: ${e.message}`);
      },
    );
  }

  async unsubscribe(channel: string): Promise<void> {
    const full = this.prefix + channel;
    if (!this.channels.delete(full)) return;
    if (this.subscriber.connected) await this.subscriber.unsubscribe(full).catch(() => {});
  }

  private resubscribe(): void {
    const epoch = ++this.epoch;
    // Whatever was cached on the strength of messages is suspect now: the caches drop it at once.
    for (const fn of this.resyncs) fn();
    const all = [...this.channels.keys()];
    void Promise.all(
      all.map(async (ch) => {
        // The client kept the old listener but Redis forgot the subscription: drop it, then subscribe once.
        await this.subscriber.unsubscribe(ch).catch(() => {});
        await this.subscriber.subscribe(ch, this.dispatch);
      }),
    ).then(
      () => {
        if (epoch !== this.epoch) return;
        this.subscribedEpoch = epoch;
        for (const fn of this.resyncs) fn();
      },
      () => {},
    );
  }

  private reconnectLater(client: RedisClientLike): void {
    if (this.closed) return;
    const retry = setTimeout(() => {
      if (this.closed || client.connected) return;
      void client.connect().catch(() => this.reconnectLater(client));
    }, 1000);
    (retry as { unref?: () => void }).unref?.();
  }

  private async measureOffset(): Promise<void> {
    const before = Date.now();
    const [s, us] = (await withTimeout(this.commands.send("TIME", []), this.options.timeoutMs, "TIME")) as [
      string,
      string,
    ];
    const after = Date.now();
    this.offsetMs = Number(s) * 1000 + Math.floor(Number(us) / 1000) - Math.round((before + after) / 2);
  }

  private async ping(): Promise<void> {
    if (this.closed) return;
    try {
      await this.send("PING", []);
    } catch {
      // logged by send
    }
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.commands.onclose = null;
    this.subscriber.onclose = null;
    this.commands.close();
    this.subscriber.close();
  }
}

/** Redis answered this command with an error (a bug or a misconfiguration, not an outage). */
export class RedisReplyError extends Error {
  override name = "RedisReplyError";
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      p.catch(() => {}); // its late answer is ignored
      reject(new Error(`Redis did not answer ${what} within ${ms} ms`));
    }, ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}
