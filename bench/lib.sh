# The bench scripts' harness (sourced: set ROOT, OUT, LB and BENCH_TMP_PREFIX first): a
# temporary directory removed at exit with every process started, host-stall watchers, free
# ports and readiness waits, nginx upstreams, tandem-lb, HAProxy and nginx as proxies, a wait
# for a quiet machine, a process's CPU time, wrk's output parsed.
# shellcheck shell=bash
TMP=$(mktemp -d "/tmp/${BENCH_TMP_PREFIX:-tandem-bench}.XXXXXX")
chmod 755 "$TMP"   # nginx workers (nobody) serve the payload files from here
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -CONT "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
# Host stalls of the virtual machine, noted all along by one watcher per CPU (see measure()).
PAUSE_MS=25
for cpu in $(seq 0 $(( $(nproc) - 1 ))); do
  taskset -c "$cpu" python3 "$ROOT/bench/pause_watch.py" "$TMP/pauses.$cpu" "$PAUSE_MS" &
  PIDS+=($!)
done
stall_ms() { # START END (seconds since the epoch) -> the longest stall noted in between, ms
  cat "$TMP"/pauses.* 2>/dev/null | awk -v s="$1" -v e="$2" '$1 >= s && $1 <= e + 0.2 && $2 > m {m = $2} END {print m + 0}'
}
ulimit -n "$(ulimit -Hn)"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
WAIT_CURL=()  # extra curl options of the readiness checks (--http2-prior-knowledge: h2c only)
wait_http() { # PORT PATH PID
  for _ in $(seq 1 200); do
    kill -0 "$3" 2>/dev/null || { echo "process $3 exited; see $TMP" >&2; return 1; }
    [[ $(curl -s "${WAIT_CURL[@]}" -o /dev/null -m 1 -w '%{http_code}' "http://127.0.0.1:$1$2" || true) == 200 ]] && return 0
    sleep 0.05
  done
  echo "port $1 did not answer" >&2; return 1
}
wait_https() { # PORT PID
  for _ in $(seq 1 200); do
    kill -0 "$2" 2>/dev/null || { echo "process $2 exited; see $TMP" >&2; return 1; }
    [[ $(curl -sk -o /dev/null -m 1 -w '%{http_code}' "https://127.0.0.1:$1/" || true) == 200 ]] && return 0
    sleep 0.05
  done
  echo "port $1 did not answer over TLS" >&2; return 1
}
PIN=""  # when set: the CPUs a started process may use (taskset -c)
start() { # NAME cmd... -> pid in $LAST
  if [[ -n $PIN ]]; then
    taskset -c "$PIN" "${@:2}" >"$TMP/$1.out" 2>&1 &
  else
    "${@:2}" >"$TMP/$1.out" 2>&1 &
  fi
  LAST=$!; PIDS+=("$LAST")
}

# ---- load ------------------------------------------------------------------------------
run_wrk() { # URL DURATION [extra wrk args] -> wrk output (-t1 -c50, pinned to CPU 1)
  taskset -c 1 wrk -t1 -c50 -d"$2"s --latency "${@:3}" "$1" 2>&1
}
# A size as measured: /16k is a GET of a 16 KiB response, /up16k a POST of a 16 KiB body (to
# /upload, answered "ok"). wrk_size SIZE -> "PATH BYTES" (BYTES: the upload's, 0 for a GET)
wrk_size() {
  case $1 in
    /up*) local n=${1#/up} mult=1
          case $n in *k) mult=1024; n=${n%k} ;; *m) mult=1048576; n=${n%m} ;; esac
          echo "/upload $((n * mult))" ;;
    *) echo "$1 0" ;;
  esac
}
# wrk on SIZE (see wrk_size) at URL-PREFIX for DURATION seconds -> wrk output
run_size() { # URL-PREFIX SIZE DURATION
  local path bytes
  read -r path bytes < <(wrk_size "$2")
  if ((bytes > 0)); then
    WRK_UPLOAD_BYTES=$bytes run_wrk "$1$path" "$3" -s "$ROOT/bench/wrk_upload.lua"
  else
    run_wrk "$1$path" "$3"
  fi
}

# ---- upstreams --------------------------------------------------------------------------
head -c 1024 /dev/zero | tr '\0' a >"$TMP/1k"
head -c 16384 /dev/zero | tr '\0' b >"$TMP/16k"
head -c 65536 /dev/zero | tr '\0' c >"$TMP/64k"
head -c 1048576 /dev/zero | tr '\0' d >"$TMP/1m"
upstream() { # NAME PORT -> pid in $LAST (UPSTREAM_LISTEN=http2: h2c with prior knowledge only)
  mkdir -p "$TMP/$1"
  cat >"$TMP/$1/nginx.conf" <<EOF
worker_processes 1; daemon off; pid $TMP/$1/nginx.pid; error_log $TMP/$1/error.log warn;
events { worker_connections 16384; }
http {
  access_log off; keepalive_requests 1000000; keepalive_timeout 65s; sendfile ${UPSTREAM_SENDFILE:-on};
  client_body_temp_path $TMP/$1/b; proxy_temp_path $TMP/$1/p; fastcgi_temp_path $TMP/$1/f;
  uwsgi_temp_path $TMP/$1/u; scgi_temp_path $TMP/$1/s; default_type text/plain;
  open_file_cache max=16 inactive=600s;
  server {
    listen 127.0.0.1:$2 backlog=4096 ${UPSTREAM_LISTEN:-}; add_header X-Upstream $1 always;
    location = / { return 200 "ok\n"; }
    location = /healthz { return 200 "healthy\n"; }
    location = /1k { root $TMP; }
    location = /16k { root $TMP; }
    location = /64k { root $TMP; }
    location = /1m { root $TMP; }
    # Uploads: the body read whole (proxied to this nginx's own socket, which only answers),
    # then a short answer. (A plain `return` answers before the body has come.)
    location = /upload { client_max_body_size 4m; client_body_buffer_size 1m;
                         proxy_pass http://self_$1/uploaded; proxy_http_version 1.1;
                         proxy_set_header Connection ""; proxy_method GET;
                         proxy_pass_request_body off; proxy_set_header Content-Length ""; }
  }
  upstream self_$1 { server unix:$TMP/$1/self.sock; keepalive 16; }
  server { listen unix:$TMP/$1/self.sock; location / { return 200 "ok\n"; } }
}
EOF
  start "$1" nginx -c "$TMP/$1/nginx.conf" -p "$TMP/$1/"
  local saved=("${WAIT_CURL[@]}")
  [[ -n ${UPSTREAM_LISTEN:-} ]] && WAIT_CURL=(--http2-prior-knowledge)
  wait_http "$2" / "$LAST"
  WAIT_CURL=("${saved[@]}")
}

# ---- proxies ----------------------------------------------------------------------------
tandem_lb() { # NAME PORT THREADS U1 U2 [extra yaml] -> pid (TANDEM_CLUSTER: lines per cluster)
  cat >"$TMP/$1.yaml" <<EOF
listen: 127.0.0.1:$2
admin: 127.0.0.1:0
threads: $3
clusters:
  - name: u1
    address: 127.0.0.1:$4
${TANDEM_CLUSTER:-}
  - name: u2
    address: 127.0.0.1:$5
${TANDEM_CLUSTER:-}
healthCheck:
  path: /healthz
  interval: 1s
  timeout: 1s
  rise: 2
  fall: 3
limits:
  maxConnections: 100000
${6:-}
EOF
  start "$1" "$LB" -c "$TMP/$1.yaml"
  wait_http "$2" / "$LAST"
}
# HAPROXY_GLOBAL, HAPROXY_DEFAULTS, HAPROXY_FRONTEND: lines added to those sections;
# HAPROXY_SERVER: server options
haproxy_proxy() { # NAME PORT THREADS U1 U2 [maxconn] -> pid
  mkdir -p "$TMP/$1"
  cat >"$TMP/$1/haproxy.cfg" <<EOF
global
  nbthread $3
  maxconn ${6:-8000}
  stats socket $TMP/$1/admin.sock mode 600 level admin
${HAPROXY_GLOBAL:-}
defaults
  mode http
${HAPROXY_DEFAULTS:-}
  option dontlognull
  option http-keep-alive
  http-reuse always
  timeout connect 2s
  timeout client 30s
  timeout server 30s
  timeout http-request 10s
  timeout http-keep-alive 60s
  timeout check 1s
frontend fe
  bind 127.0.0.1:$2 ${HAPROXY_BIND:-}
${HAPROXY_FRONTEND:-}
  default_backend clusters
backend clusters
  balance roundrobin
  option httpchk
  http-check send meth GET uri /healthz ver HTTP/1.1 hdr Host bench
  http-check expect status 200
  default-server inter 1s fall 3 rise 2 ${HAPROXY_SERVER:-}
  server u1 127.0.0.1:$4 check
  server u2 127.0.0.1:$5 check
EOF
  haproxy -c -q -f "$TMP/$1/haproxy.cfg"
  start "$1" haproxy -db -f "$TMP/$1/haproxy.cfg"
  if [[ ${HAPROXY_BIND:-} == *ssl* ]]; then wait_https "$2" "$LAST"; else wait_http "$2" / "$LAST"; fi
}
nginx_proxy() { # NAME PORT WORKERS U1 U2 -> pid (NGINX_PASS: the location's proxying)
  mkdir -p "$TMP/$1"
  local pass=${NGINX_PASS:-'proxy_pass http://clusters; proxy_http_version 1.1; proxy_set_header Connection "";'}
  cat >"$TMP/$1/nginx.conf" <<EOF
worker_processes $3; daemon off; pid $TMP/$1/nginx.pid; error_log $TMP/$1/error.log warn;
events { worker_connections 16384; }
http {
  access_log off; keepalive_requests 1000000; keepalive_timeout 65s;
  client_body_temp_path $TMP/$1/b; proxy_temp_path $TMP/$1/p; fastcgi_temp_path $TMP/$1/f;
  uwsgi_temp_path $TMP/$1/u; scgi_temp_path $TMP/$1/s;
  # (request bodies buffered in memory, as nginx buffers them by default, but never in a temp
  # file: with the default 16k buffer every upload from 16 KiB up went through one and stalled
  # ~44 ms, 1,120-1,140 req/s whatever the size)
  client_body_buffer_size 2m; client_max_body_size 4m;
  upstream clusters {
    server 127.0.0.1:$4 max_fails=1 fail_timeout=10s;
    server 127.0.0.1:$5 max_fails=1 fail_timeout=10s;
    keepalive 64; keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:$2 backlog=4096 ${NGINX_LISTEN:-};
    ${NGINX_SSL:-}
    location / { $pass proxy_connect_timeout 2s;
                 proxy_next_upstream error timeout; }
  }
}
EOF
  start "$1" nginx -c "$TMP/$1/nginx.conf" -p "$TMP/$1/"
  if [[ -n ${NGINX_SSL:-} ]]; then wait_https "$2" "$LAST"; else wait_http "$2" / "$LAST"; fi
}

# The whole machine's CPU time so far, "busy idle" in clock ticks over all CPUs (/proc/stat):
# busy is user, nice, system, irq and softirq (every process and the kernel's softirq work in
# whichever context it ran); idle is idle and iowait; steal (the host running something else)
# is neither. On a machine with no idle time, requests per second are the CPUs over what each
# request costs it, whichever process spends it.
machine_cpu() { awk '/^cpu /{print $2+$3+$4+$7+$8, $5+$6}' /proc/stat; }
busy_all() { machine_cpu | cut -d' ' -f1; }
steal() { awk '/^cpu /{print $9}' /proc/stat; }
wait_quiet() { # until the machine is < 10% of one CPU busy for 1 s (max 60 s)
  local hz; hz=$(getconf CLK_TCK)
  for _ in $(seq 1 60); do
    local a b; a=$(busy_all); sleep 1; b=$(busy_all)
    (( (b - a) * 10 < hz )) && return 0
  done
  log "machine not quiet after 60 s; measuring anyway (noted in results)"
  return 1
}

# A process's CPU time so far, all its threads: "user system" in clock ticks (/proc/PID/stat).
proc_cpu() { awk '{print $14, $15}' "/proc/$1/stat"; }
# The CPU time of a target so far, "user system" in clock ticks: its process and, for nginx, the
# workers (processes of their own).
target_cpu() { # PID
  local pids=("$1") p
  for p in $(pgrep -P "$1" || true); do pids+=("$p"); done
  for p in "${pids[@]}"; do proc_cpu "$p"; done | awk '{u += $1; s += $2} END {print u + 0, s + 0}'
}
parse_wrk() { # wrk output on stdin -> "rps p50 p99 non2xx errors"
  python3 -c '
import re, sys
t = sys.stdin.read()
def ms(v, u): return float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[u]
rps = re.search(r"Requests/sec:\s+([\d.]+)", t)
lat = dict((p, ms(v, u)) for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", t, re.M))
non2 = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", t)
err = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", t)
errs = sum(int(x) for x in err.groups()) if err else 0
print(rps.group(1) if rps else 0, lat.get("50", 0), lat.get("99", 0), non2.group(1) if non2 else 0, errs)'
}
