#!/usr/bin/env bash
# The tandem demo: installs what is missing, builds, and runs two simulated 3scale instances
# ("east" and "west"). On each it creates, through the admin API, a product with a backend, an
# application plan limited to 5 calls a minute and an application with the same user_key, deploys
# and promotes the configuration, then shows gateway calls accepted and then limited.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target threescale-sim
SIM=build/release/test/sim/threescale-sim

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The admin token comes from the environment (never argv); generate one for the demo.
TANDEM_SIM_TOKEN=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
export TANDEM_SIM_TOKEN

# A frozen simulated clock at the start of a minute, so the limit window is exact.
start_epoch=1790000040

declare -A admin gateway
for name in east west; do
  mkfifo "$work/$name.out"
  "$SIM" --name "$name" --empty --freeze-clock --clock-start "$start_epoch" \
         --admin-port 0 --gateway-port 0 >"$work/$name.out" &
  pids+=($!)
  read -r line <"$work/$name.out"   # readiness: the one line printed once listening
  admin[$name]=$(sed -E 's/.*admin=([^ ]+).*/\1/' <<<"$line")
  gateway[$name]=$(sed -E 's/.*gateway=([^ ]+).*/\1/' <<<"$line")
  echo "started $line"
done

# curl with the token in a config read from stdin, so it is not in any process's argv.
api() {  # api NAME METHOD PATH [FORM]
  local base=${admin[$1]} method=$2 path=$3 form=${4:-}
  printf 'user = "%s:"\n' "$TANDEM_SIM_TOKEN" |
    curl -sS --fail-with-body -K - -X "$method" "$base$path" ${form:+--data "$form"}
}
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval('d'+sys.argv[1]))" "$1"; }

echo
for name in east west; do
  echo "== $name: creating the product, backend, plan, limit and application via the admin API"
  svc=$(api "$name" POST /admin/api/services.json \
        'name=Echo API&system_name=echo&deployment_option=self_managed' | field '["service"]["id"]')
  be=$(api "$name" POST /admin/api/backend_apis.json \
        'name=Echo backend&system_name=echo_backend&private_endpoint=https://echo.internal.example' |
        field '["backend_api"]["id"]')
  api "$name" POST "/admin/api/services/$svc/backend_usages.json" "backend_api_id=$be&path=/" >/dev/null
  plan=$(api "$name" POST "/admin/api/services/$svc/application_plans.json" \
         'name=Basic&system_name=basic&state_event=publish' | field '["application_plan"]["id"]')
  hits=$(api "$name" GET "/admin/api/services/$svc/metrics.json" | field '["metrics"][0]["metric"]["id"]')
  api "$name" POST "/admin/api/application_plans/$plan/metrics/$hits/limits.json" \
      'period=minute&value=5' >/dev/null
  acc=$(api "$name" POST /admin/api/signup.json \
        'org_name=Acme&username=acme&email=dev@acme.example&password=demo-password' |
        field '["account"]["id"]')
  api "$name" POST "/admin/api/accounts/$acc/applications.json" \
      "plan_id=$plan&name=Acme app&user_key=acme-demo-key" >/dev/null
  api "$name" PATCH "/admin/api/services/$svc/proxy.json" 'endpoint=https://echo.api.example.com' >/dev/null
  api "$name" POST "/admin/api/services/$svc/proxy/deploy.json" >/dev/null
  version=$(api "$name" GET "/admin/api/services/$svc/proxy/configs/sandbox/latest.json" |
            field '["proxy_config"]["version"]')
  api "$name" POST "/admin/api/services/$svc/proxy/configs/sandbox/$version/promote.json" 'to=production' >/dev/null
  echo "   product $svc, plan $plan (hits: 5/minute), user_key acme-demo-key, config v$version promoted"
done

echo
for name in east west; do
  echo "== $name gateway: 7 calls with the same user_key within one minute"
  for i in $(seq 1 7); do
    code=$(curl -s -o "$work/body" -w '%{http_code}' -H 'Host: echo.api.example.com' \
           "${gateway[$name]}/pets?user_key=acme-demo-key")
    printf '   call %d -> %s %s\n' "$i" "$code" "$(head -c 80 "$work/body")"
  done
done

echo
echo "== east: the simulated clock moves to the next minute; the window rolls over"
curl -s -X POST -H 'Content-Type: application/json' -d '{"advance_seconds":60}' \
  "${admin[east]}/__sim/clock" >/dev/null
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: echo.api.example.com' \
       "${gateway[east]}/pets?user_key=acme-demo-key")
echo "   call 8 -> $code"
echo
echo "Each instance enforces its own 5/minute: this is why a global limit must be split across"
echo "instances (tandem split, coming with the sync engine)."
