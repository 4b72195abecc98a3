#!/usr/bin/env bash
# System calls per proxied request, by call, for tandem-lb and HAProxy 2.6 under the same load:
# what a proxy asks of the kernel is most of its cost on loopback, and unlike requests per
# second a count does not move with the host. perf counts the `syscalls:sys_enter_*` tracepoints
# of each proxy's process (all threads) over a wrk run; the counts over wrk's requests give
# calls per request.
#
#   bash bench/lb_syscalls.sh [--duration S] [--sizes "/ /16k"] [--threads "1 2"]
#                             [--out DIR] [NAME=PATH]...
#
# Sizes as in lb_bench.sh: /16k a GET of a 16 KiB response, /up16k a POST of a 16 KiB body.
# Each proxy in front of two nginx upstreams (one-thread proxies pinned to CPU 0, wrk -t1 -c50
# pinned to CPU 1, keep-alive), one run each per size and thread count. NAME=PATH: other
# tandem-lb builds beside this one (an earlier commit, say). Results: DIR/syscalls.tsv,
# DIR/summary.md (also printed).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

DURATION=5 SIZES="/ /1k /16k" THREADS="1"
OUT="$ROOT/build/bench-lb-syscalls-$(date +%Y%m%d-%H%M%S)"
BUILDS=()
while (($#)); do
  case $1 in
    --duration) DURATION=$2; shift 2 ;;
    --sizes) SIZES=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    *=*) [[ -x ${1#*=} ]] || { echo "$1: not an executable" >&2; exit 2; }; BUILDS+=("$1"); shift ;;
    *) echo "unknown option $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
for t in nginx haproxy wrk curl perf python3 taskset; do
  command -v $t >/dev/null || { echo "missing $t (bash scripts/install-deps.sh; perf: apt-get install linux-perf)" >&2; exit 1; }
done
LB="$ROOT/build/release/lb/tandem-lb"
if [[ ! -x $LB ]]; then
  cmake --preset release >/dev/null && cmake --build --preset release --target tandem-lb >/dev/null
fi
BUILDS=("tandem-lb=$LB" "${BUILDS[@]}")
perf stat -e 'syscalls:sys_enter_getpid' true >/dev/null 2>&1 ||
  { echo "perf cannot count syscall tracepoints here (as root, with tracefs mounted)" >&2; exit 1; }
mkdir -p "$OUT"
BENCH_TMP_PREFIX=tandem-lbsys
source "$ROOT/bench/lib.sh"

U1P=$(free_port); upstream u1 "$U1P"; U2P=$(free_port); upstream u2 "$U2P"
# The calls a proxy makes on its data path (anything else shows up in the total).
EVENTS=(read readv recvfrom recvmsg write writev sendto sendmsg splice pipe2 epoll_wait
        epoll_pwait epoll_ctl accept4 close setsockopt getsockopt fcntl ioctl futex)
ev_list=$(printf 'syscalls:sys_enter_%s,' "${EVENTS[@]}")raw_syscalls:sys_enter

TSV="$OUT/syscalls.tsv"
echo -e "target\tthreads\tsize\trequests\tsyscall\tcount" >"$TSV"
count() { # NAME THREADS PID PORT SIZE
  local name=$1 threads=$2 pid=$3 port=$4 size=$5 requests
  wait_quiet || true
  perf stat -x '|' -e "$ev_list" -p "$pid" -o "$TMP/perf.$name" &
  local perf_pid=$!
  sleep 0.5  # (perf attaches to every thread before the load starts)
  run_size "http://127.0.0.1:$port" "$size" "$DURATION" >"$TMP/wrk.$name"
  kill -INT "$perf_pid"; wait "$perf_pid" || true
  requests=$(awk '/requests in/ {print $1}' "$TMP/wrk.$name")
  # (a size the upstreams do not serve would count the calls of 404s)
  if grep -q 'Non-2xx' "$TMP/wrk.$name"; then
    log "$name ${threads}t $size: $(grep 'Non-2xx' "$TMP/wrk.$name")"; exit 1
  fi
  awk -F'|' -v t="$name" -v th="$threads" -v s="$size" -v r="$requests" '
    $3 ~ /sys_enter/ { n = $3; sub(/.*sys_enter_?/, "", n); if (n == "") n = "total"
                       printf "%s\t%s\t%s\t%s\t%s\t%s\n", t, th, s, r, n, $1 }' "$TMP/perf.$name" >>"$TSV"
  log "$name ${threads}t $size: $requests requests"
}

for T in $THREADS; do
  if ((T == 1)); then PIN=0; else PIN=""; fi
  for b in "${BUILDS[@]}"; do
    LB=${b#*=}; p=$(free_port); tandem_lb "${b%%=*}" "$p" "$T" "$U1P" "$U2P"; pid=$LAST
    for s in $SIZES; do count "${b%%=*}" "$T" "$pid" "$p" "$s"; done
    kill "$pid"
  done
  p=$(free_port); haproxy_proxy haproxy "$p" "$T" "$U1P" "$U2P"; pid=$LAST
  for s in $SIZES; do count haproxy "$T" "$pid" "$p" "$s"; done
  kill "$pid"
  PIN=""
done

python3 - "$TSV" "$OUT/summary.md" <<'EOF'
import collections, csv, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
per = collections.defaultdict(dict)   # (threads, size) -> target -> syscall -> per request
for r in rows:
    n = int(r["requests"] or 0)
    if n:
        per[(r["threads"], r["size"])].setdefault(r["target"], {})[r["syscall"]] = int(r["count"]) / n
out = ["# System calls per request (perf tracepoints over one wrk run each)", ""]
for (threads, size), targets in sorted(per.items()):
    names = list(targets)
    calls = sorted({c for t in targets.values() for c, v in t.items() if v >= 0.005 and c != "total"})
    out += [f"## {threads} thread(s), `{size}`", "",
            "| call | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for c in calls + ["total"]:
        out.append(f"| {c} | " + " | ".join(f"{targets[t].get(c, 0):.2f}" for t in names) + " |")
    out.append("")
open(sys.argv[2], "w").write("\n".join(out) + "\n")
print("\n".join(out))
EOF
