// The audit log (`audit` in servers.json, as `mcp serve`): one JSON record per security decision — every tool call,
// resource read and prompt get (allowed or denied, with the ACL rule or the scope that decided it), credentials an
// MCP route refused, and what the
// authorization server and the sign-in decide (registrations, consent, tokens issued and refused, refresh reuse,
// revocations, introspections, sign-ins, key rotations, configuration reloads). Each record has its time, event,
// outcome, the request id and source address (request-context.ts), and who (subject, client_id) when known. Never a
// secret, token, code or password: records carry identifiers only. Tool arguments only with `log_arguments: true`.

import type { AuditConfig } from "./config/types.ts";
import type { Logger } from "./log.ts";
import { currentRequest } from "./request-context.ts";

export type AuditEvent =
  | "tool_call"
  | "resource_read"
  | "access_refused"
  | "prompt_get"
  | "client_registered"
  | "client_registration_refused"
  | "authorization_granted"
  | "authorization_denied"
  | "token_issued"
  | "token_refused"
  | "refresh_reuse_detected"
  | "token_revoked"
  | "token_introspected"
  | "sign_in"
  | "sign_in_failed"
  | "browser_session_revoked"
  | "client_revoked"
  | "signing_key_rotated"
  | "config_reloaded"
  | "config_reload_refused";

/** One record. Fields beyond these are the event's own (grant_type, scope, resource, method, kid …). */
export interface AuditRecord {
  event: AuditEvent;
  success: boolean;
  subject?: string;
  client_id?: string;
  /** Why it was refused, or what it was (a reload's trigger, a rotation's reason). */
  reason?: string;
  [field: string]: unknown;
}

/** A tool call, resource read or prompt get (the gateway's records). */
export interface AuditEntry {
  method: string;
  server?: string;
  name?: string;
  subject: string;
  provider: string;
  client_id?: string;
  session?: string;
  success: boolean;
  error?: string;
  duration_ms: number;
  acl_rule?: string;
  /** The scope(s) a refused call needed (insufficient_scope). */
  scope?: string;
  arguments?: unknown;
}

export interface Auditor {
  readonly logArguments: boolean;
  /** A call through the gateway. */
  record(entry: AuditEntry): void;
  /** Any other security decision. */
  event(record: AuditRecord): void;
}

const CALL_EVENTS: Record<string, AuditEvent> = {
  "tools/call": "tool_call",
  "resources/read": "resource_read",
  "prompts/get": "prompt_get",
};

export function createAuditor(
  config: AuditConfig,
  log: Logger,
  appendLine?: (line: string) => void,
  /** Sees every event, audit on or off (metrics count them). */
  observe?: (record: AuditRecord) => void,
): Auditor {
  const audit = log.child("audit");
  const write = (record: Record<string, unknown>) => {
    if (!config.enabled) return;
    const request = currentRequest();
    const full: Record<string, unknown> = { timestamp: new Date().toISOString(), ...record };
    if (request) {
      full.request_id = request.id;
      const source = request.peer();
      if (source) full.source = source;
    }
    if (config.toLog) {
      const { arguments: args, timestamp: _t, request_id: _r, ...fields } = full;
      const flat: Record<string, string | number | boolean | undefined> = {};
      for (const [k, v] of Object.entries(fields)) {
        flat[k] = v === undefined || v === null ? undefined : typeof v === "object" ? JSON.stringify(v) : (v as string);
      }
      if (args !== undefined) flat.arguments = JSON.stringify(args);
      audit.always(String(record.event), flat);
    }
    if (config.file && appendLine) appendLine(JSON.stringify(full));
  };
  return {
    logArguments: config.enabled && config.logArguments,
    record(entry) {
      write({ event: CALL_EVENTS[entry.method] ?? "tool_call", ...entry });
    },
    event(record) {
      observe?.(record);
      write({ ...record });
    },
  };
}

export const noAudit: Auditor = { logArguments: false, record() {}, event() {} };
