// MCP tasks (2025-11-25) on pass-through routes: a backend holds one session for every client, so it cannot keep one
// user's tasks from another's — Gatehouse remembers who created each task (MCP tasks, Security: "receivers MUST
// bind tasks to the authorization context") and refuses the others as if the task did not exist.

import { BoundedMap } from "../bounded-map.ts";

/** How long a task is remembered when its backend gives it no ttl. */
const DEFAULT_TASK_TTL_MS = 3_600_000;
const MAX_TASKS = 100_000;

export class TaskOwners {
  private readonly tasks = new BoundedMap<string, { principal: string; expires: number }>(MAX_TASKS);

  constructor(private readonly now: () => number) {}

  /** Remembers who created a task: a task-augmented request answered with a CreateTaskResult. */
  remember(principal: string, backend: string, result: Record<string, unknown>): void {
    const task = result.task as { taskId?: unknown; ttl?: unknown } | undefined;
    if (typeof task?.taskId !== "string") return;
    const now = this.now();
    for (const [key, t] of this.tasks) if (t.expires <= now) this.tasks.delete(key);
    const ttl = typeof task.ttl === "number" && task.ttl > 0 ? task.ttl : DEFAULT_TASK_TTL_MS;
    this.tasks.set(`${backend}\u0000${task.taskId}`, { principal, expires: now + ttl });
  }

  owns(principal: string, backend: string, taskId: unknown): boolean {
    const t = typeof taskId === "string" ? this.tasks.get(`${backend}\u0000${taskId}`) : undefined;
    return t !== undefined && t.principal === principal && t.expires > this.now();
  }
}
