-- Replay pre-built requests with wrk, each thread its own slice of the file, each request once
-- (unless wrap = 1), optionally paced to a total rate (open loop). Prints one line "WRKJSON {...}".
--
-- wrk ... -s bench/wrk_replay.lua URL -- FILE THREADS RATE METHOD WRAP "Header: v|Header2: v"
-- FILE: one request a line, "path<TAB>body" (body may be empty).

local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local file, nthreads = args[1], tonumber(args[2])
  local rate = tonumber(args[3]) or 0
  method = args[4] or "POST"
  wrap = args[5] == "1"
  headers = {}
  for pair in string.gmatch(args[6] or "", "[^|]+") do
    local k, v = pair:match("^%s*(.-)%s*:%s*(.-)%s*$")
    if k then headers[k] = v end
  end
  if method == "POST" and headers["Content-Type"] == nil then headers["Content-Type"] = "text/xml" end
  reqs = {}
  local i = 0
  for line in io.lines(file) do
    if i % nthreads == id then
      local tab = line:find("\t", 1, true)
      reqs[#reqs + 1] = { line:sub(1, tab - 1), line:sub(tab + 1) }
    end
    i = i + 1
  end
  n = 0
  exhausted = 0
  ok = 0
  empty = 0
  bad = 0
  interval = rate > 0 and (1000.0 * nthreads / rate) or 0
  next_at = nil
end

function delay()
  if interval == 0 then return 0 end
  local t = now_ms()
  if next_at == nil then next_at = t end
  local slot = next_at
  next_at = next_at + interval
  if slot <= t then return 0 end
  return slot - t
end

function request()
  n = n + 1
  if n > #reqs then
    if wrap then n = 1 else exhausted = exhausted + 1; n = #reqs end
  end
  local r = reqs[n]
  if r[2] == "" then return wrk.format(method, r[1], headers) end
  return wrk.format(method, r[1], headers, r[2])
end

function response(status, hdrs, body)
  if status >= 500 then bad = bad + 1
  elseif status == 200 and (body == nil or body == "") then empty = empty + 1
  elseif status < 400 then ok = ok + 1
  else bad = bad + 1 end
end

function done(summary, latency, requests)
  local ok_t, empty_t, bad_t, exhausted_t, sent_t = 0, 0, 0, 0, 0
  for _, t in ipairs(threads) do
    ok_t = ok_t + (t:get("ok") or 0)
    empty_t = empty_t + (t:get("empty") or 0)
    bad_t = bad_t + (t:get("bad") or 0)
    exhausted_t = exhausted_t + (t:get("exhausted") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "rps": %.2f, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
    '"max_us": %d, "mean_us": %.1f, "ok": %d, "empty": %d, "bad": %d, "exhausted": %d, ' ..
    '"err_connect": %d, "err_read": %d, "err_write": %d, "err_status": %d, "err_timeout": %d}\n',
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    ok_t, empty_t, bad_t, exhausted_t, e.connect, e.read, e.write, e.status, e.timeout))
end
