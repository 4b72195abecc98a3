#!/usr/bin/env python3
"""Generates the tandem doctor corpus: one directory per case, each with a fleet.yaml, the
instances' APIManager CRs and Secrets, and `expected` (one finding per line:
"severity rule instance object field", instance "-" for fleet-wide findings).
The good case follows every rule; every other case breaks one. Rerun after changing it:
    python3 test/testdata/ha/generate.py"""
import copy, json, os, shutil

HERE = os.path.dirname(os.path.abspath(__file__))
CANARY = "CANARY-7f3e-never-print-me"

COMPONENTS = [  # spec path, family, element
    ("apicast.productionSpec", "apicast", "production"),
    ("apicast.stagingSpec", "apicast", "staging"),
    ("backend.listenerSpec", "backend", "listener"),
    ("backend.workerSpec", "backend", "worker"),
    ("backend.cronSpec", "backend", "cron"),
    ("system.appSpec", "system", "app"),
    ("system.sidekiqSpec", "system", "sidekiq"),
    ("zync.appSpec", "zync", "zync"),
    ("zync.queSpec", "zync", "zync-que"),
]


def term(family, element, key, weight):
    return {"weight": weight, "podAffinityTerm": {
        "labelSelector": {"matchLabels": {"threescale_component": family,
                                          "threescale_component_element": element}},
        "topologyKey": key}}


def put(d, path, value):
    keys = path.split(".")
    for k in keys[:-1]:
        d = d.setdefault(k, {})
    d[keys[-1]] = value


def get(d, path):
    for k in path.split("."):
        d = d[k]
    return d


def good_apimanager(domain="apps.example.com", replicas=3, legacy=False):
    spec = {"wildcardDomain": domain, "tenantName": "3scale", "resourceRequirementsEnabled": True,
            "podDisruptionBudget": {"enabled": True}}
    if legacy:
        spec["highAvailability"] = {"enabled": True, "externalZyncDatabaseEnabled": True}
    else:
        spec["externalComponents"] = {"backend": {"redis": True},
                                      "system": {"database": True, "redis": True},
                                      "zync": {"database": True}}
    for path, family, element in COMPONENTS:
        put(spec, path + ".replicas", replicas)
        put(spec, path + ".affinity", {"podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                term(family, element, "kubernetes.io/hostname", 100),
                term(family, element, "topology.kubernetes.io/zone", 99)]}})
    return {"apiVersion": "apps.3scale.net/v1alpha1", "kind": "APIManager",
            "metadata": {"name": "apimanager", "namespace": "3scale"}, "spec": spec}


def mirrored():
    return {
        "backend-internal-api": {"username": "3scale_api_user", "password": "internal-pw-1"},
        "system-app": {"SECRET_KEY_BASE": "k" * 64},
        "system-events-hook": {"URL": "http://system-master:3000/master/events/import",
                               "PASSWORD": "hook-pw-1"},
        "system-master-apicast": {"ACCESS_TOKEN": "apicast-token-1",
                                  "PROXY_CONFIGS_ENDPOINT":
                                      "http://apicast-token-1@system-master:3000/master/api/proxy/configs"},
        "system-seed": {"MASTER_DOMAIN": "master", "MASTER_USER": "master",
                        "MASTER_PASSWORD": "master-pw-1", "MASTER_ACCESS_TOKEN": "master-token-1",
                        "ADMIN_USER": "admin", "ADMIN_PASSWORD": CANARY,
                        "ADMIN_ACCESS_TOKEN": "admin-token-1", "TENANT_NAME": "3scale"},
    }


def databases(n, legacy=False):
    dbs = {
        "backend-redis": {
            "REDIS_STORAGE_URL": f"redis://:{CANARY}@backend-group-{n}/0",
            "REDIS_STORAGE_SENTINEL_HOSTS":
                f"redis://s1.{n}.example.com:26379,redis://s2.{n}.example.com:26379,"
                f"redis://s3.{n}.example.com:26379",
            "REDIS_STORAGE_SENTINEL_ROLE": "master",
            "REDIS_QUEUES_URL": f"redis://:{CANARY}@backend-group-{n}/1",
            "REDIS_QUEUES_SENTINEL_HOSTS":
                f"redis://s1.{n}.example.com:26379,redis://s2.{n}.example.com:26379,"
                f"redis://s3.{n}.example.com:26379",
            "REDIS_QUEUES_SENTINEL_ROLE": "master",
        },
        "system-redis": {"URL": f"redis://:{CANARY}@system-redis.{n}.example.com:6379/1",
                         "SENTINEL_HOSTS": "", "SENTINEL_ROLE": ""},
        "system-database": {"URL": f"mysql2://system:{CANARY}@mysql.{n}.example.com:3306/system"},
        "zync": {"DATABASE_URL": f"postgresql://zync:zync-{n}-pw@pg.{n}.example.com:5432/zync_production",
                 "ZYNC_DATABASE_PASSWORD": f"zync-{n}-pw"},
    }
    if legacy:
        dbs["system-redis"]["MESSAGE_BUS_URL"] = f"redis://system-redis.{n}.example.com:6379/8"
    return dbs


def secret_doc(name, values):
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "3scale"},
            "type": "Opaque", "stringData": values}


def dump_yaml(obj, indent=0):
    """A tiny YAML writer (block style; strings JSON-quoted, which YAML reads as strings)."""
    pad = "  " * indent
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, (dict, list)) and v:
                out.append(f"{pad}{k}:")
                out.append(dump_yaml(v, indent + 1))
            else:
                out.append(f"{pad}{k}: {scalar(v)}")
    elif isinstance(obj, list):
        for v in obj:
            if isinstance(v, dict) and v:
                inner = dump_yaml(v, indent + 1).split("\n")
                out.append(f"{pad}- {inner[0].strip()}")
                out.extend(inner[1:])
            else:
                out.append(f"{pad}- {scalar(v)}")
    return "\n".join(out)


def scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, dict):
        return "{}"
    if isinstance(v, list):
        return "[]"
    return json.dumps(v)


class Instance:
    def __init__(self, name, n, zones=3, legacy=False):
        self.name, self.zones = name, zones
        self.apimanager = good_apimanager(legacy=legacy)
        self.secrets = mirrored()
        self.secrets.update(databases(n, legacy))
        self.role = None

    def write(self, case_dir):
        d = os.path.join(case_dir, self.name)
        os.makedirs(d)
        with open(os.path.join(d, "apimanager.yaml"), "w") as f:
            f.write(dump_yaml(self.apimanager) + "\n")
        with open(os.path.join(d, "secrets.yaml"), "w") as f:
            f.write("\n---\n".join(dump_yaml(secret_doc(k, v)) for k, v in self.secrets.items()) + "\n")


def write_case(name, instances, expected, version="2.15", mode="active-active"):
    case_dir = os.path.join(HERE, name)
    os.makedirs(case_dir)
    open(os.path.join(case_dir, ".generated"), "w").close()
    lines = ["apiVersion: tandem/v1", "kind: Fleet", "ha:", f'  version: "{version}"',
             "  wildcardDomain: apps.example.com", f"  mode: {mode}", "instances:"]
    for i in instances:
        lines += [f"  - name: {i.name}", f"    adminUrl: https://{i.name}-admin.example.com",
                  f"    apimanager: {i.name}/", f"    zones: {i.zones}"]
        if i.role:
            lines.append(f"    role: {i.role}")
        i.write(case_dir)
    with open(os.path.join(case_dir, "fleet.yaml"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(case_dir, "expected"), "w") as f:
        f.write("".join(e + "\n" for e in sorted(expected)))


def two(legacy=False, zones=3):
    return Instance("east", "east", zones, legacy), Instance("west", "west", zones, legacy)


def main():
    for entry in os.listdir(HERE):  # only what an earlier run generated
        if os.path.exists(os.path.join(HERE, entry, ".generated")):
            shutil.rmtree(os.path.join(HERE, entry))

    write_case("good", two(), [])
    e, w = two(legacy=True)
    write_case("good-2.11-highavailability", [e, w], [], version="2.11")
    e, w = two()
    e.role, w.role = None, "standby"
    for path, _, _ in COMPONENTS:
        put(w.apimanager["spec"], path + ".replicas", 0)
    w.secrets.update(databases("east"))  # a standby shares the active's databases
    write_case("good-active-passive", [e, w],
               ["info replicas west APIManager_apimanager spec"], mode="active-passive")

    e, w = two()
    del e.apimanager["spec"]["apicast"]["productionSpec"]["replicas"]
    write_case("replicas-unset", [e, w],
               ["error replicas east APIManager_apimanager spec.apicast.productionSpec.replicas"])

    e, w = two()
    put(w.apimanager["spec"], "backend.listenerSpec.replicas", 2)
    write_case("replicas-below-zones", [e, w],
               ["error replicas west APIManager_apimanager spec.backend.listenerSpec.replicas"])

    e, w = two()
    put(e.apimanager["spec"], "apicast.productionSpec.hpa", True)
    del e.apimanager["spec"]["apicast"]["productionSpec"]["replicas"]
    write_case("hpa-min-replicas", [e, w],
               ["warning replicas east APIManager_apimanager spec.apicast.productionSpec.hpa"])

    e, w = two()
    e.apimanager["spec"]["podDisruptionBudget"]["enabled"] = False
    write_case("pdb-disabled", [e, w],
               ["error pdb east APIManager_apimanager spec.podDisruptionBudget.enabled"])

    e, w = two()
    del e.apimanager["spec"]["system"]["appSpec"]["affinity"]
    write_case("anti-affinity-missing", [e, w],
               ["error anti-affinity east APIManager_apimanager spec.system.appSpec.affinity.podAntiAffinity"] * 2)

    e, w = two()
    get(w.apimanager["spec"], "zync.queSpec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution").pop()
    write_case("anti-affinity-no-zone-term", [e, w],
               ["error anti-affinity west APIManager_apimanager spec.zync.queSpec.affinity.podAntiAffinity"])

    e, w = two()
    e.zones = 1
    get(e.apimanager["spec"], "zync.queSpec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution").pop()
    write_case("single-zone-needs-no-zone-term", [e, w], [])

    e, w = two()
    put(e.apimanager["spec"], "apicast.stagingSpec.affinity", {"podAntiAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"threescale_component": "apicast",
                                               "threescale_component_element": "staging"}},
             "topologyKey": "kubernetes.io/hostname"},
            {"labelSelector": {"matchLabels": {"threescale_component": "apicast",
                                               "threescale_component_element": "staging"}},
             "topologyKey": "topology.kubernetes.io/zone"}]}})
    write_case("anti-affinity-required", [e, w],
               ["warning anti-affinity east APIManager_apimanager spec.apicast.stagingSpec.affinity.podAntiAffinity"] * 2)

    e, w = two()
    put(e.apimanager["spec"], "backend.workerSpec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution",
        [term("backend", "worker", "kubernetes.io/hostname", 100)])
    write_case("anti-affinity-invalid-hard-form", [e, w],
               ["error anti-affinity east APIManager_apimanager spec.backend.workerSpec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution.0"])

    e, w = two()
    for t in get(e.apimanager["spec"], "system.sidekiqSpec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution"):
        t["podAffinityTerm"]["labelSelector"] = {"matchLabels": {"deploymentConfig": "system-sidekiq"}}
    write_case("anti-affinity-dc-label-on-2.15", [e, w],
               ["error anti-affinity east APIManager_apimanager spec.system.sidekiqSpec.affinity.podAntiAffinity"] * 2)

    e, w = two()
    e.apimanager["spec"]["externalComponents"]["system"]["database"] = False
    del e.secrets["system-database"]
    write_case("internal-database", [e, w],
               ["error external-databases east APIManager_apimanager spec.externalComponents.system.database"])

    e, w = two()
    w.apimanager["spec"]["wildcardDomain"] = "apps.west.example.com"
    write_case("wildcard-domain-differs", [e, w],
               ["error wildcard-domain - APIManager spec.wildcardDomain",
                "error wildcard-domain west APIManager_apimanager spec.wildcardDomain"])

    e, w = two()
    del w.secrets["system-app"]
    write_case("mirrored-secret-missing", [e, w],
               ["error mirrored-secrets west Secret_system-app -"])

    e, w = two()
    w.secrets["system-seed"]["ADMIN_PASSWORD"] = CANARY + "-but-different"
    w.secrets["backend-internal-api"]["password"] = "another"
    write_case("mirrored-secret-differs", [e, w],
               ["error mirrored-secrets - Secret_system-seed ADMIN_PASSWORD",
                "error mirrored-secrets - Secret_backend-internal-api password"])

    e, w = two()
    w.secrets["system-database"] = copy.deepcopy(e.secrets["system-database"])
    write_case("shared-database", [e, w],
               ["error independent-databases - Secret_system-database URL"])

    e, w = two()
    w.secrets.update({k: v for k, v in databases("west").items()})
    e.role = None
    write_case("active-passive-databases-differ", [e, w],
               ["error shared-databases - Secret_backend-redis REDIS_QUEUES_URL",
                "error shared-databases - Secret_backend-redis REDIS_STORAGE_URL",
                "error shared-databases - Secret_system-database URL",
                "error shared-databases - Secret_system-redis URL",
                "error shared-databases - Secret_zync DATABASE_URL"], mode="active-passive")

    e, w = two()
    del e.secrets["zync"]
    write_case("database-secret-missing", [e, w],
               ["error database-secrets east Secret_zync -"])

    e, w = two()
    e.secrets["system-database"]["URL"] = ""
    write_case("database-secret-empty-key", [e, w],
               ["error database-secrets east Secret_system-database URL"])

    e, w = two()
    e.secrets["backend-redis"]["REDIS_STORAGE_URL"] = "http://backend-redis:6379/0"
    write_case("redis-url-malformed", [e, w],
               ["error redis-url east Secret_backend-redis REDIS_STORAGE_URL"])

    e, w = two()
    e.secrets["backend-redis"]["REDIS_QUEUES_SENTINEL_HOSTS"] = "redis://s1.east.example.com,s2.east.example.com:26379"
    e.secrets["backend-redis"]["REDIS_QUEUES_SENTINEL_ROLE"] = "primary"
    write_case("redis-sentinel-list", [e, w],
               ["error redis-url east Secret_backend-redis REDIS_QUEUES_SENTINEL_ROLE",
                "warning redis-url east Secret_backend-redis REDIS_QUEUES_SENTINEL_HOSTS",
                "warning redis-url east Secret_backend-redis REDIS_QUEUES_SENTINEL_HOSTS"])

    e, w = two()
    e.secrets["backend-redis"]["REDIS_QUEUES_URL"] = e.secrets["backend-redis"]["REDIS_STORAGE_URL"]
    write_case("redis-storage-equals-queues", [e, w],
               ["error redis-url east Secret_backend-redis REDIS_QUEUES_URL"])

    e, w = two()
    w.secrets["system-redis"]["URL"] = "redis://backend-group-west/5"
    w.secrets["system-redis"]["SENTINEL_HOSTS"] = w.secrets["backend-redis"]["REDIS_STORAGE_SENTINEL_HOSTS"]
    write_case("redis-backend-and-system-share", [e, w],
               ["error redis-url west Secret_system-redis URL"])

    e, w = two()
    e.secrets["zync"]["ZYNC_DATABASE_PASSWORD"] = "not-the-one-in-the-url"
    write_case("zync-password-mismatch", [e, w],
               ["error database-url east Secret_zync ZYNC_DATABASE_PASSWORD"])

    e, w = two(legacy=True)
    del e.secrets["system-redis"]["MESSAGE_BUS_URL"]
    write_case("message-bus-url-2.11", [e, w],
               ["error database-secrets east Secret_system-redis MESSAGE_BUS_URL"], version="2.11")

    e, w = two()
    put(e.apimanager["spec"], "apicast.productionSpec.replica", 3)
    e.apimanager["spec"]["podDisruptionBudgets"] = {"enabled": True}
    write_case("unknown-field", [e, w],
               ["warning unknown-field east APIManager_apimanager spec.apicast.productionSpec.replica",
                "warning unknown-field east APIManager_apimanager spec.podDisruptionBudgets"])

    e, w = two()
    put(w.apimanager["spec"], "system.searchdSpec", {})
    write_case("field-of-another-version", [e, w],
               ["warning unknown-field west APIManager_apimanager spec.system.searchdSpec"],
               version="2.13")

    e, w = two()
    e.secrets["system-seed"]["TENANT_NAME"] = "acme"
    w.secrets["system-seed"]["TENANT_NAME"] = "acme"
    write_case("tenant-name-differs", [e, w],
               ["warning tenant-name east Secret_system-seed TENANT_NAME",
                "warning tenant-name west Secret_system-seed TENANT_NAME"])


if __name__ == "__main__":
    main()
