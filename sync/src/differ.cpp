#include "sync/differ.hpp"

#include <algorithm>
#include <map>
#include <set>

namespace syncer {

namespace {

std::string b(bool v) {
    return v ? "true" : "false";
}

std::string rule_name(const config::MappingRule& r) {
    return r.http_method + " " + r.pattern;
}

std::string opt_str(const std::optional<std::int64_t>& v) {
    return v ? std::to_string(*v) : std::string("∞");
}

Operation op(Action action, Kind kind, std::string product, std::string backend, std::string name) {
    Operation o;
    o.action = action;
    o.kind = kind;
    o.product = std::move(product);
    o.backend = std::move(backend);
    o.name = std::move(name);
    return o;
}

// Records a field for a create (actual empty) or an update (only when it differs).
void field(Operation& o,
           const std::string& name,
           const std::string& expected,
           const std::string& actual = "",
           bool send = true) {
    o.changes.push_back({name, expected, actual});
    if (send) {
        o.form.emplace_back(name, expected);
    }
}

struct Owner {
    Kind metric_kind;
    Kind method_kind;
    Kind rule_kind;
    std::string product;
    std::string backend;
};

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
        o.unmanaged = true;
        o.changes.push_back({"friendly_name", "", a.friendly_name});
        if (ids != nullptr) {
            if (auto it = ids->find(name); it != ids->end()) {
                o.id = it->second;
            }
        }
        out.push_back(std::move(o));
    }
}

// Matches desired rules to actual ones, then orders them the way porta's acts_as_list moves them:
// desired rule i ends at position i + 1, rules not in the desired state after them.
void diff_rules(const Owner& owner,
                const std::vector<config::MappingRule>& desired,
                const std::vector<config::MappingRule>& actual,
                const std::vector<Id>* ids,
                bool auto_created,
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
        // 3scale's own "GET /" on a product tandem creates is removed as part of converging.
        o.unmanaged = !auto_created;
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

std::string limit_name(const std::string& plan, const config::Limit& l) {
    return plan + "/" + l.metric.to_string() + "/" + std::string(ratelimit::to_string(l.period));
}

std::string pricing_name(const std::string& plan, const config::PricingRule& p) {
    return plan + "/" + p.metric.to_string() + "/" + std::to_string(p.min) + ".." + opt_str(p.max);
}

void diff_plan_contents(const std::string& product,
                        const std::string& plan_name,
                        const config::Plan& desired,
                        const config::Plan* actual,
                        const ProductIds* ids,
                        std::vector<Operation>& limits,
                        std::vector<Operation>& pricing,
                        std::vector<Operation>& deletes) {
    // limits: (metric, period) -> value, updated in place
    std::map<std::pair<config::MetricRef, ratelimit::Period>, const config::Limit*> have;
    if (actual != nullptr) {
        for (const auto& l : actual->limits) {
            have[{l.metric, l.period}] = &l;
        }
    }
    std::set<std::pair<config::MetricRef, ratelimit::Period>> wanted;
    const auto explain = [](Operation& o, const config::Limit& l) {
        o.global_value = l.global_value;
        o.weight = l.weight;
        o.split_rule = l.split_rule;
    };
    for (const auto& l : desired.limits) {
        wanted.insert({l.metric, l.period});
        const auto it = have.find({l.metric, l.period});
        if (it == have.end()) {
            Operation o = op(Action::kCreate, Kind::kLimit, product, l.metric.backend,
                             limit_name(plan_name, l));
            explain(o, l);
            o.plan = plan_name;
            o.metric = l.metric;
            o.period = l.period;
            field(o, "period", std::string(ratelimit::to_string(l.period)));
            field(o, "value", std::to_string(l.value));
            limits.push_back(std::move(o));
        } else if (it->second->value != l.value) {
            Operation o = op(Action::kUpdate, Kind::kLimit, product, l.metric.backend,
                             limit_name(plan_name, l));
            explain(o, l);
            o.plan = plan_name;
            o.metric = l.metric;
            o.period = l.period;
            if (ids != nullptr) {
                if (auto id = ids->limits.find({plan_name, l.metric, l.period});
                    id != ids->limits.end()) {
                    o.id = id->second;
                }
            }
            field(o, "value", std::to_string(l.value), std::to_string(it->second->value));
            limits.push_back(std::move(o));
        }
    }
    if (actual != nullptr) {
        for (const auto& l : actual->limits) {
            if (wanted.contains({l.metric, l.period})) {
                continue;
            }
            Operation o = op(Action::kDelete, Kind::kLimit, product, l.metric.backend,
                             limit_name(plan_name, l));
            o.plan = plan_name;
            o.metric = l.metric;
            o.period = l.period;
            o.unmanaged = true;
            o.changes.push_back({"value", "", std::to_string(l.value)});
            if (ids != nullptr) {
                if (auto id = ids->limits.find({plan_name, l.metric, l.period});
                    id != ids->limits.end()) {
                    o.id = id->second;
                }
            }
            deletes.push_back(std::move(o));
        }
    }
    // pricing rules: no update in the API. A changed price or range is a replace (delete the
    // overlapping old rule, create the new one, restore the old one if the create fails).
    std::vector<const config::PricingRule*> unmatched;
    if (actual != nullptr) {
        for (const auto& p : actual->pricing_rules) {
            unmatched.push_back(&p);
        }
    }
    const auto id_of = [&](const config::PricingRule& p) -> Id {
        if (ids == nullptr) {
            return 0;
        }
        const auto it = ids->pricing.find({plan_name, p.metric, p.min, p.max});
        return it == ids->pricing.end() ? 0 : it->second;
    };
    for (const auto& d : desired.pricing_rules) {
        const auto same = std::find_if(unmatched.begin(), unmatched.end(), [&](const auto* a) {
            return a->metric == d.metric && a->min == d.min && a->max == d.max;
        });
        if (same != unmatched.end() && (*same)->cost_per_unit == d.cost_per_unit) {
            unmatched.erase(same);
            continue;
        }
        auto overlap = same;
        if (overlap == unmatched.end()) {
            overlap = std::find_if(unmatched.begin(), unmatched.end(), [&](const auto* a) {
                return a->metric == d.metric && d.min <= a->max.value_or(INT64_MAX) &&
                       a->min <= d.max.value_or(INT64_MAX);
            });
        }
        Operation o = op(overlap == unmatched.end() ? Action::kCreate : Action::kReplace,
                         Kind::kPricingRule, product, d.metric.backend, pricing_name(plan_name, d));
        o.plan = plan_name;
        o.metric = d.metric;
        o.min = d.min;
        o.max = d.max;
        const std::string was = overlap == unmatched.end() ? ""
                                                           : std::to_string((*overlap)->min) +
                                                                 ".." + opt_str((*overlap)->max) +
                                                                 " at " + (*overlap)->cost_per_unit;
        o.changes.push_back(
            {"range_and_cost",
             std::to_string(d.min) + ".." + opt_str(d.max) + " at " + d.cost_per_unit, was});
        o.form = {{"min", std::to_string(d.min)},
                  {"max", d.max ? std::to_string(*d.max) : ""},
                  {"cost_per_unit", d.cost_per_unit}};
        if (overlap != unmatched.end()) {
            o.id = id_of(**overlap);
            // the old rule, for a restore if the create fails
            o.changes.push_back({"old_min", "", std::to_string((*overlap)->min)});
            o.changes.push_back(
                {"old_max", "", (*overlap)->max ? std::to_string(*(*overlap)->max) : ""});
            o.changes.push_back({"old_cost_per_unit", "", (*overlap)->cost_per_unit});
            unmatched.erase(overlap);
        }
        pricing.push_back(std::move(o));
    }
    for (const auto* a : unmatched) {
        Operation o = op(Action::kDelete, Kind::kPricingRule, product, a->metric.backend,
                         pricing_name(plan_name, *a));
        o.plan = plan_name;
        o.metric = a->metric;
        o.min = a->min;
        o.max = a->max;
        o.id = id_of(*a);
        o.unmanaged = true;
        o.changes.push_back({"cost_per_unit", "", a->cost_per_unit});
        deletes.push_back(std::move(o));
    }
}

std::string policies_json(const std::vector<config::Policy>& chain);

}  // namespace

const char* to_string(Action action) {
    switch (action) {
        case Action::kCreate:
            return "create";
        case Action::kUpdate:
            return "update";
        case Action::kDelete:
            return "delete";
        case Action::kReplace:
            return "replace";
        case Action::kDeploy:
            return "deploy";
        case Action::kPromote:
            return "promote";
    }
    return "?";
}

const char* to_string(Kind kind) {
    switch (kind) {
        case Kind::kBackend:
            return "backend";
        case Kind::kBackendMetric:
            return "backend metric";
        case Kind::kBackendMethod:
            return "backend method";
        case Kind::kBackendRule:
            return "backend mapping rule";
        case Kind::kProduct:
            return "product";
        case Kind::kBackendUsage:
            return "backend usage";
        case Kind::kMetric:
            return "metric";
        case Kind::kMethod:
            return "method";
        case Kind::kMappingRule:
            return "mapping rule";
        case Kind::kPlan:
            return "application plan";
        case Kind::kLimit:
            return "limit";
        case Kind::kPricingRule:
            return "pricing rule";
        case Kind::kPolicies:
            return "policy chain";
        case Kind::kProxy:
            return "proxy settings";
        case Kind::kProxyConfig:
            return "proxy config";
        case Kind::kAccount:
            return "developer account";
        case Kind::kUser:
            return "user";
        case Kind::kApplication:
            return "application";
        case Kind::kApplicationKey:
            return "application key";
    }
    return "?";
}

std::string Operation::summary() const {
    std::string owner = product.empty() ? backend : product;
    std::string out = std::string(to_string(action)) + " " + to_string(kind) + " ";
    if (kind == Kind::kProduct || kind == Kind::kBackend || kind == Kind::kAccount) {
        return out + name;
    }
    if (kind == Kind::kUser || kind == Kind::kApplication || kind == Kind::kApplicationKey) {
        return out + account + ": " + (product.empty() ? "" : product + " ") + name;
    }
    if (kind == Kind::kProxyConfig) {
        return out + "of " + product +
               (action == Action::kPromote ? " to production" : " to staging");
    }
    return out + owner + ": " + name;
}

bool affects_proxy_config(const Operation& op) {
    switch (op.kind) {
        case Kind::kPlan:
        case Kind::kLimit:
        case Kind::kPricingRule:
        case Kind::kProxyConfig:
        case Kind::kAccount:
        case Kind::kUser:
        case Kind::kApplication:
        case Kind::kApplicationKey:
            return false;
        default:
            return true;
    }
}

config::Product Differ::fresh_product(const config::Product& desired) {
    config::Product p;
    p.name = desired.name;
    p.description = desired.description;
    p.deployment_option = "hosted";
    p.backend_version = "1";
    p.metrics["hits"] = {"Hits", "hit", "Number of API hits", {}};
    p.mapping_rules.push_back({"GET", "/", "hits", 1, false, {}});
    p.policies.push_back({"apicast", "builtin", true, "{}"});
    return p;
}

config::Backend Differ::fresh_backend(const config::Backend& desired) {
    config::Backend b;
    b.name = desired.name;
    b.description = desired.description;
    b.private_endpoint = desired.private_endpoint;
    b.metrics["hits"] = {"Hits", "hit", "Number of API hits", {}};
    return b;
}

std::vector<Operation> Differ::backend(const std::string& name,
                                       const config::Backend& desired,
                                       const config::Backend* actual,
                                       const BackendIds* ids) const {
    std::vector<Operation> out;
    config::Backend fresh;
    if (actual == nullptr) {
        Operation o = op(Action::kCreate, Kind::kBackend, "", name, name);
        field(o, "system_name", name);
        field(o, "name", desired.name);
        field(o, "description", desired.description);
        field(o, "private_endpoint", desired.private_endpoint);
        o.form.emplace_back("annotations[managed_by]", "tandem");
        out.push_back(std::move(o));
        fresh = fresh_backend(desired);
        actual = &fresh;
        ids = nullptr;
    } else {
        Operation o = op(Action::kUpdate, Kind::kBackend, "", name, name);
        o.id = ids != nullptr ? ids->id : 0;
        if (desired.name != actual->name) {
            field(o, "name", desired.name, actual->name);
        }
        if (desired.description != actual->description) {
            field(o, "description", desired.description, actual->description);
        }
        if (desired.private_endpoint != actual->private_endpoint) {
            field(o, "private_endpoint", desired.private_endpoint, actual->private_endpoint);
        }
        if (!o.changes.empty()) {
            out.push_back(std::move(o));
        }
    }
    const Owner owner = backend_owner(name);
    diff_metrics(owner, desired.metrics, actual->metrics, false, out);
    diff_metrics(owner, desired.methods, actual->methods, true, out);
    std::vector<Operation> deletes;
    diff_rules(owner, desired.mapping_rules, actual->mapping_rules,
               ids != nullptr ? &ids->rules : nullptr, false, out, deletes);
    for (auto& d : deletes) {
        if (options_.prune || !d.unmanaged) {
            out.push_back(std::move(d));
        }
    }
    return out;
}

std::vector<Operation> Differ::backend_deletes(const std::string& name,
                                               const config::Backend& desired,
                                               const config::Backend& actual,
                                               const BackendIds& ids) const {
    std::vector<Operation> out;
    const Owner owner = backend_owner(name);
    delete_metrics(owner, desired.methods, actual.methods, true, &ids.metrics, out);
    delete_metrics(owner, desired.metrics, actual.metrics, false, &ids.metrics, out);
    return out;
}

namespace {

std::string policies_json(const std::vector<config::Policy>& chain) {
    std::string out = "[";
    for (std::size_t i = 0; i < chain.size(); ++i) {
        const auto& p = chain[i];
        const auto quote = [](const std::string& s) {
            std::string q = "\"";
            for (const char ch : s) {
                if (ch == '"' || ch == '\\') {
                    q.push_back('\\');
                }
                q.push_back(ch);
            }
            return q + "\"";
        };
        out += (i == 0 ? "" : ",") + std::string("{\"name\":") + quote(p.name) +
               ",\"version\":" + quote(p.version) + ",\"enabled\":" + b(p.enabled) +
               ",\"configuration\":" + (p.configuration.empty() ? "{}" : p.configuration) + "}";
    }
    return out + "]";
}

std::string describe_chain(const std::vector<config::Policy>& chain) {
    std::string out;
    for (const auto& p : chain) {
        out += (out.empty() ? "" : ", ") + p.name + (p.enabled ? "" : " (disabled)");
    }
    return out;
}

}  // namespace

std::vector<Operation> Differ::product(const std::string& name,
                                       const config::Product& desired,
                                       const config::Product* actual,
                                       const ProductIds* ids,
                                       const ProxyConfigStatus* configs,
                                       const std::vector<std::string>& changed_backends,
                                       bool created_in_this_run) const {
    std::vector<Operation> out;
    std::vector<Operation> deletes;
    config::Product fresh;
    const bool creating = actual == nullptr;
    if (creating) {
        Operation o = op(Action::kCreate, Kind::kProduct, name, "", name);
        field(o, "system_name", name);
        field(o, "name", desired.name);
        field(o, "description", desired.description);
        if (desired.deployment_option) {
            field(o, "deployment_option", *desired.deployment_option);
        }
        if (desired.backend_version) {
            field(o, "backend_version", *desired.backend_version);
        }
        o.form.emplace_back("annotations[managed_by]", "tandem");
        out.push_back(std::move(o));
        fresh = fresh_product(desired);
        if (desired.deployment_option) {
            fresh.deployment_option = desired.deployment_option;
        }
        if (desired.backend_version) {
            fresh.backend_version = desired.backend_version;
        }
        actual = &fresh;
        ids = nullptr;
        configs = nullptr;
    } else {
        Operation o = op(Action::kUpdate, Kind::kProduct, name, "", name);
        o.id = ids != nullptr ? ids->id : 0;
        if (desired.name != actual->name) {
            field(o, "name", desired.name, actual->name);
        }
        if (desired.description != actual->description) {
            field(o, "description", desired.description, actual->description);
        }
        if (desired.deployment_option && desired.deployment_option != actual->deployment_option) {
            field(o, "deployment_option", *desired.deployment_option,
                  actual->deployment_option.value_or(""));
        }
        if (desired.backend_version && desired.backend_version != actual->backend_version) {
            field(o, "backend_version", *desired.backend_version,
                  actual->backend_version.value_or(""));
        }
        if (!o.changes.empty()) {
            out.push_back(std::move(o));
        }
    }
    // backend usages
    for (const auto& [backend, usage] : desired.backend_usages) {
        const auto it = actual->backend_usages.find(backend);
        if (it == actual->backend_usages.end()) {
            Operation o = op(Action::kCreate, Kind::kBackendUsage, name, backend, backend);
            field(o, "path", usage.path);
            out.push_back(std::move(o));
        } else if (it->second.path != usage.path) {
            // a PUT of the path: deleting the usage would delete its limits
            Operation o = op(Action::kUpdate, Kind::kBackendUsage, name, backend, backend);
            o.id = ids != nullptr ? ids->usages.at(backend) : 0;
            field(o, "path", usage.path, it->second.path);
            out.push_back(std::move(o));
        }
    }
    for (const auto& [backend, usage] : actual->backend_usages) {
        if (!desired.backend_usages.contains(backend)) {
            Operation o = op(Action::kDelete, Kind::kBackendUsage, name, backend, backend);
            o.unmanaged = true;
            o.id = ids != nullptr ? ids->usages.at(backend) : 0;
            o.changes.push_back({"path", "", usage.path});
            deletes.push_back(std::move(o));
        }
    }
    // metrics, methods, mapping rules
    const Owner owner = product_owner(name);
    diff_metrics(owner, desired.metrics, actual->metrics, false, out);
    diff_metrics(owner, desired.methods, actual->methods, true, out);
    diff_rules(owner, desired.mapping_rules, actual->mapping_rules,
               ids != nullptr ? &ids->rules : nullptr, creating || created_in_this_run, out,
               deletes);
    // application plans, then limits and pricing rules
    std::vector<Operation> limits;
    std::vector<Operation> pricing;
    for (const auto& [plan_name, d] : desired.plans) {
        const auto it = actual->plans.find(plan_name);
        const config::Plan* a = it == actual->plans.end() ? nullptr : &it->second;
        Operation o =
            op(a == nullptr ? Action::kCreate : Action::kUpdate, Kind::kPlan, name, "", plan_name);
        o.plan = plan_name;
        if (a == nullptr) {
            field(o, "system_name", plan_name);
        }
        o.id = a != nullptr && ids != nullptr ? ids->plans.at(plan_name) : 0;
        const auto check = [&](const std::string& f, const std::string& want,
                               const std::optional<std::string>& have) {
            if (a == nullptr || have.value_or("") != want) {
                field(o, f, want, a == nullptr ? "" : have.value_or(""));
            }
        };
        check("name", d.name, a != nullptr ? std::optional(a->name) : std::nullopt);
        if (d.approval_required) {
            check("approval_required", b(*d.approval_required),
                  a != nullptr && a->approval_required ? std::optional(b(*a->approval_required))
                                                       : std::nullopt);
        }
        if (d.trial_period_days) {
            check("trial_period_days", std::to_string(*d.trial_period_days),
                  a != nullptr && a->trial_period_days
                      ? std::optional(std::to_string(*a->trial_period_days))
                      : std::nullopt);
        }
        if (d.setup_fee) {
            check("setup_fee", *d.setup_fee, a != nullptr ? a->setup_fee : std::nullopt);
        }
        if (d.cost_per_month) {
            check("cost_per_month", *d.cost_per_month,
                  a != nullptr ? a->cost_per_month : std::nullopt);
        }
        if (a == nullptr ? d.published : d.published != a->published) {
            o.changes.push_back({"published", b(d.published), a == nullptr ? "" : b(a->published)});
            o.form.emplace_back("state_event", d.published ? "publish" : "hide");
        }
        if (!o.changes.empty()) {
            out.push_back(std::move(o));
        }
        diff_plan_contents(name, plan_name, d, a, ids, limits, pricing, deletes);
    }
    for (const auto& [plan_name, a] : actual->plans) {
        if (desired.plans.contains(plan_name)) {
            continue;
        }
        Operation o = op(Action::kDelete, Kind::kPlan, name, "", plan_name);
        o.plan = plan_name;
        o.unmanaged = true;
        o.id = ids != nullptr ? ids->plans.at(plan_name) : 0;
        o.changes.push_back({"name", "", a.name});
        deletes.push_back(std::move(o));
    }
    out.insert(out.end(), limits.begin(), limits.end());
    out.insert(out.end(), pricing.begin(), pricing.end());
    // policy chain: the whole chain, in order
    if (desired.policies != actual->policies) {
        Operation o = op(Action::kUpdate, Kind::kPolicies, name, "", "policies");
        o.changes.push_back(
            {"chain", describe_chain(desired.policies), describe_chain(actual->policies)});
        for (std::size_t i = 0; i < std::max(desired.policies.size(), actual->policies.size());
             ++i) {
            const bool has_d = i < desired.policies.size();
            const bool has_a = i < actual->policies.size();
            if (has_d && has_a && desired.policies[i] == actual->policies[i]) {
                continue;
            }
            const auto show = [](const config::Policy& p) {
                return p.name + "@" + p.version + (p.enabled ? "" : " disabled") + " " +
                       p.configuration;
            };
            o.changes.push_back({"policies[" + std::to_string(i) + "]",
                                 has_d ? show(desired.policies[i]) : "",
                                 has_a ? show(actual->policies[i]) : ""});
        }
        o.form.emplace_back("policies_config", policies_json(desired.policies));
        out.push_back(std::move(o));
    }
    // proxy settings: only what the desired state sets
    {
        Operation o = op(Action::kUpdate, Kind::kProxy, name, "", "proxy");
        for (const auto& [f, value] : desired.proxy.fields) {
            const auto it = actual->proxy.fields.find(f);
            const std::string have = it == actual->proxy.fields.end() ? "" : it->second;
            if (have != value) {
                field(o, f, value, have);
            }
        }
        if (!o.changes.empty()) {
            out.push_back(std::move(o));
        }
    }
    // deletions that do not depend on the gateway config
    std::vector<Operation> metric_deletes;
    for (auto& d : deletes) {
        if (options_.prune || !d.unmanaged) {
            out.push_back(std::move(d));
        }
    }
    delete_metrics(owner, desired.methods, actual->methods, true,
                   ids != nullptr ? &ids->metrics : nullptr, metric_deletes);
    delete_metrics(owner, desired.metrics, actual->metrics, false,
                   ids != nullptr ? &ids->metrics : nullptr, metric_deletes);
    // deploy and promote when the gateway configuration changes or production is behind
    const bool config_changes =
        creating || !changed_backends.empty() ||
        std::any_of(out.begin(), out.end(),
                    [](const Operation& o) { return affects_proxy_config(o); }) ||
        (options_.prune && !metric_deletes.empty());
    const bool unpromoted = configs != nullptr && configs->unpromoted();
    if (config_changes || unpromoted) {
        Operation deploy = op(Action::kDeploy, Kind::kProxyConfig, name, "", "staging");
        out.push_back(std::move(deploy));
        Operation promote = op(Action::kPromote, Kind::kProxyConfig, name, "", "production");
        if (unpromoted) {
            promote.changes.push_back(
                {"production_version", "v" + std::to_string(*configs->staging),
                 configs->production ? "v" + std::to_string(*configs->production) : "none"});
        }
        out.push_back(std::move(promote));
    }
    for (auto& d : metric_deletes) {
        if (options_.prune) {
            out.push_back(std::move(d));
        }
    }
    return out;
}

std::vector<Operation> Differ::unmanaged(const config::DesiredState& desired,
                                         const InstanceState& actual) const {
    std::vector<Operation> out;
    for (const auto& [name, p] : actual.model.products) {
        if (!desired.products.contains(name)) {
            Operation o = op(Action::kDelete, Kind::kProduct, name, "", name);
            o.unmanaged = true;
            o.id = actual.products.at(name).id;
            o.changes.push_back({"name", "", p.name});
            out.push_back(std::move(o));
        }
    }
    for (const auto& [key, a] : actual.model.accounts) {
        if (!desired.accounts.contains(key) && !desired.accounts.empty()) {
            Operation o = op(Action::kDelete, Kind::kAccount, "", "", key);
            o.unmanaged = true;
            o.account = key;
            o.id = actual.accounts.at(key).id;
            o.changes.push_back({"org_name", "", a.org_name});
            out.insert(out.begin(), std::move(o));  // accounts go before the products they use
        }
    }
    for (const auto& [name, bk] : actual.model.backends) {
        if (!desired.backends.contains(name)) {
            Operation o = op(Action::kDelete, Kind::kBackend, "", name, name);
            o.unmanaged = true;
            o.id = actual.backends.at(name).id;
            o.changes.push_back({"name", "", bk.name});
            out.push_back(std::move(o));
        }
    }
    return out;
}

std::vector<Operation> Differ::account(const std::string& key,
                                       const config::DesiredState& desired,
                                       const InstanceState& actual,
                                       bool created_in_this_run) const {
    std::vector<Operation> out;
    const config::Account& want = desired.accounts.at(key);
    const auto have_it = actual.model.accounts.find(key);
    const config::Account* have =
        have_it == actual.model.accounts.end() ? nullptr : &have_it->second;
    const auto make = [&](Action a, Kind k, std::string name) {
        Operation o = op(a, k, "", "", std::move(name));
        o.account = key;
        return o;
    };
    if (have == nullptr) {
        // signup express creates the account with its admin user
        Operation o = make(Action::kCreate, Kind::kAccount, key);
        const auto& admin = want.users.at(key);
        field(o, "org_name", want.org_name);
        field(o, "username", key);
        field(o, "email", admin.email);
        o.form.emplace_back("password", admin.password);  // sent, never shown
        out.push_back(std::move(o));
        return out;  // the rest after reading back what signup made
    }
    Operation acc = make(Action::kUpdate, Kind::kAccount, key);
    acc.id = actual.accounts.at(key).id;
    if (want.org_name != have->org_name) {
        field(acc, "org_name", want.org_name, have->org_name);
    }
    for (const auto& [f, mine, theirs] :
         {std::tuple{"monthly_billing_enabled", want.monthly_billing_enabled,
                     have->monthly_billing_enabled},
          std::tuple{"monthly_charging_enabled", want.monthly_charging_enabled,
                     have->monthly_charging_enabled}}) {
        if (mine && mine != theirs) {
            field(acc, f, b(*mine), theirs ? b(*theirs) : "");
        }
    }
    if (!acc.changes.empty()) {
        out.push_back(std::move(acc));
    }
    const AccountIds& ids = actual.accounts.at(key);
    for (const auto& [username, u] : want.users) {
        const auto it = have->users.find(username);
        Operation o = make(it == have->users.end() ? Action::kCreate : Action::kUpdate, Kind::kUser,
                           username);
        if (it == have->users.end()) {
            field(o, "username", username);
            field(o, "email", u.email);
            o.form.emplace_back("password", u.password);
            o.changes.push_back({"role", u.role, ""});
            o.events.push_back("activate");  // users are created pending
            if (u.role == "admin") {
                o.events.push_back("admin");
            }
            if (u.suspended) {
                o.events.push_back("suspend");
            }
            out.push_back(std::move(o));
            continue;
        }
        o.id = ids.users.at(username);
        if (u.email != it->second.email) {
            field(o, "email", u.email, it->second.email);
        }
        if (u.role != it->second.role) {
            o.changes.push_back({"role", u.role, it->second.role});
            o.events.push_back(u.role);
        }
        if (u.suspended != it->second.suspended) {
            o.changes.push_back({"suspended", b(u.suspended), b(it->second.suspended)});
            o.events.push_back(u.suspended ? "suspend" : "unsuspend");
        }
        if (!o.changes.empty()) {
            out.push_back(std::move(o));
        }
    }
    for (const auto& [username, u] : have->users) {
        if (!want.users.contains(username) && options_.prune) {
            Operation o = make(Action::kDelete, Kind::kUser, username);
            o.unmanaged = true;
            o.id = ids.users.at(username);
            out.push_back(std::move(o));
        }
    }
    // applications of this account, matched by product and credentials
    const auto create_app = [&](const config::Application& a) {
        Operation o = make(Action::kCreate, Kind::kApplication, a.name);
        o.product = a.product;
        o.plan = a.plan;
        field(o, "name", a.name);
        field(o, "description", a.description);
        o.changes.push_back({"plan", a.plan, ""});
        if (!a.user_key.empty()) {
            o.form.emplace_back("user_key", a.user_key);
        } else {
            o.form.emplace_back("application_id", a.application_id);
            for (const auto& k : a.application_keys) {
                o.form.emplace_back("application_key[]", k);
            }
        }
        if (a.suspended) {
            o.events.push_back("suspend");
        }
        return o;
    };
    for (const auto& [app_key, a] : desired.applications) {
        if (a.account != key) {
            continue;
        }
        const auto it = actual.model.applications.find(app_key);
        if (it == actual.model.applications.end()) {
            out.push_back(create_app(a));
            continue;
        }
        const config::Application& h = it->second;
        const ApplicationIds& app_ids = actual.applications.at(app_key);
        if (h.account != key) {
            // credentials are unique per tenant: the other account's application must go first
            Operation del = make(Action::kDelete, Kind::kApplication, h.name);
            del.product = h.product;
            del.id = app_ids.id;
            del.form.emplace_back("_account_id", std::to_string(app_ids.account));
            del.changes.push_back({"account", key, h.account});
            out.push_back(std::move(del));
            out.push_back(create_app(a));
            continue;
        }
        Operation o = make(Action::kUpdate, Kind::kApplication, a.name);
        o.product = a.product;
        o.id = app_ids.id;
        if (a.name != h.name) {
            field(o, "name", a.name, h.name);
        }
        if (a.description != h.description) {
            field(o, "description", a.description, h.description);
        }
        if (a.plan != h.plan) {
            o.changes.push_back({"plan", a.plan, h.plan});
            o.plan = a.plan;
            o.events.push_back("change_plan");
        }
        if (a.suspended != h.suspended) {
            o.changes.push_back({"suspended", b(a.suspended), b(h.suspended)});
            o.events.push_back(a.suspended ? "suspend" : "resume");
        }
        if (!o.changes.empty()) {
            out.push_back(std::move(o));
        }
        const auto key_op = [&](Action action, const std::string& k) {
            Operation ko = make(action, Kind::kApplicationKey, a.name);
            ko.product = a.product;
            ko.id = app_ids.id;
            ko.form.emplace_back("key", k);
            ko.unmanaged = action == Action::kDelete;
            return ko;
        };
        const auto has = [](const std::vector<std::string>& keys, const std::string& k) {
            return std::find(keys.begin(), keys.end(), k) != keys.end();
        };
        for (const auto& k : a.application_keys) {
            if (!has(h.application_keys, k)) {
                out.push_back(key_op(Action::kCreate, k));
                out.back().changes.push_back({"key", "<redacted>", ""});
            }
        }
        for (const auto& k : h.application_keys) {
            if (!has(a.application_keys, k) && options_.prune) {
                out.push_back(key_op(Action::kDelete, k));
            }
        }
    }
    for (const auto& [app_key, h] : actual.model.applications) {
        if (h.account != key || desired.applications.contains(app_key)) {
            continue;
        }
        Operation o = make(Action::kDelete, Kind::kApplication, h.name);
        o.product = h.product;
        o.id = actual.applications.at(app_key).id;
        // the applications signup express makes with random keys go; others are unmanaged
        o.unmanaged = !created_in_this_run;
        if (created_in_this_run || options_.prune) {
            out.push_back(std::move(o));
        }
    }
    return out;
}

std::vector<Operation> Differ::diff(const config::DesiredState& desired,
                                    const InstanceState& actual) const {
    std::vector<Operation> out;
    std::set<std::string> changed_backends;
    for (const auto& [name, d] : desired.backends) {
        const auto it = actual.model.backends.find(name);
        const auto ids = actual.backends.find(name);
        auto ops = backend(name, d, it == actual.model.backends.end() ? nullptr : &it->second,
                           ids == actual.backends.end() ? nullptr : &ids->second);
        if (!ops.empty()) {
            changed_backends.insert(name);
        }
        out.insert(out.end(), ops.begin(), ops.end());
    }
    for (const auto& [name, d] : desired.products) {
        const auto it = actual.model.products.find(name);
        const auto ids = actual.products.find(name);
        const auto cfg = actual.configs.find(name);
        std::vector<std::string> used_changed;
        for (const auto& [backend, usage] : d.backend_usages) {
            if (changed_backends.contains(backend)) {
                used_changed.push_back(backend);
            }
        }
        auto ops = product(name, d, it == actual.model.products.end() ? nullptr : &it->second,
                           ids == actual.products.end() ? nullptr : &ids->second,
                           cfg == actual.configs.end() ? nullptr : &cfg->second, used_changed);
        out.insert(out.end(), ops.begin(), ops.end());
    }
    for (const auto& [key, a] : desired.accounts) {
        auto ops = account(key, desired, actual);
        out.insert(out.end(), ops.begin(), ops.end());
    }
    if (options_.prune) {
        for (const auto& [name, d] : desired.backends) {
            const auto it = actual.model.backends.find(name);
            if (it != actual.model.backends.end()) {
                auto ops = backend_deletes(name, d, it->second, actual.backends.at(name));
                out.insert(out.end(), ops.begin(), ops.end());
            }
        }
    }
    auto rest = unmanaged(desired, actual);
    for (auto& o : rest) {
        if (options_.prune) {
            out.push_back(std::move(o));
        }
    }
    return out;
}

}  // namespace syncer
