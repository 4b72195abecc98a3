#!/usr/bin/env python3
"""The mirror, measured: propagation lag with and without webhooks, and a full comparison with
10,000 applications on the source.

  python3 bench/mirror_bench.py [BUILD_DIR]      (default build/release)

1. Propagation lag: east (the portal instance) and west, the echo product applied to both,
   tandem serve with mirror.interval 10s. A developer's application is created on east's admin
   API; the lag is from that call's answer to west's gateway answering 200 with its key (polled
   every 10 ms). Samples alternate, in the same run, between east's webhooks on (pointed at
   serve's listener) and off (the interval alone; each such change made at a random moment of
   the schedule). p50 and p99 per mode (with few samples the p99 is the maximum: the count is
   printed).
2. Scale: 1,000 accounts x 10 applications (user_key) on east. `tandem mirror --once` copies them
   to an empty west; then a no-change comparison (the steady state), each at 0 ms and at
   BENCH_LATENCY_MS per admin API call (the simulators' injected latency; instance concurrency 8).
Env: BENCH_LATENCY_MS (20), BENCH_HOOK_SAMPLES (30), BENCH_POLL_SAMPLES (10),
BENCH_ACCOUNTS (1000), BENCH_APPS_PER_ACCOUNT (10).
"""
import base64
import concurrent.futures
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import serve_bench as sb  # noqa: E402  (the processes, the simulators, waits)

LATENCY = int(os.environ.get("BENCH_LATENCY_MS", "20"))
HOOK_SAMPLES = int(os.environ.get("BENCH_HOOK_SAMPLES", "30"))
POLL_SAMPLES = int(os.environ.get("BENCH_POLL_SAMPLES", "10"))
ACCOUNTS = int(os.environ.get("BENCH_ACCOUNTS", "1000"))
APPS = int(os.environ.get("BENCH_APPS_PER_ACCOUNT", "10"))
HOOK_TOKEN = "bench-webhook-token-%d-0123456789" % os.getpid()
sb.ENV["BENCH_HOOK_TOKEN"] = HOOK_TOKEN
AUTH = "Basic " + base64.b64encode((sb.TOKEN + ":").encode()).decode()


def call(admin, method, path, form=None, timeout=30):
    data = None if form is None else "&".join(f"{k}={v}" for k, v in form.items()).encode()
    req = urllib.request.Request(admin + path, data=data, method=method)
    req.add_header("Authorization", AUTH)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read().decode() or "{}")


def faults(admin, latency_ms):
    req = urllib.request.Request(admin + "/__sim/faults", method="PATCH",
                                 data=json.dumps({"admin": {"latency_ms": latency_ms}}).encode())
    urllib.request.urlopen(req, timeout=10).read()


def status_of_key(gateway, key):
    req = urllib.request.Request(f"http://{gateway}/?user_key={key}", headers={"Host": "echo.api.test"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except Exception:
        return 0


# serve_bench's echo product, reachable on the gateways as echo.api.test with a user_key
ECHO = sb.ECHO.replace("  backendUsages:", """  deployment:
    apicastSelfManaged:
      productionPublicBaseURL: https://echo.api.test
      authentication: {userkey: {credentials: query}}
  mappingRules:
    - {httpMethod: GET, pattern: /, metricMethodRef: hits, increment: 1}
  backendUsages:""")


def fleet_file(work, east_admin, west_admin, extra=""):
    os.makedirs(os.path.join(work, "products"), exist_ok=True)
    with open(os.path.join(work, "products", "echo.yaml"), "w") as f:
        f.write(ECHO)
    fleet = os.path.join(work, "fleet.yaml")
    with open(fleet, "w") as f:
        f.write(f"""apiVersion: tandem/v1
kind: Fleet
instances:
  - {{name: east, adminUrl: {east_admin}, token: {{env: BENCH_TOKEN}}, timeout: 30s}}
  - {{name: west, adminUrl: {west_admin}, token: {{env: BENCH_TOKEN}}, timeout: 30s}}
resources: [products/]
{extra}""")
    return fleet


def percentile(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def lag_bench(work):
    procs = sb.Procs()
    try:
        _, east, _ = sb.sim(procs, "east", "--fault-latency-ms", str(LATENCY))
        _, west, west_gw = sb.sim(procs, "west", "--fault-latency-ms", str(LATENCY))
        fleet = fleet_file(work, east, west, """serve: {listen: "127.0.0.1:0", interval: 60s}
mirror:
  source: east
  interval: 10s
  deletes: true
  webhookToken: {env: BENCH_HOOK_TOKEN}
""")
        if subprocess.run([sb.TANDEM, "apply", "-f", fleet], env=sb.ENV, stdout=subprocess.DEVNULL).returncode:
            raise SystemExit("apply failed")
        log = open(os.path.join(work, "serve.log"), "w")
        _, line = procs.start([sb.TANDEM, "serve", "-f", fleet], "tandem serve ready", stderr=log)
        port = line.split("listen=")[1].split()[0]
        hook_url = f"http://{port}/webhooks/3scale/{HOOK_TOKEN}"
        events = {e: "true" for e in ("account_created_on", "application_created_on",
                                      "application_updated_on", "application_deleted_on")}
        account = call(east, "POST", "/admin/api/signup.json",
                       {"org_name": "Dev", "username": "dev", "email": "dev@dev.test",
                        "password": "portal-pass"})["account"]["id"]
        services = call(east, "GET", "/admin/api/services.json")["services"]
        plans = call(east, "GET", f"/admin/api/services/{services[0]['service']['id']}/application_plans.json")
        plan = plans["plans"][0]["application_plan"]["id"]
        lags = {"webhooks": [], "interval": []}
        # interleaved: an interval sample after every HOOK_SAMPLES/POLL_SAMPLES webhook ones
        mixed, h, p = [], 0, 0
        while h < HOOK_SAMPLES or p < POLL_SAMPLES:
            if h < HOOK_SAMPLES:
                mixed.append("webhooks"); h += 1
            if p < POLL_SAMPLES and (h * POLL_SAMPLES >= (p + 1) * HOOK_SAMPLES or h >= HOOK_SAMPLES):
                mixed.append("interval"); p += 1
        for n, mode in enumerate(mixed):
            call(east, "PUT", "/admin/api/webhooks.json",
                 {"url": hook_url, "active": "true" if mode == "webhooks" else "false",
                  "provider_actions": "true", **events})
            key = f"lag-key-{n:04d}"
            if mode == "interval":
                # a change at a random moment of the schedule, as in life (right after the
                # previous sample would always wait a whole interval)
                time.sleep(random.uniform(0, 10))
            call(east, "POST", f"/admin/api/accounts/{account}/applications.json",
                 {"name": f"app{n}", "plan_id": plan, "user_key": key})
            t0 = time.monotonic()
            if not sb.wait(lambda: status_of_key(west_gw, key) == 200, 60, 0.01):
                raise SystemExit(f"{key} never reached west")
            lags[mode].append(time.monotonic() - t0)
        metrics = sb.get(f"http://{port}/metrics") or ""
        m_sum = re.search(r"^tandem_mirror_propagation_lag_seconds_sum (\S+)$", metrics, re.M)
        m_cnt = re.search(r"^tandem_mirror_propagation_lag_seconds_count (\S+)$", metrics, re.M)
        own = float(m_sum.group(1)) / float(m_cnt.group(1)) if m_sum and m_cnt else float("nan")
        return lags, own
    finally:
        procs.stop()


def fill(admin):
    services = call(admin, "GET", "/admin/api/services.json")["services"]
    plans = call(admin, "GET", f"/admin/api/services/{services[0]['service']['id']}/application_plans.json")
    plan = plans["plans"][0]["application_plan"]["id"]

    def one(i):
        acc = call(admin, "POST", "/admin/api/signup.json",
                   {"org_name": f"Org{i}", "username": f"dev{i}", "email": f"dev{i}@dev.test",
                    "password": "portal-pass"})["account"]["id"]
        for j in range(APPS):
            call(admin, "POST", f"/admin/api/accounts/{acc}/applications.json",
                 {"name": f"app{j}", "plan_id": plan, "user_key": f"k{i}x{j}"})

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(ACCOUNTS)))


def mirror_once(fleet, *extra):
    t0 = time.monotonic()
    r = subprocess.run([sb.TANDEM, "mirror", "-f", fleet, "--once", "-o", "json", *extra], env=sb.ENV,
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    wall = time.monotonic() - t0
    doc = json.loads(r.stdout)
    done = sum(len(t["done"]) for t in doc["targets"])
    return wall, doc["source_read_seconds"], r.returncode, done, doc["applications"]


def scale_bench(work):
    procs = sb.Procs()
    try:
        _, east, _ = sb.sim(procs, "east")
        _, west, _ = sb.sim(procs, "west")
        fleet = fleet_file(work, east, west, "mirror: {source: east, deletes: true}\n")
        if subprocess.run([sb.TANDEM, "apply", "-f", fleet], env=sb.ENV, stdout=subprocess.DEVNULL).returncode:
            raise SystemExit("apply failed")
        t0 = time.monotonic()
        fill(east)
        filled = time.monotonic() - t0
        out = {"filled": filled}
        for latency in (0, LATENCY):
            for admin in (east, west):
                faults(admin, latency)
            if latency == 0:
                out["copy"] = mirror_once(fleet)
            out[f"steady_{latency}"] = mirror_once(fleet)
            out[f"dry_{latency}"] = mirror_once(fleet, "--dry-run")
        return out
    finally:
        procs.stop()


def main():
    sb.build()
    work = tempfile.mkdtemp(prefix="mirror-bench-")
    try:
        print(f"mirror propagation lag: mirror.interval 10s, {LATENCY} ms per admin API call, "
              f"serve's pass interval 60s")
        lags, own = lag_bench(os.path.join(work, "lag"))
        for mode, values in lags.items():
            print(f"  {mode:9s} n={len(values):3d}  p50 {percentile(values, 50):6.3f} s   "
                  f"p99 {percentile(values, 99):6.3f} s   max {max(values):6.3f} s")
        ratio = percentile(lags["interval"], 50) / percentile(lags["webhooks"], 50)
        print(f"  webhooks cut the median lag {ratio:.0f}x; serve's own histogram "
              f"(nudge or discovery -> written everywhere): mean {own:.3f} s")
        print(f"full comparison: {ACCOUNTS} accounts x {APPS} applications on the source")
        s = scale_bench(os.path.join(work, "scale"))
        print(f"  (filled through the admin API in {s['filled']:.1f} s)")
        wall, read, rc, done, apps = s["copy"]
        print(f"  first copy to an empty west, 0 ms        {wall:7.2f} s (source read {read:.2f} s, "
              f"{done} writes, {apps} applications, exit {rc})")
        for latency in (0, LATENCY):
            wall, read, rc, done, _ = s[f"steady_{latency}"]
            dwall, dread, drc, _, _ = s[f"dry_{latency}"]
            print(f"  no-change comparison, {latency:2d} ms per call     {wall:7.2f} s (source read "
                  f"{read:.2f} s, {done} writes, exit {rc}); --dry-run {dwall:.2f} s (exit {drc})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
