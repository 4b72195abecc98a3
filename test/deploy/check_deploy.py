#!/usr/bin/env python3
"""Keeps deploy/ consistent with the build and with itself (there is no Docker engine or cluster
here, so this is the lint):

- Dockerfile: pinned Debian 12 bases, apt hygiene, non-root users, HEALTHCHECK via
  `tandem-lb --healthcheck`, EXPOSE = the baked config's ports, every CMake subdirectory COPY'd
  into the build stage, the build stage installs the -dev packages the build needs, and each
  image installs the package of every shared library its binary links (readelf + dpkg -S).
- Kubernetes: replicas >= 2, host + zone anti-affinity selecting the pods, a PDB selecting them,
  probes on the admin port (readiness on /healthz), ports = the ConfigMap's config, which passes
  `tandem-lb --check-config`, grace period > drain timeout, non-root, Prometheus scraping.
- keepalived and systemd material, CI pipeline examples (real tandem commands and flags, tokens
  only from the CI's secret store), the Grafana dashboard (only metrics tandem-lb exports).
- tandem serve: one replica with Recreate, probes on /healthz and /readyz at serve.listen's port,
  a fleet + CRs that `tandem validate` accepts, tokens from Secrets, a ServiceMonitor with
  honorLabels, the PrometheusRule equal to deploy/prometheus's rules, which (like the Grafana
  dashboard) use only metrics tandem serve exports; its systemd unit.

`--self-test` also proves the checker can fail: it breaks copies of the files and expects errors.
Exit 0 when clean, 1 with one line per problem.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

_DPKG = {}  # file -> the Debian package that owns it (None: none)


class Checker:
    def __init__(self, repo, tandem_lb, tandem):
        self.repo, self.tandem_lb, self.tandem = repo, tandem_lb, tandem
        self.problems = []

    def fail(self, where, message):
        self.problems.append(f"{where}: {message}")

    def path(self, *parts):
        return os.path.join(self.repo, *parts)

    # ---- Dockerfile ----------------------------------------------------------------------
    def dockerfile(self):
        where = "deploy/docker/Dockerfile"
        text = open(self.path(where)).read()
        lines, current = [], ""
        for raw in text.splitlines():
            if raw.strip().startswith("#") and not current:
                continue
            current += raw.rstrip("\\").rstrip() + " " if raw.rstrip().endswith("\\") else raw
            if not raw.rstrip().endswith("\\"):
                if current.strip():
                    lines.append(current.strip())
                current = ""
        stages, stage = {}, None
        for line in lines:
            op, _, rest = line.partition(" ")
            op = op.upper()
            if op == "FROM":
                m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?", rest, re.I)
                image, name = m.group(1), m.group(2) or f"stage{len(stages)}"
                if image != "debian:12-slim":
                    self.fail(where, f"stage {name} is based on {image}, not debian:12-slim")
                stage = stages.setdefault(name, {"image": image, "ops": []})
            elif stage is not None:
                stage["ops"].append((op, rest))
        for name in ("build", "tandem", "tandem-lb"):
            if name not in stages:
                self.fail(where, f"no stage named {name}")
        if list(stages)[-1:] != ["tandem-lb"]:
            self.fail(where, "tandem-lb must be the last stage (the default target)")

        def installed(st):
            pkgs = set()
            for op, rest in st["ops"]:
                if op != "RUN" or "apt-get install" not in rest:
                    continue
                if "--no-install-recommends" not in rest:
                    self.fail(where, "apt-get install without --no-install-recommends")
                if "apt-get update" not in rest or "rm -rf /var/lib/apt/lists/*" not in rest:
                    self.fail(where, "apt-get install must run with apt-get update and clean "
                                     "/var/lib/apt/lists in the same RUN")
                seg = rest.split("apt-get install", 1)[1].split("&&")[0]
                pkgs |= {w for w in seg.split() if not w.startswith("-")}
            return pkgs

        build_pkgs = installed(stages.get("build", {"ops": []}))
        needed_dev = {"build-essential", "cmake", "ninja-build", "pkg-config", "libboost1.81-dev",
                      "libc-ares-dev", "prometheus-cpp-dev", "libyaml-cpp-dev", "libcli11-dev",
                      "nlohmann-json3-dev", "libssl-dev", "libcurl4-openssl-dev"}
        # and the -dev package of every pkg-config module a CMakeLists.txt requires
        pc_packages = {"libcares": "libc-ares-dev", "libnghttp2": "libnghttp2-dev"}
        for root, dirs, files in os.walk(self.repo):
            dirs[:] = [d for d in dirs if d not in ("build", ".git")]
            if "CMakeLists.txt" in files:
                cm = open(os.path.join(root, "CMakeLists.txt")).read()
                # (what an option off by default builds, `if(TANDEM_...) ... endif()`, is not
                # the image's build)
                cm = re.sub(r"\bif\(TANDEM_[A-Z0-9_]+\).*?\bendif\(\)", "", cm, flags=re.S)
                for module in re.findall(r"pkg_check_modules\([^)]*?\b(lib[a-z0-9]+)\)", cm):
                    if module not in pc_packages:
                        self.fail(where, f"pkg-config module {module}: add its Debian package to "
                                         "check_deploy's table")
                    else:
                        needed_dev.add(pc_packages[module])
        for p in sorted(needed_dev - build_pkgs):
            self.fail(where, f"the build stage does not install {p} (CMake needs it)")
        # every CMake subdirectory must be copied into the build stage
        copied = set()
        for op, rest in stages.get("build", {"ops": []})["ops"]:
            if op == "COPY" and "--from" not in rest:
                parts = rest.split()
                for src in parts[:-1]:
                    copied.add(src.rstrip("/"))
                    if not os.path.exists(self.path(src)):
                        self.fail(where, f"COPY {src}: no such path in the repository")
        for sub in re.findall(r"add_subdirectory\((\S+?)\)", open(self.path("CMakeLists.txt")).read()):
            top = sub.split("/")[0]
            if top not in copied and sub not in copied:
                self.fail(where, f"the build stage does not COPY {top}/ (CMakeLists.txt adds {sub})")
        for name, binary, built in (("tandem-lb", self.tandem_lb, "build/release/lb/tandem-lb"),
                                    ("tandem", self.tandem, "build/release/sync/tandem")):
            st = stages.get(name)
            if st is None:
                continue
            ops = st["ops"]
            users = [rest for op, rest in ops if op == "USER"]
            if not users or users[-1].split(":")[0] in ("0", "root"):
                self.fail(where, f"stage {name} must end with a non-root USER")
            if not any(op == "COPY" and f"--from=build /src/{built} " in rest + " " for op, rest in ops):
                self.fail(where, f"stage {name} does not copy {built} from the build stage")
            # Sanitizer runtimes come from the build being checked (the ASan run of the suite),
            # never from the release image.
            missing = {p for p in self.runtime_packages(binary) - installed(st) - self.base_packages()
                       if not re.match(r"lib[alt]san\d|libubsan\d", p)}
            for p in sorted(missing):
                self.fail(where, f"stage {name} lacks package {p} ({os.path.basename(binary)} links a library from it)")
        lb = stages.get("tandem-lb", {"ops": []})["ops"]
        health = [rest for op, rest in lb if op == "HEALTHCHECK"]
        if not health or "--healthcheck" not in health[0] or "/usr/local/bin/tandem-lb" not in health[0]:
            self.fail(where, "tandem-lb needs HEALTHCHECK ... tandem-lb --healthcheck -c <config>")
        config_dst = [rest.split()[-1] for op, rest in lb if op == "COPY" and "tandem-lb.yaml" in rest]
        if health and config_dst and config_dst[0] not in health[0]:
            self.fail(where, f"HEALTHCHECK reads another config than the image's {config_dst[0]}")
        exposed = {int(p) for op, rest in lb if op == "EXPOSE" for p in rest.split()}
        cfg = yaml.safe_load(open(self.path("deploy/docker/tandem-lb.yaml")))
        ports = {int(cfg["listen"].rsplit(":", 1)[1]), int(cfg["admin"].rsplit(":", 1)[1])}
        if exposed != ports:
            self.fail(where, f"EXPOSE {sorted(exposed)} but deploy/docker/tandem-lb.yaml listens on {sorted(ports)}")
        self.check_config("deploy/docker/tandem-lb.yaml", self.path("deploy/docker/tandem-lb.yaml"))

    @staticmethod
    def base_packages():
        # what debian:12-slim already carries that a C++ binary links
        return {"libc6", "libgcc-s1", "libstdc++6", "zlib1g", "libzstd1"}

    def runtime_packages(self, binary):
        out = subprocess.run(["readelf", "-d", binary], capture_output=True, text=True).stdout
        needed = re.findall(r"\(NEEDED\).*\[(.+?)\]", out)
        ldd = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
        paths = dict(re.findall(r"^\s*(\S+) => (\S+)", ldd, re.M))
        pkgs = set()
        for lib in needed:
            path = paths.get(lib)
            if path is None:
                self.fail(binary, f"cannot resolve {lib}")
                continue
            candidates = {path, os.path.realpath(path)}
            candidates |= {c.replace("/usr/lib/", "/lib/", 1) for c in list(candidates)}
            candidates |= {c.replace("/lib/", "/usr/lib/", 1) for c in list(candidates) if c.startswith("/lib/")}
            for c in sorted(candidates):
                if c not in _DPKG:  # (the self-test asks again for every broken copy)
                    r = subprocess.run(["dpkg", "-S", c], capture_output=True, text=True)
                    _DPKG[c] = r.stdout.split(":")[0].strip() if r.returncode == 0 else None
                if _DPKG[c]:
                    pkgs.add(_DPKG[c])
                    break
            else:
                self.fail(binary, f"no Debian package owns {lib} ({path})")
        return pkgs

    def check_config(self, where, file):
        r = subprocess.run([self.tandem_lb, "--check-config", "-c", file], capture_output=True, text=True)
        if r.returncode != 0:
            self.fail(where, "tandem-lb --check-config fails: " + (r.stderr or r.stdout).strip())

    # ---- Kubernetes ----------------------------------------------------------------------
    def kubernetes(self):
        where = "deploy/k8s/tandem-lb.yaml"
        docs = [d for d in yaml.safe_load_all(open(self.path(where))) if d]
        by_kind = {}
        for d in docs:
            by_kind.setdefault(d["kind"], []).append(d)
        for kind in ("ConfigMap", "Deployment", "PodDisruptionBudget", "Service", "ServiceMonitor"):
            if kind not in by_kind:
                self.fail(where, f"no {kind}")
        if self.problems:
            return
        cm = by_kind["ConfigMap"][0]
        text = cm["data"]["tandem-lb.yaml"]
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            f.write(text)
        self.check_config(where + " (ConfigMap)", f.name)
        os.unlink(f.name)
        cfg = yaml.safe_load(text)
        listen, admin = int(cfg["listen"].rsplit(":", 1)[1]), int(cfg["admin"].rsplit(":", 1)[1])
        if not cfg["admin"].startswith("0.0.0.0"):
            self.fail(where, "the admin listener must bind 0.0.0.0 in a pod, or the probes cannot reach it")
        drain = int(str(cfg.get("timeouts", {}).get("drain", "15s")).rstrip("s"))
        dep = by_kind["Deployment"][0]
        spec, pod = dep["spec"], dep["spec"]["template"]
        labels = pod["metadata"]["labels"]

        def selects(selector):
            return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items()) and selector.get("matchLabels")

        if spec.get("replicas", 1) < 2:
            self.fail(where, "the Deployment needs at least 2 replicas")
        if not selects(spec["selector"]):
            self.fail(where, "the Deployment's selector does not match its pod labels")
        terms = pod["spec"].get("affinity", {}).get("podAntiAffinity", {})
        keys = set()
        for t in terms.get("preferredDuringSchedulingIgnoredDuringExecution", []):
            if selects(t["podAffinityTerm"]["labelSelector"]):
                keys.add(t["podAffinityTerm"]["topologyKey"])
        for t in terms.get("requiredDuringSchedulingIgnoredDuringExecution", []):
            if selects(t["labelSelector"]):
                keys.add(t["topologyKey"])
        for k in ("kubernetes.io/hostname", "topology.kubernetes.io/zone"):
            if k not in keys:
                self.fail(where, f"no pod anti-affinity on {k} selecting the pods")
        c = pod["spec"]["containers"][0]
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        if ports.get("admin") != admin or ports.get("http") != listen:
            self.fail(where, f"container ports {ports} do not match the config (listen {listen}, admin {admin})")
        for probe in ("readinessProbe", "livenessProbe"):
            get = c.get(probe, {}).get("httpGet", {})
            if get.get("port") not in ("admin", admin):
                self.fail(where, f"{probe} must use the admin port")
        if c.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/healthz":
            self.fail(where, "the readiness probe must be /healthz (503 without a healthy cluster or while draining)")
        if pod["spec"].get("terminationGracePeriodSeconds", 30) <= drain:
            self.fail(where, f"terminationGracePeriodSeconds must exceed timeouts.drain ({drain}s)")
        if not pod["spec"].get("securityContext", {}).get("runAsNonRoot"):
            self.fail(where, "pods must run as non-root")
        if c["image"].endswith(":latest") or ":" not in c["image"]:
            self.fail(where, "pin the image tag")
        ann = pod["metadata"].get("annotations", {})
        if ann.get("prometheus.io/scrape") != "true" or ann.get("prometheus.io/port") != str(admin):
            self.fail(where, "prometheus.io annotations must point at the admin port")
        if not selects(by_kind["PodDisruptionBudget"][0]["spec"]["selector"]):
            self.fail(where, "the PodDisruptionBudget does not select the pods")
        services = by_kind["Service"]
        for s in services:
            if not all(labels.get(k) == v for k, v in s["spec"]["selector"].items()):
                self.fail(where, f"Service {s['metadata']['name']} does not select the pods")
        sm = by_kind["ServiceMonitor"][0]
        monitored = [s for s in services if all(s["metadata"]["labels"].get(k) == v
                     for k, v in sm["spec"]["selector"]["matchLabels"].items())]
        if not monitored or not any(p["name"] == sm["spec"]["endpoints"][0]["port"]
                                    for s in monitored for p in s["spec"]["ports"]):
            self.fail(where, "the ServiceMonitor selects no Service with its port")
        elif monitored[0]["spec"]["ports"][0]["targetPort"] not in ("admin", admin):
            self.fail(where, "the ServiceMonitor's Service must target the admin port")

    # ---- keepalived, systemd ----------------------------------------------------------------
    def keepalived_and_systemd(self):
        where = "deploy/keepalived/tandem-lb.yaml"
        file = self.path(where)
        self.check_config(where, file)
        cfg = yaml.safe_load(open(file))
        for node in cfg["keepalived"]["nodes"]:
            r = subprocess.run([self.tandem_lb, "-c", file, "--render-keepalived", node["name"]],
                               capture_output=True, text=True)
            if r.returncode != 0 or "vrrp_instance" not in r.stdout:
                self.fail(where, f"--render-keepalived {node['name']} fails: {r.stderr.strip()}")
        unit = open(self.path("deploy/systemd/tandem-lb.service")).read()
        for needed in ("ExecStart=/usr/local/bin/tandem-lb -c /etc/tandem-lb/tandem-lb.yaml",
                       "KillSignal=SIGTERM", "Restart=on-failure", "NoNewPrivileges=yes",
                       "ExecReload=/usr/local/bin/tandem-lb --check-config -c /etc/tandem-lb/tandem-lb.yaml",
                       "ExecReload=/bin/kill -HUP $MAINPID",
                       "[Install]"):
            if needed not in unit:
                self.fail("deploy/systemd/tandem-lb.service", f"missing {needed}")
        stop = re.search(r"TimeoutStopSec=(\d+)", unit)
        if not stop or int(stop.group(1)) <= 15:
            self.fail("deploy/systemd/tandem-lb.service", "TimeoutStopSec must exceed the default drain (15s)")

    # ---- CI pipeline examples -------------------------------------------------------------
    def ci(self):
        helps = {}
        for sub in ("validate", "plan", "apply", "drift", "split", "doctor", "render"):
            helps[sub] = subprocess.run([self.tandem, sub, "--help"], capture_output=True, text=True).stdout
        files = ["deploy/ci/github-actions.yml", "deploy/ci/gitlab-ci.yml", "deploy/ci/tekton-task.yaml"]
        for where in files:
            text = open(self.path(where)).read()
            yaml.safe_load(text)  # parses
            commands = re.findall(r"\btandem (validate|plan|apply|drift|split|doctor|render)\b([^\n|>&;]*)", text)
            # a parameterised step (Tekton): tandem "$COMMAND" with the commands in a case list
            for pattern in re.findall(r"^\s*([a-z|]+)\)\s*tandem \"\$COMMAND\"([^\n;]*)", text, re.M):
                for sub in pattern[0].split("|"):
                    if sub not in helps:
                        self.fail(where, f"tandem has no command {sub}")
                    else:
                        commands.append((sub, pattern[1].replace('"$OUTPUT"', "markdown")))
            if not commands:
                self.fail(where, "no tandem command")
            for sub, args in commands:
                for flag in re.findall(r"(--[a-z][a-z-]*)", args):
                    if flag not in helps[sub]:
                        self.fail(where, f"tandem {sub} has no option {flag}")
                m = re.search(r"--output (\w+)", args)
                if m and m.group(1) not in helps[sub]:
                    self.fail(where, f"tandem {sub} has no output format {m.group(1)}")
            if re.search(r"TOKEN:\s*['\"]?[A-Za-z0-9]{16,}", text):
                self.fail(where, "a literal token: take it from the CI's secret store")
            for var in set(re.findall(r"(TANDEM_[A-Z]+_TOKEN)\s*:", text)):
                block = text[text.index(var + ":"):][:200]
                if "secrets." not in block and "secretKeyRef" not in block:
                    self.fail(where, f"{var} must come from the secret store")
        gh = open(self.path(files[0])).read()
        gl = open(self.path(files[1])).read()
        for text, where in ((gh, files[0]), (gl, files[1])):
            for needed in ("tandem validate", "tandem plan -f fleet.yaml --output markdown", "tandem apply", "tandem drift"):
                if needed not in text:
                    self.fail(where, f"missing `{needed}`")
        if "pull_request" not in gh or "schedule" not in gh or "refs/heads/main" not in gh:
            self.fail(files[0], "needs pull_request (plan), main (apply) and schedule (drift)")
        if "merge_request_event" not in gl or '"schedule"' not in gl or "CI_DEFAULT_BRANCH" not in gl:
            self.fail(files[1], "needs merge requests (plan), the default branch (apply) and schedules (drift)")

    # ---- Grafana ------------------------------------------------------------------------
    def grafana(self):
        where = "deploy/grafana/tandem-lb.json"
        dash = json.load(open(self.path(where)))
        exported = set(re.findall(r'\.Name\("(tandem_lb_[a-z_]+)"\)', open(self.path("lb/src/metrics.cpp")).read()))
        series = set(exported)
        for m in exported:
            series |= {m + "_bucket", m + "_sum", m + "_count"}
        used = set()
        for p in dash["panels"]:
            for t in p.get("targets", []):
                for name in re.findall(r"\b(tandem_lb_[a-z_]+)", t["expr"]):
                    used.add(name)
                    if name not in series:
                        self.fail(where, f"panel '{p['title']}' uses {name}, which tandem-lb does not export")
        for needed in ("tandem_lb_requests_total", "tandem_lb_request_duration_seconds_bucket",
                       "tandem_lb_cluster_healthy", "tandem_lb_retries_total"):
            if needed not in used:
                self.fail(where, f"no panel shows {needed}")

    # ---- tandem serve ------------------------------------------------------------------------
    def serve_metrics(self):
        exported = set(re.findall(r'\.Name\("(tandem_[a-z_]+)"\)',
                                  open(self.path("serve/src/serve_metrics.cpp")).read()))
        series = set(exported)
        for m in exported:
            series |= {m + "_bucket", m + "_sum", m + "_count"}
        return series

    def serve(self):
        where = "deploy/k8s/tandem-serve.yaml"
        docs = [d for d in yaml.safe_load_all(open(self.path(where))) if d]
        by_kind = {}
        for d in docs:
            by_kind.setdefault(d["kind"], []).append(d)
        for kind in ("ConfigMap", "Deployment", "Service", "ServiceMonitor", "PrometheusRule"):
            if kind not in by_kind:
                self.fail(where, f"no {kind}")
        if self.problems:
            return
        maps = {c["metadata"]["name"]: c for c in by_kind["ConfigMap"]}
        dep = by_kind["Deployment"][0]
        spec, pod = dep["spec"], dep["spec"]["template"]
        c = pod["spec"]["containers"][0]
        mounts = {m["name"]: m for m in c.get("volumeMounts", [])}
        volumes = {v["name"]: v for v in pod["spec"].get("volumes", [])}
        fleet_text, crs = None, None
        for name, m in mounts.items():
            if "subPath" in m:
                self.fail(where, f"volume {name} is mounted with subPath: edits would never reach serve")
            cm = maps.get(volumes.get(name, {}).get("configMap", {}).get("name"))
            if cm and "fleet.yaml" in cm["data"]:
                fleet_text = cm["data"]["fleet.yaml"]
                fleet_path = m["mountPath"] + "/fleet.yaml"
            elif cm:
                crs = cm["data"]
        if fleet_text is None or crs is None:
            self.fail(where, "the fleet file and the CRs must come from mounted ConfigMaps")
            return
        if c.get("args", [])[-1:] != [fleet_path] or c["args"][0] != "serve":
            self.fail(where, f"the container must run `tandem serve -f {fleet_path}`")
        fleet = yaml.safe_load(fleet_text)
        listen = fleet.get("serve", {}).get("listen", "127.0.0.1:9902")
        port = int(listen.rsplit(":", 1)[1])
        if not listen.startswith("0.0.0.0"):
            self.fail(where, "serve.listen must bind 0.0.0.0 in a pod, or the probes cannot reach it")
        if spec.get("replicas", 1) != 1:
            self.fail(where, "tandem serve runs as one replica (two are harmless, but one is the design)")
        if spec.get("strategy", {}).get("type") != "Recreate":
            self.fail(where, "the Deployment needs strategy Recreate (no second replica during a rollout)")
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        if ports.get("serve") != port:
            self.fail(where, f"container port {ports} does not match serve.listen ({listen})")
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            get = c.get(probe, {}).get("httpGet", {})
            if get.get("port") not in ("serve", port) or get.get("path") != path:
                self.fail(where, f"{probe} must be {path} on the serve port")
        if pod["spec"].get("terminationGracePeriodSeconds", 30) <= 30:
            self.fail(where, "terminationGracePeriodSeconds must exceed an instance's timeout (30s)")
        if not pod["spec"].get("securityContext", {}).get("runAsNonRoot"):
            self.fail(where, "pods must run as non-root")
        if c["image"].endswith(":latest") or ":" not in c["image"]:
            self.fail(where, "pin the image tag")
        env = {e["name"]: e for e in c.get("env", [])}
        for var in set(re.findall(r"\{env: ([A-Z_]+)\}", fleet_text)):
            if "secretKeyRef" not in env.get(var, {}).get("valueFrom", {}):
                self.fail(where, f"{var} must come from a Secret (secretKeyRef)")
        # the fleet and the CRs as the pod has them must validate
        tmp = tempfile.mkdtemp()
        try:
            os.makedirs(os.path.join(tmp, "crs"))
            for name, text in crs.items():
                open(os.path.join(tmp, "crs", name), "w").write(text)
            open(os.path.join(tmp, "fleet.yaml"), "w").write(fleet_text)
            environ = dict(os.environ, **{v: "check-deploy-dummy" for v in env})
            r = subprocess.run([self.tandem, "validate", "-f", os.path.join(tmp, "fleet.yaml"),
                                "--resources", os.path.join(tmp, "crs")],
                               capture_output=True, text=True, env=environ)
            if r.returncode != 0:
                self.fail(where, "tandem validate fails on the ConfigMaps: " + (r.stderr or r.stdout).strip())
        finally:
            shutil.rmtree(tmp)
        svc = [s for s in by_kind["Service"]
               if all(pod["metadata"]["labels"].get(k) == v for k, v in s["spec"]["selector"].items())]
        sm = by_kind["ServiceMonitor"][0]["spec"]
        if not svc or not any(p["name"] == sm["endpoints"][0]["port"] for p in svc[0]["spec"]["ports"]):
            self.fail(where, "the ServiceMonitor selects no Service with its port")
        if not sm["endpoints"][0].get("honorLabels"):
            self.fail(where, "the ServiceMonitor needs honorLabels: true (`instance` is the 3scale instance)")
        rules_file = "deploy/prometheus/tandem-serve-alerts.yml"
        rules = yaml.safe_load(open(self.path(rules_file)))
        if by_kind["PrometheusRule"][0]["spec"]["groups"] != rules["groups"]:
            self.fail(where, f"the PrometheusRule's groups differ from {rules_file}")
        series = self.serve_metrics()
        exprs = {r["alert"]: (r["expr"], r.get("for", "")) for g in rules["groups"] for r in g["rules"]}
        for alert, (expr, _) in exprs.items():
            for name in re.findall(r"\b(tandem_[a-z_]+)", expr):
                if name not in series:
                    self.fail(rules_file, f"{alert} uses {name}, which tandem serve does not export")
        if not any("tandem_drift_objects" in e and f == "15m" for e, f in exprs.values()):
            self.fail(rules_file, "no alert on drift present for 15 minutes")
        if not any("tandem_instance_in_split" in e for e, _ in exprs.values()):
            self.fail(rules_file, "no alert on an instance out of the split")
        if not any("tandem_mirror_paused" in e for e, _ in exprs.values()):
            self.fail(rules_file, "no alert on the mirror paused")
        dash_file = "deploy/grafana/tandem-serve.json"
        dash = json.load(open(self.path(dash_file)))
        used = set()
        for p in dash["panels"]:
            for t in p.get("targets", []):
                for name in re.findall(r"\b(tandem_[a-z_]+)", t["expr"]):
                    used.add(name)
                    if name not in series:
                        self.fail(dash_file, f"panel '{p['title']}' uses {name}, which tandem serve does not export")
        for needed in ("tandem_drift_objects", "tandem_instance_in_split", "tandem_reconcile_total",
                       "tandem_mirror_propagation_lag_seconds_bucket", "tandem_mirror_paused"):
            if needed not in used:
                self.fail(dash_file, f"no panel shows {needed}")
        unit_file = "deploy/systemd/tandem-serve.service"
        unit = open(self.path(unit_file)).read()
        for needed in ("ExecStart=/usr/local/bin/tandem serve -f /etc/tandem/fleet.yaml",
                       "ExecStartPre=/usr/local/bin/tandem validate -f /etc/tandem/fleet.yaml",
                       "ExecReload=/bin/kill -HUP $MAINPID", "KillSignal=SIGTERM",
                       "Restart=on-failure", "NoNewPrivileges=yes", "LoadCredential=", "[Install]"):
            if needed not in unit:
                self.fail(unit_file, f"missing {needed}")

    def run(self):
        for check in (self.dockerfile, self.kubernetes, self.keepalived_and_systemd, self.ci, self.grafana,
                      self.serve):
            try:
                check()
            except Exception as e:  # a malformed file is a problem, not a crash
                self.fail(check.__name__, f"{type(e).__name__}: {e}")
        return self.problems


def self_test(args):
    """Break copies of the deploy files one way at a time; each must be reported."""
    breakages = [
        ("deploy/docker/Dockerfile", "libc-ares2 ", "", "lacks package libc-ares2"),
        ("deploy/docker/Dockerfile", "COPY lb/ lb/\n", "", "does not COPY lb/"),
        ("deploy/docker/Dockerfile", "EXPOSE 8080 9901", "EXPOSE 8080", "EXPOSE"),
        ("deploy/docker/Dockerfile", "USER 10001:10001\nEXPOSE", "USER root\nEXPOSE", "non-root USER"),
        ("deploy/k8s/tandem-lb.yaml", "  replicas: 3", "  replicas: 1", "at least 2 replicas"),
        ("deploy/k8s/tandem-lb.yaml", "topologyKey: topology.kubernetes.io/zone", "topologyKey: example.com/rack", "topology.kubernetes.io/zone"),
        ("deploy/k8s/tandem-lb.yaml", "path: /healthz", "path: /status", "/healthz"),
        ("deploy/k8s/tandem-lb.yaml", "    admin: 0.0.0.0:9901", "    admin: 0.0.0.0:9902", "do not match the config"),
        ("deploy/ci/github-actions.yml", "--output markdown >> \"$GITHUB_STEP_SUMMARY\"\n          rc", "--output html >> \"$GITHUB_STEP_SUMMARY\"\n          rc", "output format html"),
        ("deploy/ci/gitlab-ci.yml", "tandem apply -f fleet.yaml", "tandem apply -f fleet.yaml --yes", "no option --yes"),
        ("deploy/grafana/tandem-lb.json", "tandem_lb_retries_total", "tandem_lb_retry_count", "does not export"),
        ("deploy/k8s/tandem-serve.yaml", "  replicas: 1", "  replicas: 2", "one replica"),
        ("deploy/k8s/tandem-serve.yaml", "path: /readyz", "path: /status", "readinessProbe must be /readyz"),
        ("deploy/k8s/tandem-serve.yaml", "value: 100          # global", "value: lots          # global", "tandem validate fails"),
        ("deploy/prometheus/tandem-serve-alerts.yml", "for: 15m", "for: 5m", "differ from"),
        ("deploy/grafana/tandem-serve.json", "tandem_instance_in_split", "tandem_in_split", "does not export"),
    ]
    failures = []
    for file, old, new, expect in breakages:
        tmp = tempfile.mkdtemp()
        try:
            repo = os.path.join(tmp, "repo")
            shutil.copytree(args.repo, repo, ignore=shutil.ignore_patterns("build", ".git"))
            path = os.path.join(repo, file)
            text = open(path).read()
            if old not in text:
                failures.append(f"self-test: '{old.strip()}' not found in {file}")
                continue
            open(path, "w").write(text.replace(old, new, 1))
            problems = Checker(repo, args.tandem_lb, args.tandem).run()
            if not any(expect in p for p in problems):
                failures.append(f"self-test: breaking {file} ({old.strip()!r}) was not reported "
                                f"as '{expect}'; got {problems}")
        finally:
            shutil.rmtree(tmp)
    return failures


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", required=True)
    ap.add_argument("--tandem-lb", required=True)
    ap.add_argument("--tandem", required=True)
    ap.add_argument("--self-test", action="store_true")
    args = ap.parse_args()
    problems = Checker(args.repo, args.tandem_lb, args.tandem).run()
    if args.self_test and not problems:
        problems = self_test(args)
        print("check_deploy: self-test broke the files 16 ways; " +
              ("every one was reported" if not problems else f"{len(problems)} went unnoticed"))
    for p in problems:
        print(p)
    print(f"check_deploy: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
