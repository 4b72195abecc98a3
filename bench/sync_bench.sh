#!/usr/bin/env bash
# tandem sync at scale: 5 simulated instances x 100 products, 20 ms injected latency per admin
# API call. Measures the first apply, the second apply (must write nothing), drift, and admin API
# calls per product read. Medians of several runs.
#   bench/sync_bench.sh [BUILD_DIR]     (default build/release; builds it if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build/release}
INSTANCES=${BENCH_INSTANCES:-5}
PRODUCTS=${BENCH_PRODUCTS:-100}
LATENCY=${BENCH_LATENCY_MS:-20}
RUNS=${BENCH_RUNS:-3}
if [ ! -x "$BUILD/sync/tandem" ] || [ ! -x "$BUILD/test/sim/threescale-sim" ]; then
  cmake --preset release >/dev/null && cmake --build --preset release --target tandem threescale-sim
fi
TANDEM=$BUILD/sync/tandem
SIM=$BUILD/test/sim/threescale-sim
work=$(mktemp -d)
pids=()
stop_sims() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; pids=(); }
trap 'stop_sims; rm -rf "$work"' EXIT
export BENCH_TOKEN=bench-token-$RANDOM TANDEM_SIM_TOKEN
TANDEM_SIM_TOKEN=$BENCH_TOKEN

start_sims() {
  urls=()
  for i in $(seq 0 $((INSTANCES - 1))); do
    rm -f "$work/sim$i.out"; mkfifo "$work/sim$i.out"
    "$SIM" --name "sim$i" --empty --fault-latency-ms "$LATENCY" >"$work/sim$i.out" &
    pids+=($!)
    read -r line <"$work/sim$i.out"
    urls+=("$(sed -E 's/.*admin=([^ ]+).*/\1/' <<<"$line")")
  done
}
now() { date +%s.%N; }
elapsed() { python3 -c "print(f'{$2 - $1:.2f}')"; }
counter() {  # counter URL FIELD -> admin reads or writes summed
  curl -s "$1/__sim/counters" | python3 -c "import json,sys; print(json.load(sys.stdin)['admin']['$2'])"
}
median() { python3 -c "import statistics,sys; print(f'{statistics.median(map(float, sys.argv[1:])):.2f}')" "$@"; }

first=(); second=(); drift=(); second_writes=0; reads_per_product=""
for run in $(seq 1 "$RUNS"); do
  start_sims
  python3 bench/gen_sync_fleet.py "$work/fleet" "$PRODUCTS" "${urls[@]}"
  t0=$(now); "$TANDEM" apply -f "$work/fleet/fleet.yaml" >"$work/apply1.log" 2>&1 || {
    echo "first apply failed:"; tail -20 "$work/apply1.log"; exit 1; }
  t1=$(now); first+=("$(elapsed "$t0" "$t1")")
  for u in "${urls[@]}"; do curl -s -X POST "$u/__sim/counters/reset" >/dev/null; done
  t0=$(now); "$TANDEM" apply -f "$work/fleet/fleet.yaml" >"$work/apply2.log" 2>&1
  t1=$(now); second+=("$(elapsed "$t0" "$t1")")
  for u in "${urls[@]}"; do second_writes=$((second_writes + $(counter "$u" writes))); done
  for u in "${urls[@]}"; do curl -s -X POST "$u/__sim/counters/reset" >/dev/null; done
  t0=$(now); rc=0; "$TANDEM" drift -f "$work/fleet/fleet.yaml" >"$work/drift.log" 2>&1 || rc=$?
  t1=$(now); drift+=("$(elapsed "$t0" "$t1")")
  [ "$rc" -eq 0 ] || { echo "drift after apply was not clean (rc=$rc)"; head -20 "$work/drift.log"; exit 1; }
  reads=$(counter "${urls[0]}" reads)
  reads_per_product=$(python3 -c "print(f'{$reads / $PRODUCTS:.1f}')")
  echo "run $run: first apply ${first[-1]} s, second apply ${second[-1]} s, drift ${drift[-1]} s"
  stop_sims
done
echo
echo "tandem sync: $INSTANCES instances x $PRODUCTS products, ${LATENCY} ms per admin API call, medians of $RUNS runs"
printf '  %-34s %8s s   (target <= 30 s)\n' "first apply (from empty)" "$(median "${first[@]}")"
printf '  %-34s %8s s   (target <= 3 s), writes: %d\n' "second apply (no changes)" "$(median "${second[@]}")" "$second_writes"
printf '  %-34s %8s s   (target <= 3 s)\n' "drift (clean)" "$(median "${drift[@]}")"
printf '  %-34s %8s\n' "admin API calls per product read" "$reads_per_product"
