-- wrk script: POST a chat body (or BODY_FILE) and print one RESULT line.
local body_file = os.getenv("BODY_FILE")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("KEY") or "tg-bench-key")
if body_file and body_file ~= "" then
  local f = assert(io.open(body_file, "rb"))
  wrk.body = f:read("*a")
  f:close()
elseif os.getenv("STREAM") == "1" then
  wrk.body = '{"messages":[{"role":"user","content":"hello"}],"model":"gpt-4o","stream":true}'
else
  wrk.body = '{"messages":[{"role":"user","content":"hello"}],"model":"gpt-4o"}'
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d errors=%d non2xx=%d p50=%d p90=%d p99=%d p999=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, summary.duration,
    e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    e.connect, e.read, e.write, e.timeout))
end
