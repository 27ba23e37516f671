-- wrk script: POST /api/punches-shaped requests, each with its own Idempotency-Key and body.
--
-- Environment (set by bench/run.py):
--   BENCH_TOKEN      bearer token (a manager of the bench tenant)
--   BENCH_EMPLOYEES  number of employees; employee n has id 00000000-0000-4000-8000-<n as 12 hex>
--   BENCH_PREFIX     key prefix of this run (unique per run)
--   BENCH_DAY0       epoch seconds of 00:00 UTC of the most recent day punched; older days go back
--   BENCH_SPAN       days this phase may use, BENCH_DAY0 and the BENCH_SPAN - 1 days before it
--   BENCH_ORDER      "forward" (default): each employee's days run oldest first, as a clock's
--                    punches arrive; "backward": most recent day first (the workload before
--                    2026-11-29's fourth session, kept to compare)
--   BENCH_COUNTS     file: written at the end with one request count per thread (fresh run);
--                    read at the start (replay run), so each thread re-sends exactly its keys
--   BENCH_REPLAY     "1": replay mode (cycle over the keys of the fresh run, same bodies)
--   BENCH_STORM      N > 1: retry-storm mode: request k of a thread is a copy of the thread's
--                    logical request floor(k / N) (same key, same body), so each key is sent N
--                    times in a row; wrk hands consecutive requests of a thread to whichever of
--                    its connections is free next, so the copies are concurrent duplicates on
--                    different connections. BENCH_COUNTS gets the requests issued per thread
--                    (the distinct keys of a thread are ceil(count / N))
--   BENCH_STATUS     "1": count the answers per status in a response() callback ("<status>" or,
--                    with Idempotent-Replayed: true, "<status>_replayed"), written to BENCH_OUT
--                    as "statuses". Off otherwise: with response() defined wrk keeps every
--                    answer's headers and body for Lua, which costs wrk CPU (bench/README.md,
--                    retry storm)
--   BENCH_OUT        file: JSON summary written at the end
--
-- Request g (thread t, counter c, T threads: g = c * T + t; in a storm c is the logical
-- request, the thread's counter // BENCH_STORM) punches employee g % E, on its
-- (g // E) // 2-th day: clock_in at 09:00 when (g // E) is even, clock_out at 17:00 when odd,
-- so every (employee, timestamp) is unique, each employee alternates in/out on a scheduled
-- 09:00-17:00 shift (no late arrival or early departure) and a punch's 72 h evaluation window
-- holds only a handful of facts. Forward, the days run from BENCH_DAY0 - (BENCH_SPAN - 1)
-- days towards BENCH_DAY0, so each employee's punches arrive in time order and a correct
-- engine raises nothing. Backward, every clock_in lands before the employee's later
-- clock_in, so the engine raises a missed_punch (the occurrence is left open when the next
-- clock_in arrives) that the clock_out ~E requests later withdraws: an exception write and
-- two audit entries on every second punch, which a clock punching in real time never causes.

local threads = {}
local thread_count = 0

function setup(thread)
  thread:set("tid", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

local token, employees, prefix, day0, span, forward, replay, counts_file
local nthreads, limit, storm
-- globals of each thread's Lua state (thread:get reads them from the main state): tid, counter,
-- statuses (BENCH_STATUS)

function init(args)
  token = os.getenv("BENCH_TOKEN")
  employees = tonumber(os.getenv("BENCH_EMPLOYEES"))
  prefix = os.getenv("BENCH_PREFIX")
  day0 = tonumber(os.getenv("BENCH_DAY0"))
  span = tonumber(os.getenv("BENCH_SPAN") or "300")
  forward = (os.getenv("BENCH_ORDER") or "forward") ~= "backward"
  replay = os.getenv("BENCH_REPLAY") == "1"
  counts_file = os.getenv("BENCH_COUNTS")
  nthreads = tonumber(os.getenv("BENCH_THREADS"))
  storm = tonumber(os.getenv("BENCH_STORM") or "1")
  counter = 0
  statuses = {}
  limit = nil
  if replay then
    local f = assert(io.open(counts_file, "r"))
    local i = 0
    for line in f:lines() do
      if i == tid then limit = tonumber(line) end
      i = i + 1
    end
    f:close()
    if limit == nil or limit < 1 then limit = 1 end
  end
end

local function iso(epoch)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", epoch)
end

function request()
  local c = counter
  if replay then
    c = counter % limit
  elseif storm > 1 then
    c = math.floor(counter / storm)  -- the storm's copies: same key, same body
  end
  counter = counter + 1
  local g = c * nthreads + tid
  local emp = g % employees
  local k = math.floor(g / employees)
  local day = math.floor(k / 2)
  -- never leave the phase's days (run.py leaves 99+ days between phases, ab.py 8); a span of
  -- 300 days holds 600 punches per employee, far more than one phase sends
  day = day % span
  local midnight
  if forward then
    midnight = day0 - (span - 1 - day) * 86400
  else
    midnight = day0 - day * 86400
  end
  local kind, ts
  if k % 2 == 0 then
    kind, ts = "clock_in", midnight + 9 * 3600
  else
    kind, ts = "clock_out", midnight + 17 * 3600
  end
  local body = string.format(
    '{"employeeId":"00000000-0000-4000-8000-%012x","type":"%s","timestamp":"%s"}', emp, kind, iso(ts))
  local headers = {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = string.format("%s-%d-%d", prefix, tid, c),
  }
  return wrk.format("POST", "/api/punches", headers, body)
end

if os.getenv("BENCH_STATUS") == "1" then
  -- defined only when asked: wrk then buffers every answer's headers and body for Lua
  function response(status, headers, body)
    -- a replay answers the original's status (201 for a punch) with Idempotent-Replayed: true
    local k = tostring(status)
    if (headers["idempotent-replayed"] or headers["Idempotent-Replayed"]) == "true" then
      k = k .. "_replayed"
    end
    statuses[k] = (statuses[k] or 0) + 1
  end
end

function done(summary, latency, requests)
  -- done() runs in the main Lua state, where init() never ran: read the environment here
  local out = os.getenv("BENCH_OUT")
  local counts_file = os.getenv("BENCH_COUNTS")
  if os.getenv("BENCH_REPLAY") ~= "1" then
    -- per thread, how many requests were issued: the replay run re-sends exactly these keys;
    -- in a storm, ceil(count / BENCH_STORM) distinct keys
    local f = assert(io.open(counts_file, "w"))
    for _, thread in ipairs(threads) do
      f:write(tostring(thread:get("counter") or 0) .. "\n")
    end
    f:close()
  end
  local status_json = ""
  if os.getenv("BENCH_STATUS") == "1" then
    local merged = {}
    for _, thread in ipairs(threads) do
      for k, n in pairs(thread:get("statuses") or {}) do merged[k] = (merged[k] or 0) + n end
    end
    local parts = {}
    for k, n in pairs(merged) do table.insert(parts, string.format('"%s":%d', k, n)) end
    status_json = ',"statuses":{' .. table.concat(parts, ",") .. '}'
  end
  local f = assert(io.open(out, "w"))
  f:write(string.format(
    '{"requests":%d,"duration_us":%d,"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,' ..
    '"non_2xx":%d,"errors_connect":%d,"errors_read":%d,"errors_write":%d,"errors_timeout":%d',
    summary.requests, summary.duration, latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, summary.errors.status, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout))
  f:write(status_json .. "}")
  f:close()
end
