#!/usr/bin/env python3
"""tandem serve, measured: a converged pass at 5 x 100 products, and a cluster's failure to the
re-split.

  python3 bench/serve_bench.py [BUILD_DIR]      (default build/release)

1. Pass duration: 5 simulated instances x 100 products (bench/gen_sync_fleet.py; 20 ms injected
   latency per admin API call, as bench/sync_bench.sh), filled by one `tandem apply`. Then, in
   the same run, side by side: the pipeline's way (`tandem drift` and a no-change `tandem apply`,
   each a whole CLI run over the 5 instances) and tandem serve's passes (per instance, from
   tandem_reconcile_duration_seconds); and how long an out-of-band edit lives under serve.
2. Failure to re-split: two instances behind tandem-lb (checks every 500 ms, fall 2), serve with
   resplit.after 5s and poll 500ms. The east simulator is killed; timestamps (50 ms polls) of
   tandem-lb marking it down, serve taking it out, and west enforcing the whole limit; then east
   comes back and the same for the restore. Several runs, medians.
Env: BENCH_RUNS (3), BENCH_LATENCY_MS (20), BENCH_PRODUCTS (100), BENCH_INSTANCES (5).
"""
import base64
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build/release"))
TANDEM = os.path.join(BUILD, "sync/tandem")
LB = os.path.join(BUILD, "lb/tandem-lb")
SIM = os.path.join(BUILD, "test/sim/threescale-sim")
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
LATENCY = os.environ.get("BENCH_LATENCY_MS", "20")
PRODUCTS = os.environ.get("BENCH_PRODUCTS", "100")
INSTANCES = int(os.environ.get("BENCH_INSTANCES", "5"))
TOKEN = "bench-token-%d" % os.getpid()
ENV = dict(os.environ, BENCH_TOKEN=TOKEN, TANDEM_SIM_TOKEN=TOKEN)


def build():
    if not all(os.access(p, os.X_OK) for p in (TANDEM, LB, SIM)):
        subprocess.run(["cmake", "--preset", "release"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["cmake", "--build", "--preset", "release", "--target", "tandem", "tandem-lb",
                        "threescale-sim"], cwd=ROOT, check=True)


class Procs:
    def __init__(self):
        self.procs = []

    def start(self, argv, ready, stderr=subprocess.DEVNULL):
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=stderr, env=ENV, text=True)
        line = p.stdout.readline()
        if ready not in line:
            raise SystemExit(f"{argv[0]} did not start: {line!r}")
        self.procs.append(p)
        return p, line

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        self.procs = []


def sim(procs, name, *extra):
    p, line = procs.start([SIM, "--name", name, "--empty", "--admin-port", "0", "--gateway-port", "0",
                           *extra], "threescale-sim")
    admin = re.search(r"admin=(\S+)", line).group(1)
    gateway = re.search(r"gateway=http://(\S+)", line).group(1)
    return p, admin, gateway


def get(url, timeout=5):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.read().decode()
    except Exception:
        return None


def minute_limit(admin):
    body = get(admin + "/__sim/state")
    if body is None:
        return None
    values = [l["value"] for l in json.loads(body)["limits"] if l["period"] == "minute"]
    return values[0] if len(values) == 1 else None


def metric(text, name, instance):
    m = re.search(r'^%s\{instance="%s"\} (\S+)$' % (re.escape(name), instance), text, re.M)
    return float(m.group(1)) if m else 0.0


def wait(cond, timeout, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(step)
    return None


def timed(argv):
    t0 = time.monotonic()
    r = subprocess.run(argv, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - t0, r.returncode


def pass_duration(work):
    procs = Procs()
    try:
        admins = [sim(procs, f"sim{i}", "--fault-latency-ms", LATENCY)[1] for i in range(INSTANCES)]
        fleet_dir = os.path.join(work, "fleet")
        subprocess.run([sys.executable, os.path.join(ROOT, "bench/gen_sync_fleet.py"), fleet_dir, PRODUCTS,
                        *admins], check=True)
        fleet = os.path.join(fleet_dir, "fleet.yaml")
        first, rc = timed([TANDEM, "apply", "-f", fleet])
        if rc != 0:
            raise SystemExit("the first apply failed")
        drift, rc = timed([TANDEM, "drift", "-f", fleet])
        if rc != 0:
            raise SystemExit(f"drift after apply was not clean ({rc})")
        apply2, _ = timed([TANDEM, "apply", "-f", fleet])
        with open(fleet, "a") as f:
            f.write("serve:\n  listen: 127.0.0.1:0\n  interval: 5s\n")
        log = open(os.path.join(work, "serve.log"), "w")
        _, line = procs.start([TANDEM, "serve", "-f", fleet], "tandem serve ready", stderr=log)
        port = line.split("listen=")[1].split()[0]
        base = f"http://{port}"
        names = [f"sim{i}" for i in range(INSTANCES)]

        def passes_done(n):
            text = get(base + "/metrics") or ""
            return all(metric(text, "tandem_reconcile_duration_seconds_count", i) >= n for i in names) and text

        text = wait(lambda: passes_done(3), 300, 0.5)
        if not text:
            raise SystemExit("serve did not make 3 passes per instance")
        means = [metric(text, "tandem_reconcile_duration_seconds_sum", i) /
                 metric(text, "tandem_reconcile_duration_seconds_count", i) for i in names]
        status = json.loads(get(base + "/status"))
        results = {i["name"]: i["last_pass"]["result"] for i in status["instances"]}
        # an out-of-band edit on sim0: how long it lives under serve (interval 5s)
        state = json.loads(get(admins[0] + "/__sim/state"))
        limit = next(l for l in state["limits"] if l["period"] == "minute")
        req = urllib.request.Request(
            admins[0] + "/admin/api/application_plans/%d/metrics/%d/limits/%d.json"
            % (limit["plan_id"], limit["metric_id"], limit["id"]),
            data=b"value=999999", method="PUT")
        req.add_header("Authorization", "Basic " + base64.b64encode((TOKEN + ":").encode()).decode())
        urllib.request.urlopen(req, timeout=10).read()
        t0 = time.monotonic()

        def reverted():
            s = json.loads(get(admins[0] + "/__sim/state"))
            return next(l for l in s["limits"] if l["id"] == limit["id"])["value"] != 999999

        wait(reverted, 60, 0.05)
        lived = time.monotonic() - t0
        return {"first_apply": first, "drift_cli": drift, "apply_cli_nochange": apply2,
                "serve_pass_mean": statistics.median(means), "serve_pass_max": max(means),
                "results": results, "edit_lived": lived}
    finally:
        procs.stop()


def resplit_once(work):
    procs = Procs()
    try:
        _, east_admin, east_gw = sim(procs, "east")
        _, west_admin, west_gw = sim(procs, "west")
        products = os.path.join(work, "rs", "products")
        os.makedirs(products, exist_ok=True)
        with open(os.path.join(products, "echo.yaml"), "w") as f:
            f.write(ECHO)
        lb_yaml = os.path.join(work, "rs", "lb.yaml")
        with open(lb_yaml, "w") as f:
            f.write(f"listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\nthreads: 1\nclusters:\n"
                    f"  - {{name: east, address: {east_gw}}}\n  - {{name: west, address: {west_gw}}}\n"
                    "healthCheck: {path: /status/ready, interval: 500ms, timeout: 400ms, rise: 2, fall: 2}\n")
        _, line = procs.start([LB, "-c", lb_yaml], "tandem-lb ready")
        lb_admin = "http://" + re.search(r"admin=(\S+)", line).group(1)
        fleet = os.path.join(work, "rs", "fleet.yaml")
        with open(fleet, "w") as f:
            f.write(f"""apiVersion: tandem/v1
kind: Fleet
instances:
  - {{name: east, adminUrl: {east_admin}, token: {{env: BENCH_TOKEN}}, timeout: 5s}}
  - {{name: west, adminUrl: {west_admin}, token: {{env: BENCH_TOKEN}}, timeout: 5s}}
resources: [products/]
serve:
  listen: 127.0.0.1:0
  interval: 10s
  balancers: [{{url: "{lb_admin}"}}]
  resplit: {{after: 5s, restoreAfter: 5s, poll: 500ms, timeout: 400ms}}
""")
        log = open(os.path.join(work, "rs", "serve.log"), "w")
        _, line = procs.start([TANDEM, "serve", "-f", fleet], "tandem serve ready", stderr=log)
        base = "http://" + line.split("listen=")[1].split()[0]
        if not wait(lambda: minute_limit(west_admin) == 50 and minute_limit(east_admin) == 50, 30):
            raise SystemExit("the fleet did not converge")

        def cluster(name):
            s = get(lb_admin + "/status")
            return next((c for c in json.loads(s)["clusters"] if c["name"] == name), {}) if s else {}

        def split_state(name):
            s = get(base + "/status")
            return next(i["split_state"] for i in json.loads(s)["instances"] if i["name"] == name) if s else None

        east_proc = procs.procs[0]
        east_port = east_admin.rsplit(":", 1)[1]
        east_gw_port = east_gw.rsplit(":", 1)[1]
        east_proc.kill()
        east_proc.wait()
        t0 = time.monotonic()
        wait(lambda: cluster("east").get("healthy") is False, 30)
        down = time.monotonic() - t0
        wait(lambda: split_state("east") == "out", 60)
        out = time.monotonic() - t0
        wait(lambda: minute_limit(west_admin) == 100, 60)
        raised = time.monotonic() - t0
        maint = cluster("east").get("admin_state")
        # east back, empty, on its ports
        procs.procs[0] = subprocess.Popen(
            [SIM, "--name", "east", "--empty", "--admin-port", east_port, "--gateway-port", east_gw_port],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=ENV, text=True)
        procs.procs[0].stdout.readline()
        t1 = time.monotonic()
        wait(lambda: cluster("east").get("healthy") is True, 30)
        up = time.monotonic() - t1
        wait(lambda: minute_limit(west_admin) == 50, 60)
        lowered = time.monotonic() - t1
        wait(lambda: cluster("east").get("admin_state") == "ready", 60)
        ready = time.monotonic() - t1
        return {"down": down, "out": out, "raised": raised, "maint": maint,
                "up": up, "lowered": lowered, "ready": ready}
    finally:
        procs.stop()


ECHO = """apiVersion: capabilities.3scale.net/v1beta1
kind: Backend
metadata: {name: echo-backend}
spec: {name: Echo backend, systemName: echo_backend, privateBaseURL: "https://echo.internal.example.com"}
---
apiVersion: capabilities.3scale.net/v1beta1
kind: Product
metadata: {name: echo}
spec:
  name: Echo
  systemName: echo
  backendUsages: {echo_backend: {path: /}}
  applicationPlans:
    basic:
      name: Basic
      limits:
        - {period: minute, value: 100, metricMethodRef: {systemName: hits}}
"""


def main():
    build()
    work = tempfile.mkdtemp(prefix="serve-bench-")
    try:
        print(f"tandem serve: {INSTANCES} instances x {PRODUCTS} products, {LATENCY} ms per admin API call")
        p = pass_duration(work)
        print(f"  first apply (from empty, CLI)            {p['first_apply']:7.2f} s")
        print(f"  drift, clean (CLI, whole fleet)          {p['drift_cli']:7.2f} s")
        print(f"  apply, no change (CLI, whole fleet)      {p['apply_cli_nochange']:7.2f} s")
        print(f"  serve pass, converged (per instance)     {p['serve_pass_mean']:7.2f} s median of the"
              f" instances' means (max {p['serve_pass_max']:.2f} s); last results: "
              f"{sorted(set(p['results'].values()))}")
        print(f"  an out-of-band edit lived under serve    {p['edit_lived']:7.2f} s (interval 5s)")
        runs = [resplit_once(work) for _ in range(RUNS)]
        for i, r in enumerate(runs, 1):
            print(f"  run {i}: " + ", ".join(f"{k} {v:.2f}s" if isinstance(v, float) else f"{k} {v}"
                                          for k, v in r.items()))
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0] if k != "maint"}
        print(f"failure to re-split (tandem-lb checks 500 ms x fall 2, resplit.after 5s, poll 500ms),"
              f" medians of {RUNS} runs:")
        print(f"  tandem-lb marks east down                {med['down']:7.2f} s after the kill")
        print(f"  serve takes east out (maint on the lb)   {med['out']:7.2f} s")
        print(f"  west enforces the whole 100/minute       {med['raised']:7.2f} s"
              f"   (= after + {med['raised'] - 5:.2f} s of detection, poll and a pass)")
        print(f"restore (east back, empty; restoreAfter 5s):")
        print(f"  tandem-lb sees east healthy              {med['up']:7.2f} s after the start")
        print(f"  west lowered back to 50                  {med['lowered']:7.2f} s")
        print(f"  east set ready (after every instance converged) {med['ready']:7.2f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
