#!/usr/bin/env bash
# clang-tidy (Debian 12's clang-tidy-16) over every translation unit of the project with the
# checks of .clang-tidy; exit 1 on any finding. Configures the `dev` preset without precompiled
# headers into build/tidy for its compile database (nothing is built): clang cannot read GCC's,
# and each file is to be checked as it is written, with its own includes.
#   scripts/tidy.sh [FILE...]     # default: every .cpp of the project's modules and tests
#   scripts/tidy.sh --no-tests    # all but the tests' own files (test/unit, test/e2e): what CI
#                                 # runs (they are 50 of 188 files, ~4.5 of its ~16 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
TIDY=$(command -v clang-tidy-16 || true)
[[ -n $TIDY ]] || { echo "tidy: clang-tidy-16 is missing (apt-get install clang-tidy-16)" >&2; exit 1; }
# a fresh compile database (and the generated spec_paths.cpp)
cmake --preset dev -B build/tidy -DTANDEM_PCH=OFF >/dev/null
tests=('test/*.cpp')
if [[ ${1:-} == --no-tests ]]; then
  tests=('test/sim/*.cpp' 'test/support/*.cpp' 'test/fakes/*.cpp'); shift
fi
if (($#)); then files=("$@"); else
  mapfile -t files < <(git ls-files -- 'config/*.cpp' 'ratelimit/*.cpp' 'sync/*.cpp' 'mirror/*.cpp' \
    'serve/*.cpp' 'ha/*.cpp' 'lb/*.cpp' "${tests[@]}")
fi
# Clang 16 reports __cpp_concepts 201907, which hides std::expected in libstdc++ 12; it handles
# what <expected> needs, so it is told what GCC says.
args=(-p build/tidy --quiet --extra-arg=-std=c++2b --extra-arg=-U__cpp_concepts
      --extra-arg=-D__cpp_concepts=202002L --extra-arg=-Wno-builtin-macro-redefined
      --extra-arg=-Wno-unknown-warning-option)
# (sh -c: a clang-tidy that crashes fails its files instead of stopping xargs.) One file per
# call, the largest first: no CPU waits at the end on another's batch.
wc -c "${files[@]}" | sort -rn | awk '$2 != "total" {print $2}' |
  xargs -P "$(nproc)" -n 1 sh -c '"$0" "$@" || exit 1' "$TIDY" "${args[@]}" >build/tidy.log 2>&1 &&
  rc=0 || rc=$?
grep -E "warning:|error:" build/tidy.log | sort -u || true
if ((rc)); then
  echo "tidy: findings above (full output: build/tidy.log)" >&2; exit 1
fi
echo "tidy: ${#files[@]} files clean"
