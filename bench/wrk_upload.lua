-- A POST of $WRK_UPLOAD_BYTES bytes (Content-Length) per request: the upload runs of
-- bench/lb_bench.sh (sizes named /up16k, /up1m, ...).
local n = tonumber(os.getenv("WRK_UPLOAD_BYTES") or "")
assert(n, "set WRK_UPLOAD_BYTES")
wrk.method = "POST"
wrk.body = string.rep("u", n)
wrk.headers["Content-Type"] = "application/octet-stream"
