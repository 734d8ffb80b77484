// Audit records of what callers did through the gateway (`audit` in servers.json, as `mcp serve`): one JSON record
// per tools/call, resources/read and prompts/get, with who, what, the ACL's decision and the outcome. Arguments are
// recorded only with `log_arguments: true`, since they may hold personal data.

import type { AuditConfig } from "./config/types.ts";
import type { Logger } from "./log.ts";

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
  arguments?: unknown;
}

export interface Auditor {
  readonly logArguments: boolean;
  record(entry: AuditEntry): void;
}

export function createAuditor(config: AuditConfig, log: Logger, appendLine?: (line: string) => void): Auditor {
  const audit = log.child("audit");
  return {
    logArguments: config.enabled && config.logArguments,
    record(entry) {
      if (!config.enabled) return;
      if (config.toLog) {
        const { arguments: args, ...fields } = entry;
        audit.always("call", { ...fields, arguments: args === undefined ? undefined : JSON.stringify(args) });
      }
      if (config.file && appendLine) appendLine(JSON.stringify({ timestamp: new Date().toISOString(), ...entry }));
    },
  };
}

export const noAudit: Auditor = { logArguments: false, record() {} };
