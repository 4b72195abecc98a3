#!/usr/bin/env bash
# tandem-lb side by side with HAProxy 2.6 and nginx (Debian 12), all on loopback.
#
#   bash bench/lb_bench.sh [--reps N] [--duration S] [--threads "1 2"] [--sizes "/ /16k /up1m"]
#                          [--only throughput,tls,rss,failover,accesslog] [--out DIR]
#                          [--also NAME=PATH]... [--variant NAME=YAMLFILE]...
#                          [--no-haproxy-splice] [--haproxy-headers]
#
# throughput: two nginx upstreams; every proxy runs at the same time on its own port (one-thread
#   proxies pinned to CPU 0): tandem-lb, HAProxy, HAProxy with `option splice-auto` (unless
#   --no-haproxy-splice), nginx; wrk
#   (1 thread, 50 connections, keep-alive, pinned to CPU 1) measures each target x size, the
#   order rotated every repetition (interleaved); medians of --reps runs. Sizes: `/` (3 bytes),
#   /1k, /16k, /64k, /1m are GETs of responses that long; /up16k, /up64k, /up1m are POSTs of a
#   body that long (Content-Length; the upstream reads it whole, then answers "ok"). Every
#   proxy's own CPU time over each run (user and system, /proc/PID/stat: all its threads, nginx's
#   workers summed) gives its CPU per request beside req/s and p99, and the two upstreams' CPU
#   time over the same run what it cost them (`direct`: wrk on one upstream, no proxy; a proxy
#   that makes an upstream work harder per request slows every run), and the whole machine's
#   busy and idle CPU time (/proc/stat) what each request cost all processes together: with no
#   idle CPU left, req/s is the CPUs over that cost. Before each run the
#   script waits until the machine is quiet (CPU used by other processes < 10% of one CPU), and a
#   run during which the host stalled the virtual machine (bench/pause_watch.py on each CPU saw
#   no scheduling for >= 25 ms) is repeated, up to 4 times: one such stall lands in a proxy's
#   run by chance and, through wrk's coordinated-omission correction, turns a 1.3 ms p99 into
#   30-130 ms.
# tls: TLS termination towards clients (ECDSA P-256 certificate, TLS 1.3, keep-alive: the
#   handshakes are amortized): tandem-lb's https listener, HAProxy `bind ... ssl` and nginx
#   `listen ... ssl`, one thread each pinned to CPU 0, plain HTTP to the same two upstreams; wrk as
#   above on https://, `/` and `/16k`, interleaved, medians.
# rss: 10 000 idle keep-alive client connections (one request each) on tandem-lb and HAProxy,
#   opened 500 at a time and one at a time; resident memory before and after.
# failover: wrk -d20s with a 100 ms timeline; at t=5 s one upstream is stopped (SIGTERM:
#   listener closed) or frozen (SIGSTOP: connections accepted, nothing answered; SIGCONT at
#   t=12 s). Failed requests, socket errors, the longest time with no successful response,
#   and when the balancer marked it down.
# accesslog: what an access log to a file costs each: tandem-lb with and without its JSON access
#   log (accessLog.path), HAProxy with and without `option httplog` (`log stdout`, its stdout
#   redirected to a file on the same disk), one thread each pinned to CPU 0, wrk as above,
#   interleaved, medians; the cost is 1 - rps(logged) / rps(not logged), per proxy.
# --haproxy-headers: one more HAProxy in the throughput runs, haproxy-hdr-Nt, that adds to each
#   request the headers tandem-lb adds by default (X-Forwarded-For, X-Forwarded-Proto,
#   Forwarded, X-Request-Id): the same work on every request, where the plain HAProxy the
#   ratios are taken against adds none.
# --also NAME=PATH: another tandem-lb binary (an earlier build, say) measured in the throughput
#   runs beside the others, as NAME-Nt with the same configuration and placement.
# --variant NAME=YAMLFILE: this tandem-lb again with YAMLFILE's lines added to its configuration
#   (`splice: {enabled: false}`, say), as NAME-Nt.
# Results: $OUT/results.tsv, $OUT/cpu.tsv, $OUT/summary.md (also printed).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

REPS=5 DURATION=5 THREADS="1 2" SIZES="/ /1k /16k /64k /1m /up16k /up64k /up1m"
ONLY="throughput,tls,rss,failover,accesslog" HAPROXY_SPLICE=1 HAPROXY_HEADERS=0
OUT="$ROOT/build/bench-lb-$(date +%Y%m%d-%H%M%S)"
ALSO=() VARIANTS=()
while (($#)); do
  case $1 in
    --reps) REPS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --sizes) SIZES=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --no-haproxy-splice) HAPROXY_SPLICE=0; shift ;;
    --haproxy-headers) HAPROXY_HEADERS=1; shift ;;
    --variant) [[ $2 == *=* && -f ${2#*=} ]] || { echo "--variant NAME=YAMLFILE: YAMLFILE must be a file" >&2; exit 2; }
               VARIANTS+=("$2"); shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --also) [[ $2 == *=* && -x ${2#*=} ]] || { echo "--also NAME=PATH: PATH must be an executable tandem-lb" >&2; exit 2; }
            ALSO+=("$2"); shift 2 ;;
    *) echo "unknown option $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
for t in nginx haproxy wrk curl python3 taskset; do
  command -v $t >/dev/null || { echo "missing $t: bash scripts/install-deps.sh" >&2; exit 1; }
done
LB="$ROOT/build/release/lb/tandem-lb"
if [[ ! -x $LB ]]; then
  cmake --preset release >/dev/null && cmake --build --preset release --target tandem-lb >/dev/null
fi
mkdir -p "$OUT"
# The harness: temporary directory, pause watchers, upstreams, the three proxies, quiet waits.
BENCH_TMP_PREFIX=tandem-lbbench
source "$ROOT/bench/lib.sh"

# Every target x size, REPS times, the order rotated every repetition (interleaved); a row each
# in RESULTS. measure SCHEME "SIZES" RESULTS TARGETS-array PORT-map THREADS-map
measure() {
  local scheme=$1 sizes=$2 results=$3
  local -n targets=$4 ports=$5 threads=$6
  local n=${#targets[@]} rep size i t quiet rps p50 p99 non2 errs attempt start stall
  for ((rep = 1; rep <= REPS; rep++)); do
    for size in $sizes; do
      for ((i = 0; i < n; i++)); do
        t=${targets[$(((i + rep) % n))]}
        for attempt in 1 2 3 4 5; do
          quiet=1; wait_quiet || quiet=0
          start=$(date +%s.%N)
          local cpu_before="0 0" cpu_after="0 0" up_before up_after
          [[ -n ${TARGET_PID[$t]:-} ]] && cpu_before=$(target_cpu "${TARGET_PID[$t]}")
          up_before=$(upstreams_cpu) mach_before=$(machine_cpu)
          read -r rps p50 p99 non2 errs < <(run_size "$scheme://127.0.0.1:${ports[$t]}" "$size" "$DURATION" | parse_wrk)
          stall=$(stall_ms "$start" "$(date +%s.%N)")
          [[ -n ${TARGET_PID[$t]:-} ]] && cpu_after=$(target_cpu "${TARGET_PID[$t]}")
          up_after=$(upstreams_cpu) mach_after=$(machine_cpu)
          echo -e "$rep\t$t\t$size\t$rps\t$DURATION\t${cpu_before% *}\t${cpu_before#* }\t${cpu_after% *}\t${cpu_after#* }\t${up_before% *}\t${up_before#* }\t${up_after% *}\t${up_after#* }\t${mach_before% *}\t${mach_before#* }\t${mach_after% *}\t${mach_after#* }" >>"$CPU_RESULTS"
          log "$scheme rep $rep $t $size: $rps req/s p99 ${p99} ms non2xx $non2 errors $errs host stall ${stall} ms"
          [[ ${stall%.*} -lt $PAUSE_MS ]] && break
          echo -e "$scheme\t$rep\t$t\t$size\t$rps\t$p99\t$stall" >>"$OUT/stalled-runs.tsv"
        done
        echo -e "$rep\t$t\t${threads[$t]}\t$size\t$rps\t$p50\t$p99\t$non2\t$errs\t$quiet\t$stall" >>"$results"
      done
    done
  done
}
declare -A TARGET_PID  # targets whose CPU time measure() records (in CPU_RESULTS)
CPU_RESULTS=/dev/null
CPU_HEADER="rep\ttarget\tsize\trps\tseconds\tutime0\tstime0\tutime1\tstime1\tup_utime0\tup_stime0\tup_utime1\tup_stime1\tbusy0\tidle0\tbusy1\tidle1"
# The upstreams' CPU time so far, "user system" in clock ticks (both nginx, workers included):
# what each run cost the upstreams beside the proxy's own (one target runs at a time).
UPSTREAM_PIDS=()
upstreams_cpu() {
  local p
  for p in "${UPSTREAM_PIDS[@]}"; do target_cpu "$p"; done | awk '{u += $1; s += $2} END {print u + 0, s + 0}'
}

RESULTS="$OUT/results.tsv"
RESULTS_HEADER="rep\ttarget\tthreads\tsize\trps\tp50_ms\tp99_ms\tnon2xx\tsocket_errors\tquiet\tstall_ms"
echo -e "$RESULTS_HEADER" >"$RESULTS"
echo -e "scheme\trep\ttarget\tsize\trps\tp99_ms\tstall_ms" >"$OUT/stalled-runs.tsv"
SUMMARY="$OUT/summary.md"
{
  echo "# tandem-lb vs HAProxy $(haproxy -v | head -1 | awk '{print $3}') vs nginx $(nginx -v 2>&1 | sed 's|.*/||')"
  echo
  echo "$(date -u +%FT%TZ), $(nproc) CPUs, $(uname -r); wrk -t1 -c50 -d${DURATION}s pinned to CPU 1, one-thread proxies pinned to CPU 0, $REPS interleaved repetitions, medians."
} >"$SUMMARY"

if [[ $ONLY == *throughput* ]]; then
  U1=$(free_port); upstream u1 "$U1"; UPSTREAM_PIDS=("$LAST")
  U2=$(free_port); upstream u2 "$U2"; UPSTREAM_PIDS+=("$LAST")
  declare -A PORT THR
  TARGETS=()
  for T in $THREADS; do
    # One-thread proxies all run on CPU 0 (wrk has CPU 1): the same placement for each, not
    # whichever CPU the scheduler picked at start (which moved single runs by 10-15%).
    # Two-thread proxies use both CPUs.
    PIN=""; [[ $T == 1 ]] && PIN=0
    p=$(free_port); tandem_lb "tandem-lb-${T}t" "$p" "$T" "$U1" "$U2"; PORT[tandem-lb-${T}t]=$p
    TARGET_PID[tandem-lb-${T}t]=$LAST
    p=$(free_port); haproxy_proxy "haproxy-${T}t" "$p" "$T" "$U1" "$U2"; PORT[haproxy-${T}t]=$p
    TARGET_PID[haproxy-${T}t]=$LAST
    p=$(free_port); nginx_proxy "nginx-${T}w" "$p" "$T" "$U1" "$U2"; PORT[nginx-${T}w]=$p
    TARGET_PID[nginx-${T}w]=$LAST
    THR[tandem-lb-${T}t]=$T; THR[haproxy-${T}t]=$T; THR[nginx-${T}w]=$T
    TARGETS+=("tandem-lb-${T}t" "haproxy-${T}t" "nginx-${T}w")
    if [[ $HAPROXY_SPLICE == 1 ]]; then
      # HAProxy's own kernel splicing, where it judges it worth it.
      p=$(free_port)
      HAPROXY_GLOBAL="  maxpipes 1024" HAPROXY_DEFAULTS="  option splice-auto" haproxy_proxy "haproxy-splice-${T}t" "$p" "$T" "$U1" "$U2"
      PORT[haproxy-splice-${T}t]=$p; TARGET_PID[haproxy-splice-${T}t]=$LAST
      THR[haproxy-splice-${T}t]=$T; TARGETS+=("haproxy-splice-${T}t")
    fi
    if [[ $HAPROXY_HEADERS == 1 ]]; then
      p=$(free_port)
      HAPROXY_FRONTEND="  option forwardfor
  http-request set-header X-Forwarded-Proto http
  http-request set-header Forwarded \"for=%[src];proto=http\"
  unique-id-format %H-%pid-%rt
  unique-id-header X-Request-Id" haproxy_proxy "haproxy-hdr-${T}t" "$p" "$T" "$U1" "$U2"
      PORT[haproxy-hdr-${T}t]=$p; TARGET_PID[haproxy-hdr-${T}t]=$LAST
      THR[haproxy-hdr-${T}t]=$T; TARGETS+=("haproxy-hdr-${T}t")
    fi
    for spec in "${ALSO[@]}"; do
      name="${spec%%=*}-${T}t"
      p=$(free_port); LB="${spec#*=}" tandem_lb "$name" "$p" "$T" "$U1" "$U2"; PORT[$name]=$p
      TARGET_PID[$name]=$LAST; THR[$name]=$T; TARGETS+=("$name")
    done
    for spec in "${VARIANTS[@]}"; do
      name="${spec%%=*}-${T}t"
      p=$(free_port); tandem_lb "$name" "$p" "$T" "$U1" "$U2" "$(cat "${spec#*=}")"; PORT[$name]=$p
      TARGET_PID[$name]=$LAST; THR[$name]=$T; TARGETS+=("$name")
    done
  done
  PIN=""
  PORT[direct]=$U1; THR[direct]=0
  TARGETS+=(direct)
  # Each proxy must spread requests over both upstreams.
  for t in "${TARGETS[@]}"; do
    [[ $t == direct ]] && continue
    seen=$(for _ in 1 2 3 4; do curl -s -D- -o /dev/null "http://127.0.0.1:${PORT[$t]}/" | tr -d '\r' | awk 'tolower($1)=="x-upstream:"{print $2}'; done | sort -u | wc -l)
    [[ $seen == 2 ]] || { echo "$t does not alternate between the upstreams" >&2; exit 1; }
  done
  for size in $SIZES; do
    read -r path bytes < <(wrk_size "$size")
    code=$(head -c "$bytes" /dev/zero | curl -s -o /dev/null -w '%{http_code}' \
      $( ((bytes > 0)) && echo --data-binary @- ) "http://127.0.0.1:$U1$path")
    [[ $code == 200 ]] || { echo "upstream answers $code for $size; see $TMP" >&2; exit 1; }
  done
  log "warm-up"
  for t in "${TARGETS[@]}"; do run_wrk "http://127.0.0.1:${PORT[$t]}/" 2 >/dev/null; done
  CPU_RESULTS="$OUT/cpu.tsv"
  echo -e "$CPU_HEADER" >"$CPU_RESULTS"
  measure http "$SIZES" "$RESULTS" TARGETS PORT THR
  CPU_RESULTS=/dev/null
  python3 "$ROOT/bench/lb_summary.py" http "$RESULTS" "$OUT/stalled-runs.tsv" "$OUT/cpu.tsv" \
    "$(getconf CLK_TCK)" >>"$SUMMARY"
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  PIDS=()
fi

if [[ $ONLY == *tls* ]]; then
  U1=$(free_port); upstream u1 "$U1"; UPSTREAM_PIDS=("$LAST")
  U2=$(free_port); upstream u2 "$U2"; UPSTREAM_PIDS+=("$LAST")
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=bench.test -keyout "$TMP/tls.key" -out "$TMP/tls.crt" 2>/dev/null
  cat "$TMP/tls.crt" "$TMP/tls.key" >"$TMP/tls.pem"
  declare -A TPORT
  PIN=0
  p=$(free_port); hp=$(free_port)
  tandem_lb "tls-tandem-lb" "$p" 1 "$U1" "$U2" "https:
  listen: 127.0.0.1:$hp
  certFile: $TMP/tls.crt
  keyFile: $TMP/tls.key"
  wait_https "$hp" "$LAST"; TPORT[tandem-lb-1t]=$hp
  p=$(free_port)
  HAPROXY_BIND="ssl crt $TMP/tls.pem alpn http/1.1" haproxy_proxy "tls-haproxy" "$p" 1 "$U1" "$U2"
  TPORT[haproxy-1t]=$p
  p=$(free_port)
  NGINX_LISTEN="ssl" NGINX_SSL="ssl_certificate $TMP/tls.crt; ssl_certificate_key $TMP/tls.key;" \
    nginx_proxy "tls-nginx" "$p" 1 "$U1" "$U2"
  TPORT[nginx-1w]=$p
  PIN=""
  TLS_TARGETS=(tandem-lb-1t haproxy-1t nginx-1w)
  declare -A TTHR=([tandem-lb-1t]=1 [haproxy-1t]=1 [nginx-1w]=1)
  TLS_RESULTS="$OUT/tls.tsv"
  echo -e "$RESULTS_HEADER" >"$TLS_RESULTS"
  log "TLS warm-up"
  for t in "${TLS_TARGETS[@]}"; do run_wrk "https://127.0.0.1:${TPORT[$t]}/" 2 >/dev/null; done
  measure https "/ /16k" "$TLS_RESULTS" TLS_TARGETS TPORT TTHR
  python3 "$ROOT/bench/lb_summary.py" https "$TLS_RESULTS" "$OUT/stalled-runs.tsv" >>"$SUMMARY"
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  PIDS=()
fi

if [[ $ONLY == *accesslog* ]]; then
  U1=$(free_port); upstream u1 "$U1"; UPSTREAM_PIDS=("$LAST")
  U2=$(free_port); upstream u2 "$U2"; UPSTREAM_PIDS+=("$LAST")
  declare -A LPORT LTHR
  PIN=0
  p=$(free_port); tandem_lb "tandem-lb-1t" "$p" 1 "$U1" "$U2"; LPORT[tandem-lb-1t]=$p
  TARGET_PID[tandem-lb-1t]=$LAST
  p=$(free_port); tandem_lb "tandem-lb-log-1t" "$p" 1 "$U1" "$U2" "accessLog:
  path: $TMP/tandem-lb.access.log"
  LPORT[tandem-lb-log-1t]=$p; TARGET_PID[tandem-lb-log-1t]=$LAST
  p=$(free_port); haproxy_proxy "haproxy-1t" "$p" 1 "$U1" "$U2"; LPORT[haproxy-1t]=$p
  TARGET_PID[haproxy-1t]=$LAST
  p=$(free_port)
  HAPROXY_GLOBAL="  log stdout format raw local0 info" HAPROXY_DEFAULTS="  log global
  option httplog" haproxy_proxy "haproxy-log-1t" "$p" 1 "$U1" "$U2"
  LPORT[haproxy-log-1t]=$p; TARGET_PID[haproxy-log-1t]=$LAST
  PIN=""
  CPU_RESULTS="$OUT/accesslog-cpu.tsv"
  echo -e "$CPU_HEADER" >"$CPU_RESULTS"
  LOG_TARGETS=(tandem-lb-1t tandem-lb-log-1t haproxy-1t haproxy-log-1t)
  for t in "${LOG_TARGETS[@]}"; do LTHR[$t]=1; done
  LOG_RESULTS="$OUT/accesslog.tsv"
  echo -e "$RESULTS_HEADER" >"$LOG_RESULTS"
  log "access log warm-up"
  for t in "${LOG_TARGETS[@]}"; do run_wrk "http://127.0.0.1:${LPORT[$t]}/" 2 >/dev/null; done
  measure http "/ /1k" "$LOG_RESULTS" LOG_TARGETS LPORT LTHR
  sleep 1  # (tandem-lb's writer flushes every 200 ms)
  tl_lines=$(wc -l <"$TMP/tandem-lb.access.log"); tl_bytes=$(stat -c %s "$TMP/tandem-lb.access.log")
  hp_lines=$(grep -c 'GET /' "$TMP/haproxy-log-1t.out" || true); hp_bytes=$(stat -c %s "$TMP/haproxy-log-1t.out")
  {
    echo
    echo "## Access log to a file, 1 thread (median req/s; cost = 1 - logged / not logged)"
    echo
    python3 - "$LOG_RESULTS" "$CPU_RESULTS" "$(getconf CLK_TCK)" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
cpu = list(csv.DictReader(open(sys.argv[2]), delimiter="\t"))
hz = int(sys.argv[3])
med = {}
for r in rows:
    med.setdefault((r["target"], r["size"]), []).append(float(r["rps"]))
med = {k: statistics.median(v) for k, v in med.items()}
print("| size | tandem-lb | tandem-lb + log | cost | HAProxy | HAProxy + httplog | cost | logged: tandem-lb / HAProxy |")
print("|---|---|---|---|---|---|---|---|")
sizes = list(dict.fromkeys(r["size"] for r in rows))
for s in sizes:
    t, tl = med[("tandem-lb-1t", s)], med[("tandem-lb-log-1t", s)]
    h, hl = med[("haproxy-1t", s)], med[("haproxy-log-1t", s)]
    print(f"| `{s}` | {t:,.0f} | {tl:,.0f} | {1 - tl / t:.1%} | {h:,.0f} | {hl:,.0f} | {1 - hl / h:.1%} | {tl / hl:.2f} |")
# CPU per request from each process's own accounting over each run (user + system), medians.
per = {}
for r in cpu:
    n = float(r["rps"]) * float(r["seconds"])
    if n <= 0:
        continue
    us = lambda a, b: (int(r[b]) - int(r[a])) * 1e6 / hz / n
    per.setdefault((r["target"], r["size"]), []).append((us("utime0", "utime1"), us("stime0", "stime1")))
print("\nCPU per request (µs, user + system, from /proc/PID/stat over each run; medians) and what the log adds:\n")
print("| size | tandem-lb | tandem-lb + log | log adds | HAProxy | HAProxy + httplog | log adds |")
print("|---|---|---|---|---|---|---|")
def cell(k):
    v = per.get(k, [])
    u = statistics.median(x[0] for x in v) if v else 0
    s_ = statistics.median(x[1] for x in v) if v else 0
    return u, s_
for s in sizes:
    t, tl, h, hl = (cell((n, s)) for n in ("tandem-lb-1t", "tandem-lb-log-1t", "haproxy-1t", "haproxy-log-1t"))
    f = lambda c: f"{c[0]:.2f} + {c[1]:.2f}"
    print(f"| `{s}` | {f(t)} | {f(tl)} | {sum(tl) - sum(t):+.2f} | {f(h)} | {f(hl)} | {sum(hl) - sum(h):+.2f} |")
PY
    echo
    echo "Lines written: tandem-lb $tl_lines ($((tl_bytes / (tl_lines > 0 ? tl_lines : 1))) B each, JSON with"
    echo "the request ID), HAProxy $hp_lines ($((hp_bytes / (hp_lines > 0 ? hp_lines : 1))) B each, httplog)."
  } >>"$SUMMARY"
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  PIDS=()
fi

rss_kib() { # PID [children too] -> KiB
  local total=0 p
  for p in "$1" $(pgrep -P "$1" 2>/dev/null || true); do
    total=$((total + $(awk '/^VmRSS/{print $2}' /proc/$p/status 2>/dev/null || echo 0)))
  done
  echo $total
}
# 10 000 where the descriptor limit allows HAProxy to hold them (2 per connection).
IDLE=$(( $(ulimit -Hn) / 2 - 100 )); (( IDLE > 10000 )) && IDLE=10000
if [[ $ONLY == *rss* ]]; then
  U1=$(free_port); upstream u1 "$U1"; UPSTREAM_PIDS=("$LAST")
  U2=$(free_port); upstream u2 "$U2"; UPSTREAM_PIDS+=("$LAST")
  {
    echo
    echo "## Memory with $IDLE idle keep-alive client connections (one request each, 1 thread)"
    echo
    echo "(HAProxy reserves two descriptors per connection and refuses to start when maxconn x 2 exceeds"
    echo "the hard descriptor limit, $(ulimit -Hn) here, so both are measured at $IDLE connections.)"
    echo
    echo "Opened 500 at a time (a burst: what a proxy keeps after that many requests in flight"
    echo "counts too), and one at a time (what an idle connection itself costs); measured 2 s after"
    echo "the last one was answered (tandem-lb parks an idle connection after 1 s)."
    echo
    echo "| proxy | opened | RSS before | RSS with the idle connections | per connection |"
    echo "|---|---|---|---|---|"
  } >>"$SUMMARY"
  for conc in 500 1; do
  for kind in tandem-lb haproxy; do
    p=$(free_port)
    if [[ $kind == tandem-lb ]]; then
      tandem_lb rss-lb "$p" 1 "$U1" "$U2" "timeouts:
  clientIdle: 120s"
    else
      haproxy_proxy rss-haproxy "$p" 1 "$U1" "$U2" $((IDLE + 40))
    fi
    pid=$LAST
    # Warm the proxy (pools, buffers) the same way for both.
    run_wrk "http://127.0.0.1:$p/" 2 >/dev/null
    before=$(rss_kib "$pid")
    python3 "$ROOT/bench/idle_conns.py" "$p" "$IDLE" "$TMP/idle.ready" "$TMP/idle.stop" "$conc" &
    holder=$!
    for _ in $(seq 1 600); do [[ -f $TMP/idle.ready ]] && break; sleep 0.1; done
    [[ -f $TMP/idle.ready ]] || { echo "idle connections did not open" >&2; exit 1; }
    opened=$(cat "$TMP/idle.ready")
    sleep 2
    after=$(rss_kib "$pid")
    touch "$TMP/idle.stop"; wait "$holder" || true
    rm -f "$TMP/idle.ready" "$TMP/idle.stop"
    per=$(( (after - before) * 1024 / (opened > 0 ? opened : 1) ))
    log "$kind: RSS ${before} KiB -> ${after} KiB with $opened idle connections ($conc at a time)"
    echo "| $kind | $conc at a time | $((before / 1024)) MiB | $((after / 1024)) MiB ($opened connections) | $per B |" >>"$SUMMARY"
    kill "$pid"; wait "$pid" 2>/dev/null || true
  done
  done
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  PIDS=()
fi

if [[ $ONLY == *failover* ]]; then
  {
    echo
    echo "## Failover: one upstream stopped (SIGTERM) or frozen (SIGSTOP) at t=5 s of a 20 s wrk run (1 thread)"
    echo
    echo "| scenario | proxy | non-2xx | socket errors | longest time with no successful response | marked down after | retries | host stall |"
    echo "|---|---|---|---|---|---|---|---|"
  } >>"$SUMMARY"
  for scenario in stop freeze; do
    for kind in tandem-lb tandem-lb-pertry haproxy; do
      [[ $scenario == stop && $kind == tandem-lb-pertry ]] && continue
      U1=$(free_port); upstream u1 "$U1"; u1pid=$LAST
      U2=$(free_port); upstream u2 "$U2"; u2pid=$LAST
      p=$(free_port)
      case $kind in
        tandem-lb) tandem_lb fo-lb "$p" 1 "$U1" "$U2" ;;
        tandem-lb-pertry) tandem_lb fo-lb "$p" 1 "$U1" "$U2" "retry:
  perTryTimeout: 500ms" ;;
        haproxy) haproxy_proxy fo-haproxy "$p" 1 "$U1" "$U2" ;;
      esac
      ppid=$LAST
      admin=""
      [[ $kind == tandem-lb* ]] && admin=$(sed -n 's/.*admin=127.0.0.1:\([0-9]*\).*/\1/p' "$TMP/fo-lb.out")
      t0=$(date +%s.%N)
      WRK_TIMELINE="$TMP/timeline.tsv" taskset -c 1 wrk -t1 -c50 -d20s --latency \
        -s "$ROOT/bench/wrk_timeline.lua" "http://127.0.0.1:$p/" >"$TMP/wrk.out" 2>&1 &
      wrkpid=$!
      # Poll the balancer's view of u2 every 100 ms.
      python3 "$ROOT/bench/poll_down.py" "$kind" "${admin:-$TMP/fo-haproxy/admin.sock}" "$TMP/down.txt" 19 &
      poller=$!
      sleep 5
      tkill=$(date +%s.%N)
      if [[ $scenario == stop ]]; then
        kill -TERM "$u2pid"
      else
        kill -STOP "$u2pid" $(pgrep -P "$u2pid")
        sleep 7
        kill -CONT "$u2pid" $(pgrep -P "$u2pid")
      fi
      wait "$wrkpid" || true
      wait "$poller" || true
      read -r rps p50 p99 non2 errs < <(parse_wrk <"$TMP/wrk.out")
      gap=$(python3 - "$TMP/timeline.tsv" "$t0" <<'EOF'
import sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().split("\n")[1:] if l]
ok = {int(r[0]): int(r[1]) for r in rows}
start = int(float(sys.argv[2]) * 10) + 10   # skip the first second and the last one
end = max(ok) - 10 if ok else start
longest = cur = 0
for d in range(start, end):
    cur = cur + 1 if ok.get(d, 0) == 0 else 0
    longest = max(longest, cur)
print(f"{longest / 10:.1f} s")
EOF
)
      down=$(python3 -c "
import sys
t = open('$TMP/down.txt').read().split()
print(f'{float(t[0]) - $tkill:.1f} s' if t else 'never')" 2>/dev/null || echo never)
      retries="-"
      if [[ -n $admin ]]; then
        retries=$(curl -s "http://127.0.0.1:$admin/metrics" | awk '/^tandem_lb_retries_total/{s+=$2} END{print s+0}')
      fi
      stall=$(stall_ms "$t0" "$(date +%s.%N)")
      log "$scenario $kind: non2xx $non2 errors $errs gap $gap down $down retries $retries host stall $stall ms"
      echo "| $scenario | $kind | $non2 | $errs | $gap | $down | $retries | $stall ms |" >>"$SUMMARY"
      cp "$TMP/wrk.out" "$OUT/failover-$scenario-$kind.wrk.txt"
      for q in "$ppid" "$u1pid" "$u2pid"; do kill -CONT "$q" 2>/dev/null || true; kill "$q" 2>/dev/null || true; done
      wait 2>/dev/null || true
      PIDS=()
    done
  done
fi
cat "$SUMMARY"
