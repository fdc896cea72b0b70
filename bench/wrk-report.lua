-- Prints one machine-readable line after a wrk run: requests, duration (µs), p50/p99/p99.9 (µs),
-- and the count of failed requests (non-2xx answers and socket errors).
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %.0f %.0f %.0f %d\n",
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9),
    e.status + e.connect + e.read + e.write + e.timeout))
end
