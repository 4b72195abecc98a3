// tandem doctor: 3scale's HA rules (../shared/reference/seeds 002/004, the 3scale-Operations HA
// docs, the operator's code as summarised in APIMANAGER_NOTES) over each instance's APIManager CR
// and Secrets, and across instances.
#include "ha/doctor.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <map>
#include <set>

#include "ha/components.hpp"
#include "ha/connection_url.hpp"

namespace ha {

using Json = nlohmann::json;

extern const char* const kSpecPathsTsv;  // spec_paths.cpp, generated from ha/data/*.tsv

std::size_t DoctorReport::count(Severity s) const {
    return static_cast<std::size_t>(std::count_if(
        findings.begin(), findings.end(), [&](const Finding& f) { return f.severity == s; }));
}

int DoctorReport::exit_code() const {
    if (!unchecked.empty()) {
        return 1;
    }
    return count(Severity::kError) > 0 ? 2 : 0;
}

namespace {

// "/apicast/productionSpec" -> "spec.apicast.productionSpec"
std::string dotted(const std::string& pointer) {
    std::string out = "spec";
    for (const char ch : pointer) {
        out += ch == '/' ? '.' : ch;
    }
    return out;
}

const Json* at(const Json& root, const std::string& pointer) {
    const Json::json_pointer p(pointer);
    if (!root.contains(p)) {
        return nullptr;
    }
    return &root.at(p);
}

bool truthy(const Json* j) {
    return j != nullptr && j->is_boolean() && j->get<bool>();
}

std::string value_or(const Json* j, const std::string& fallback) {
    return j != nullptr && j->is_string() ? j->get<std::string>() : fallback;
}

// ---- the operator's spec paths (unknown-field rule) ---------------------------------------

struct SpecPath {
    std::string type;
    std::array<bool, 8> in_version{};  // 2.9 .. 2.16
};

const std::map<std::string, SpecPath>& spec_paths() {
    static const std::map<std::string, SpecPath> paths = [] {
        std::map<std::string, SpecPath> out;
        std::string_view text = kSpecPathsTsv;
        while (!text.empty()) {
            const auto nl = text.find('\n');
            std::string_view line = text.substr(0, nl);
            text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
            if (line.empty() || line.front() == '#') {
                continue;
            }
            std::vector<std::string_view> cols;
            while (true) {
                const auto tab = line.find('\t');
                cols.push_back(line.substr(0, tab));
                if (tab == std::string_view::npos) {
                    break;
                }
                line = line.substr(tab + 1);
            }
            if (cols.size() < 10) {
                continue;
            }
            SpecPath p;
            p.type = std::string(cols[1]);
            for (std::size_t v = 0; v < 8; ++v) {
                p.in_version[v] = !cols[2 + v].empty() && cols[2 + v].front() == 'y';
            }
            out.emplace(std::string(cols[0]), std::move(p));
        }
        return out;
    }();
    return paths;
}

// Structs of the operator's API are walked into; Kubernetes types, maps and scalars are not.
bool walk_into(const std::string& type) {
    std::string t = type;
    while (!t.empty() && (t.front() == '*' || t.starts_with("[]"))) {
        t.erase(0, t.front() == '*' ? 1 : 2);
    }
    return !t.empty() && std::isupper(static_cast<unsigned char>(t.front())) != 0 &&
           t.find('.') == std::string::npos;
}

std::size_t edit_distance(const std::string& a, const std::string& b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) {
        row[j] = j;
    }
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diag = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t up = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1,
                               diag + (std::tolower(static_cast<unsigned char>(a[i - 1])) ==
                                               std::tolower(static_cast<unsigned char>(b[j - 1]))
                                           ? 0
                                           : 1)});
            diag = up;
        }
    }
    return row[b.size()];
}

std::string versions_of(const SpecPath& p) {
    int first = -1;
    int last = -1;
    for (int v = 0; v < 8; ++v) {
        if (p.in_version[static_cast<std::size_t>(v)]) {
            first = first < 0 ? v : first;
            last = v;
        }
    }
    if (first < 0) {
        return "no version";
    }
    return "2." + std::to_string(first + 9) +
           (last != first ? "-2." + std::to_string(last + 9) : "");
}

class InstanceChecker {
public:
    InstanceChecker(const config::Fleet& fleet,
                    const config::Instance& instance,
                    const config::ApiManagerDoc& am,
                    std::vector<Finding>& out)
        : fleet_(fleet), instance_(instance), am_(am), out_(out) {
        const auto annotated = am.annotations.find("apps.3scale.net/apimanager-threescale-version");
        version_ = annotated != am.annotations.end() ? annotated->second : fleet.ha.version;
        minor_ = config::minor_version(version_);
        if (minor_ == 0) {
            minor_ = 15;
        }
        object_ = "APIManager " + am.name;
    }

    void run() {
        check_wildcard();
        const bool standby = instance_.ha.role == "standby";
        for (const auto& c : scalable_components()) {
            if (!present_in(c)) {
                continue;
            }
            if (standby) {
                continue;  // a parked standby runs 0 replicas by design
            }
            check_replicas(c);
            check_spread(c);
        }
        if (standby) {
            add(Severity::kInfo, "replicas", object_, "spec",
                "standby instance: replicas, PDB and anti-affinity are checked on the active one",
                "on failover apply the active instance's APIManager here (see tandem render's "
                "failover checklist)",
                am_.source);
        } else {
            check_pdb();
        }
        check_external_databases();
        check_database_secrets();
        check_tenant();
        check_fields(am_.spec, "spec", "/spec");
    }

    int minor() const { return minor_; }

private:
    void add(Severity s,
             std::string rule,
             std::string object,
             std::string field,
             std::string message,
             std::string fix,
             config::Source source) {
        out_.push_back({s, std::move(rule), instance_.name, std::move(object), std::move(field),
                        std::move(message), std::move(fix), std::move(source)});
    }
    config::Source where(const std::string& pointer) const {
        return {am_.source.file, am_.line_of("/spec" + pointer)};
    }
    bool zync_enabled() const {
        const Json* enabled = at(am_.spec, "/zync/enabled");
        return !(minor_ >= 16 && enabled != nullptr && enabled->is_boolean() &&
                 !enabled->get<bool>());
    }
    bool present_in(const Component& c) const {
        return c.family != std::string("zync") || zync_enabled();
    }
    int wanted_replicas() const { return std::max(2, instance_.ha.zones); }

    void check_wildcard() {
        const Json* w = at(am_.spec, "/wildcardDomain");
        if (w == nullptr || !w->is_string() || w->get<std::string>().empty()) {
            add(Severity::kError, "wildcard-domain", object_, "spec.wildcardDomain",
                "missing: it is the only required field and the root of every route",
                "set spec.wildcardDomain to the domain every instance shares", am_.source);
        }
    }

    void check_replicas(const Component& c) {
        const std::string base = c.spec_path;
        const Json* replicas = at(am_.spec, base + "/replicas");
        const bool hpa = minor_ >= 15 && c.hpa_capable && truthy(at(am_.spec, base + "/hpa"));
        const std::string field = dotted(base) + ".replicas";
        const int wanted = wanted_replicas();
        const std::string why = instance_.ha.zones > 1
                                    ? "at least 2, and at least one per availability zone (" +
                                          std::to_string(instance_.ha.zones) + ")"
                                    : "at least 2";
        if (hpa) {
            add(Severity::kWarning, "replicas", object_, dotted(base) + ".hpa",
                c.deployment + std::string(" is scaled by an HPA whose minReplicas is 1 (the "
                                           "operator's default): one pod at quiet times"),
                "raise minReplicas on the HorizontalPodAutoscaler " + std::string(c.deployment) +
                    " to " + std::to_string(wanted),
                where(base + "/hpa"));
            if (replicas != nullptr) {
                add(Severity::kWarning, "replicas", object_, field,
                    "replicas is set together with hpa: true; the operator and the HPA fight "
                    "over the replica count",
                    "remove replicas (the HPA decides) or set hpa: false",
                    where(base + "/replicas"));
            }
            return;
        }
        if (replicas == nullptr) {
            add(Severity::kError, "replicas", object_, field,
                std::string(c.deployment) +
                    " has no replicas: the operator runs 1 pod, so one "
                    "node failure takes it down",
                "set " + field + ": " + std::to_string(wanted) + " (" + why + ")", where(base));
            return;
        }
        if (!replicas->is_number_integer()) {
            add(Severity::kError, "replicas", object_, field, "must be an integer",
                "set " + field + ": " + std::to_string(wanted), where(base + "/replicas"));
            return;
        }
        const auto n = replicas->get<std::int64_t>();
        if (n < wanted) {
            add(Severity::kError, "replicas", object_, field,
                std::string(c.deployment) + " runs " + std::to_string(n) + " replica" +
                    (n == 1 ? "" : "s") + "; HA needs " + why,
                "set " + field + ": " + std::to_string(wanted), where(base + "/replicas"));
        }
    }

    // Pod labels of a component's pods, to match selectors against.
    std::map<std::string, std::string> pod_labels(const Component& c) const {
        std::map<std::string, std::string> labels{
            {"threescale_component", c.family},
            {"threescale_component_element", c.element},
            {"app", value_or(at(am_.spec, "/appLabel"), "3scale-api-management")},
        };
        labels[minor_ >= 15 ? "deployment" : "deploymentConfig"] = c.deployment;
        return labels;
    }

    // Does a labelSelector select the component's pods? `why` says why not.
    bool selects(const Json& selector, const Component& c, std::string& why) const {
        if (!selector.is_object()) {
            why = "has no labelSelector";
            return false;
        }
        const auto labels = pod_labels(c);
        if (auto ml = selector.find("matchLabels"); ml != selector.end() && ml->is_object()) {
            for (const auto& [k, v] : ml->items()) {
                auto it = labels.find(k);
                if (it == labels.end() || !v.is_string() || it->second != v.get<std::string>()) {
                    if (k == "deploymentConfig" && minor_ >= 15) {
                        why =
                            "selects on deploymentConfig, a label pods lose in 3scale 2.15 "
                            "(DeploymentConfig -> Deployment): it matches no pod";
                    } else if (k == "deployment" && minor_ < 15) {
                        why = "selects on deployment, a label pods only carry from 3scale 2.15";
                    } else {
                        why = "selects " + k + "=" + (v.is_string() ? v.get<std::string>() : "?") +
                              ", which " + c.deployment + "'s pods do not carry";
                    }
                    return false;
                }
            }
        }
        if (auto me = selector.find("matchExpressions"); me != selector.end() && me->is_array()) {
            for (const auto& e : *me) {
                const std::string key = value_or(e.contains("key") ? &e["key"] : nullptr, "");
                const std::string op =
                    value_or(e.contains("operator") ? &e["operator"] : nullptr, "");
                std::set<std::string> values;
                if (e.contains("values") && e["values"].is_array()) {
                    for (const auto& v : e["values"]) {
                        if (v.is_string()) {
                            values.insert(v.get<std::string>());
                        }
                    }
                }
                auto it = labels.find(key);
                const bool has = it != labels.end();
                bool ok = false;
                if (op == "In") {
                    ok = has && values.contains(it->second);
                } else if (op == "NotIn") {
                    ok = !has || !values.contains(it->second);
                } else if (op == "Exists") {
                    ok = has;
                } else if (op == "DoesNotExist") {
                    ok = !has;
                }
                if (!ok) {
                    why = "has a matchExpression on " + key + " that " + c.deployment +
                          "'s pods do not satisfy";
                    return false;
                }
            }
        }
        if (!selector.contains("matchLabels") && !selector.contains("matchExpressions")) {
            why = "has an empty labelSelector";
            return false;
        }
        return true;
    }

    struct Spread {
        bool preferred = false;
        bool required = false;
        std::string mismatch;  // a term with this key that selects other pods
    };

    void check_spread(const Component& c) {
        const std::string base = c.spec_path;
        const Json* anti = at(am_.spec, base + "/affinity/podAntiAffinity");
        std::map<std::string, Spread> by_key;
        const auto consider = [&](const Json& term, bool required) {
            const std::string key =
                value_or(term.contains("topologyKey") ? &term["topologyKey"] : nullptr, "");
            std::string why;
            const Json selector = term.contains("labelSelector") ? term["labelSelector"] : Json();
            if (!selects(selector, c, why)) {
                by_key[key].mismatch = why;
                return;
            }
            (required ? by_key[key].required : by_key[key].preferred) = true;
        };
        if (anti != nullptr && anti->is_object()) {
            if (auto pref = anti->find("preferredDuringSchedulingIgnoredDuringExecution");
                pref != anti->end() && pref->is_array()) {
                for (const auto& item : *pref) {
                    if (item.contains("podAffinityTerm") && item["podAffinityTerm"].is_object()) {
                        consider(item["podAffinityTerm"], false);
                    }
                }
            }
            if (auto req = anti->find("requiredDuringSchedulingIgnoredDuringExecution");
                req != anti->end() && req->is_array()) {
                for (std::size_t i = 0; i < req->size(); ++i) {
                    const Json& item = (*req)[i];
                    const std::string ptr = base +
                                            "/affinity/podAntiAffinity/"
                                            "requiredDuringSchedulingIgnoredDuringExecution/" +
                                            std::to_string(i);
                    if (item.contains("podAffinityTerm") || item.contains("weight")) {
                        add(Severity::kError, "anti-affinity", object_, dotted(ptr),
                            "a required anti-affinity item is a PodAffinityTerm (labelSelector, "
                            "topologyKey), not {weight, podAffinityTerm}: Kubernetes rejects it "
                            "(the form in 3scale-Operations' hard example is invalid)",
                            "move labelSelector and topologyKey up one level and drop weight",
                            where(ptr));
                        continue;
                    }
                    consider(item, true);
                }
            }
        }
        if (minor_ >= 14) {  // topologySpreadConstraints count as spreading too
            if (const Json* tsc = at(am_.spec, base + "/topologySpreadConstraints");
                tsc != nullptr && tsc->is_array()) {
                for (const auto& t : *tsc) {
                    const bool hard =
                        value_or(
                            t.contains("whenUnsatisfiable") ? &t["whenUnsatisfiable"] : nullptr,
                            "DoNotSchedule") == "DoNotSchedule";
                    consider(t, hard);
                }
            }
        }
        const Json* replicas_json = at(am_.spec, base + "/replicas");
        const auto replicas = replicas_json != nullptr && replicas_json->is_number_integer()
                                  ? replicas_json->get<std::int64_t>()
                                  : std::int64_t{1};
        const std::string field = dotted(base) + ".affinity.podAntiAffinity";
        const auto term = [&](const char* key, int weight) {
            return std::string("preferredDuringSchedulingIgnoredDuringExecution: {weight: ") +
                   std::to_string(weight) +
                   ", podAffinityTerm: {labelSelector: {matchLabels: {threescale_component: " +
                   c.family + ", threescale_component_element: " + c.element +
                   "}}, topologyKey: " + key + "}}";
        };
        const Spread host = by_key["kubernetes.io/hostname"];
        if (!host.preferred && !host.required) {
            add(Severity::kError, "anti-affinity", object_, field,
                std::string(c.deployment) + " has no pod anti-affinity on kubernetes.io/hostname" +
                    (host.mismatch.empty()
                         ? ""
                         : " that selects its own pods (the term " + host.mismatch + ")") +
                    ": all its replicas may land on one node",
                "add " + term("kubernetes.io/hostname", 100), where(base));
        } else if (host.required) {
            add(Severity::kWarning, "anti-affinity", object_, field,
                std::string(c.deployment) + " requires one pod per node: on a cluster with " +
                    "fewer than " + std::to_string(replicas + 1) +
                    " schedulable nodes a drained or failed node's pod stays Pending",
                "use preferredDuringSchedulingIgnoredDuringExecution unless every cluster has "
                "spare nodes",
                where(base + "/affinity"));
        }
        const Spread zone = by_key["topology.kubernetes.io/zone"];
        if (instance_.ha.zones > 1) {
            if (!zone.preferred && !zone.required) {
                add(Severity::kError, "anti-affinity", object_, field,
                    std::string(c.deployment) + " has no anti-affinity on " +
                        "topology.kubernetes.io/zone while the instance spans " +
                        std::to_string(instance_.ha.zones) +
                        " zones: losing one zone can take every replica" +
                        (zone.mismatch.empty() ? "" : " (a zone term " + zone.mismatch + ")"),
                    "add " + term("topology.kubernetes.io/zone", 99), where(base));
            } else if (zone.required && replicas > instance_.ha.zones) {
                add(Severity::kError, "anti-affinity", object_, field,
                    std::string(c.deployment) + " requires one pod per zone but runs " +
                        std::to_string(replicas) + " replicas in " +
                        std::to_string(instance_.ha.zones) + " zones: " +
                        std::to_string(replicas - instance_.ha.zones) + " stay Pending",
                    "make the zone term preferred, or use topologySpreadConstraints with "
                    "maxSkew: 1",
                    where(base + "/affinity"));
            } else if (zone.required) {
                add(Severity::kWarning, "anti-affinity", object_, field,
                    std::string(c.deployment) +
                        " requires one pod per zone: while a zone is "
                        "down its pod cannot be rescheduled elsewhere",
                    "prefer preferredDuringSchedulingIgnoredDuringExecution for the zone term",
                    where(base + "/affinity"));
            }
        }
    }

    void check_pdb() {
        if (!truthy(at(am_.spec, "/podDisruptionBudget/enabled"))) {
            add(Severity::kError, "pdb", object_, "spec.podDisruptionBudget.enabled",
                "PodDisruptionBudgets are off: a node drain may evict every replica of a "
                "component at once",
                "set spec.podDisruptionBudget.enabled: true (maxUnavailable 1 per Deployment)",
                where("/podDisruptionBudget"));
        }
    }

    // Which databases are external, as the operator of this version decides.
    struct External {
        bool backend_redis = false;
        bool system_redis = false;
        bool system_database = false;
        bool zync_database = false;
    };
    External external() const {
        External e;
        const Json* ec = at(am_.spec, "/externalComponents");
        if (minor_ >= 12 && ec != nullptr) {
            e.backend_redis = truthy(at(am_.spec, "/externalComponents/backend/redis"));
            e.system_redis = truthy(at(am_.spec, "/externalComponents/system/redis"));
            e.system_database = truthy(at(am_.spec, "/externalComponents/system/database"));
            e.zync_database = truthy(at(am_.spec, "/externalComponents/zync/database"));
            return e;
        }
        const bool ha = truthy(at(am_.spec, "/highAvailability/enabled"));
        e.backend_redis = e.system_redis = e.system_database = ha;
        e.zync_database = ha && minor_ >= 10 &&
                          truthy(at(am_.spec, "/highAvailability/externalZyncDatabaseEnabled"));
        return e;
    }

    void check_external_databases() {
        const External e = external();
        const bool modern = minor_ >= 12;
        if (modern && at(am_.spec, "/externalComponents") == nullptr &&
            at(am_.spec, "/highAvailability") != nullptr) {
            add(Severity::kInfo, "external-databases", object_, "spec.highAvailability",
                "deprecated since 2.12; the operator migrates it to externalComponents",
                "write spec.externalComponents instead", where("/highAvailability"));
        }
        struct Db {
            bool external;
            const char* what;
            const char* field_modern;
            const char* field_legacy;
        };
        const Db dbs[] = {
            {e.backend_redis, "backend Redis", "spec.externalComponents.backend.redis",
             "spec.highAvailability.enabled"},
            {e.system_redis, "system Redis", "spec.externalComponents.system.redis",
             "spec.highAvailability.enabled"},
            {e.system_database, "system database", "spec.externalComponents.system.database",
             "spec.highAvailability.enabled"},
            {e.zync_database, "zync database", "spec.externalComponents.zync.database",
             "spec.highAvailability.externalZyncDatabaseEnabled"},
        };
        for (const auto& db : dbs) {
            if (db.external) {
                continue;
            }
            const bool is_zync = std::string(db.what) == "zync database";
            if (is_zync && !zync_enabled()) {
                continue;
            }
            if (is_zync && minor_ == 9) {
                add(Severity::kWarning, "external-databases", object_, "spec.highAvailability",
                    "3scale 2.9 cannot run zync's database outside the cluster: it is a single "
                    "pod",
                    "upgrade to 2.10+ and set highAvailability.externalZyncDatabaseEnabled",
                    where("/highAvailability"));
                continue;
            }
            const std::string field = modern ? db.field_modern : db.field_legacy;
            add(Severity::kError, "external-databases", object_, field,
                std::string("the ") + db.what + " runs inside the cluster as a single pod " +
                    "(no replication, lost with its node)" +
                    (minor_ >= 16 && !is_zync ? "; 3scale 2.16 refuses internal ones" : ""),
                "use an external, highly available " + std::string(db.what) + " and set " + field +
                    ": true (with its connection Secret)",
                where(modern ? "/externalComponents" : "/highAvailability"));
        }
    }

    const config::SecretDoc* secret(const std::string& name) const {
        auto it = am_.secrets.find(name);
        return it == am_.secrets.end() ? nullptr : &it->second;
    }

    // A required key: present and non-empty; returns its value.
    const std::string* required_key(const std::string& name,
                                    const std::string& key,
                                    const std::string& purpose) {
        const auto* s = secret(name);
        if (s == nullptr) {
            return nullptr;
        }
        auto it = s->values.find(key);
        if (it == s->values.end() || it->second.empty()) {
            add(Severity::kError, "database-secrets", "Secret " + name, key,
                std::string(it == s->values.end() ? "missing" : "empty") + ": " + purpose,
                "set " + key + " in Secret " + name, s->source);
            return nullptr;
        }
        return &it->second;
    }

    const std::string* optional_key(const std::string& name, const std::string& key) const {
        const auto* s = secret(name);
        if (s == nullptr) {
            return nullptr;
        }
        auto it = s->values.find(key);
        return it == s->values.end() || it->second.empty() ? nullptr : &it->second;
    }

    std::optional<RedisUrl> redis(const std::string& name,
                                  const std::string& url_key,
                                  const std::string& sentinel_prefix,
                                  bool& sentinel) {
        const auto* s = secret(name);
        const std::string* url = required_key(name, url_key, "the Redis address");
        sentinel = false;
        if (url == nullptr) {
            return std::nullopt;
        }
        std::string error;
        auto parsed = parse_redis_url(*url, error);
        if (!parsed) {
            add(Severity::kError, "redis-url", "Secret " + name, url_key,
                "is not a Redis URL: it " + error +
                    " (redis://[:password@]host[:port][/db], or with Sentinel "
                    "redis://[:password@]group[/db])",
                "fix " + url_key + " in Secret " + name, s->source);
            return std::nullopt;
        }
        if (const std::string* hosts = optional_key(name, sentinel_prefix + "SENTINEL_HOSTS")) {
            sentinel = true;
            auto list = parse_sentinel_hosts(*hosts, error);
            if (!list) {
                add(Severity::kError, "redis-url", "Secret " + name,
                    sentinel_prefix + "SENTINEL_HOSTS",
                    "is not a sentinel list: it " + error +
                        " (comma-separated [redis://][:password@]host:port)",
                    "fix it in Secret " + name, s->source);
            } else {
                for (const auto& h : *list) {
                    if (!h.port_given) {
                        add(Severity::kWarning, "redis-url", "Secret " + name,
                            sentinel_prefix + "SENTINEL_HOSTS",
                            "sentinel " + h.host +
                                " has no port: the operator assumes 6379, not Sentinel's 26379",
                            "write " + h.host + ":26379 (or the port your sentinels listen on)",
                            s->source);
                    }
                }
                if (list->size() < 3) {
                    add(Severity::kWarning, "redis-url", "Secret " + name,
                        sentinel_prefix + "SENTINEL_HOSTS",
                        "lists " + std::to_string(list->size()) +
                            " sentinel(s): a quorum that survives one failure needs 3",
                        "list every sentinel (at least 3)", s->source);
                }
            }
            if (parsed->port_given) {
                add(Severity::kWarning, "redis-url", "Secret " + name, url_key,
                    "with Sentinel the host of the URL is the sentinel group (master name); a "
                    "port there is ignored",
                    "write redis://[:password@]<group>[/db]", s->source);
            }
        }
        if (const std::string* role = optional_key(name, sentinel_prefix + "SENTINEL_ROLE")) {
            if (*role != "master" && *role != "slave") {
                add(Severity::kError, "redis-url", "Secret " + name,
                    sentinel_prefix + "SENTINEL_ROLE", "must be master or slave (or empty)",
                    "set it to master", s->source);
            }
        }
        if (minor_ >= 16) {
            const bool tls = name == "backend-redis"
                                 ? truthy(at(am_.spec, url_key == "REDIS_QUEUES_URL"
                                                           ? "/backend/queuesRedisTLSEnabled"
                                                           : "/backend/backendRedisTLSEnabled"))
                                 : truthy(at(am_.spec, "/system/systemRedisTLSEnabled"));
            if (!sentinel && tls != (parsed->scheme == "rediss")) {
                add(Severity::kError, "redis-url", "Secret " + name, url_key,
                    tls ? "TLS is enabled for this Redis but the URL is redis://"
                        : "the URL is rediss:// but TLS is not enabled for this Redis",
                    tls ? "use rediss://" : "use redis:// or enable TLS in the APIManager",
                    s->source);
            }
        }
        return parsed;
    }

    void check_database_secrets() {
        const External e = external();
        const auto need = [&](bool is_external, const char* name) {
            if (!is_external) {
                return false;
            }
            if (secret(name) == nullptr) {
                add(Severity::kError, "database-secrets", std::string("Secret ") + name, "",
                    std::string("missing: the ") + name +
                        " database is external, so the operator needs this Secret (without it "
                        "nothing is deployed)",
                    std::string("create Secret ") + name + " next to the APIManager", am_.source);
                return false;
            }
            return true;
        };
        std::optional<RedisUrl> storage;
        std::optional<RedisUrl> queues;
        std::optional<RedisUrl> system;
        bool storage_sentinel = false;
        bool queues_sentinel = false;
        bool system_sentinel = false;
        if (need(e.backend_redis, "backend-redis")) {
            storage =
                redis("backend-redis", "REDIS_STORAGE_URL", "REDIS_STORAGE_", storage_sentinel);
            queues = redis("backend-redis", "REDIS_QUEUES_URL", "REDIS_QUEUES_", queues_sentinel);
            if (storage && queues &&
                storage->identity(storage_sentinel) == queues->identity(queues_sentinel)) {
                add(Severity::kError, "redis-url", "Secret backend-redis", "REDIS_QUEUES_URL",
                    "storage and queues are the same Redis database (" +
                        storage->identity(storage_sentinel) +
                        "): backend's job queues would mix with its counters",
                    "use another database index for the queues (e.g. /1)",
                    secret("backend-redis")->source);
            }
        }
        if (need(e.system_redis, "system-redis")) {
            system = redis("system-redis", "URL", "", system_sentinel);
            if (minor_ <= 11) {
                if (required_key("system-redis", "MESSAGE_BUS_URL",
                                 "required by 3scale 2.9-2.11 when system Redis is external")) {
                    const std::string* bus = optional_key("system-redis", "MESSAGE_BUS_URL");
                    std::string error;
                    auto bus_url = parse_redis_url(*bus, error);
                    const std::string ns = optional_key("system-redis", "NAMESPACE")
                                               ? *optional_key("system-redis", "NAMESPACE")
                                               : "";
                    const std::string bus_ns =
                        optional_key("system-redis", "MESSAGE_BUS_NAMESPACE")
                            ? *optional_key("system-redis", "MESSAGE_BUS_NAMESPACE")
                            : "";
                    if (bus_url && system && bus_url->identity(false) == system->identity(false) &&
                        ns == bus_ns) {
                        add(Severity::kError, "redis-url", "Secret system-redis",
                            "MESSAGE_BUS_NAMESPACE",
                            "the message bus shares system Redis's database and namespace: "
                            "sidekiq keys and bus messages would collide",
                            "give the message bus another database or a distinct "
                            "MESSAGE_BUS_NAMESPACE",
                            secret("system-redis")->source);
                    }
                }
            }
        }
        const auto server = [](const RedisUrl& u, bool sentinel) {
            return sentinel ? "sentinel-group " + u.host : u.host + ":" + std::to_string(u.port);
        };
        if (system) {
            for (const auto& [u, sentinel, key] :
                 {std::tuple{storage, storage_sentinel, "REDIS_STORAGE_URL"},
                  std::tuple{queues, queues_sentinel, "REDIS_QUEUES_URL"}}) {
                if (u && server(*u, sentinel) == server(*system, system_sentinel)) {
                    add(Severity::kError, "redis-url", "Secret system-redis", "URL",
                        std::string("system Redis is the same server as backend's ") + key + " (" +
                            server(*system, system_sentinel) +
                            "): 3scale requires separate Redis instances for backend and system",
                        "point system-redis URL at its own Redis", secret("system-redis")->source);
                    break;
                }
            }
        }
        if (need(e.system_database, "system-database")) {
            if (const std::string* url =
                    required_key("system-database", "URL", "system's database URL")) {
                std::string error;
                if (!parse_database_url(*url, error)) {
                    add(Severity::kError, "database-url", "Secret system-database", "URL",
                        "is not a database URL: it " + error,
                        "write mysql2://, postgresql:// or oracle-enhanced:// "
                        "user:password@host[:port]/database",
                        secret("system-database")->source);
                }
            }
        }
        if (zync_enabled() && need(e.zync_database, "zync")) {
            const std::string* url = required_key("zync", "DATABASE_URL", "zync's database URL");
            const std::string* password =
                required_key("zync", "ZYNC_DATABASE_PASSWORD", "zync's database password");
            if (url != nullptr) {
                std::string error;
                auto parsed = parse_database_url(*url, error);
                if (!parsed || (parsed->scheme != "postgresql" && parsed->scheme != "postgres")) {
                    add(Severity::kError, "database-url", "Secret zync", "DATABASE_URL",
                        "must be postgresql://user:password@host:port/zync_production" +
                            (parsed ? std::string() : " (it " + error + ")"),
                        "fix DATABASE_URL in Secret zync", secret("zync")->source);
                } else if (password != nullptr && parsed->password != *password) {
                    add(Severity::kError, "database-url", "Secret zync", "ZYNC_DATABASE_PASSWORD",
                        "differs from the password inside DATABASE_URL: zync would fail to "
                        "connect",
                        "make ZYNC_DATABASE_PASSWORD the password in DATABASE_URL",
                        secret("zync")->source);
                }
            }
        }
    }

    // Keys the operator of this version does not know are stored and ignored (directly under
    // spec) or pruned (deeper) without an error: a typo silently turns a setting off.
    void check_fields(const Json& node, const std::string& path, const std::string& pointer) {
        if (!node.is_object()) {
            return;
        }
        const auto& paths = spec_paths();
        const std::size_t v = static_cast<std::size_t>(std::clamp(minor_, 9, 16) - 9);
        for (const auto& [key, child] : node.items()) {
            const std::string child_path = path + "." + key;
            const std::string child_pointer = pointer + "/" + key;
            const config::Source at_key{am_.source.file, am_.line_of(child_pointer)};
            auto it = paths.find(child_path);
            if (it == paths.end()) {
                std::string best;
                std::size_t best_distance = 4;
                for (const auto& [known, info] : paths) {
                    if (known.size() > path.size() + 1 && known.starts_with(path + ".") &&
                        known.find('.', path.size() + 1) == std::string::npos) {
                        const std::string name = known.substr(path.size() + 1);
                        const auto d = edit_distance(key, name);
                        if (d < best_distance) {
                            best_distance = d;
                            best = name;
                        }
                    }
                }
                add(Severity::kWarning, "unknown-field", object_, child_path,
                    "is not a field of the APIManager (3scale " + version_ +
                        "): the operator ignores or prunes it without an error",
                    best.empty() ? "remove it, or check the spelling against the APIManager "
                                   "reference of your version"
                                 : "did you mean " + path + "." + best + "?",
                    at_key);
                continue;
            }
            if (!it->second.in_version[v]) {
                add(Severity::kWarning, "unknown-field", object_, child_path,
                    "is not a field of 3scale " + version_ + " (it exists in " +
                        versions_of(it->second) + "): the operator ignores it",
                    "use the field of your version (see the APIManager reference), or set "
                    "ha.version to the version you run",
                    at_key);
                continue;
            }
            if (!walk_into(it->second.type)) {
                continue;
            }
            if (child.is_array() && it->second.type.starts_with("[]")) {
                for (std::size_t i = 0; i < child.size(); ++i) {
                    check_fields(child[i], child_path + "[]",
                                 child_pointer + "/" + std::to_string(i));
                }
            } else {
                check_fields(child, child_path, child_pointer);
            }
        }
    }

    void check_tenant() {
        const std::string tenant = value_or(at(am_.spec, "/tenantName"), "3scale");
        if (const std::string* seeded = optional_key("system-seed", "TENANT_NAME");
            seeded != nullptr && *seeded != tenant) {
            add(Severity::kWarning, "tenant-name", "Secret system-seed", "TENANT_NAME",
                "differs from spec.tenantName (" + tenant +
                    "): hostnames derived from one "
                    "will not match the other",
                "make them equal", secret("system-seed")->source);
        }
    }

    const config::Fleet& fleet_;
    const config::Instance& instance_;
    const config::ApiManagerDoc& am_;
    std::vector<Finding>& out_;
    std::string version_;
    int minor_ = 15;
    std::string object_;
};

// ---- across instances ---------------------------------------------------------------------

struct Checked {
    const config::Instance* instance;
    const config::ApiManagerDoc* am;
};

std::string list_names(const std::vector<std::string>& names) {
    std::string out;
    for (std::size_t i = 0; i < names.size(); ++i) {
        out += (i == 0 ? "" : i + 1 == names.size() ? " and " : ", ") + names[i];
    }
    return out;
}

void check_wildcard_domains(const config::Fleet& fleet,
                            const std::vector<Checked>& checked,
                            std::vector<Finding>& out) {
    std::map<std::string, std::vector<std::string>> by_domain;
    for (const auto& c : checked) {
        const Json* w = at(c.am->spec, "/wildcardDomain");
        if (w != nullptr && w->is_string()) {
            by_domain[w->get<std::string>()].push_back(c.instance->name);
        }
        if (w != nullptr && w->is_string() && !fleet.ha.wildcard_domain.empty() &&
            w->get<std::string>() != fleet.ha.wildcard_domain) {
            out.push_back({Severity::kError,
                           "wildcard-domain",
                           c.instance->name,
                           "APIManager " + c.am->name,
                           "spec.wildcardDomain",
                           "is " + w->get<std::string>() + ", the fleet's ha.wildcardDomain is " +
                               fleet.ha.wildcard_domain,
                           "use the same wildcardDomain everywhere",
                           {c.am->source.file, c.am->line_of("/spec/wildcardDomain")}});
        }
    }
    if (by_domain.size() > 1) {
        std::string detail;
        for (const auto& [domain, names] : by_domain) {
            detail += (detail.empty() ? "" : "; ") + domain + " on " + list_names(names);
        }
        out.push_back({Severity::kError, "wildcard-domain", "", "APIManager", "spec.wildcardDomain",
                       "differs between instances (" + detail +
                           "): every cluster must serve the same wildcard domain (tenant routes "
                           "and the balancer's Host header)",
                       "set one spec.wildcardDomain on every instance", fleet.ha.source});
    }
}

void check_mirrored(const std::vector<Checked>& checked, std::vector<Finding>& out) {
    static const char* kMirrored[] = {"backend-internal-api", "system-app", "system-events-hook",
                                      "system-master-apicast", "system-seed"};
    for (const char* name : kMirrored) {
        std::vector<std::pair<const Checked*, const config::SecretDoc*>> have;
        for (const auto& c : checked) {
            auto it = c.am->secrets.find(name);
            if (it == c.am->secrets.end()) {
                out.push_back(
                    {Severity::kError, "mirrored-secrets", c.instance->name,
                     std::string("Secret ") + name, "",
                     "missing: the operator would generate random values for this cluster, "
                     "different from the others (sessions, internal API calls and the master "
                     "portal break across clusters)",
                     std::string("create Secret ") + name +
                         " with the same values on every instance (tandem render does this)",
                     c.am->source});
            } else {
                have.emplace_back(&c, &it->second);
            }
        }
        if (have.size() < 2) {
            continue;
        }
        std::set<std::string> keys;
        for (const auto& [c, s] : have) {
            for (const auto& [k, v] : s->values) {
                keys.insert(k);
            }
        }
        for (const auto& key : keys) {
            // Group instances by value without ever holding a value in the output.
            std::map<std::string, std::vector<std::string>> groups;
            std::vector<std::string> missing;
            for (const auto& [c, s] : have) {
                auto it = s->values.find(key);
                if (it == s->values.end()) {
                    missing.push_back(c->instance->name);
                } else {
                    groups[it->second].push_back(c->instance->name);
                }
            }
            if (!missing.empty()) {
                out.push_back({Severity::kError, "mirrored-secrets", "",
                               std::string("Secret ") + name, key,
                               "present on " + std::to_string(have.size() - missing.size()) +
                                   " instance(s) but missing on " + list_names(missing),
                               "copy the key with the same value to every instance",
                               have.front().second->source});
            }
            if (groups.size() > 1) {
                std::vector<std::string> parts;
                for (const auto& [value, names] : groups) {
                    parts.push_back(list_names(names));
                }
                std::string detail;
                for (std::size_t i = 0; i < parts.size(); ++i) {
                    detail += (i == 0 ? "" : " / ") + parts[i];
                }
                out.push_back(
                    {Severity::kError, "mirrored-secrets", "", std::string("Secret ") + name, key,
                     "differs between instances (same value within each group: " + detail +
                         "); it must be identical everywhere",
                     "set one value on every instance (values are not shown)",
                     have.front().second->source});
            }
        }
    }
}

// The database identity of each connection key, to tell shared databases from independent ones.
std::map<std::string, std::string> database_identities(const config::ApiManagerDoc& am) {
    std::map<std::string, std::string> out;
    const auto value = [&](const char* secret, const char* key) -> const std::string* {
        auto s = am.secrets.find(secret);
        if (s == am.secrets.end()) {
            return nullptr;
        }
        auto v = s->second.values.find(key);
        return v == s->second.values.end() || v->second.empty() ? nullptr : &v->second;
    };
    const auto redis_id = [&](const char* secret, const char* key, const char* sentinel_key) {
        if (const std::string* url = value(secret, key)) {
            std::string error;
            if (auto u = parse_redis_url(*url, error)) {
                const std::string* hosts = value(secret, sentinel_key);
                std::string id = u->identity(hosts != nullptr);
                if (hosts != nullptr) {
                    if (auto list = parse_sentinel_hosts(*hosts, error)) {
                        std::set<std::string> set;
                        for (const auto& h : *list) {
                            set.insert(h.host + ":" + std::to_string(h.port));
                        }
                        id += " via";
                        for (const auto& h : set) {
                            id += " " + h;
                        }
                    }
                }
                out[std::string(secret) + "." + key] = id;
            }
        }
    };
    redis_id("backend-redis", "REDIS_STORAGE_URL", "REDIS_STORAGE_SENTINEL_HOSTS");
    redis_id("backend-redis", "REDIS_QUEUES_URL", "REDIS_QUEUES_SENTINEL_HOSTS");
    redis_id("system-redis", "URL", "SENTINEL_HOSTS");
    for (const auto& [secret, key] :
         {std::pair{"system-database", "URL"}, std::pair{"zync", "DATABASE_URL"}}) {
        if (const std::string* url = value(secret, key)) {
            std::string error;
            if (auto d = parse_database_url(*url, error)) {
                out[std::string(secret) + "." + key] = d->identity();
            }
        }
    }
    return out;
}

void check_independence(const config::Fleet& fleet,
                        const std::vector<Checked>& checked,
                        std::vector<Finding>& out) {
    if (checked.size() < 2) {
        return;
    }
    const bool passive = fleet.ha.mode == "active-passive";
    std::map<std::string, std::map<std::string, std::vector<std::string>>> by_key;
    for (const auto& c : checked) {
        for (const auto& [key, id] : database_identities(*c.am)) {
            by_key[key][id].push_back(c.instance->name);
        }
    }
    for (const auto& [key, ids] : by_key) {
        const auto dot = key.find('.');
        const std::string secret = key.substr(0, dot);
        const std::string field = key.substr(dot + 1);
        if (!passive) {
            for (const auto& [id, names] : ids) {
                if (names.size() > 1) {
                    out.push_back(
                        {Severity::kError, "independent-databases", "", "Secret " + secret, field,
                         list_names(names) + " point at the same database (" + id +
                             "): independent instances need their own (limits would be counted "
                             "twice and jobs consumed by the wrong cluster)",
                         "give every instance its own database, or set ha.mode: active-passive "
                         "if they are meant to share",
                         fleet.ha.source});
                }
            }
        } else if (ids.size() > 1) {
            out.push_back({Severity::kError, "shared-databases", "", "Secret " + secret, field,
                           "active-passive instances must share their databases, but they point "
                           "at " +
                               std::to_string(ids.size()) + " different ones",
                           "use the same connection Secret on the active and the standby",
                           fleet.ha.source});
        }
    }
}

}  // namespace

DoctorReport doctor(const config::Fleet& fleet) {
    DoctorReport report;
    report.fleet_file = fleet.file.string();
    std::vector<Checked> checked;
    for (const auto& instance : fleet.instances) {
        report.instances.push_back(instance.name);
        if (!instance.ha.apimanager) {
            report.unchecked.emplace_back(
                instance.name,
                "no apimanager: in the fleet file (the APIManager CR and Secrets to check)");
            continue;
        }
        checked.push_back({&instance, &*instance.ha.apimanager});
        InstanceChecker(fleet, instance, *instance.ha.apimanager, report.findings).run();
    }
    check_wildcard_domains(fleet, checked, report.findings);
    check_mirrored(checked, report.findings);
    check_independence(fleet, checked, report.findings);
    std::stable_sort(report.findings.begin(), report.findings.end(),
                     [](const Finding& a, const Finding& b) {
                         return std::tie(a.instance, a.severity, a.rule, a.object, a.field) <
                                std::tie(b.instance, b.severity, b.rule, b.object, b.field);
                     });
    return report;
}

}  // namespace ha
