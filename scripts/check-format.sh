#!/usr/bin/env bash
# Fails (exit 1) when a C++ file of the repository differs from what .clang-format makes of it,
# and lists those files with the command that fixes them. Debian 12's clang-format (14) is the
# reference: another version may format a few constructs differently.
#   scripts/check-format.sh          # check
#   scripts/check-format.sh --fix    # rewrite the files in place
set -euo pipefail
cd "$(dirname "$0")/.."

command -v clang-format >/dev/null || { echo "check-format: clang-format is missing (bash scripts/install-deps.sh)" >&2; exit 1; }
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files --cached --others --exclude-standard -- '*.cpp' '*.hpp' '*.h' '*.ipp')
else
  mapfile -t files < <(find . -path ./build -prune -o -type f \( -name '*.cpp' -o -name '*.hpp' -o -name '*.h' -o -name '*.ipp' \) -print)
fi
existing=()
for f in "${files[@]}"; do [[ -f $f ]] && existing+=("$f"); done
if [[ ${1:-} == --fix ]]; then
  clang-format -i "${existing[@]}"
  echo "check-format: formatted ${#existing[@]} files"
  exit 0
fi
drift=()
for f in "${existing[@]}"; do
  clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || drift+=("$f")
done
if ((${#drift[@]})); then
  echo "check-format: ${#drift[@]} of ${#existing[@]} files differ from .clang-format ($(clang-format --version | sed 's/.*version //')):" >&2
  printf '  %s\n' "${drift[@]}" >&2
  echo "fix: bash scripts/check-format.sh --fix   (or clang-format -i FILE)" >&2
  exit 1
fi
echo "check-format: ${#existing[@]} files match .clang-format"
