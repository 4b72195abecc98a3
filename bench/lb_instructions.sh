#!/usr/bin/env bash
# User-space instructions per proxied request, counted by valgrind (callgrind): repeatable for
# the same binary and inputs whatever else the machine does, so two builds of tandem-lb (before
# and after a change) and HAProxy compare without the noise of a 2-vCPU VM's throughput runs.
#
#   bash bench/lb_instructions.sh [--requests "1000 3000"] [--sizes "/ /16k"] [--no-haproxy]
#                                 [--out DIR] NAME=PATH [NAME=PATH]...
#
# Each proxy runs with one thread (no health checks: nothing but requests to count) in front of
# two nginx upstreams; curl sends the requests one after another on one keep-alive connection.
# Each proxy is run twice, with the smaller and the larger request count; the difference over
# the difference in requests is its cost per request (startup and shutdown cancel out).
# Results: DIR/instructions.tsv and DIR/summary.md (also printed): per request, and for each
# tandem-lb build where its instructions go by the library the code comes from (Beast, Asio,
# libc, its own; bench/instructions_by_library.py); DIR/callgrind.* for callgrind_annotate.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

REQUESTS="1000 3000" SIZES="/ /16k" HAPROXY=1
OUT="$ROOT/build/bench-lb-instructions-$(date +%Y%m%d-%H%M%S)"
BUILDS=()
while (($#)); do
  case $1 in
    --requests) REQUESTS=$2; shift 2 ;;
    --sizes) SIZES=$2; shift 2 ;;
    --no-haproxy) HAPROXY=0; shift ;;
    --out) OUT=$2; shift 2 ;;
    *=*) [[ -x ${1#*=} ]] || { echo "$1: not an executable" >&2; exit 2; }; BUILDS+=("$1"); shift ;;
    *) echo "unknown option $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
((${#BUILDS[@]})) || BUILDS=("tandem-lb=$ROOT/build/release/lb/tandem-lb")
read -r N1 N2 <<<"$REQUESTS"
for t in nginx haproxy curl valgrind callgrind_annotate python3; do
  command -v $t >/dev/null || { echo "missing $t (apt-get install valgrind nginx haproxy curl)" >&2; exit 1; }
done
mkdir -p "$OUT"
TMP=$(mktemp -d /tmp/tandem-lbinstr.XXXXXX)
chmod 755 "$TMP"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { # PORT PID
  for _ in $(seq 1 600); do
    kill -0 "$2" 2>/dev/null || { echo "process $2 exited; see $TMP" >&2; return 1; }
    [[ $(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$1/" || true) == 200 ]] && return 0
    sleep 0.1
  done
  echo "port $1 did not answer" >&2; return 1
}

head -c 1024 /dev/zero | tr '\0' a >"$TMP/1k"
head -c 16384 /dev/zero | tr '\0' b >"$TMP/16k"
head -c 65536 /dev/zero | tr '\0' c >"$TMP/64k"
upstream() { # NAME PORT
  mkdir -p "$TMP/$1"
  cat >"$TMP/$1/nginx.conf" <<EOF
worker_processes 1; daemon off; pid $TMP/$1/nginx.pid; error_log $TMP/$1/error.log warn;
events { worker_connections 1024; }
http {
  access_log off; keepalive_requests 1000000; keepalive_timeout 65s; default_type text/plain;
  client_body_temp_path $TMP/$1/b; proxy_temp_path $TMP/$1/p; fastcgi_temp_path $TMP/$1/f;
  uwsgi_temp_path $TMP/$1/u; scgi_temp_path $TMP/$1/s;
  server {
    listen 127.0.0.1:$2;
    location = / { return 200 "ok\n"; }
    location = /1k { root $TMP; }
    location = /16k { root $TMP; }
    location = /64k { root $TMP; }
  }
}
EOF
  nginx -c "$TMP/$1/nginx.conf" -p "$TMP/$1/" &
  PIDS+=($!)
  wait_http "$2" "$!"
}
U1=$(free_port); upstream u1 "$U1"
U2=$(free_port); upstream u2 "$U2"

# Runs `cmd...` under callgrind, sends N requests for SIZE, stops it; prints the total count.
count() { # NAME N SIZE PORT cmd...
  local name=$1 n=$2 size=$3 port=$4; shift 4
  local outf="$OUT/callgrind.$name.$n.${size//\//_}"
  valgrind --tool=callgrind --callgrind-out-file="$outf" --trace-children=no "$@" \
    >"$TMP/$name.$n.log" 2>&1 &
  local pid=$!
  wait_http "$port" "$pid"
  for _ in $(seq 1 "$n"); do echo "url = \"http://127.0.0.1:$port$size\""; echo "output = /dev/null"; done >"$TMP/urls"
  # (every answer a 200: a size the upstreams do not serve would count the cost of 404s)
  curl -s -w '%{http_code}\n' -K "$TMP/urls" | sort | uniq -c >"$TMP/codes"
  if [[ $(awk '$2 != 200 {print}' "$TMP/codes") ]]; then
    echo "$name $size: answers other than 200: $(tr '\n' ' ' <"$TMP/codes")" >&2; kill -TERM "$pid"; exit 1
  fi
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  # The last `summary:`/`totals:` line of the dump is the whole run's instruction count.
  awk '/^(summary|totals):/ {v = $2} END {print v + 0}' "$outf"
}

tandem_config() { # PORT
  cat <<EOF
listen: 127.0.0.1:$1
admin: 127.0.0.1:0
threads: 1
clusters:
  - {name: u1, address: 127.0.0.1:$U1}
  - {name: u2, address: 127.0.0.1:$U2}
healthCheck:
  enabled: false
EOF
}
haproxy_config() { # PORT
  cat <<EOF
global
  nbthread 1
defaults
  mode http
  option http-keep-alive
  http-reuse always
  timeout connect 2s
  timeout client 30s
  timeout server 30s
frontend fe
  bind 127.0.0.1:$1
  default_backend clusters
backend clusters
  balance roundrobin
  server u1 127.0.0.1:$U1
  server u2 127.0.0.1:$U2
EOF
}

RESULTS="$OUT/instructions.tsv"
echo -e "proxy\tsize\trequests\tinstructions" >"$RESULTS"
TARGETS=("${BUILDS[@]}")
((HAPROXY)) && TARGETS+=("haproxy=$(command -v haproxy)")
for size in $SIZES; do
  for spec in "${TARGETS[@]}"; do
    name=${spec%%=*} bin=${spec#*=}
    for n in $N1 $N2; do
      p=$(free_port)
      if [[ $name == haproxy ]]; then
        haproxy_config "$p" >"$TMP/haproxy.cfg"
        total=$(count "$name" "$n" "$size" "$p" "$bin" -db -f "$TMP/haproxy.cfg")
      else
        tandem_config "$p" >"$TMP/$name.yaml"
        total=$(count "$name" "$n" "$size" "$p" "$bin" -c "$TMP/$name.yaml")
      fi
      log "$name $size: $n requests, $total instructions in all"
      echo -e "$name\t$size\t$n\t$total" >>"$RESULTS"
    done
  done
done

python3 - "$RESULTS" "$N1" "$N2" >"$OUT/summary.md" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
n1, n2 = int(sys.argv[2]), int(sys.argv[3])
total = {(r["proxy"], r["size"], int(r["requests"])): int(r["instructions"]) for r in rows}
proxies = list(dict.fromkeys(r["proxy"] for r in rows))
sizes = list(dict.fromkeys(r["size"] for r in rows))
print(f"# User-space instructions per request (callgrind; ({n2} - {n1}) requests, one thread, one keep-alive connection)\n")
print("| proxy | " + " | ".join(f"`{s}`" for s in sizes) + " |")
print("|---|" + "---|" * len(sizes))
per = {}
for p in proxies:
    cells = []
    for s in sizes:
        a, b = total.get((p, s, n1)), total.get((p, s, n2))
        per[p, s] = (b - a) / (n2 - n1) if a is not None and b is not None else None
        cells.append(f"{per[p, s]:,.0f}" if per[p, s] else "-")
    print(f"| {p} | " + " | ".join(cells) + " |")
base = proxies[0]
for p in proxies[1:]:
    ratios = [f"`{s}` {per[p, s] / per[base, s]:.3f}" for s in sizes if per.get((p, s)) and per.get((base, s))]
    print(f"\n{p} / {base}: " + ", ".join(ratios))
EOF
for spec in "${BUILDS[@]}"; do
  name=${spec%%=*}
  for size in $SIZES; do
    dump="$OUT/callgrind.$name" suffix=${size//\//_}
    echo
    echo "Where $name's instructions per request go at \`$size\` (each function's own, charged to the source of the code that ran: inlined templates count for the library they come from):"
    echo
    echo "| code | instructions per request | share |"
    echo "|---|---|---|"
    python3 "$ROOT/bench/instructions_by_library.py" "$ROOT" "$N1" "$N2" "$dump.$N1.$suffix" "$dump.$N2.$suffix"
  done
done >>"$OUT/summary.md"
cat "$OUT/summary.md"
