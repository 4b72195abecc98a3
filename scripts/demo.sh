#!/usr/bin/env bash
# The tandem demo: installs what is missing, builds, starts two simulated 3scale instances
# ("east" and "west") and
#   1. applies the example Product/Backend CRs (examples/products) to both with `tandem apply`,
#   2. shows a clean `tandem drift`, a second apply that changes nothing,
#   3. changes a limit directly on west and shows drift catching it, then apply restoring it,
#   4. shows how the global limits are split (tandem split), puts tandem-lb in front of both
#      gateways and sends requests with the example application's user_key (created by tandem on
#      both instances from the DeveloperAccount/DeveloperUser/Application CRs): they alternate
#      between the clusters and exactly the global limit is admitted,
#   5. starts `tandem serve` (the controller) and stops the east instance: tandem-lb keeps serving
#      from west, serve takes east out of the split and west admits the whole global limit;
#      east comes back empty: serve rebuilds it, lowers west back first, then sets east ready,
#      and the pair admits exactly the global limit again,
#   6. makes east the portal instance (mirror:): a developer signs up and creates an application
#      on east's portal side through tandem-lb (the portal host goes to east); east's webhook
#      nudges serve, which copies them to west, and the new key works on both clusters.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target threescale-sim tandem tandem-lb
SIM=build/release/test/sim/threescale-sim
TANDEM=build/release/sync/tandem
LB=build/release/lb/tandem-lb

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# Each instance has its own admin token; tandem reads them from the environment (never argv).
export TANDEM_EAST_TOKEN TANDEM_WEST_TOKEN
TANDEM_EAST_TOKEN=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
TANDEM_WEST_TOKEN=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
# The example account's passwords and its application's key (Secrets read them from the env).
export ACME_ADMIN_PASSWORD ACME_DEV_PASSWORD ACME_PETSTORE_USER_KEY=acme-demo-key
ACME_ADMIN_PASSWORD=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
ACME_DEV_PASSWORD=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')

declare -A admin gateway token=([east]=$TANDEM_EAST_TOKEN [west]=$TANDEM_WEST_TOKEN)
for name in east west; do
  mkfifo "$work/$name.out"
  # a frozen clock at the start of a minute, so the limit window in step 4 is exact
  TANDEM_SIM_TOKEN=${token[$name]} "$SIM" --name "$name" --empty --freeze-clock \
    --clock-start 1790000040 --admin-port 0 --gateway-port 0 >"$work/$name.out" &
  pids+=($!)
  read -r line <"$work/$name.out"   # readiness: the line printed once listening
  admin[$name]=$(sed -E 's/.*admin=([^ ]+).*/\1/' <<<"$line")
  gateway[$name]=$(sed -E 's/.*gateway=([^ ]+).*/\1/' <<<"$line")
  echo "started $line"
done

# The fleet: the two instances and the example CRs (what a CI pipeline keeps in git).
cat >"$work/fleet.yaml" <<YAML
apiVersion: tandem/v1
kind: Fleet
instances:
  - name: east
    adminUrl: ${admin[east]}
    token: {env: TANDEM_EAST_TOKEN}
  - name: west
    adminUrl: ${admin[west]}
    token: {env: TANDEM_WEST_TOKEN}
resources:
  - $PWD/examples/products/
  - $PWD/examples/accounts/
YAML

# curl with the token in a config read from stdin, so it is not in any process's argv.
api() {  # api NAME METHOD PATH [FORM]
  printf 'user = "%s:"\n' "${token[$1]}" |
    curl -sS --fail-with-body -K - -X "$2" "${admin[$1]}$3" ${4:+--data "$4"}
}
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval('d'+sys.argv[1]))" "$1"; }

say "tandem validate"
"$TANDEM" validate -f "$work/fleet.yaml"
say "tandem split: limit values in the CRs are global; each instance enforces its share"
"$TANDEM" split -f "$work/fleet.yaml" | head -8
say "tandem plan (first lines per instance)"
"$TANDEM" plan -f "$work/fleet.yaml" | grep -E '^[a-z]+:|create product|create backend pets|create developer|promote' || true
say "tandem apply"
"$TANDEM" apply -f "$work/fleet.yaml" | tail -4
say "tandem drift: both instances carry exactly the desired state"
"$TANDEM" drift -f "$work/fleet.yaml"
say "a second tandem apply writes nothing"
"$TANDEM" apply -f "$work/fleet.yaml" | tail -3

say "someone raises the Basic plan's hits limit on west by hand (admin API)"
svc=$(api west GET /admin/api/services.json | field '["services"][0]["service"]["id"]')
plan=$(api west GET "/admin/api/services/$svc/application_plans.json" |
       python3 -c "import json,sys; print([p['application_plan']['id'] for p in json.load(sys.stdin)['plans'] if p['application_plan']['system_name']=='basic'][0])")
read -r metric limit < <(api west GET "/admin/api/application_plans/$plan/limits.json" |
  python3 -c "import json,sys; l=[x['limit'] for x in json.load(sys.stdin)['limits'] if x['limit']['period']=='minute' and x['limit']['value']==50][0]; print(l['metric_id'], l['id'])")
api west PUT "/admin/api/application_plans/$plan/metrics/$metric/limits/$limit.json" 'value=100' >/dev/null
echo "   west: basic / hits / minute = 100 (the global value instead of west's share, 50)"
say "tandem drift catches it as a split mismatch (exit code 2; --output json|markdown for CI)"
"$TANDEM" drift -f "$work/fleet.yaml" || echo "   (exit code $?)"
say "tandem apply puts it back (an in-place update of the limit, nothing else)"
"$TANDEM" apply -f "$work/fleet.yaml" | grep -E '^\[|summary' || true

say "tandem-lb in front of both gateways: round robin per request, health checks on each"
cat >"$work/lb.yaml" <<YAML
listen: 127.0.0.1:0
admin: 127.0.0.1:0
threads: 1            # one worker, so the round robin alternates strictly call by call
clusters:
  - name: east
    address: ${gateway[east]#http://}
  - name: west
    address: ${gateway[west]#http://}
  - name: east-portal   # the portal/admin side (a router with both hosts, in a real cluster)
    address: ${admin[east]#http://}
  - name: west-portal
    address: ${admin[west]#http://}
routes:
  - name: portal        # developers and admins: the portal instance, west if east fails
    hosts: [3scale.apps.example.test]
    policy: primary
    clusters: [east-portal, west-portal]
  - name: api           # API traffic: active/active
    hosts: ["*"]
    policy: roundRobin
    clusters: [east, west]
healthCheck:
  path: /status/ready
  interval: 200ms
  timeout: 150ms
  rise: 2
  fall: 2
YAML
"$LB" --check-config -c "$work/lb.yaml"
mkfifo "$work/lb.out"
"$LB" -c "$work/lb.yaml" >"$work/lb.out" 2>"$work/lb.log" &
pids+=($!)
read -r line <"$work/lb.out"
echo "started $line"
lb="http://$(sed -E 's/.*listen=([^ ]+).*/\1/' <<<"$line")"
lbadmin="http://$(sed -E 's/.*admin=([^ ]+).*/\1/' <<<"$line")"

# traffic N -> "accepted limited errors east west first-six-instances"
traffic() {
  local n=$1 ok=0 lim=0 err=0 e=0 w=0 order="" code inst
  for _ in $(seq 1 "$n"); do
    read -r code inst < <(curl -s -o /dev/null -D - -H 'Host: api.petstore.example.com' \
      -H 'api-key: acme-demo-key' "$lb/pets" |
      tr -d '\r' | awk 'NR==1{c=$2} tolower($1)=="x-sim-instance:"{i=$2} END{print c, i}')
    case $code in 200) ok=$((ok + 1)) ;; 429) lim=$((lim + 1)) ;; *) err=$((err + 1)) ;; esac
    case $inst in east) e=$((e + 1)) ;; west) w=$((w + 1)) ;; esac
    [[ $(wc -w <<<"$order") -lt 6 ]] && order+="$inst "
  done
  echo "$ok $lim $err $e $w $order"
}
read -r ok lim err e w order < <(traffic 120)
echo "   the first calls went to: $order..."
echo "   120 calls through tandem-lb in one minute -> $ok accepted, $lim limited, $err errors" \
     "(east answered $e, west $w)"
echo
echo "The Basic plan says 100/minute; split 50/50, the two independent instances together admit"
echo "exactly 100. (Without the split each would admit 100: 200 in total.)"

say "tandem serve: keeps the live fleet converged and re-splits the limits when a cluster fails"
cat >>"$work/fleet.yaml" <<YAML
serve:
  listen: 127.0.0.1:0
  interval: 2s                   # a pass over each instance (default 60s; short for the demo)
  balancers:
    - {url: $lbadmin}            # tandem-lb's admin API: cluster health, and maint/ready
  resplit: {after: 2s, restoreAfter: 2s, poll: 250ms, timeout: 200ms}   # (defaults 60s, 120s, 5s)
YAML
# the token 3scale's webhooks carry in their URL (step 6), read by serve from its environment
export TANDEM_WEBHOOK_TOKEN
TANDEM_WEBHOOK_TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
mkfifo "$work/serve.out"
"$TANDEM" serve -f "$work/fleet.yaml" >"$work/serve.out" 2>"$work/serve.log" &
pids+=($!)
read -r line <"$work/serve.out"
echo "started $line"
serve="http://$(sed -E 's/.*listen=([^ ]+).*/\1/' <<<"$line")"

# wait_for SECONDS WHAT COMMAND...: polls the command until it succeeds (or says it timed out)
wait_for() {
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@"; do
    if ((SECONDS >= deadline)); then
      echo "timed out waiting for $what; tandem serve's log:" >&2
      tail -20 "$work/serve.log" >&2
      exit 1
    fi
    sleep 0.2
  done
}
split_is() {  # split_is NAME STATE: tandem serve's /status says so
  [[ $(curl -s "$serve/status" | python3 -c "import json,sys; print({i['name']: i['split_state'] for i in json.load(sys.stdin)['instances']}.get('$1'))") == "$2" ]]
}
lb_state_is() {  # lb_state_is NAME STATE: tandem-lb's runtime state of the cluster
  [[ $(curl -s "$lbadmin/clusters/$1/state" | field '["admin_state"]') == "$2" ]]
}
hits_limit() {  # the Basic plan's hits/minute limit on an instance
  local s p m
  s=$(api "$1" GET /admin/api/services.json | field '["services"][0]["service"]["id"]')
  p=$(api "$1" GET "/admin/api/services/$s/application_plans.json" |
      python3 -c "import json,sys; print([p['application_plan']['id'] for p in json.load(sys.stdin)['plans'] if p['application_plan']['system_name']=='basic'][0])")
  m=$(api "$1" GET "/admin/api/services/$s/metrics.json" |
      python3 -c "import json,sys; print([m['metric']['id'] for m in json.load(sys.stdin)['metrics'] if m.get('metric', {}).get('system_name')=='hits'][0])")
  api "$1" GET "/admin/api/application_plans/$p/limits.json" |
    python3 -c "import json,sys; print([l['limit']['value'] for l in json.load(sys.stdin)['limits'] if l['limit']['period']=='minute' and l['limit']['metric_id']==$m][0])"
}
limit_is() { [[ $(hits_limit "$1" 2>/dev/null) == "$2" ]]; }
wait_for 20 "the first passes" curl -sf "$serve/readyz" -o /dev/null
echo "   $(curl -s "$serve/readyz")   (every instance had its first pass; /status and /metrics too)"

say "east goes down (its process is stopped); traffic continues on west"
east_admin_port=${admin[east]##*:}
east_gateway_port=${gateway[east]##*:}
kill "${pids[0]}"
wait "${pids[0]}" 2>/dev/null || true
start=$SECONDS
wait_for 30 "east out of the split" split_is east out
wait_for 30 "west holding the whole limit" limit_is west 100
echo "   after $((SECONDS - start))s (resplit.after 2s + a pass), tandem serve has:"
grep -E 'split: east|cluster east -> maint|\[west\] ok   update limit echo|\[west\] ok   update limit petstore: basic/hits/minute' \
  "$work/serve.log" | sed -E 's/^[^ ]+ /     /' | head -4
curl -s -X POST -d '{"advance_seconds":60}' "${admin[west]}/__sim/clock" >/dev/null   # next minute
read -r ok lim err e w order < <(traffic 120)
echo "   120 calls in the next minute -> $ok accepted, $lim limited, $err errors (all on west: $w)"
echo "   West alone admits the whole 100/minute: no one had to run apply --without east."

say "east comes back (empty, on the same address: as after a restore from an old backup)"
west_epoch=$(curl -s "${admin[west]}/__sim/clock" | field '["epoch"]')
mkfifo "$work/east2.out"
TANDEM_SIM_TOKEN=${token[east]} "$SIM" --name east --empty --freeze-clock \
  --clock-start "$west_epoch" --admin-port "$east_admin_port" \
  --gateway-port "$east_gateway_port" >"$work/east2.out" &
pids+=($!)
read -r line <"$work/east2.out"
echo "started $line"
start=$SECONDS
wait_for 30 "east back in the split" split_is east in
wait_for 10 "east ready on tandem-lb" lb_state_is east ready
echo "   after $((SECONDS - start))s: healthy for restoreAfter, everything created on east while its"
echo "   cluster was in maint, west lowered back to its share, and only then east set ready:"
grep -E 'split: east (out|restoring)|cluster east -> ready' "$work/serve.log" |
  sed -E 's/^[^ ]+ /     /'
echo "   hits/minute now: east $(hits_limit east), west $(hits_limit west)"
for name in east west; do   # the next minute on both
  curl -s -X POST -d '{"advance_seconds":60}' "${admin[$name]}/__sim/clock" >/dev/null
done
read -r ok lim err e w order < <(traffic 120)
echo "   120 calls in the next minute -> $ok accepted, $lim limited, $err errors" \
     "(east answered $e, west $w)"
echo
echo "The pair admits exactly 100/minute again: 50 + 50, restored in an order that never"
echo "admitted more (west lowered before east took traffic)."

say "the portal instance: what developers create on east works on west too (tandem serve's mirror)"
cat >>"$work/fleet.yaml" <<YAML
mirror:
  source: east                   # the portal instance: tandem-lb sends the portal host there
  interval: 10s                  # a full comparison of east with west
  deletes: true                  # gone from a complete read of east -> deleted on west
  webhookToken: {env: TANDEM_WEBHOOK_TOKEN}
  webhooks: {url: "$serve"}      # serve points east's webhooks at itself
YAML
webhooks_set() {  # serve's /status: east's webhooks point at serve
  [[ $(curl -s "$serve/status" |
    field '["mirror"].get("webhooks", {}).get("configured_on_source")') == yes ]]
}
wait_for 20 "east's webhooks set" webhooks_set
echo "   serve re-read the fleet file and set east's webhooks to $serve/webhooks/3scale/<token>"
# a developer on the portal host, through tandem-lb (the admin API stands in for the portal)
portal() {  # portal METHOD PATH [FORM]
  printf 'user = "%s:"\n' "${token[east]}" |
    curl -sS --fail-with-body -K - -H 'Host: 3scale.apps.example.test' -X "$1" "$lb$2" \
      ${3:+--data "$3"}
}
account=$(portal POST /admin/api/signup.json \
  'org_name=Dev+Co&username=dev&email=dev@dev.example&password=portal-pass' |
  field '["account"]["id"]')
svc=$(api east GET /admin/api/services.json | field '["services"][0]["service"]["id"]')
plan=$(api east GET "/admin/api/services/$svc/application_plans.json" |
  python3 -c "import json,sys; print([p['application_plan']['id'] for p in json.load(sys.stdin)['plans'] if p['application_plan']['system_name']=='basic'][0])")
portal POST "/admin/api/accounts/$account/applications.json" \
  "name=Dev+app&plan_id=$plan&user_key=dev-portal-key" >/dev/null
start_ms=$(date +%s%3N)
echo "   a developer signed up on east and created an application with key dev-portal-key"
dev_calls() {  # dev_calls N: how many of N calls with the developer's key were answered 200
  local ok=0
  for _ in $(seq 1 "$1"); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' -H 'Host: api.petstore.example.com' \
      -H 'api-key: dev-portal-key' "$lb/pets") == 200 ]] && ok=$((ok + 1))
  done
  echo "$ok"
}
on_west() { api west GET "/admin/api/applications/find.json?user_key=dev-portal-key" >/dev/null 2>&1; }
wait_for 15 "the developer's application on west" on_west
echo "   on west $(($(date +%s%3N) - start_ms)) ms later (east's webhook nudged serve; the interval is 10s):"
echo "   $(dev_calls 20) of 20 calls with the new key through tandem-lb answered 200, alternating"
echo "   east/west (before the mirror, every call sent to west got 403). serve's log:"
grep -E '\[mirror west\] ok' "$work/serve.log" | sed -E 's/^[^ ]+ /     /' | head -3
echo "   mirror metrics: $(curl -s "$serve/metrics" | grep -E '^tandem_mirror_(paused|propagation_lag_seconds_count)' | tr '\n' ' ')"
