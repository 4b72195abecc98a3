-- Counts responses per 100 ms (absolute decisecond) by success, written to $WRK_TIMELINE as
-- "decisecond<TAB>ok<TAB>bad" when wrk ends. Socket errors are not visible here (wrk prints them).
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } tl_timespec;
int clock_gettime(int clk_id, tl_timespec *tp);
]]
local ts = ffi.new("tl_timespec")
local function decisecond()
  ffi.C.clock_gettime(0, ts)
  return math.floor((tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9) * 10)
end
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) ok = {}; bad = {} end
function response(status, headers, body)
  local d = decisecond()
  if status >= 200 and status < 400 then ok[d] = (ok[d] or 0) + 1 else bad[d] = (bad[d] or 0) + 1 end
end
function done(summary, latency, requests)
  local all, keys = {}, {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("ok") or {}) do
      if not all[k] then all[k] = {0, 0}; table.insert(keys, k) end
      all[k][1] = all[k][1] + v
    end
    for k, v in pairs(t:get("bad") or {}) do
      if not all[k] then all[k] = {0, 0}; table.insert(keys, k) end
      all[k][2] = all[k][2] + v
    end
  end
  table.sort(keys)
  local f = io.open(os.getenv("WRK_TIMELINE") or "timeline.tsv", "w")
  f:write("decisecond\tok\tbad\n")
  for _, k in ipairs(keys) do f:write(string.format("%d\t%d\t%d\n", k, all[k][1], all[k][2])) end
  f:close()
end
