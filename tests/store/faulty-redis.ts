// Redis connections with faults injected: Redis unreachable (commands fail at once, as Bun's client does when the
// connection is down), Redis hung (commands reach it only after the caller gave up — they must then change nothing),
// and an answer lost after Redis did the work. The subscriber connection is left alone.

import type { RedisClientLike, RedisFactory } from "../../src/platform/types.ts";

export type RedisFault = "down" | "hung" | "reply-lost" | undefined;

export class FaultPlan {
  fault: RedisFault;
  /** How late a hung Redis runs what it was sent. */
  lateByMs = 600;
  readonly late: Promise<unknown>[] = [];
}

function closedError(): Error {
  return Object.assign(new Error("Connection closed"), { code: "ERR_REDIS_CONNECTION_CLOSED" });
}

export function faultyRedis(inner: RedisFactory, plan: FaultPlan): RedisFactory {
  let n = 0;
  return (url) => {
    const client = inner(url);
    const commands = n++ % 2 === 0; // RedisConnection opens the command connection first, then the subscriber
    if (!commands) return client;
    const wrapped: RedisClientLike = {
      get connected() {
        return plan.fault === "down" ? false : client.connected;
      },
      get onconnect() {
        return client.onconnect;
      },
      set onconnect(fn) {
        client.onconnect = fn;
      },
      get onclose() {
        return client.onclose;
      },
      set onclose(fn) {
        client.onclose = fn;
      },
      connect: () => client.connect(),
      close: () => client.close(),
      subscribe: (ch, l) => client.subscribe(ch, l),
      unsubscribe: (ch) => client.unsubscribe(ch),
      async send(command, args) {
        if (command === "PING" || command === "TIME") return client.send(command, args);
        switch (plan.fault) {
          case "down":
            throw closedError();
          case "hung": {
            // Sent only once the caller has given up, as a stopped Redis runs its backlog when it resumes.
            const late = Bun.sleep(plan.lateByMs).then(() => client.send(command, args));
            plan.late.push(late.catch(() => {}));
            return late;
          }
          case "reply-lost":
            await client.send(command, args);
            throw closedError();
          default:
            return client.send(command, args);
        }
      },
    };
    return wrapped;
  };
}
