// Phase B of the differ: one product, its backend usages, metrics, methods, rules, application
// plans (limits, pricing rules), policy chain and proxy settings, then deploy and promote.
#include <algorithm>
#include <map>
#include <set>

#include "owner_diff.hpp"
#include "sync/differ.hpp"

namespace syncer {

namespace {

std::string opt_str(const std::optional<std::int64_t>& v) {
    return v ? std::to_string(*v) : std::string("∞");
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
        o.changes.push_back({"cost_per_unit", "", a->cost_per_unit});
        deletes.push_back(std::move(o));
    }
}

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
                                       const std::vector<std::string>& changed_backends) const {
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
               ids != nullptr ? &ids->rules : nullptr, out, deletes);
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
            // a configuration from a Secret is never shown, on either side
            const bool secret = has_d && desired.policies[i].secret_configuration;
            const auto show = [secret](const config::Policy& p) {
                return p.name + "@" + p.version + (p.enabled ? "" : " disabled") + " " +
                       (secret ? std::string("<redacted>") : p.configuration);
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
    // OIDC flows: only what the CR sets
    {
        Operation o = op(Action::kUpdate, Kind::kOidc, name, "", "oidc");
        for (const auto& [flow, enabled] : desired.oidc_flows) {
            const auto it = actual->oidc_flows.find(flow);
            if (it == actual->oidc_flows.end() || it->second != enabled) {
                field(o, flow, b(enabled), it == actual->oidc_flows.end() ? "" : b(it->second));
            }
        }
        if (!o.changes.empty()) {
            out.push_back(std::move(o));
        }
    }
    // what the CR does not describe goes (the CR owns its product's children): first what does
    // not depend on the gateway configuration, metrics and methods after a promoted config no
    // longer uses them (3scale refuses otherwise)
    std::vector<Operation> metric_deletes;
    for (auto& d : deletes) {
        out.push_back(std::move(d));
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
        !metric_deletes.empty();
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
        out.push_back(std::move(d));
    }
    return out;
}

}  // namespace syncer
