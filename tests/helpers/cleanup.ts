// What the tests start and must stop even when a test fails: processes, servers, temporary directories. Each helper
// registers its resources here; tests/setup.ts (preloaded by bunfig.toml) runs every cleanup after the tests, since
// `bun test` does not emit the process "exit" event.

const cleanups = new Set<() => void | Promise<void>>();

/** Registers a cleanup; returns a function that unregisters it (call it once the test stopped the thing itself). */
export function onCleanup(fn: () => void | Promise<void>): () => void {
  cleanups.add(fn);
  return () => cleanups.delete(fn);
}

export async function cleanupAll(): Promise<void> {
  const all = [...cleanups];
  cleanups.clear();
  await Promise.allSettled(all.map(async (fn) => fn()));
}
