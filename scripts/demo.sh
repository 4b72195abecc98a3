#!/usr/bin/env bash
# The tandem demo: installs what is missing, builds, starts two simulated 3scale instances
# ("east" and "west") and
#   1. applies the example Product/Backend CRs (examples/products) to both with `tandem apply`,
#   2. shows a clean `tandem drift`, a second apply that changes nothing,
#   3. changes a limit directly on west and shows drift catching it, then apply restoring it,
#   4. shows how the global limits are split (tandem split) and sends requests with the example
#      application's user_key (created by tandem on both instances from the
#      DeveloperAccount/DeveloperUser/Application CRs) alternately to both gateways: exactly the
#      global limit is admitted.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target threescale-sim tandem
SIM=build/release/test/sim/threescale-sim
TANDEM=build/release/sync/tandem

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

say "traffic: tandem created the same application (same user_key) on both instances"
accepted=0; limited=0; declare -A per=([east]=0 [west]=0)
for i in $(seq 1 120); do
  name=$([ $((i % 2)) -eq 1 ] && echo east || echo west)   # a round-robin balancer
  code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: api.petstore.example.com' \
         -H 'api-key: acme-demo-key' "${gateway[$name]}/pets")
  case $code in
    200) accepted=$((accepted + 1)); per[$name]=$((per[$name] + 1)) ;;
    429) limited=$((limited + 1)) ;;
  esac
done
echo "   120 calls alternating east/west in one minute -> $accepted accepted" \
     "(east ${per[east]}, west ${per[west]}), $limited limited"
echo
echo "The Basic plan says 100/minute; split 50/50, the two independent instances together admit"
echo "exactly 100. (Without the split each would admit 100: 200 in total.)"
