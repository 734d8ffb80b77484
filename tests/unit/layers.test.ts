// The layering README's Development section describes, checked on the imports: config/ is a leaf (it imports only
// other leaves), and nothing below the HTTP surfaces imports from http/ or from the composition root.

import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const SRC = resolve(import.meta.dir, "../../src");

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
  );
}

/** Every relative import of a source file, as a path relative to src/. */
function imports(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const out: string[] = [];
  for (const m of text.matchAll(/(?:from|import)\s*\(?\s*"(\.[^"]+)"/g)) {
    out.push(relative(SRC, resolve(dirname(file), m[1] as string)));
  }
  return out;
}

const all = files(SRC).map((f) => ({ path: relative(SRC, f), imports: imports(f) }));

describe("layers", () => {
  test("config/ imports only config/ and the leaf modules", () => {
    const leaves = new Set(["crypto.ts", "naming.ts"]);
    const bad = all
      .filter((f) => f.path.startsWith("config/"))
      .flatMap((f) =>
        f.imports.filter((i) => !i.startsWith("config/") && !leaves.has(i)).map((i) => `${f.path} → ${i}`),
      );
    expect(bad).toEqual([]);
  });

  test("nothing below the HTTP surfaces imports from http/ or app.ts", () => {
    const top = (p: string) => p.startsWith("http/") || p === "app.ts" || p === "main.ts";
    const bad = all
      .filter((f) => !top(f.path))
      .flatMap((f) => f.imports.filter((i) => i.startsWith("http/") || i === "app.ts").map((i) => `${f.path} → ${i}`));
    expect(bad).toEqual([]);
  });
});
