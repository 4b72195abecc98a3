#!/usr/bin/env bash
# clang-tidy (Debian 12's clang-tidy-16) over every translation unit of the project with the
# checks of .clang-tidy; exit 1 on any finding. Configures the `dev` preset for its compile
# database (nothing is built).
#   scripts/tidy.sh [FILE...]     # default: every .cpp of config, ratelimit, sync, ha, lb, test
set -euo pipefail
cd "$(dirname "$0")/.."
TIDY=$(command -v clang-tidy-16 || true)
[[ -n $TIDY ]] || { echo "tidy: clang-tidy-16 is missing (apt-get install clang-tidy-16)" >&2; exit 1; }
cmake --preset dev >/dev/null  # a fresh compile database (and the generated spec_paths.cpp)
if (($#)); then files=("$@"); else
  mapfile -t files < <(git ls-files -- 'config/*.cpp' 'ratelimit/*.cpp' 'sync/*.cpp' 'ha/*.cpp' 'lb/*.cpp' 'test/*.cpp')
fi
# Clang 16 reports __cpp_concepts 201907, which hides std::expected in libstdc++ 12; it handles
# what <expected> needs, so it is told what GCC says.
args=(-p build/dev --quiet --extra-arg=-std=c++2b --extra-arg=-U__cpp_concepts
      --extra-arg=-D__cpp_concepts=202002L --extra-arg=-Wno-builtin-macro-redefined
      --extra-arg=-Wno-unknown-warning-option)
# (sh -c: a clang-tidy that crashes fails its files instead of stopping xargs)
printf '%s\n' "${files[@]}" |
  xargs -P "$(nproc)" -n 4 sh -c '"$0" "$@" || exit 1' "$TIDY" "${args[@]}" >build/tidy.log 2>&1 &&
  rc=0 || rc=$?
grep -E "warning:|error:" build/tidy.log | sort -u || true
if ((rc)); then
  echo "tidy: findings above (full output: build/tidy.log)" >&2; exit 1
fi
echo "tidy: ${#files[@]} files clean"
