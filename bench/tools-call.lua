-- wrk script of bench/throughput.ts: POSTs a JSON-RPC tools/call with the MCP headers. Each request gets an id
-- unique across threads (the SDK server maps responses by id within a session). Input from the environment:
-- TOOL (tool name), SESSION (Mcp-Session-Id, may be empty), TOKEN (bearer token, may be empty).
-- A 200 whose body has no "result" counts as an rpc error; done() prints one JSON line for the benchmark.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Accept"] = "application/json, text/event-stream"
  wrk.headers["MCP-Protocol-Version"] = "2025-11-25"
  local session = os.getenv("SESSION") or ""
  local token = os.getenv("TOKEN") or ""
  if session ~= "" then wrk.headers["Mcp-Session-Id"] = session end
  if token ~= "" then wrk.headers["Authorization"] = "Bearer " .. token end
  prefix = '{"jsonrpc":"2.0","method":"tools/call","params":{"name":"' .. os.getenv("TOOL") ..
    '","arguments":{"message":"hello"}},"id":'
  next_id = tid * 1000000000
  rpc_errors = 0
  non_2xx = 0
  sample = ""
end

function request()
  next_id = next_id + 1
  return wrk.format(nil, nil, nil, prefix .. next_id .. "}")
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non_2xx = non_2xx + 1
    if sample == "" then sample = status .. " " .. string.sub(body, 1, 200) end
  elseif not string.find(body, '"result"', 1, true) then
    rpc_errors = rpc_errors + 1
    if sample == "" then sample = status .. " " .. string.sub(body, 1, 200) end
  end
end

function done(summary, latency, requests)
  local rpc, bad, first = 0, 0, ""
  for _, t in ipairs(threads) do
    rpc = rpc + t:get("rpc_errors")
    bad = bad + t:get("non_2xx")
    if first == "" then first = t:get("sample") end
  end
  first = string.gsub(first, "%c", " ")
  local e = summary.errors
  io.write(string.format(
    '\nBENCH {"requests":%d,"seconds":%.3f,"p50":%d,"p90":%d,"p99":%d,"max":%d,"non2xx":%d,"rpcErrors":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"timeout":%d,"sample":%q}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, bad, rpc, e.connect, e.read, e.write, e.timeout, first))
end
