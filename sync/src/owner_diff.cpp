// Metrics, methods and mapping rules of a product or a backend: creates, updates, deletes and
// the positions porta gives rules.
#include "owner_diff.hpp"

#include <algorithm>
#include <set>

namespace syncer {

namespace {

std::string rule_name(const config::MappingRule& r) {
    return r.http_method + " " + r.pattern;
}

}  // namespace

void diff_metrics(const Owner& owner,
                  const std::map<std::string, config::Metric>& desired,
                  const std::map<std::string, config::Metric>& actual,
                  bool methods,
                  std::vector<Operation>& out) {
    const Kind kind = methods ? owner.method_kind : owner.metric_kind;
    for (const auto& [name, d] : desired) {
        const auto it = actual.find(name);
        if (it == actual.end()) {
            Operation o = op(Action::kCreate, kind, owner.product, owner.backend, name);
            field(o, "system_name", name);
            field(o, "friendly_name", d.friendly_name);
            if (!methods) {
                field(o, "unit", d.unit);
            }
            field(o, "description", d.description);
            out.push_back(std::move(o));
            continue;
        }
        const config::Metric& a = it->second;
        Operation o = op(Action::kUpdate, kind, owner.product, owner.backend, name);
        if (d.friendly_name != a.friendly_name) {
            field(o, "friendly_name", d.friendly_name, a.friendly_name);
        }
        if (!methods && d.unit != a.unit) {
            field(o, "unit", d.unit, a.unit);
        }
        if (d.description != a.description) {
            field(o, "description", d.description, a.description);
        }
        if (!o.changes.empty()) {
            out.push_back(std::move(o));
        }
    }
}

void delete_metrics(const Owner& owner,
                    const std::map<std::string, config::Metric>& desired,
                    const std::map<std::string, config::Metric>& actual,
                    bool methods,
                    const std::map<std::string, Id>* ids,
                    std::vector<Operation>& out) {
    for (const auto& [name, a] : actual) {
        if (desired.contains(name) || (!methods && name == "hits")) {
            continue;  // hits is never deleted
        }
        Operation o = op(Action::kDelete, methods ? owner.method_kind : owner.metric_kind,
                         owner.product, owner.backend, name);
        o.changes.push_back({"friendly_name", "", a.friendly_name});
        if (ids != nullptr) {
            if (auto it = ids->find(name); it != ids->end()) {
                o.id = it->second;
            }
        }
        out.push_back(std::move(o));
    }
}

void diff_rules(const Owner& owner,
                const std::vector<config::MappingRule>& desired,
                const std::vector<config::MappingRule>& actual,
                const std::vector<Id>* ids,
                std::vector<Operation>& upserts,
                std::vector<Operation>& deletes) {
    const std::size_t n = desired.size();
    const std::size_t m = actual.size();
    std::vector<std::optional<std::size_t>> match(n);
    std::vector<bool> taken(m, false);
    for (std::size_t i = 0; i < n; ++i) {  // exact matches first
        for (std::size_t j = 0; j < m; ++j) {
            if (!taken[j] && desired[i] == actual[j]) {
                match[i] = j;
                taken[j] = true;
                break;
            }
        }
    }
    for (std::size_t i = 0; i < n; ++i) {  // then same method and pattern: an update
        if (match[i]) {
            continue;
        }
        for (std::size_t j = 0; j < m; ++j) {
            if (!taken[j] && desired[i].http_method == actual[j].http_method &&
                desired[i].pattern == actual[j].pattern) {
                match[i] = j;
                taken[j] = true;
                break;
            }
        }
    }
    // Simulated list of rules in position order: actual indexes, or n + i for new rule i.
    std::vector<std::size_t> list(m);
    for (std::size_t j = 0; j < m; ++j) {
        list[j] = j;
    }
    const auto metric_ref = [&](const std::string& metric) {
        return config::MetricRef{metric, owner.backend};
    };
    for (std::size_t i = 0; i < n; ++i) {
        const config::MappingRule& d = desired[i];
        const auto position = static_cast<std::int64_t>(i + 1);
        if (!match[i]) {
            list.insert(list.begin() + static_cast<std::ptrdiff_t>(i), m + i);
            Operation o =
                op(Action::kCreate, owner.rule_kind, owner.product, owner.backend, rule_name(d));
            field(o, "http_method", d.http_method);
            field(o, "pattern", d.pattern);
            field(o, "delta", std::to_string(d.delta));
            field(o, "last", b(d.last));
            field(o, "position", std::to_string(position));
            o.changes.push_back({"metric", d.metric, ""});
            o.metric = metric_ref(d.metric);
            o.position = position;
            upserts.push_back(std::move(o));
            continue;
        }
        const std::size_t j = *match[i];
        const config::MappingRule& a = actual[j];
        Operation o =
            op(Action::kUpdate, owner.rule_kind, owner.product, owner.backend, rule_name(d));
        o.id = ids != nullptr && j < ids->size() ? (*ids)[j] : 0;
        if (d.metric != a.metric) {
            o.changes.push_back({"metric", d.metric, a.metric});
            o.metric = metric_ref(d.metric);
        }
        if (d.delta != a.delta) {
            field(o, "delta", std::to_string(d.delta), std::to_string(a.delta));
        }
        if (d.last != a.last) {
            field(o, "last", b(d.last), b(a.last));
        }
        const auto current =
            static_cast<std::size_t>(std::find(list.begin(), list.end(), j) - list.begin());
        if (current != i) {
            list.erase(list.begin() + static_cast<std::ptrdiff_t>(current));
            list.insert(list.begin() + static_cast<std::ptrdiff_t>(i), j);
            field(o, "position", std::to_string(position), std::to_string(current + 1));
            o.position = position;
        }
        if (!o.changes.empty()) {
            upserts.push_back(std::move(o));
        }
    }
    for (std::size_t j = 0; j < m; ++j) {
        if (taken[j]) {
            continue;
        }
        Operation o = op(Action::kDelete, owner.rule_kind, owner.product, owner.backend,
                         rule_name(actual[j]));
        // not in the CR (3scale's own "GET /" of a new product included): the CR owns its rules
        o.id = ids != nullptr && j < ids->size() ? (*ids)[j] : 0;
        o.changes.push_back({"metric", "", actual[j].metric});
        deletes.push_back(std::move(o));
    }
}

Owner product_owner(const std::string& name) {
    return {Kind::kMetric, Kind::kMethod, Kind::kMappingRule, name, ""};
}

Owner backend_owner(const std::string& name) {
    return {Kind::kBackendMetric, Kind::kBackendMethod, Kind::kBackendRule, "", name};
}

}  // namespace syncer
