#!/usr/bin/env bash
# Slow and greedy clients against tandem-lb, HAProxy 2.6 and nginx 1.22 (Debian 12), side by side,
# with slowhttptest (apt-get install slowhttptest):
#
#   bash bench/slow_clients.sh [--connections N] [--seconds S] [--modes "slowloris slowbody slowread"]
#                              [--out DIR]
#
# Each proxy (one thread/worker, in front of one nginx upstream) gets each attack in turn:
#   slowloris  -H: headers trickled, a few bytes every 5 s;
#   slowbody   -B: a POST whose 8 KiB body trickles ~4 bytes every 5 s (to an upstream that
#                  reads the whole body before it answers: test/fakes' fake-upstream /echo;
#                  nginx's `return` would answer at once, and tandem-lb relays such an early
#                  answer and closes);
#   slowread   -X: requests for a 256 KiB response read 32 bytes every 5 s through a 1-byte
#                  window, 3 per connection;
# N connections (3000), opened 300 a second, for S seconds (30). Meanwhile a normal client
# sends GET / every 200 ms on a new connection (its latency and failures are the service seen
# by everyone else), and the proxy's resident memory is sampled every second.
# The timeouts are the same for all three: 10 s for a request header (tandem-lb's and
# HAProxy's default), 30 s between reads of a body and writes of a response; tandem-lb adds its
# default minimum body rate (1 KiB/s after 10 s, limits.minBodyRate), which the others lack.
# Results: DIR/summary.md (also printed), DIR/<proxy>-<mode>.csv (slowhttptest's per-second
# socket states).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

CONNS=3000 SECONDS_=30 MODES="slowloris slowbody slowread"
OUT="$ROOT/build/bench-slow-clients-$(date +%Y%m%d-%H%M%S)"
while (($#)); do
  case $1 in
    --connections) CONNS=$2; shift 2 ;;
    --seconds) SECONDS_=$2; shift 2 ;;
    --modes) MODES=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    *) echo "unknown option $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
for t in nginx haproxy slowhttptest curl python3; do
  command -v $t >/dev/null || { echo "missing $t: apt-get install -y nginx haproxy slowhttptest curl" >&2; exit 1; }
done
LB="$ROOT/build/release/lb/tandem-lb"
FAKE="$ROOT/build/release/test/fake-upstream"
if [[ ! -x $LB || ! -x $FAKE ]]; then
  cmake --preset release >/dev/null &&
    cmake --build --preset release --target tandem-lb fake-upstream >/dev/null
fi
mkdir -p "$OUT"
TMP=$(mktemp -d /tmp/tandem-slow.XXXXXX)
chmod 755 "$TMP"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)"
log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { # PORT PID
  for _ in $(seq 1 200); do
    kill -0 "$2" 2>/dev/null || { echo "process $2 exited; see $TMP" >&2; return 1; }
    [[ $(curl -s -o /dev/null -m 1 -w '%{http_code}' "http://127.0.0.1:$1/" || true) == 200 ]] && return 0
    sleep 0.05
  done
  echo "port $1 did not answer" >&2; return 1
}
start() { # NAME cmd... -> pid in $LAST
  "${@:2}" >"$TMP/$1.out" 2>&1 &
  LAST=$!; PIDS+=("$LAST")
}
rss_kib() { # PID -> KiB, with its children (nginx workers)
  local total=0 p
  for p in "$1" $(pgrep -P "$1" 2>/dev/null || true); do
    total=$((total + $(awk '/^VmRSS/{print $2}' /proc/$p/status 2>/dev/null || echo 0)))
  done
  echo $total
}

# ---- the upstream and the three proxies ---------------------------------------------------
head -c 262144 /dev/zero | tr '\0' c >"$TMP/256k"
start fake "$FAKE" --name up
for _ in $(seq 1 100); do grep -q listening "$TMP/fake.out" 2>/dev/null && break; sleep 0.05; done
FAKE_PORT=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$TMP/fake.out")
[[ -n $FAKE_PORT ]] || { echo "fake-upstream did not start: $(cat "$TMP/fake.out")" >&2; exit 1; }
U=$(free_port)
mkdir -p "$TMP/up"
cat >"$TMP/up/nginx.conf" <<EOF
worker_processes 1; daemon off; pid $TMP/up/nginx.pid; error_log $TMP/up/error.log warn;
events { worker_connections 16384; }
http {
  access_log off; keepalive_requests 1000000; default_type text/plain;
  client_body_temp_path $TMP/up/b; proxy_temp_path $TMP/up/p; fastcgi_temp_path $TMP/up/f;
  uwsgi_temp_path $TMP/up/u; scgi_temp_path $TMP/up/s;
  server {
    listen 127.0.0.1:$U backlog=4096;
    location = / { return 200 "ok\n"; }
    location = /256k { root $TMP; }
    location = /echo { proxy_pass http://127.0.0.1:$FAKE_PORT; proxy_request_buffering off; }
    location / { return 200 "ok\n"; }
  }
}
EOF
start upstream nginx -c "$TMP/up/nginx.conf" -p "$TMP/up/"
wait_http "$U" "$LAST"

declare -A PORT PID
P=$(free_port)
cat >"$TMP/lb.yaml" <<EOF
listen: 127.0.0.1:$P
admin: 127.0.0.1:0
threads: 1
clusters: [{name: up, address: 127.0.0.1:$U}]
healthCheck: {enabled: false}
timeouts: {clientHeader: 10s, clientBody: 30s}
EOF
start tandem-lb "$LB" -c "$TMP/lb.yaml"; PORT[tandem-lb]=$P; PID[tandem-lb]=$LAST
wait_http "$P" "$LAST"

P=$(free_port)
mkdir -p "$TMP/haproxy"
cat >"$TMP/haproxy/haproxy.cfg" <<EOF
global
  nbthread 1
  maxconn $((CONNS * 2 + 1000))
defaults
  mode http
  option http-keep-alive
  timeout connect 2s
  timeout client 30s
  timeout server 30s
  timeout http-request 10s
  timeout http-keep-alive 10s
frontend fe
  bind 127.0.0.1:$P
  default_backend be
backend be
  server up 127.0.0.1:$U
EOF
start haproxy haproxy -db -f "$TMP/haproxy/haproxy.cfg"; PORT[haproxy]=$P; PID[haproxy]=$LAST
wait_http "$P" "$LAST"

P=$(free_port)
mkdir -p "$TMP/nginx"
cat >"$TMP/nginx/nginx.conf" <<EOF
worker_processes 1; daemon off; pid $TMP/nginx/nginx.pid; error_log $TMP/nginx/error.log crit;
worker_rlimit_nofile $((CONNS * 3 + 1000));
events { worker_connections $((CONNS * 2 + 1000)); }
http {
  access_log off;
  client_body_temp_path $TMP/nginx/b; proxy_temp_path $TMP/nginx/p; fastcgi_temp_path $TMP/nginx/f;
  uwsgi_temp_path $TMP/nginx/u; scgi_temp_path $TMP/nginx/s;
  client_header_timeout 10s; client_body_timeout 30s; send_timeout 30s; keepalive_timeout 10s;
  upstream up { server 127.0.0.1:$U; keepalive 64; }
  server {
    listen 127.0.0.1:$P backlog=4096;
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
EOF
start nginx nginx -c "$TMP/nginx/nginx.conf" -p "$TMP/nginx/"; PORT[nginx]=$P; PID[nginx]=$LAST
wait_http "$P" "$LAST"

# Until what an attack left on PORT has closed (at most 60 s).
wait_idle() {
  for _ in $(seq 1 120); do
    (( $(ss -Htn state established "( sport = :$1 )" | wc -l) < 5 )) && return 0
    sleep 0.5
  done
}

# ---- one attack ---------------------------------------------------------------------------
attack() { # PROXY MODE
  local proxy=$1 mode=$2 port=${PORT[$1]} pid=${PID[$1]} args
  case $mode in
    slowloris) args=(-H -i 5 -x 4 -u "http://127.0.0.1:$port/") ;;
    slowbody) args=(-B -i 5 -x 2 -s 8192 -u "http://127.0.0.1:$port/echo") ;;
    slowread) args=(-X -w 1 -y 1 -n 5 -z 32 -k 3 -u "http://127.0.0.1:$port/256k") ;;
  esac
  local rss0; rss0=$(rss_kib "$pid")
  # A normal client: GET / on a new connection every 200 ms, each within 5 s or failed.
  ( end=$((SECONDS + SECONDS_))
    while ((SECONDS < end)); do
      curl -s -o /dev/null -m 5 -w '%{http_code} %{time_total}\n' "http://127.0.0.1:$port/" || echo "000 5"
      sleep 0.2
    done >"$TMP/probe.$proxy.$mode" ) &
  local prober=$!
  ( while kill -0 "$prober" 2>/dev/null; do rss_kib "$pid"; sleep 1; done >"$TMP/rss.$proxy.$mode" ) &
  local sampler=$!
  slowhttptest "${args[@]}" -c "$CONNS" -r 300 -l "$SECONDS_" -p 3 -g \
    -o "$OUT/$proxy-$mode" >"$OUT/$proxy-$mode.log" 2>&1 || true
  wait "$prober" || true
  wait "$sampler" || true
  python3 - "$OUT/$proxy-$mode.csv" "$TMP/probe.$proxy.$mode" "$TMP/rss.$proxy.$mode" \
    "$proxy" "$mode" "$rss0" "$OUT/$proxy-$mode.log" <<'PY' >>"$TMP/rows"
import csv, statistics, sys
csvf, probe, rssf, proxy, mode, rss0, out = sys.argv[1:8]
rows = list(csv.reader(open(csvf)))[1:]
conn = [(int(r[0]), int(r[3])) for r in rows if len(r) >= 5]
avail = [r[4].strip() for r in rows if len(r) >= 5]
peak = max((c for _, c in conn), default=0)
def at(t):
    v = [c for s, c in conn if s == t]
    return v[0] if v else 0
held = [s for s, c in conn if c > 0.1 * peak and peak > 0]
# the time the proxy lets a slow connection last: the first second after the peak when fewer
# than 10% of the peak are still connected
after_peak = [s for s, c in conn if peak and s > next(x for x, y in conn if y == peak) and c < 0.1 * peak]
# (slowhttptest stops early once every connection was closed: then the last second it saw)
all_closed = "all sockets are closed" in open(out).read().lower()
if after_peak:
    cut = f"{after_peak[0]} s"
elif all_closed and conn:
    cut = f"{conn[-1][0] + 1} s"
else:
    cut = "not within the test"
lat = []
fail = 0
for line in open(probe):
    code, t = line.split()
    if code == "200":
        lat.append(float(t) * 1000)
    else:
        fail += 1
rss = [int(x) for x in open(rssf).read().split()] or [int(rss0)]
# (slowhttptest draws the probe as a line at the connection count while the service answers,
# at 0 while it does not)
unavail = sum(1 for a in avail if a == "0")
p50 = statistics.median(lat) if lat else 0
p99 = sorted(lat)[int(len(lat) * 0.99) - 1] if lat else 0
print(f"| {mode} | {proxy} | {peak} | {at(5)} / {at(15)} / {at(25)} | {cut} | {unavail} | "
      f"{len(lat)} ok, {fail} failed | {p50:.1f} / {p99:.1f} / {max(lat, default=0):.1f} | "
      f"{int(rss0) // 1024} -> {max(rss) // 1024} MiB |")
PY
  log "$mode on $proxy: $(tail -1 "$TMP/rows")"
}

{
  echo "# Slow clients: tandem-lb vs HAProxy $(haproxy -v | head -1 | awk '{print $3}') vs nginx $(nginx -v 2>&1 | sed 's|.*/||')"
  echo
  echo "$(date -u +%FT%TZ), $(nproc) CPUs; slowhttptest $CONNS connections at 300/s for ${SECONDS_} s per attack;"
  echo "timeouts: header 10 s, body/response 30 s between reads/writes for all three; tandem-lb also"
  echo "limits.minBodyRate 1 KiB/s after 10 s. A normal client sends GET / every 200 ms meanwhile."
  echo
  echo "| attack | proxy | peak slow connections | connected at 5 / 15 / 25 s | cut at | s unavailable (slowhttptest probe) | normal requests | latency p50 / p99 / max ms | RSS before -> peak |"
  echo "|---|---|---|---|---|---|---|---|---|"
} >"$OUT/summary.md"
: >"$TMP/rows"
for mode in $MODES; do
  for proxy in tandem-lb haproxy nginx; do
    attack "$proxy" "$mode"
    wait_idle "${PORT[$proxy]}"
  done
done
cat "$TMP/rows" >>"$OUT/summary.md"
cat "$OUT/summary.md"
