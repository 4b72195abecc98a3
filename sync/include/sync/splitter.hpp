#pragma once

#include <string>
#include <vector>

#include "config/fleet.hpp"
#include "ratelimit/split.hpp"

namespace syncer {

// One global limit and what each participating instance enforces.
struct SplitRow {
    std::string product;
    std::string plan;
    config::MetricRef metric;
    ratelimit::Period period = ratelimit::Period::kMinute;
    std::int64_t global = 0;
    ratelimit::SplitPolicy policy = ratelimit::SplitPolicy::kError;
    std::vector<std::int64_t> values;  // per instance, in fleet order
    std::vector<std::string> rules;
    bool added_by_coarsen = false;  // a coarser-period limit tandem adds (policy coarsen)
};

struct FleetSplit {
    std::vector<std::string> instances;  // participating instances, in fleet order
    std::vector<std::int64_t> weights;
    std::vector<config::DesiredState> desired;  // per participating instance
    std::vector<SplitRow> rows;
    config::Diagnostics problems;  // errors: a positive limit split to 0; notices: hierarchy
};

// Limit values in the CRs are global: each instance gets its share (largest remainder over the
// weights, ties by fleet order), under the policy set for the product (split.products, then the
// CR's tandem.3scale.net/split-policy annotation, then split.policy). Instances in `without` are
// left out and the limits re-split over the others.
FleetSplit split_fleet(const config::Fleet& fleet, const std::vector<std::string>& without = {});

}  // namespace syncer
