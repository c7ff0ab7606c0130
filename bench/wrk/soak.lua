-- The soak load of bench/soak.sh: a fixed request rate, mixing
--   GET /auth/me        as the ADMIN       (bearer SOAK_ADMIN_TOKEN)
--   GET /api/my/tasks   as the LINE_LEADER (bearer SOAK_LEADER_TOKEN)
-- SOAK_LEADER_SHARE percent of the requests go to /api/my/tasks (default 50), spread evenly.
--
-- Pacing, with wrk's delay() hook (called before each request of a connection):
--   SOAK_PACING=schedule (default): each wrk thread hands out send times SOAK_THREADS * 1000 /
--     SOAK_RATE ms apart to whichever of its connections is free (LuaJIT's ffi reads
--     CLOCK_MONOTONIC), so the rate does not depend on the response time. A connection that is
--     not free at its slot sends late; slots missed because every connection was busy are not
--     made up afterwards (no burst after a stall), so an overloaded server shows as an achieved
--     rate below the target.
--   SOAK_PACING=fixed: every connection waits SOAK_CONNECTIONS * 1000 / SOAK_RATE ms after each
--     response (rate ≈ connections × 1000 / (delay + response time): slightly below the target).
-- wrk truncates the delay to whole milliseconds; the schedule keeps fractional time, so it does
-- not drift.
--
-- done() prints, for soak.sh to parse:
--   BENCH_JSON {...}   requests, rps, percentiles (ms), wrk's error counts, requests per route,
--                      non-2xx responses by status, the pacing used
--   SOAK_Q q:v q:v …   latency quantiles (percent:milliseconds), dense in the tail, so that the
--                      segments of a soak can be merged into one distribution
local rate = tonumber(os.getenv("SOAK_RATE") or "800")
local nthreads = tonumber(os.getenv("SOAK_THREADS") or "2")
local nconns = tonumber(os.getenv("SOAK_CONNECTIONS") or "32")
local leader_share = tonumber(os.getenv("SOAK_LEADER_SHARE") or "50")
local pacing = os.getenv("SOAK_PACING") or "schedule"
local admin_token = os.getenv("SOAK_ADMIN_TOKEN") or ""
local leader_token = os.getenv("SOAK_LEADER_TOKEN") or ""

local now_ms = nil
if pacing == "schedule" then
  local ok, ffi = pcall(require, "ffi")
  if ok then
    pcall(ffi.cdef, [[
      typedef struct { long tv_sec; long tv_nsec; } soak_timespec;
      int clock_gettime(int clk_id, soak_timespec *tp);
    ]])
    local ts = ffi.new("soak_timespec")
    now_ms = function()
      ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
      return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
    end
  else
    pacing = "fixed" -- no LuaJIT ffi: fall back (reported in BENCH_JSON)
  end
end

-- Main state: remember the threads so done() can read their counters.
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

-- Thread state.
local admin_req, leader_req
n_admin, n_leader = 0, 0
s401, s403, s404, s429, s5xx, sother = 0, 0, 0, 0, 0, 0
pacing_used = pacing
local acc = 0
local period = nthreads * 1000 / rate -- ms between two sends of this thread
local fixed_delay = nconns * 1000 / rate -- ms a connection waits after each response
local next_at = nil

function init(args)
  admin_req = wrk.format("GET", "/auth/me", { ["Authorization"] = "Bearer " .. admin_token })
  leader_req = wrk.format("GET", "/api/my/tasks", { ["Authorization"] = "Bearer " .. leader_token })
end

function delay()
  if pacing ~= "schedule" then
    return fixed_delay
  end
  local t = now_ms()
  if next_at == nil or next_at < t then
    next_at = t
  end
  local d = next_at - t
  next_at = next_at + period
  return d
end

function request()
  acc = acc + leader_share
  if acc >= 100 then
    acc = acc - 100
    n_leader = n_leader + 1
    return leader_req
  end
  n_admin = n_admin + 1
  return admin_req
end

function response(status, headers, body)
  if status >= 200 and status < 300 then return end
  if status == 401 then s401 = s401 + 1
  elseif status == 403 then s403 = s403 + 1
  elseif status == 404 then s404 = s404 + 1
  elseif status == 429 then s429 = s429 + 1
  elseif status >= 500 then s5xx = s5xx + 1
  else sother = sother + 1 end
end

-- Quantiles (percent) printed for merging: coarse in the body, dense in the tail.
local function quantile_points()
  local q = {}
  for i = 1, 190 do q[#q + 1] = i * 0.5 end          -- 0.5 … 95 %
  for i = 1, 490 do q[#q + 1] = 95 + i * 0.01 end    -- 95.01 … 99.9 %
  for i = 1, 100 do q[#q + 1] = 99.9 + i * 0.001 end -- 99.901 … 100 %
  return q
end

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local e = summary.errors
  local function ms(us) return us / 1000.0 end
  local c = { admin = 0, leader = 0, s401 = 0, s403 = 0, s404 = 0, s429 = 0, s5xx = 0, sother = 0 }
  local used = pacing
  for _, t in ipairs(threads) do
    c.admin = c.admin + (t:get("n_admin") or 0)
    c.leader = c.leader + (t:get("n_leader") or 0)
    for _, k in ipairs({ "s401", "s403", "s404", "s429", "s5xx", "sother" }) do
      c[k] = c[k] + (t:get(k) or 0)
    end
    used = t:get("pacing_used") or used
  end
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_s":%.3f,"rps":%.2f,' ..
    '"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"p999_ms":%.3f,"max_ms":%.3f,"mean_ms":%.3f,' ..
    '"err_connect":%d,"err_read":%d,"err_write":%d,"err_status":%d,"err_timeout":%d,' ..
    '"sent_admin":%d,"sent_leader":%d,"status_401":%d,"status_403":%d,"status_404":%d,' ..
    '"status_429":%d,"status_5xx":%d,"status_other":%d,"pacing":"%s"}\n',
    summary.requests, secs, summary.requests / secs,
    ms(latency:percentile(50)), ms(latency:percentile(90)), ms(latency:percentile(99)),
    ms(latency:percentile(99.9)), ms(latency.max), ms(latency.mean),
    e.connect, e.read, e.write, e.status, e.timeout,
    c.admin, c.leader, c.s401, c.s403, c.s404, c.s429, c.s5xx, c.sother, used))
  local parts = {}
  for _, q in ipairs(quantile_points()) do
    parts[#parts + 1] = string.format("%.3f:%.3f", q, ms(latency:percentile(q)))
  end
  io.write("SOAK_Q " .. table.concat(parts, " ") .. "\n")
end
