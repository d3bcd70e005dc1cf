-- wrk script for tools/bench-serving.ts: POSTs prebuilt request bodies read from files, cycling
-- through them, and prints wrk's own figures as one JSON line when the run is done.
--
--   WRK_PLAN=/tmp/plan.txt wrk -t1 -c64 -d5s --timeout 30s -s tools/lib/wrk/post-bodies.lua http://127.0.0.1:8080
--
-- The plan file (written by bench-serving.ts), one directive per line:
--   P <path and query>            request target, e.g. /likelihood?model=glow-fashion&datatype=FP32
--   H <Name>: <value>             a header sent with every request (none: no Content-Type is sent)
--   B <file>                      one request body (read whole, binary-safe); bodies are used in turn
-- Content-Length is added by wrk.format. Requests are formatted once, in init(), so the Lua side
-- costs one table lookup per request.
local plan = os.getenv("WRK_PLAN")
local path, headers, bodies = "/", {}, {}

local function read_all(file)
  local f = assert(io.open(file, "rb"), "cannot open " .. file)
  local data = f:read("*all")
  f:close()
  return data
end

for line in io.lines(plan) do
  local kind, rest = line:sub(1, 1), line:sub(3)
  if kind == "P" then
    path = rest
  elseif kind == "H" then
    local name, value = rest:match("^([^:]+):%s*(.*)$")
    headers[name] = value
  elseif kind == "B" then
    bodies[#bodies + 1] = read_all(rest)
  end
end
assert(#bodies > 0, "plan " .. plan .. " names no body")

local requests, n = {}, 0

function init(args)
  for i, body in ipairs(bodies) do
    requests[i] = wrk.format("POST", path, headers, body)
  end
end

function request()
  n = n % #requests + 1
  return requests[n]
end

function done(summary, latency, requests_stats)
  local e = summary.errors
  local p = function(q) return latency:percentile(q) / 1000 end
  io.write(string.format(
    'WRK_JSON {"requests":%d,"durationUs":%d,"bytes":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latencyMs":{"p50":%.3f,"p90":%.3f,"p99":%.3f,"max":%.3f,"mean":%.3f}}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    p(50), p(90), p(99), latency.max / 1000, latency.mean / 1000))
end
