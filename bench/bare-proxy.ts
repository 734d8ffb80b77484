// The baseline of bench/throughput.ts: a bare forwarding proxy, a few lines of Bun.serve + fetch that pass the
// method, headers and body to TARGET and stream the response back. No auth, no parsing, no session of its own.
// Run: `PORT=… TARGET=http://127.0.0.1:…/mcp bun bench/bare-proxy.ts`.

const target = process.env.TARGET ?? "";
const server = Bun.serve({
  hostname: "127.0.0.1",
  port: Number(process.env.PORT ?? 0),
  idleTimeout: 255,
  async fetch(req) {
    const headers = new Headers(req.headers);
    headers.delete("host");
    const body = req.method === "GET" || req.method === "HEAD" ? undefined : await req.arrayBuffer();
    return fetch(target, { method: req.method, headers, body, redirect: "manual" });
  },
});
console.log(`listening http://127.0.0.1:${server.port}/mcp → ${target}`);
