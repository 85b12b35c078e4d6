-- The one wrk script of the benchmark harness (bench/common.py runs it, with
-- the headers as -H options and the rest as environment variables):
--   BENCH_PATH       request path; "{i}" in it becomes a unique integer per
--                    request (thread k of n sends start+k, start+k+n, ...)
--   BENCH_COUNTER    the start of that integer sequence
--   BENCH_METHOD     request method
--   BENCH_BODY       one fixed request body (optional)
--   BENCH_BODY_FILE  a file with one body per line; thread k of n sends
--                    lines k, k+n, ... so no body is sent twice (primes)
--   BENCH_THREADS    the -t given to wrk (to stride counters and bodies)
-- done() prints one line, "BENCH_JSON {...}", that bench/common.py parses.

local next_id = 0

function setup(thread)
  thread:set("thread_id", next_id)
  next_id = next_id + 1
end

local requests_ = {}    -- pre-formatted requests, cycled through
local position = 0
local template = nil    -- path with "{i}", when requests are built one by one
local method, body, counter, stride

function init(args)
  local path = os.getenv("BENCH_PATH")
  method = os.getenv("BENCH_METHOD")
  body = os.getenv("BENCH_BODY")
  if body == "" then
    body = nil
  end
  stride = tonumber(os.getenv("BENCH_THREADS"))
  counter = tonumber(os.getenv("BENCH_COUNTER")) + thread_id

  local body_file = os.getenv("BENCH_BODY_FILE")
  if body_file ~= "" then
    local line_number = 0
    for line in io.lines(body_file) do
      if line_number % stride == thread_id then
        requests_[#requests_ + 1] = wrk.format(method, path, nil, line)
      end
      line_number = line_number + 1
    end
  elseif string.find(path, "{i}", 1, true) then
    template = path
  else
    requests_[1] = wrk.format(method, path, nil, body)
  end
end

function request()
  if template then
    local path = string.gsub(template, "{i}", string.format("%d", counter))
    counter = counter + stride
    return wrk.format(method, path, nil, body)
  end
  -- Past the end of a body file the bodies repeat: the server then answers
  -- 409, which shows up as errors rather than as silently cheaper requests.
  position = position % #requests_ + 1
  return requests_[position]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"duration_us": %d, "requests": %d, "bytes": %d, '
      .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, '
      .. '"timeout": %d}, "latency_us": {"min": %d, "mean": %.1f, "max": %d, '
      .. '"stdev": %.1f, "p50": %d, "p90": %d, "p99": %d, "p99.9": %d}}\n',
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.max, latency.stdev,
    latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9)))
end
