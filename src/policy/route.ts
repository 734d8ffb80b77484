// What a caller without credentials may do on a route (simple-rpc-ai-backend's requireAuthForToolsList,
// requireAuthForToolsCall and publicTools), decided per JSON-RPC message so that no batch item, notification or
// unusual method carries a call past it. Method and tool names are compared exactly: no case folding, no Unicode
// normalisation (a look-alike name is another name, and the backend would not know it either).

import type { RoutePolicy } from "../config/types.ts";
import { matchesAny } from "./glob.ts";

/** Whether a caller who presented no credentials is let in at all (then each message is checked). */
export function admitsAnonymous(policy: RoutePolicy): boolean {
  return (
    policy.authType === "none" ||
    !policy.requireAuthForToolsList ||
    !policy.requireAuthForToolsCall ||
    policy.publicTools.length > 0
  );
}

/** Whether an anonymous caller may send this request; anything else gets the 401 that starts authorization. */
export function anonymousMayCall(policy: RoutePolicy, method: string, params: Record<string, unknown> | undefined) {
  if (policy.authType === "none") return true;
  switch (method) {
    case "initialize":
    case "ping":
      return true;
    case "tools/list":
      return !policy.requireAuthForToolsList;
    case "tools/call": {
      if (!policy.requireAuthForToolsCall) return true;
      const name = params?.name;
      return typeof name === "string" && matchesAny(policy.publicTools, name);
    }
    default:
      return false;
  }
}
