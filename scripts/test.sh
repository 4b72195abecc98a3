#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite.
#   scripts/test.sh                 # the "ci" preset: Debug, warnings are errors
#   scripts/test.sh --preset asan   # AddressSanitizer + UBSan build of the same suite
set -euo pipefail
cd "$(dirname "$0")/.."

preset=ci
while [ $# -gt 0 ]; do
  case "$1" in
    --preset) preset="$2"; shift 2 ;;
    *) echo "usage: $0 [--preset ci|asan|dev|release]" >&2; exit 2 ;;
  esac
done

bash scripts/install-deps.sh
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
export CCACHE_BASEDIR="$PWD"  # cache hits across clones in different directories
cmake --preset "$preset"
cmake --build --preset "$preset" -j "$(nproc)"
ctest --preset "$preset"
