#!/usr/bin/env python3
"""Where a proxy's user-space instructions per request go, by the library the code comes from.

    python3 bench/instructions_by_library.py REPO_ROOT N1 N2 SMALL.callgrind LARGE.callgrind

SMALL and LARGE are callgrind dumps of the same proxy serving N1 and N2 requests (bench/
lb_instructions.sh makes them). Each function's own instructions (callgrind_annotate, not
inclusive) are charged to the source file of the code that ran, so a Beast template inlined
into tandem-lb counts as Beast's; the difference between the two dumps over N2 - N1 is the cost
per request, start-up and shut-down cancelling out. Prints one Markdown table row per group.
"""
import collections
import os
import re
import subprocess
import sys

root = os.path.abspath(sys.argv[1])
n1, n2, small, large = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]

# "  3,997,332 ( 5.39%)  /usr/include/boost/beast/...:function(args) [/path/object]"
LINE = re.compile(r"\s*([\d,]+)\s+\([^)]*\)\s+(\S+?):(.*?)(?:\s+\[([^\]]*)\])?$")


def group(path, obj):
    if "/boost/beast/" in path or "/boost/intrusive/" in path:
        return "Beast (HTTP parser, header fields and their intrusive tree)"
    if "/boost/asio/" in path:
        return "Asio (scheduler, reactor, coroutines)"
    if "/boost/" in path:
        return "other Boost (error codes, containers)"
    if path.startswith(root + "/"):
        return "tandem-lb's own code"
    if "/c++/" in path:
        return "C++ standard library templates (inlined into tandem-lb)"
    if "prometheus" in path or "prometheus" in obj:
        return "prometheus-cpp (metrics)"
    # (glibc's sources are "./..."; string.h's fortified inlines come without an object)
    if ("libc.so" in obj or "ld-linux" in obj or path.startswith("./")
            or path == "/usr/include/string.h"):
        return "libc (malloc, memcpy, system call wrappers, locks)"
    if "libstdc++" in obj:
        return "libstdc++.so"
    return "other (" + (obj.rsplit("/", 1)[-1] or path) + ")"


def by_group(dump):
    # (run from / : callgrind_annotate shows files under its working directory relative to it)
    out = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=100", "--auto=no",
                          os.path.abspath(dump)], capture_output=True, text=True, check=True,
                         cwd="/").stdout
    totals = collections.Counter()
    for line in out.splitlines():
        m = LINE.match(line)
        if m and "PROGRAM TOTALS" not in line:
            totals[group(m.group(2), m.group(4) or "")] += int(m.group(1).replace(",", ""))
    return totals


a, b = by_group(small), by_group(large)
per = {g: (b[g] - a[g]) / (n2 - n1) for g in set(a) | set(b)}
total = sum(per.values())
for g, v in sorted(per.items(), key=lambda kv: -kv[1]):
    if abs(v) >= 1:
        print(f"| {g} | {v:,.0f} | {100 * v / total:.0f}% |")
print(f"| all | {total:,.0f} | 100% |")
