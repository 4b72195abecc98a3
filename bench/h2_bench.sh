#!/usr/bin/env bash
# tandem-lb's HTTP/2 frontend side by side with HAProxy 2.6 (`bind ... proto h2`) and nginx 1.22
# (`listen ... http2`): h2c with prior knowledge on loopback, to the same two nginx upstreams in
# one run — over HTTP/1.1 (--upstream h1, the default), or over h2c (--upstream h2: nginx
# upstreams `listen ... http2`; tandem-lb `protocol: h2`, HAProxy `proto h2`, nginx `grpc_pass`,
# its only way to speak HTTP/2 to an upstream).
#
#   bash bench/h2_bench.sh [--reps N] [--duration S] [--sizes "/ /16k"] [--streams "1 10"]
#                          [--threads "1 2"] [--connections N] [--upstream h1|h2] [--out DIR]
#                          [--also NAME=PATH]...
#
# h2load -t1 (--connections connections, --streams concurrent streams each, -D duration after a
# 1 s warm-up) pinned to CPU 1; one-thread proxies pinned to CPU 0 (the same placement for each),
# two-thread ones on both CPUs. Every target x size x streams, the order rotated every repetition
# (interleaved); before each run the machine must be quiet, and a run the host stalled (see
# bench/lib.sh) is repeated. Per run: requests/s, mean time per request, failed and errored
# requests, and the proxy's own CPU per request (user and system, from /proc/PID/stat: every
# thread; nginx's workers summed). Medians of --reps runs; ratios to HAProxy with the same
# thread count.
# --also NAME=PATH: another tandem-lb binary (an earlier build, say) measured beside the others,
# as NAME-Nt with the same configuration and placement.
# Results: $OUT/results.tsv, $OUT/summary.md (also printed).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

REPS=5 DURATION=5 SIZES="/ /16k" STREAMS="1 10" THREADS="1" CONNECTIONS=32 UPSTREAM=h1 ALSO=()
OUT="$ROOT/build/bench-h2-$(date +%Y%m%d-%H%M%S)"
while (($#)); do
  case $1 in
    --reps) REPS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --sizes) SIZES=$2; shift 2 ;;
    --streams) STREAMS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --connections) CONNECTIONS=$2; shift 2 ;;
    --upstream) UPSTREAM=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --also) [[ $2 == *=* && -x ${2#*=} ]] || { echo "--also NAME=PATH: PATH must be an executable tandem-lb" >&2; exit 2; }
            ALSO+=("$2"); shift 2 ;;
    *) echo "unknown option $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
for t in nginx haproxy h2load curl python3 taskset; do
  command -v $t >/dev/null || { echo "missing $t: bash scripts/install-deps.sh" >&2; exit 1; }
done
LB="$ROOT/build/release/lb/tandem-lb"
cmake --preset release >/dev/null && cmake --build --preset release --target tandem-lb >/dev/null
mkdir -p "$OUT"
BENCH_TMP_PREFIX=tandem-h2bench
source "$ROOT/bench/lib.sh"

parse_h2load() { # h2load output on stdin -> "rps mean_ms succeeded failed errored"
  python3 -c '
import re, sys
t = sys.stdin.read()
def ms(v, u): return float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[u]
rps = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", t)
req = re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored", t)
lat = re.search(r"time for request:\s+[\d.]+\w+\s+[\d.]+\w+\s+([\d.]+)(us|ms|s)", t)
print(rps.group(1) if rps else 0, ms(*lat.groups()) if lat else 0,
      *(req.groups() if req else (0, -1, -1)))'
}

[[ $UPSTREAM == h1 || $UPSTREAM == h2 ]] || { echo "--upstream is h1 or h2" >&2; exit 2; }
if [[ $UPSTREAM == h2 ]]; then
  # (sendfile off: nginx's HTTP/2 sendfile path corks the socket and leaves TCP_NODELAY off, so
  # the next response's HEADERS waits on the peer's delayed ACK — 40 ms stalls for any proxy
  # whose upstream connection carries one stream at a time, seen with nginx's grpc_pass)
  UPSTREAM_SENDFILE=off
  UPSTREAM_LISTEN=http2 TANDEM_CLUSTER="    protocol: h2"
  HAPROXY_SERVER="proto h2 check-proto h2" NGINX_PASS="grpc_pass grpc://clusters;"
fi
U1=$(free_port); upstream u1 "$U1"
U2=$(free_port); upstream u2 "$U2"
declare -A PORT PID_OF THR
TARGETS=()
WAIT_CURL=(--http2-prior-knowledge)
for T in $THREADS; do
  PIN=""; [[ $T == 1 ]] && PIN=0
  p=$(free_port); tandem_lb "tandem-lb-${T}t" "$p" "$T" "$U1" "$U2" "h2c: true"
  PORT[tandem-lb-${T}t]=$p; PID_OF[tandem-lb-${T}t]=$LAST
  p=$(free_port); HAPROXY_BIND="proto h2" haproxy_proxy "haproxy-${T}t" "$p" "$T" "$U1" "$U2"
  PORT[haproxy-${T}t]=$p; PID_OF[haproxy-${T}t]=$LAST
  p=$(free_port); NGINX_LISTEN=http2 nginx_proxy "nginx-${T}w" "$p" "$T" "$U1" "$U2"
  PORT[nginx-${T}w]=$p; PID_OF[nginx-${T}w]=$LAST
  THR[tandem-lb-${T}t]=$T; THR[haproxy-${T}t]=$T; THR[nginx-${T}w]=$T
  TARGETS+=("tandem-lb-${T}t" "haproxy-${T}t" "nginx-${T}w")
  for spec in "${ALSO[@]}"; do
    name="${spec%%=*}-${T}t"
    p=$(free_port); LB="${spec#*=}" tandem_lb "$name" "$p" "$T" "$U1" "$U2" "h2c: true"
    PORT[$name]=$p; PID_OF[$name]=$LAST; THR[$name]=$T; TARGETS+=("$name")
  done
done
PIN=""
# Each proxy must speak h2c and spread requests over both upstreams.
for t in "${TARGETS[@]}"; do
  seen=$(for _ in 1 2 3 4; do curl -s --http2-prior-knowledge -D- -o /dev/null "http://127.0.0.1:${PORT[$t]}/" | tr -d '\r' | awk 'tolower($1)=="x-upstream:"{print $2}'; done | sort -u | wc -l)
  [[ $seen == 2 ]] || { echo "$t does not alternate between the upstreams over h2c" >&2; exit 1; }
done

RESULTS="$OUT/results.tsv"
echo -e "rep\ttarget\tthreads\tsize\tstreams\trps\tmean_ms\tsucceeded\tfailed\terrored\tuser_us_per_req\tsys_us_per_req\tquiet\tstall_ms" >"$RESULTS"
HZ=$(getconf CLK_TCK)
n=${#TARGETS[@]}
for ((rep = 1; rep <= REPS; rep++)); do
  for size in $SIZES; do
    for m in $STREAMS; do
      for ((i = 0; i < n; i++)); do
        t=${TARGETS[$(((i + rep) % n))]}
        for attempt in 1 2 3 4 5; do
          quiet=1; wait_quiet || quiet=0
          start=$(date +%s.%N)
          before=$(target_cpu "${PID_OF[$t]}")
          read -r rps mean ok failed errored < <(taskset -c 1 h2load -t1 -c"$CONNECTIONS" -m"$m" \
            --warm-up-time=1 -D "$DURATION" "http://127.0.0.1:${PORT[$t]}$size" 2>&1 | parse_h2load)
          after=$(target_cpu "${PID_OF[$t]}")
          stall=$(stall_ms "$start" "$(date +%s.%N)")
          # (the CPU counted includes the warm-up second: divided by the requests of the whole
          # run, rps x (duration + 1))
          read -r user_us sys_us < <(python3 -c "
b, a, rps, d, hz = '$before'.split(), '$after'.split(), float('$rps'), $DURATION + 1, $HZ
n = max(rps * d, 1)
print(round((int(a[0]) - int(b[0])) / hz * 1e6 / n, 2), round((int(a[1]) - int(b[1])) / hz * 1e6 / n, 2))")
          log "rep $rep $t $size m=$m: $rps req/s mean ${mean} ms failed $failed errored $errored user ${user_us} us/req sys ${sys_us} us/req stall ${stall} ms"
          [[ ${stall%.*} -lt $PAUSE_MS ]] && break
        done
        echo -e "$rep\t$t\t${THR[$t]}\t$size\t$m\t$rps\t$mean\t$ok\t$failed\t$errored\t$user_us\t$sys_us\t$quiet\t$stall" >>"$RESULTS"
      done
    done
  done
done

python3 - "$RESULTS" "$OUT/summary.md" "$DURATION" "$REPS" "$CONNECTIONS" "$UPSTREAM" <<'EOF'
import csv, statistics, subprocess, sys
from collections import defaultdict
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
dur, reps, conns = sys.argv[3], sys.argv[4], sys.argv[5]
to = "HTTP/1.1" if sys.argv[6] == "h1" else "h2c (nginx proxy: grpc_pass)"
med = defaultdict(dict)
fails = defaultdict(int)
for key in {(r["target"], r["threads"], r["size"], r["streams"]) for r in rows}:
    runs = [r for r in rows if (r["target"], r["threads"], r["size"], r["streams"]) == key]
    for f in ("rps", "mean_ms", "user_us_per_req", "sys_us_per_req"):
        med[key][f] = statistics.median(float(r[f]) for r in runs)
    fails[key] = sum(int(r["failed"]) + int(r["errored"]) for r in runs)
ver = lambda cmd: subprocess.run(cmd, capture_output=True, text=True).stdout + subprocess.run(cmd, capture_output=True, text=True).stderr
out = ["# HTTP/2 (h2c prior knowledge): tandem-lb vs HAProxy vs nginx", "",
       f"h2load -t1 -c{conns} -D{dur}s (1 s warm-up) pinned to CPU 1; one-thread proxies pinned to CPU 0; "
       f"{reps} interleaved repetitions, medians; {to} to two nginx upstreams. "
       f"{ver(['haproxy', '-v']).splitlines()[0]}; {ver(['nginx', '-v']).strip()}", "",
       "| threads | size | streams/conn | target | req/s | vs HAProxy | mean ms | user µs/req | sys µs/req | failed |",
       "|---|---|---|---|---|---|---|---|---|---|"]
order = lambda k: (int(k[1]), k[2], int(k[3]), {"t": 0, "h": 1, "n": 2}.get(k[0][0], 3))
for key in sorted(med, key=order):
    t, thr, size, m = key
    hap = next((v for k, v in med.items() if k[0].startswith("haproxy") and k[1:] == key[1:]), None)
    ratio = f"{med[key]['rps'] / hap['rps']:.2f}x" if hap and hap["rps"] else "-"
    v = med[key]
    out.append(f"| {thr} | {size} | {m} | {t} | {v['rps']:.0f} | {ratio} | {v['mean_ms']:.2f} | "
               f"{v['user_us_per_req']:.1f} | {v['sys_us_per_req']:.1f} | {fails[key]} |")
open(sys.argv[2], "w").write("\n".join(out) + "\n")
print("\n".join(out))
EOF
