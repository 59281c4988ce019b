-- wrk: GET the 1000 Val paths /v/val{i}/run round-robin; print the results as one JSON line.
local paths = {}
for i = 0, 999 do paths[i + 1] = "/v/val" .. i .. "/run" end
local n = 0

function request()
  n = n % #paths + 1
  return wrk.format("GET", paths[n])
end

function done(s, latency, requests)
  local e = s.errors
  io.write(string.format('BENCH {"requests": %d, "duration_us": %d, "p50_us": %.1f, '
    .. '"p99_us": %.1f, "non2xx": %d, "socket_errors": %d}\n', s.requests, s.duration,
    latency:percentile(50), latency:percentile(99), e.status,
    e.connect + e.read + e.write + e.timeout))
end
