// Reads a request body up to a limit without buffering more than the limit (a 413 must not cost memory). A body
// with a Content-Length within the limit is read in one go (the HTTP framing bounds it); a chunked one is read
// piece by piece and abandoned as soon as it passes the limit.

export type BodyResult = { ok: true; text: string } | { ok: false; tooLarge: true };

const decoder = new TextDecoder();

export async function readLimited(request: Request, limit: number): Promise<BodyResult> {
  const declared = request.headers.get("content-length");
  if (declared !== null) {
    if (Number(declared) > limit) {
      await request.body?.cancel().catch(() => {});
      return { ok: false, tooLarge: true };
    }
    return { ok: true, text: await request.text() };
  }
  if (!request.body) return { ok: true, text: "" };
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => {});
      return { ok: false, tooLarge: true };
    }
    chunks.push(value);
  }
  const all = new Uint8Array(size);
  let offset = 0;
  for (const c of chunks) {
    all.set(c, offset);
    offset += c.byteLength;
  }
  return { ok: true, text: decoder.decode(all) };
}
