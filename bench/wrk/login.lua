-- POST /auth/login, cycling over the JSON bodies in the file named by BENCH_LOGIN_BODIES
-- (one {"email":…,"password":…} per line, all with correct passwords). Each wrk thread starts at
-- a different offset so the threads do not log the same user in at the same moment.
package.path = (os.getenv("BENCH_WRK_DIR") or "bench/wrk") .. "/?.lua;" .. package.path
local report = require("report")

local next_id = 0
function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
end

local bodies = {}
local idx = 0

function init(args)
  local path = os.getenv("BENCH_LOGIN_BODIES")
  for line in io.lines(path) do
    if line ~= "" then bodies[#bodies + 1] = line end
  end
  if #bodies == 0 then error("no login bodies in " .. tostring(path)) end
  idx = ((tid or 0) * math.floor(#bodies / 2)) % #bodies
end

local headers = { ["Content-Type"] = "application/json" }

function request()
  idx = idx % #bodies + 1
  return wrk.format("POST", "/auth/login", headers, bodies[idx])
end

done = report.done
