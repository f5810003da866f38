-- POSTs a new ticket per request (title varies), then prints the same figures as wrk_report.lua
local counter = 0
request = function()
  counter = counter + 1
  local body = string.format(
    '{"title":"Projector dead in room %d","description":"No picture","category":"Audio/Visual"}',
    counter % 400)
  local headers = {}
  for name, value in pairs(wrk.headers) do headers[name] = value end  -- keeps -H Authorization
  headers["Content-Type"] = "application/json"
  return wrk.format("POST", nil, headers, body)
end

done = function(summary, latency, requests)
  local seconds = summary.duration / 1e6
  io.write(string.format("RESULT rps=%.1f p50_ms=%.2f p95_ms=%.2f p99_ms=%.2f errors=%d non2xx=%d\n",
    summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
end
