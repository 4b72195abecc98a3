// tandem doctor's rules over one instance's APIManager: wildcard domain, replicas against the
// zones the nodes span, pod anti-affinity, PodDisruptionBudgets; then the database and
// spec-field families.
#include <algorithm>
#include <set>

#include "instance_check.hpp"

namespace ha {

InstanceCheck::InstanceCheck(const config::Fleet& f,
                             const config::Instance& i,
                             const config::ApiManagerDoc& a,
                             std::vector<Finding>& o)
    : fleet(f), instance(i), am(a), out(o) {
    const auto annotated = am.annotations.find("apps.3scale.net/apimanager-threescale-version");
    version = annotated != am.annotations.end() ? annotated->second : fleet.ha.version;
    minor = config::minor_version(version);
    if (minor == 0) {
        minor = 15;
    }
    object = "APIManager " + am.name;
}

void InstanceCheck::add(Severity s,
                        std::string rule,
                        std::string object_name,
                        std::string field,
                        std::string message,
                        std::string fix,
                        config::Source source) {
    out.push_back({s, std::move(rule), instance.name, std::move(object_name), std::move(field),
                   std::move(message), std::move(fix), std::move(source)});
}

config::Source InstanceCheck::where(const std::string& pointer) const {
    return {am.source.file, am.line_of("/spec" + pointer)};
}

bool InstanceCheck::zync_enabled() const {
    const Json* enabled = at(am.spec, "/zync/enabled");
    return !(minor >= 16 && enabled != nullptr && enabled->is_boolean() && !enabled->get<bool>());
}

bool InstanceCheck::present_in(const Component& c) const {
    return c.family != std::string("zync") || zync_enabled();
}

namespace {

void check_wildcard(InstanceCheck& check) {
    const Json* w = at(check.am.spec, "/wildcardDomain");
    if (w == nullptr || !w->is_string() || w->get<std::string>().empty()) {
        check.add(Severity::kError, "wildcard-domain", check.object, "spec.wildcardDomain",
                  "missing: it is the only required field and the root of every route",
                  "set spec.wildcardDomain to the domain every instance shares", check.am.source);
    }
}

void check_replicas(InstanceCheck& check, const Component& c) {
    const std::string base = c.spec_path;
    const Json* replicas = at(check.am.spec, base + "/replicas");
    const bool hpa = check.minor >= 15 && c.hpa_capable && truthy(at(check.am.spec, base + "/hpa"));
    const std::string field = dotted(base) + ".replicas";
    const int wanted = check.wanted_replicas();
    const std::string why = check.instance.ha.zones > 1
                                ? "at least 2, and at least one per availability zone (" +
                                      std::to_string(check.instance.ha.zones) + ")"
                                : "at least 2";
    if (hpa) {
        check.add(Severity::kWarning, "replicas", check.object, dotted(base) + ".hpa",
                  c.deployment + std::string(" is scaled by an HPA whose minReplicas is 1 (the "
                                             "operator's default): one pod at quiet times"),
                  "raise minReplicas on the HorizontalPodAutoscaler " + std::string(c.deployment) +
                      " to " + std::to_string(wanted),
                  check.where(base + "/hpa"));
        if (replicas != nullptr) {
            check.add(Severity::kWarning, "replicas", check.object, field,
                      "replicas is set together with hpa: true; the operator and the HPA fight "
                      "over the replica count",
                      "remove replicas (the HPA decides) or set hpa: false",
                      check.where(base + "/replicas"));
        }
        return;
    }
    if (replicas == nullptr) {
        check.add(Severity::kError, "replicas", check.object, field,
                  std::string(c.deployment) +
                      " has no replicas: the operator runs 1 pod, so one "
                      "node failure takes it down",
                  "set " + field + ": " + std::to_string(wanted) + " (" + why + ")",
                  check.where(base));
        return;
    }
    if (!replicas->is_number_integer()) {
        check.add(Severity::kError, "replicas", check.object, field, "must be an integer",
                  "set " + field + ": " + std::to_string(wanted), check.where(base + "/replicas"));
        return;
    }
    const auto n = replicas->get<std::int64_t>();
    if (n < wanted) {
        check.add(Severity::kError, "replicas", check.object, field,
                  std::string(c.deployment) + " runs " + std::to_string(n) + " replica" +
                      (n == 1 ? "" : "s") + "; HA needs " + why,
                  "set " + field + ": " + std::to_string(wanted), check.where(base + "/replicas"));
    }
}

// Pod labels of a component's pods, to match selectors against.
std::map<std::string, std::string> pod_labels(const InstanceCheck& check, const Component& c) {
    std::map<std::string, std::string> labels{
        {"threescale_component", c.family},
        {"threescale_component_element", c.element},
        {"app", value_or(at(check.am.spec, "/appLabel"), "3scale-api-management")},
    };
    labels[check.minor >= 15 ? "deployment" : "deploymentConfig"] = c.deployment;
    return labels;
}

// Does a labelSelector select the component's pods? `why` says why not.
bool selects(const InstanceCheck& check,
             const Json& selector,
             const Component& c,
             std::string& why) {
    if (!selector.is_object()) {
        why = "has no labelSelector";
        return false;
    }
    const auto labels = pod_labels(check, c);
    if (auto ml = selector.find("matchLabels"); ml != selector.end() && ml->is_object()) {
        for (const auto& [k, v] : ml->items()) {
            auto it = labels.find(k);
            if (it == labels.end() || !v.is_string() || it->second != v.get<std::string>()) {
                if (k == "deploymentConfig" && check.minor >= 15) {
                    why =
                        "selects on deploymentConfig, a label pods lose in 3scale 2.15 "
                        "(DeploymentConfig -> Deployment): it matches no pod";
                } else if (k == "deployment" && check.minor < 15) {
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
            const std::string op = value_or(e.contains("operator") ? &e["operator"] : nullptr, "");
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

void check_spread(InstanceCheck& check, const Component& c) {
    const std::string base = c.spec_path;
    const Json* anti = at(check.am.spec, base + "/affinity/podAntiAffinity");
    std::map<std::string, Spread> by_key;
    const auto consider = [&](const Json& term, bool required) {
        const std::string key =
            value_or(term.contains("topologyKey") ? &term["topologyKey"] : nullptr, "");
        std::string why;
        const Json selector = term.contains("labelSelector") ? term["labelSelector"] : Json();
        if (!selects(check, selector, c, why)) {
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
                    check.add(Severity::kError, "anti-affinity", check.object, dotted(ptr),
                              "a required anti-affinity item is a PodAffinityTerm (labelSelector, "
                              "topologyKey), not {weight, podAffinityTerm}: Kubernetes rejects it "
                              "(the form in 3scale-Operations' hard example is invalid)",
                              "move labelSelector and topologyKey up one level and drop weight",
                              check.where(ptr));
                    continue;
                }
                consider(item, true);
            }
        }
    }
    if (check.minor >= 14) {  // topologySpreadConstraints count as spreading too
        if (const Json* tsc = at(check.am.spec, base + "/topologySpreadConstraints");
            tsc != nullptr && tsc->is_array()) {
            for (const auto& t : *tsc) {
                const bool hard =
                    value_or(t.contains("whenUnsatisfiable") ? &t["whenUnsatisfiable"] : nullptr,
                             "DoNotSchedule") == "DoNotSchedule";
                consider(t, hard);
            }
        }
    }
    const Json* replicas_json = at(check.am.spec, base + "/replicas");
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
        check.add(Severity::kError, "anti-affinity", check.object, field,
                  std::string(c.deployment) +
                      " has no pod anti-affinity on kubernetes.io/hostname" +
                      (host.mismatch.empty()
                           ? ""
                           : " that selects its own pods (the term " + host.mismatch + ")") +
                      ": all its replicas may land on one node",
                  "add " + term("kubernetes.io/hostname", 100), check.where(base));
    } else if (host.required) {
        check.add(Severity::kWarning, "anti-affinity", check.object, field,
                  std::string(c.deployment) + " requires one pod per node: on a cluster with " +
                      "fewer than " + std::to_string(replicas + 1) +
                      " schedulable nodes a drained or failed node's pod stays Pending",
                  "use preferredDuringSchedulingIgnoredDuringExecution unless every cluster has "
                  "spare nodes",
                  check.where(base + "/affinity"));
    }
    const Spread zone = by_key["topology.kubernetes.io/zone"];
    if (check.instance.ha.zones > 1) {
        if (!zone.preferred && !zone.required) {
            check.add(Severity::kError, "anti-affinity", check.object, field,
                      std::string(c.deployment) + " has no anti-affinity on " +
                          "topology.kubernetes.io/zone while the instance spans " +
                          std::to_string(check.instance.ha.zones) +
                          " zones: losing one zone can take every replica" +
                          (zone.mismatch.empty() ? "" : " (a zone term " + zone.mismatch + ")"),
                      "add " + term("topology.kubernetes.io/zone", 99), check.where(base));
        } else if (zone.required && replicas > check.instance.ha.zones) {
            check.add(Severity::kError, "anti-affinity", check.object, field,
                      std::string(c.deployment) + " requires one pod per zone but runs " +
                          std::to_string(replicas) + " replicas in " +
                          std::to_string(check.instance.ha.zones) + " zones: " +
                          std::to_string(replicas - check.instance.ha.zones) + " stay Pending",
                      "make the zone term preferred, or use topologySpreadConstraints with "
                      "maxSkew: 1",
                      check.where(base + "/affinity"));
        } else if (zone.required) {
            check.add(Severity::kWarning, "anti-affinity", check.object, field,
                      std::string(c.deployment) +
                          " requires one pod per zone: while a zone is "
                          "down its pod cannot be rescheduled elsewhere",
                      "prefer preferredDuringSchedulingIgnoredDuringExecution for the zone term",
                      check.where(base + "/affinity"));
        }
    }
}

void check_pdb(InstanceCheck& check) {
    if (!truthy(at(check.am.spec, "/podDisruptionBudget/enabled"))) {
        check.add(Severity::kError, "pdb", check.object, "spec.podDisruptionBudget.enabled",
                  "PodDisruptionBudgets are off: a node drain may evict every replica of a "
                  "component at once",
                  "set spec.podDisruptionBudget.enabled: true (maxUnavailable 1 per Deployment)",
                  check.where("/podDisruptionBudget"));
    }
}

}  // namespace

void check_instance(InstanceCheck& check) {
    check_wildcard(check);
    const bool standby = check.instance.ha.role == "standby";
    for (const auto& c : scalable_components()) {
        if (!check.present_in(c)) {
            continue;
        }
        if (standby) {
            continue;  // a parked standby runs 0 replicas by design
        }
        check_replicas(check, c);
        check_spread(check, c);
    }
    if (standby) {
        check.add(Severity::kInfo, "replicas", check.object, "spec",
                  "standby instance: replicas, PDB and anti-affinity are checked on the active one",
                  "on failover apply the active instance's APIManager here (see tandem render's "
                  "failover checklist)",
                  check.am.source);
    } else {
        check_pdb(check);
    }
    check_external_databases(check);
    check_database_secrets(check);
    check_tenant(check);
    check_spec_fields(check);
}

}  // namespace ha
