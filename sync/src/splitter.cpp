#include "sync/splitter.hpp"

#include <algorithm>
#include <map>

namespace syncer {

namespace {

ratelimit::SplitPolicy policy_for(const config::Fleet& fleet,
                                  const std::string& name,
                                  const config::Product& product) {
    if (const auto it = fleet.product_split_policies.find(name);
        it != fleet.product_split_policies.end()) {
        return it->second;
    }
    return product.split_policy.value_or(fleet.split_policy);
}

std::string join_values(const std::vector<std::int64_t>& values) {
    std::string out;
    for (const auto v : values) {
        out += (out.empty() ? "" : "/") + std::to_string(v);
    }
    return out;
}

// The parent of a method is hits of the same owner (the product's, or the backend's).
bool is_method(const config::Fleet& fleet,
               const config::Product& product,
               const config::MetricRef& ref) {
    if (ref.backend.empty()) {
        return product.methods.contains(ref.system_name);
    }
    const auto b = fleet.desired.backends.find(ref.backend);
    return b != fleet.desired.backends.end() && b->second.methods.contains(ref.system_name);
}

}  // namespace

FleetSplit split_fleet(const config::Fleet& fleet, const std::vector<std::string>& without) {
    FleetSplit out;
    for (const auto& instance : fleet.instances) {
        if (std::find(without.begin(), without.end(), instance.name) == without.end()) {
            out.instances.push_back(instance.name);
            out.weights.push_back(instance.weight);
        }
    }
    const std::size_t n = out.instances.size();
    out.desired.assign(n, fleet.desired);
    for (const auto& [product_name, product] : fleet.desired.products) {
        const auto policy = policy_for(fleet, product_name, product);
        for (const auto& [plan_name, plan] : product.plans) {
            std::map<std::pair<config::MetricRef, ratelimit::Period>, std::vector<std::int64_t>>
                per_instance;
            for (std::size_t li = 0; li < plan.limits.size(); ++li) {
                const config::Limit& limit = plan.limits[li];
                const auto result =
                    ratelimit::split(limit.value, out.weights, policy, limit.period);
                SplitRow row{product_name, plan_name, limit.metric, limit.period, limit.value,
                             policy,       {},        {},           false};
                for (std::size_t k = 0; k < n; ++k) {
                    row.values.push_back(result.shares[k].value);
                    row.rules.push_back(result.shares[k].rule);
                    config::Limit& mine =
                        out.desired[k].products.at(product_name).plans.at(plan_name).limits[li];
                    mine.value = result.shares[k].value;
                    mine.global_value = limit.value;
                    mine.weight = out.weights[k];
                    mine.split_rule = result.shares[k].rule;
                }
                if (result.zero_from_positive && policy == ratelimit::SplitPolicy::kError) {
                    std::string zeros;
                    for (std::size_t k = 0; k < n; ++k) {
                        if (row.values[k] == 0) {
                            zeros += (zeros.empty() ? "" : ", ") + out.instances[k];
                        }
                    }
                    out.problems.push_back(
                        {config::Diagnostic::Severity::kError, limit.source,
                         "spec.applicationPlans." + plan_name + ".limits[" + std::to_string(li) +
                             "].value",
                         "a global " + std::to_string(limit.value) + "/" +
                             std::string(ratelimit::to_string(limit.period)) + " on '" +
                             limit.metric.to_string() + "' split over " + std::to_string(n) +
                             " instances is " + join_values(row.values) + ": 0 disables it on " +
                             zeros + ". Raise the limit, or choose a split policy for product '" +
                             product_name +
                             "' (fleet split.products / split.policy, or the CR annotation "
                             "tandem.3scale.net/split-policy): min1, coarsen or none"});
                }
                per_instance[{limit.metric, limit.period}] = row.values;
                out.rows.push_back(std::move(row));
                if (result.coarser_period) {
                    const bool exists = std::any_of(
                        plan.limits.begin(), plan.limits.end(), [&](const config::Limit& l) {
                            return l.metric == limit.metric && l.period == *result.coarser_period;
                        });
                    SplitRow added{product_name,           plan_name, limit.metric,
                                   *result.coarser_period, 0,         policy,
                                   result.coarser_values,  {},        true};
                    std::int64_t factor_total = 0;
                    for (const auto v : result.coarser_values) {
                        factor_total += v;
                    }
                    added.global = factor_total;
                    if (exists) {
                        out.problems.push_back(
                            {config::Diagnostic::Severity::kNotice, limit.source,
                             "spec.applicationPlans." + plan_name + ".limits[" +
                                 std::to_string(li) + "]",
                             "coarsen: a " +
                                 std::string(ratelimit::to_string(*result.coarser_period)) +
                                 " limit on '" + limit.metric.to_string() +
                                 "' already exists; the minute values were only raised to 1"});
                        continue;
                    }
                    for (std::size_t k = 0; k < n; ++k) {
                        config::Limit extra;
                        extra.metric = limit.metric;
                        extra.period = *result.coarser_period;
                        extra.value = result.coarser_values[k];
                        extra.source = limit.source;
                        extra.global_value = factor_total;
                        extra.weight = out.weights[k];
                        extra.split_rule =
                            "coarsen: " + std::to_string(limit.value) + "/" +
                            std::string(ratelimit::to_string(limit.period)) + " as " +
                            std::to_string(factor_total) + "/" +
                            std::string(ratelimit::to_string(*result.coarser_period)) +
                            ", split exactly";
                        added.rules.push_back(extra.split_rule);
                        out.desired[k]
                            .products.at(product_name)
                            .plans.at(plan_name)
                            .limits.push_back(extra);
                    }
                    out.rows.push_back(std::move(added));
                }
            }
            // a method limit <= its parent's globally must stay so on every instance
            for (const auto& limit : plan.limits) {
                if (!is_method(fleet, product, limit.metric)) {
                    continue;
                }
                const auto parent =
                    per_instance.find({{"hits", limit.metric.backend}, limit.period});
                const auto child = per_instance.find({limit.metric, limit.period});
                if (parent == per_instance.end() || child == per_instance.end()) {
                    continue;
                }
                const auto parent_limit = std::find_if(
                    plan.limits.begin(), plan.limits.end(), [&](const config::Limit& l) {
                        return l.metric == config::MetricRef{"hits", limit.metric.backend} &&
                               l.period == limit.period;
                    });
                if (parent_limit == plan.limits.end() || limit.value > parent_limit->value) {
                    continue;
                }
                for (std::size_t k = 0; k < n; ++k) {
                    if (child->second[k] > parent->second[k]) {
                        out.problems.push_back(
                            {config::Diagnostic::Severity::kNotice, limit.source,
                             "spec.applicationPlans." + plan_name,
                             "on " + out.instances[k] + " the split gives '" +
                                 limit.metric.to_string() + "' " +
                                 std::to_string(child->second[k]) + "/" +
                                 std::string(ratelimit::to_string(limit.period)) +
                                 ", above its parent hits' " + std::to_string(parent->second[k]) +
                                 " (globally " + std::to_string(limit.value) +
                                 " <= " + std::to_string(parent_limit->value) +
                                 "): hits caps it there, so the method gets less than its share"});
                    }
                }
            }
        }
    }
    return out;
}

}  // namespace syncer
