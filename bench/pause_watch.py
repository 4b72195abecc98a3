#!/usr/bin/env python3
"""Notes when this CPU (or the whole machine) stopped running anything for a while.

    taskset -c CPU python3 bench/pause_watch.py OUT [THRESHOLD_MS]

Sleeps 5 ms at a time, forever; whenever a sleep ends more than THRESHOLD_MS (default 25) late,
appends "WALLCLOCK_END_S GAP_MS" to OUT. A runnable task waits a few ms at most behind the
benchmark's processes (the kernel's fair scheduler favours a task that slept), so a gap of
tens of ms means the virtual CPU itself was not running: the host descheduled it. Such a
stall lands in one proxy's run or the other's by chance and, through wrk's correction for
coordinated omission, turns into a p99 of 30-130 ms (measured on this machine: a 101 ms gap
with no scheduler event on CPU 0, both proxies affected alike), so the benchmark repeats a run
that had one.
"""
import sys
import time

out = open(sys.argv[1], "a", buffering=1)
threshold = float(sys.argv[2]) / 1000.0 if len(sys.argv) > 2 else 0.025
step = 0.005
while True:
    before = time.monotonic()
    time.sleep(step)
    late = time.monotonic() - before - step
    if late > threshold:
        out.write(f"{time.time():.3f} {late * 1000.0:.1f}\n")
