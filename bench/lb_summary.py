#!/usr/bin/env python3
"""Markdown summary of bench/lb_bench.sh's measurements (appended to summary.md).

    python3 bench/lb_summary.py http  RESULTS.tsv STALLED.tsv [CPU.tsv CLK_TCK]
        # throughput, ratios vs HAProxy; with CPU.tsv: each proxy's CPU per request and
        # the upstreams' behind it
    python3 bench/lb_summary.py https RESULTS.tsv STALLED.tsv   # TLS termination, 1 thread
"""
import csv
import statistics
import sys

scheme, results, stalled_file = sys.argv[1:4]
cpu_file, hz = (sys.argv[4], int(sys.argv[5])) if len(sys.argv) > 5 else (None, 100)
rows = list(csv.DictReader(open(results), delimiter="\t"))
sizes = list(dict.fromkeys(r["size"] for r in rows))
targets = list(dict.fromkeys(r["target"] for r in rows))
# Runs repeated because the host stalled the machine during them (this scheme's only).
stalled = [x for x in (l.split("\t") for l in open(stalled_file).read().split("\n")[1:] if l)
           if x[0] == scheme]
still = [r for r in rows if float(r["stall_ms"]) >= 25]

# Per target and size: median req/s, median p99, min and max req/s, errors.
med = {}
for t in targets:
    for s in sizes:
        rs = [r for r in rows if r["target"] == t and r["size"] == s]
        if rs:
            med[t, s] = (statistics.median(float(r["rps"]) for r in rs),
                         statistics.median(float(r["p99_ms"]) for r in rs),
                         min(float(r["rps"]) for r in rs), max(float(r["rps"]) for r in rs),
                         sum(int(r["non2xx"]) + int(r["socket_errors"]) for r in rs))

title = ("Throughput (median req/s, [min..max], p99 ms, errors)" if scheme == "http"
         else "TLS termination, 1 thread (median req/s [min..max], p99 ms, errors)")
print(f"\n## {title}\n")
print("| target | " + " | ".join(f"`{s}` rps | p99" for s in sizes) + " |")
print("|---|" + "---|---|" * len(sizes))
for t in targets:
    cells = []
    for s in sizes:
        m = med.get((t, s))
        cells.append(f"{m[0]:,.0f} [{m[2]:,.0f}..{m[3]:,.0f}]{' ERR ' + str(m[4]) if m[4] else ''} | {m[1]:.2f}" if m else "- | -")
    print(f"| {t} | " + " | ".join(cells) + " |")

if scheme == "https":
    for s in sizes:
        t, h = med.get(("tandem-lb-1t", s)), med.get(("haproxy-1t", s))
        if t and h:
            print(f"\ntandem-lb / HAProxy over TLS at `{s}`: {t[0] / h[0]:.2f}x req/s, p99 {t[1] / h[1]:.2f}x")
    print(f"\n{len(stalled)} TLS runs were repeated because the host stalled the machine; "
          f"{len(still)} kept runs still had a stall.")
    sys.exit(0)

# Per target and size: median user and system CPU µs per request, from the proxy's own
# accounting over each run (clock ticks of /proc/PID/stat; requests = req/s x seconds), and what
# the two upstreams spent per request meanwhile (one target runs at a time; `direct` is wrk
# against an upstream with no proxy).
cpu, up, mach = {}, {}, {}
if cpu_file:
    per, per_up, per_mach = {}, {}, {}
    for r in csv.DictReader(open(cpu_file), delimiter="\t"):
        n = float(r["rps"]) * float(r["seconds"])
        if n <= 0:
            continue
        us = lambda a, b: (int(r[b]) - int(r[a])) * 1e6 / hz / n
        if r["target"] != "direct":
            per.setdefault((r["target"], r["size"]), []).append(
                (us("utime0", "utime1"), us("stime0", "stime1")))
        if r.get("up_utime0"):
            per_up.setdefault((r["target"], r["size"]), []).append(
                us("up_utime0", "up_utime1") + us("up_stime0", "up_stime1"))
        if r.get("busy0"):
            busy, idle = int(r["busy1"]) - int(r["busy0"]), int(r["idle1"]) - int(r["idle0"])
            per_mach.setdefault((r["target"], r["size"]), []).append(
                (us("busy0", "busy1"), idle / max(busy + idle, 1)))
    cpu = {key: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v))
           for key, v in per.items()}
    up = {key: statistics.median(v) for key, v in per_up.items()}
    mach = {key: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v))
            for key, v in per_mach.items()}
    print("\n## CPU per request (µs, user + kernel, each proxy's own accounting; medians)\n")
    print("| target | " + " | ".join(f"`{s}`" for s in sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    for t in targets:
        if t == "direct":
            continue
        cells = [f"{cpu[t, s][0]:.1f} + {cpu[t, s][1]:.1f}" if (t, s) in cpu else "-" for s in sizes]
        print(f"| {t} | " + " | ".join(cells) + " |")
    if up:
        print("\n## The upstreams' CPU per request behind each target (µs, user + kernel of both "
              "nginx; medians)\n")
        print("| target | " + " | ".join(f"`{s}`" for s in sizes) + " |")
        print("|---|" + "---|" * len(sizes))
        for t in targets:
            cells = [f"{up[t, s]:.1f}" if (t, s) in up else "-" for s in sizes]
            print(f"| {t} | " + " | ".join(cells) + " |")
    if mach:
        print("\n## The whole machine per request (µs of busy CPU on all CPUs, every process and "
              "the kernel's softirq work; the run's idle share; medians)\n")
        print("With no idle CPU, req/s is the CPUs over this cost, whichever process spends it.\n")
        print("| target | " + " | ".join(f"`{s}`" for s in sizes) + " |")
        print("|---|" + "---|" * len(sizes))
        for t in targets:
            cells = [f"{mach[t, s][0]:.1f} ({100 * mach[t, s][1]:.0f}% idle)" if (t, s) in mach
                     else "-" for s in sizes]
            print(f"| {t} | " + " | ".join(cells) + " |")


def sized(s):
    """Whether a size is one the >= 1.2x target applies to (16 KiB and above)."""
    n = s.lstrip("/").removeprefix("up")
    return n.endswith("m") or (n.endswith("k") and int(n[:-1]) >= 16)


def ratios(t, h, s):
    """tandem-lb target t over HAProxy target h at size s: req/s, p99, user CPU, kernel CPU,
    upstreams' CPU and the whole machine's CPU per request, and the req/s ratio tandem-lb would
    reach on a saturated machine if its user CPU were zero and every other cost stayed (HAProxy's
    machine CPU over tandem-lb's less its user CPU); None where a figure is missing."""
    div = lambda a, b: a / b if b else float("inf")
    r, p = div(med[t, s][0], med[h, s][0]), div(med[t, s][1], med[h, s][1])
    uc = kc = uu = mc = ceiling = None
    if (t, s) in cpu and (h, s) in cpu:
        uc, kc = div(cpu[t, s][0], cpu[h, s][0]), div(cpu[t, s][1], cpu[h, s][1])
    if (t, s) in up and (h, s) in up:
        uu = div(up[t, s], up[h, s])
    if (t, s) in mach and (h, s) in mach:
        mc = div(mach[t, s][0], mach[h, s][0])
        if (t, s) in cpu:
            ceiling = div(mach[h, s][0], mach[t, s][0] - cpu[t, s][0])
    return r, p, uc, kc, uu, mc, ceiling


def fmt(v):
    return "-" if v is None else f"{v:.2f}"


print("\n## tandem-lb / HAProxy at the same thread count\n")
print("Targets: user CPU per request <= 0.5x; req/s >= 1.2x at 16 KiB and above; p99 <= 1.0x.\n")
print("| build | threads | size | rps ratio | p99 ratio | user CPU ratio | kernel CPU ratio | "
      "upstreams' CPU ratio | machine CPU ratio | rps ceiling at zero user CPU | verdict |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for t in targets:
    if t.startswith(("haproxy-", "nginx-")) or t == "direct":
        continue  # every tandem-lb build (bench/lb_bench.sh --also adds others)
    build, th = t.rsplit("-", 1)
    h = "haproxy-" + th
    for s in sizes:
        if (t, s) in med and (h, s) in med:
            r, p, uc, kc, uu, mc, ceiling = ratios(t, h, s)
            ok = r >= (1.2 if sized(s) else 1.0) and p <= 1.0 and (uc is None or uc <= 0.5)
            print(f"| {build} | {th} | `{s}` | {r:.2f} | {p:.2f} | {fmt(uc)} | {fmt(kc)} | "
                  f"{fmt(uu)} | {fmt(mc)} | {fmt(ceiling)} | {'meets' if ok else 'MISSES'} |")
same = [t for t in targets if t.startswith("haproxy-hdr-")]
if same:
    print("\n## tandem-lb / HAProxy adding the same headers (bench/lb_bench.sh --haproxy-headers)\n")
    print("| threads | size | rps ratio | p99 ratio | user CPU ratio | kernel CPU ratio | "
          "upstreams' CPU ratio | machine CPU ratio | rps ceiling at zero user CPU |")
    print("|---|---|---|---|---|---|---|---|---|")
    for h in same:
        th = h.rsplit("-", 1)[1]
        t = "tandem-lb-" + th
        for s in sizes:
            if (t, s) in med and (h, s) in med:
                print(f"| {th} | `{s}` | " + " | ".join(fmt(v) for v in ratios(t, h, s)) + " |")
quiet = sum(1 for r in rows if r["quiet"] == "1")
print(f"\n{quiet} of {len(rows)} runs started on a quiet machine.", end=" ")
longest = max([float(x[6]) for x in stalled] + [0])
p99s = [float(x[5]) for x in stalled]
print(f"{len(stalled)} runs were repeated because the host stalled the machine during them "
      f"(stalls up to {longest:.0f} ms; those runs' p99 {min(p99s, default=0):.1f}-{max(p99s, default=0):.1f} ms, "
      f"median {statistics.median(p99s) if p99s else 0:.1f}); "
      f"{len(still)} kept runs still had a stall (after 5 attempts).")
