// What backends announce on their own reaches clients through Gatehouse: list changes (and the aggregated list
// follows), and resource updates to the sessions subscribed to that resource — under its prefixed URI.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  ResourceListChangedNotificationSchema,
  ResourceUpdatedNotificationSchema,
  ToolListChangedNotificationSchema,
} from "@modelcontextprotocol/sdk/types.js";
import { type HttpBackend, startHttpBackend } from "../fixtures/http-backend.ts";
import { connect } from "../helpers/client.ts";
import { type Running, startGatehouse } from "../helpers/gatehouse-process.ts";
import { everythingStdio } from "../helpers/paths.ts";
import { writeConfig } from "../helpers/temp.ts";

let backend: HttpBackend;
let gh: Running;

beforeAll(async () => {
  backend = await startHttpBackend();
  gh = await startGatehouse({
    config: writeConfig({ mcpServers: { web: { url: backend.url }, local: everythingStdio() } }),
  });
}, 60_000);
afterAll(async () => {
  await gh?.stop();
  await backend?.stop();
});

function waitFor<T>(register: (resolve: (v: T) => void) => void, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
    register((v) => {
      clearTimeout(timer);
      resolve(v);
    });
  });
}

describe("notifications from backends", () => {
  test("tools/list_changed reaches every client and the aggregated list follows", async () => {
    const watcher = await connect(`${gh.url}/mcp`);
    const actor = await connect(`${gh.url}/mcp`);
    expect((await watcher.listTools()).tools.map((t) => t.name)).not.toContain("web__grown_1");
    const changed = waitFor<void>(
      (r) => watcher.setNotificationHandler(ToolListChangedNotificationSchema, () => r()),
      10_000,
      "list_changed",
    );
    await actor.callTool({ name: "web__grow", arguments: {} });
    await changed;
    expect((await watcher.listTools()).tools.map((t) => t.name)).toContain("web__grown_1");
    await watcher.close();
    await actor.close();
  });

  test("resource updates reach the subscribed session under the prefixed URI", async () => {
    const client = await connect(`${gh.url}/mcp`);
    client.setNotificationHandler(ResourceListChangedNotificationSchema, () => {});
    const { resources } = await client.listResources();
    const uri = resources.find((r) => r.uri.startsWith("local+"))?.uri as string;
    const updated = waitFor<string>(
      (r) => client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => r(n.params.uri)),
      15_000,
      "resources/updated",
    );
    await client.subscribeResource({ uri });
    await client.callTool({ name: "local__toggle-subscriber-updates", arguments: {} });
    expect(await updated).toBe(uri);
    await client.unsubscribeResource({ uri });
    await client.close();
  }, 30_000);
});
