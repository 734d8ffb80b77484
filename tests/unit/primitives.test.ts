import { describe, expect, test } from "bun:test";
import { parseArgs, parseBind, UsageError } from "../../src/cli/args.ts";
import { parseDuration } from "../../src/config/duration.ts";
import { stripJsonComments } from "../../src/config/jsonc.ts";
import { classify } from "../../src/mcp/jsonrpc.ts";
import { formatSse, type SseEvent, SseParser } from "../../src/mcp/sse.ts";
import { inAnyCidr, ipVersion, isLoopbackHost, isPublicAddress, parseCidr } from "../../src/net/cidr.ts";

describe("CIDR matching", () => {
  const cidrs = ["127.0.0.1/32", "10.0.0.0/8", "fd00::/8"].map((c) => parseCidr(c)!);
  const cases: [string | undefined, boolean][] = [
    ["127.0.0.1", true],
    ["127.0.0.2", false],
    ["::ffff:127.0.0.1", true],
    ["::ffff:127.0.0.2", false],
    ["10.200.3.4", true],
    ["11.0.0.1", false],
    ["fd12::1", true],
    ["fe80::1", false],
    ["not-an-ip", false],
    [undefined, false],
  ];
  for (const [ip, expected] of cases) test(`${ip} → ${expected}`, () => expect(inAnyCidr(cidrs, ip)).toBe(expected));
  test("malformed CIDRs are refused", () => {
    for (const bad of ["10.0.0.0/33", "300.1.1.1/8", "::1/129", "1.2.3/8", "x"]) expect(parseCidr(bad)).toBeNull();
  });
  test("a bare address is a single host", () => expect(parseCidr("192.168.1.5")?.prefix).toBe(32));
  test("IPv6 forms parse, and match whatever their spelling", () => {
    expect(ipVersion("::1")).toBe(6);
    expect(ipVersion("[2001:db8::1]")).toBe(6);
    expect(ipVersion("fe80::1%eth0")).toBe(6);
    expect(ipVersion("1.2.3")).toBe(0);
    const range = [parseCidr("2001:db8::1/128")!];
    expect(inAnyCidr(range, "2001:db8:0:0:0:0:0:1")).toBe(true);
    expect(inAnyCidr(range, "[2001:db8::1]")).toBe(true);
  });
  test("public addresses (the SSRF guard of client metadata documents)", () => {
    for (const a of ["8.8.8.8", "2606:4700::1111"]) expect(isPublicAddress(a)).toBe(true);
    for (const a of ["10.1.2.3", "127.0.0.1", "::ffff:192.168.1.1", "169.254.169.254", "fd00::1", "::1", "x"])
      expect(isPublicAddress(a)).toBe(false);
  });
  test("loopback hosts", () => {
    expect(isLoopbackHost("127.0.0.1")).toBe(true);
    expect(isLoopbackHost("127.3.2.1")).toBe(true);
    expect(isLoopbackHost("::1")).toBe(true);
    expect(isLoopbackHost("localhost")).toBe(true);
    expect(isLoopbackHost("0.0.0.0")).toBe(false);
    expect(isLoopbackHost("192.168.1.1")).toBe(false);
  });
});

describe("SSE parsing", () => {
  const parse = (chunks: string[]) => {
    const events: SseEvent[] = [];
    const p = new SseParser((e) => events.push(e));
    for (const c of chunks) p.push(c);
    p.end();
    return events;
  };
  test("events split across chunks, CRLF, comments and multi-line data", () => {
    expect(parse(["id: 1\r\nda", "ta: a\r\n\r", "\n: keepalive\n\nevent: endpoint\ndata: x\ndata: y\n\n"])).toEqual([
      { id: "1", data: "a" },
      { event: "endpoint", data: "x\ny" },
    ]);
  });
  test("retry and a final event without a blank line", () => {
    expect(parse(["retry: 500\ndata: last"])).toEqual([{ retry: 500, data: "last" }]);
  });
  test("formatSse round-trips", () => {
    const e = { id: "3-9", data: '{"a":"b\\nc"}\nsecond' };
    expect(parse([formatSse(e)])).toEqual([e]);
  });
});

describe("JSON-RPC classification", () => {
  test.each([
    [{ jsonrpc: "2.0", id: 1, method: "x" }, "request"],
    [{ jsonrpc: "2.0", id: "a", method: "x", params: {} }, "request"],
    [{ jsonrpc: "2.0", method: "x" }, "notification"],
    [{ jsonrpc: "2.0", id: 1, result: {} }, "response"],
    [{ jsonrpc: "2.0", id: null, error: { code: 1, message: "m" } }, "response"],
    [{ jsonrpc: "1.0", id: 1, method: "x" }, null],
    [{ jsonrpc: "2.0", id: null, method: "x" }, null],
    [{ jsonrpc: "2.0", id: 1, method: "x", params: [1] }, null],
    [{ jsonrpc: "2.0", id: 1, result: {}, error: { code: 1, message: "m" } }, null],
    [{ jsonrpc: "2.0", id: 1 }, null],
    ["text", null],
    [null, null],
  ] as [unknown, string | null][])("%j → %s", (value, kind) => expect(classify(value)).toBe(kind as never));
});

describe("durations", () => {
  test.each([
    ["30s", 30_000],
    ["2m", 120_000],
    ["1h", 3_600_000],
    ["1m30s", 90_000],
    ["500ms", 500],
    ["45", 45_000],
    [10, 10_000],
  ] as [string | number, number][])("%p → %d ms", (input, ms) => expect(parseDuration(input)).toBe(ms));
  test.each(["", "soon", "5 minutes", "-1s", "1x"])("%p is not a duration", (input) =>
    expect(parseDuration(input)).toBeNull(),
  );
});

describe("JSONC", () => {
  test("comments go, strings stay", () => {
    expect(JSON.parse(stripJsonComments('{"a": "http://x//y", /* c */ "b": 1 // end\n}'))).toEqual({
      a: "http://x//y",
      b: 1,
    });
  });
});

describe("command line", () => {
  test("flags with values, switches, positionals", () => {
    expect(
      parseArgs(["--config", "a.json", "--insecure", "--bind=:9000"], {
        config: { value: true },
        bind: { value: true },
        insecure: {},
      }),
    ).toEqual({
      flags: { config: "a.json", insecure: true, bind: ":9000" },
      positionals: [],
    });
  });
  test("unknown flags and missing values are errors", () => {
    expect(() => parseArgs(["--confg", "x"], { config: { value: true } })).toThrow(UsageError);
    expect(() => parseArgs(["--config"], { config: { value: true } })).toThrow("--config needs a value");
    expect(() => parseArgs(["extra"], {})).toThrow("unexpected argument extra");
  });
  test("bind addresses", () => {
    expect(parseBind("127.0.0.1:8080")).toEqual({ host: "127.0.0.1", port: 8080 });
    expect(parseBind(":9090")).toEqual({ host: "0.0.0.0", port: 9090 });
    expect(parseBind("[::1]:80")).toEqual({ host: "::1", port: 80 });
    expect(() => parseBind("8080")).toThrow(UsageError);
    expect(() => parseBind("h:99999")).toThrow("out of range");
  });
});
