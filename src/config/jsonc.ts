// JSON with comments: `mcp serve` accepts `//` and `/* */` comments in servers.json, so Gatehouse does too.
// Comments are replaced by spaces (newlines kept) so that parse errors still point at the right line and column.

export function stripJsonComments(text: string): string {
  let out = "";
  let i = 0;
  let inString = false;
  while (i < text.length) {
    const c = text[i] as string;
    if (inString) {
      out += c;
      if (c === "\\" && i + 1 < text.length) {
        out += text[i + 1];
        i += 2;
        continue;
      }
      if (c === '"') inString = false;
      i++;
      continue;
    }
    if (c === '"') {
      inString = true;
      out += c;
      i++;
      continue;
    }
    if (c === "/" && text[i + 1] === "/") {
      while (i < text.length && text[i] !== "\n") {
        out += " ";
        i++;
      }
      continue;
    }
    if (c === "/" && text[i + 1] === "*") {
      const end = text.indexOf("*/", i + 2);
      const stop = end < 0 ? text.length : end + 2;
      for (; i < stop; i++) out += text[i] === "\n" ? "\n" : " ";
      continue;
    }
    out += c;
    i++;
  }
  return out;
}

/**
 * Finds where JSON text goes wrong, as "line L, column C: what was expected". JSON.parse in some runtimes (Bun)
 * reports no position, so a small recursive-descent scan locates the first error.
 */
export function describeJsonError(text: string, error: Error): string {
  const at = locate(text);
  if (!at) return error.message.replace(/^JSON Parse error: /, "");
  const before = text.slice(0, at.pos);
  const line = before.split("\n").length;
  const column = at.pos - before.lastIndexOf("\n");
  return `line ${line}, column ${column}: ${at.message}`;
}

function locate(text: string): { pos: number; message: string } | null {
  let i = 0;
  const fail = (message: string): never => {
    throw { pos: i, message };
  };
  const ws = () => {
    while (i < text.length && " \t\n\r".includes(text[i] as string)) i++;
  };
  const str = () => {
    if (text[i] !== '"') fail("expected a string in double quotes");
    i++;
    while (i < text.length && text[i] !== '"') {
      if (text[i] === "\\") i++;
      else if ((text[i] as string) < " ") fail("control character inside a string");
      i++;
    }
    if (i >= text.length) fail("unterminated string");
    i++;
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === "{") {
      i++;
      ws();
      if (text[i] === "}") {
        i++;
        return;
      }
      for (;;) {
        ws();
        if (text[i] !== '"')
          fail(text[i] === "}" ? "trailing comma before }" : "expected a property name in double quotes");
        str();
        ws();
        if (text[i] !== ":") fail('expected ":" after the property name');
        i++;
        value();
        ws();
        if (text[i] === ",") {
          i++;
          continue;
        }
        if (text[i] === "}") {
          i++;
          return;
        }
        fail('expected "," or "}"');
      }
    }
    if (c === "[") {
      i++;
      ws();
      if (text[i] === "]") {
        i++;
        return;
      }
      for (;;) {
        if (text.slice(i).trimStart().startsWith("]")) {
          ws();
          fail("trailing comma before ]");
        }
        value();
        ws();
        if (text[i] === ",") {
          i++;
          continue;
        }
        if (text[i] === "]") {
          i++;
          return;
        }
        fail('expected "," or "]"');
      }
    }
    if (c === '"') {
      str();
      return;
    }
    const m = /^(-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?|true|false|null)/.exec(text.slice(i));
    if (!m) fail(i >= text.length ? "unexpected end of the file" : `unexpected character ${JSON.stringify(c)}`);
    i += (m as RegExpExecArray)[0].length;
  };
  try {
    value();
    ws();
    if (i < text.length) fail("unexpected text after the end of the JSON value");
    return null;
  } catch (e) {
    return e as { pos: number; message: string };
  }
}
