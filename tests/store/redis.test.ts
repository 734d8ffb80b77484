// The Redis store against a real redis-server: the Store contract and the fault contract (Redis unreachable; Redis
// hung, whose backlog runs after the callers gave up and must change nothing), then what sharing brings: two stores on
// one Redis behave as one (rotation races, one key rotation, revocations seen at once through the cache), an answer
// lost after Redis rotated a token is recovered on retry, and the caches never outlive an invalidation.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { randomId } from "../../src/crypto.ts";
import { memoryLogger } from "../../src/log.ts";
import { bunRedis } from "../../src/platform/bun.ts";
import { RedisStore } from "../../src/store/redis/store.ts";
import { type Store, StoreUnavailableError } from "../../src/store/types.ts";
import { BUN, MAIN, ROOT } from "../helpers/paths.ts";
import { type Redis, redisAvailable, startRedis } from "../helpers/redis.ts";
import { tempDir, writeConfig } from "../helpers/temp.ts";
import { client, grant, keyRecord, refreshRecord, storeContract, T } from "./contract.ts";
import { faultContract } from "./fault-contract.ts";
import { FaultPlan, faultyRedis } from "./faulty-redis.ts";

const available = redisAvailable();
let redis: Redis;

beforeAll(async () => {
  if (available) redis = await startRedis();
}, 20_000);
afterAll(async () => {
  await redis?.kill();
});

const open = (prefix = `t${randomId(6)}:`, factory = bunRedis, timeoutMs = 400) =>
  RedisStore.open({ url: redis.url, keyPrefix: prefix, timeoutMs }, factory, memoryLogger());

if (available) {
  storeContract("redis", () => open());

  const plan = new FaultPlan();
  const prefixes = new WeakMap<Store, string>();
  const openFaulty = async (prefix = `f${randomId(6)}:`) => {
    const s = await open(prefix, faultyRedis(bunRedis, plan));
    prefixes.set(s, prefix);
    return s;
  };
  faultContract("redis", {
    open: () => openFaulty(),
    async crashAndReopen(s) {
      await s.close();
      return openFaulty(prefixes.get(s));
    },
    close: (s) => s.close(),
    readsDuringFaults: false,
    scenarios: [
      {
        name: "Redis unreachable",
        inject: () => {
          plan.fault = "down";
        },
        heal: () => {
          plan.fault = undefined;
        },
      },
      {
        name: "Redis hung, its backlog run after the callers gave up",
        inject: () => {
          plan.fault = "hung";
        },
        async heal() {
          plan.fault = undefined;
          await Promise.all(plan.late.splice(0)); // the late commands have run (and done nothing)
        },
      },
    ],
  });
}

describe.skipIf(!available)("Redis store, shared by replicas", () => {
  test("two stores on one Redis: one rotation wins across both; the loser gets the winner's answer", async () => {
    const prefix = `r${randomId(6)}:`;
    const [a, b] = [await open(prefix), await open(prefix)];
    await a.putGrant(grant("g", "c"), { hash: "old", record: refreshRecord("g") });
    const [x, y] = await Promise.all([
      a.rotateRefreshToken("old", "na", refreshRecord("g"), T + 1, { sealed: "from-a", until: T + 60_000 }),
      b.rotateRefreshToken("old", "nb", refreshRecord("g"), T + 1, { sealed: "from-b", until: T + 60_000 }),
    ]);
    const statuses = [x.status, y.status].sort();
    expect(statuses).toEqual(["already-rotated", "rotated"]);
    const loser = x.status === "rotated" ? y : x;
    expect(loser).toMatchObject({ answer: x.status === "rotated" ? "from-a" : "from-b" });
    await a.close();
    await b.close();
  });

  test("a revocation through one store is seen by the other at once, though it caches what it read", async () => {
    const prefix = `r${randomId(6)}:`;
    const [a, b] = [await open(prefix), await open(prefix)];
    await a.putClient(client("c"));
    await a.putGrant(grant("g", "c"));
    // b reads (and caches) the live records
    expect((await b.getGrant("g"))?.revoked_at).toBeUndefined();
    expect(await b.isAccessTokenRevoked("j")).toBe(false);
    expect(await b.getClient("c")).toBeDefined();
    await a.revokeGrant("g", T + 5, "test");
    await a.revokeAccessToken("j", T + 60_000);
    await a.deleteClient("c", T + 6);
    const deadline = Date.now() + 1000;
    while (Date.now() < deadline) {
      if ((await b.getGrant("g"))?.revoked_at && (await b.isAccessTokenRevoked("j")) && !(await b.getClient("c")))
        break;
      await Bun.sleep(5);
    }
    expect((await b.getGrant("g"))?.revoked_at).toBe(T + 5);
    expect(await b.isAccessTokenRevoked("j")).toBe(true);
    expect(await b.getClient("c")).toBeUndefined();
    await a.close();
    await b.close();
  });

  test("the hot path reads from the cache: no Redis round trip for a grant, client and jti already seen", async () => {
    const prefix = `r${randomId(6)}:`;
    let sends = 0;
    const counting = (url: string) => {
      const c = bunRedis(url);
      const send = c.send.bind(c);
      c.send = (cmd, args) => {
        if (cmd !== "PING") sends++;
        return send(cmd, args);
      };
      return c;
    };
    const s = await open(prefix, counting);
    await s.putClient(client("c"));
    await s.putGrant(grant("g", "c"));
    await Bun.sleep(20); // the echoes of our own writes arrive over pub/sub
    await s.getGrant("g");
    await s.getClient("c");
    await s.isAccessTokenRevoked("j");
    const before = sends;
    for (let i = 0; i < 100; i++) {
      await s.getGrant("g");
      await s.getClient("c");
      await s.isAccessTokenRevoked("j");
    }
    expect(sends).toBe(before);
    await s.close();
  });

  test("a signing key rotation by one store is announced to the other", async () => {
    const prefix = `r${randomId(6)}:`;
    const [a, b] = [await open(prefix), await open(prefix)];
    let told = 0;
    b.onKeysChanged?.(() => told++);
    await a.addSigningKey(keyRecord("k1"), T, T + 1000, null);
    const deadline = Date.now() + 1000;
    while (told === 0 && Date.now() < deadline) await Bun.sleep(5);
    expect(told).toBeGreaterThan(0);
    expect((await b.getKeys()).map((k) => k.kid)).toEqual(["k1"]);
    await a.close();
    await b.close();
  });

  test("an answer lost after Redis rotated the token: the retry gets the same tokens (no logout)", async () => {
    const plan = new FaultPlan();
    const prefix = `r${randomId(6)}:`;
    const s = await open(prefix, faultyRedis(bunRedis, plan));
    await s.putGrant(grant("g", "c"), { hash: "old", record: refreshRecord("g") });
    plan.fault = "reply-lost";
    await expect(
      s.rotateRefreshToken("old", "new", refreshRecord("g"), T + 1, { sealed: "the-answer", until: T + 60_000 }),
    ).rejects.toBeInstanceOf(StoreUnavailableError);
    plan.fault = undefined;
    expect(await s.rotateRefreshToken("old", "again", refreshRecord("g"), T + 2)).toEqual({
      status: "already-rotated",
      rotatedAt: T + 1,
      answer: "the-answer",
    });
    await s.close();
  });

  test("Redis down at start: a clear error naming the URL without its password", async () => {
    const e = await RedisStore.open(
      { url: "redis://:hunter2@127.0.0.1:1/0", keyPrefix: "x:", timeoutMs: 300 },
      bunRedis,
      memoryLogger(),
    ).catch((x: Error) => x);
    expect(e).toBeInstanceOf(Error);
    expect((e as Error).message).toContain("cannot connect to redis 127.0.0.1:1/0");
    expect((e as Error).message).not.toContain("hunter2");
  });

  test("rediss:// (TLS) with a private CA named by NODE_EXTRA_CA_CERTS; without it, a clear refusal", async () => {
    const dir = tempDir();
    const [cert, key] = [join(dir, "cert.pem"), join(dir, "key.pem")];
    const made = Bun.spawnSync(
      ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"].concat([
        "-keyout",
        key,
        "-out",
        cert,
        "-days",
        "2",
        "-subj",
        "/CN=127.0.0.1",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
      ]),
    );
    expect(made.exitCode).toBe(0);
    const tls = await startRedis({ tls: { cert, key } });
    const config = writeConfig({
      mcpServers: { web: { url: "http://127.0.0.1:1/mcp" } },
      serverAuth: {
        providers: ["oauth_as"],
        oauthAs: { issuerUrl: "https://gh.example", trustedSourceCidrs: ["127.0.0.1/32"] },
      },
      state: { redis: { url: tls.url } },
    });
    const run = (env: Record<string, string>) =>
      Bun.spawnSync([BUN, MAIN, "state", "export", "--config", config], { cwd: ROOT, env: { ...process.env, ...env } });
    const trusted = run({ NODE_EXTRA_CA_CERTS: cert });
    expect(trusted.exitCode).toBe(0);
    expect(trusted.stderr.toString()).toContain(`from rediss 127.0.0.1:${tls.port}/0`);
    const untrusted = run({});
    expect(untrusted.exitCode).toBe(1);
    expect(untrusted.stderr.toString()).toContain(`cannot connect to rediss 127.0.0.1:${tls.port}/0`);
    await tls.kill();
  });

  test("a wrong password at start: refused with the same clear error", async () => {
    const locked = await startRedis({ password: "right" });
    const e = await RedisStore.open(
      { url: `redis://:wrong@127.0.0.1:${locked.port}/0`, keyPrefix: "x:", timeoutMs: 300 },
      bunRedis,
      memoryLogger(),
    ).catch((x: Error) => x);
    expect((e as Error).message).toContain("cannot connect to redis");
    const ok = await RedisStore.open({ url: locked.url, keyPrefix: "x:", timeoutMs: 300 }, bunRedis, memoryLogger());
    await ok.putClient(client("c"));
    expect(await ok.getClient("c")).toBeDefined();
    await ok.close();
    await locked.kill();
  });
});
