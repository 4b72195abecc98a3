#include "sim/faults.hpp"

namespace sim {

namespace {

Json plan_json(const FaultPlan& p) {
    return {{"latency_ms", p.latency_ms},           {"error_rate", p.error_rate},
            {"ambiguous_rate", p.ambiguous_rate},   {"error_status", p.error_status},
            {"ambiguous_write", p.ambiguous_write}, {"down_after", p.down_after},
            {"page_error_from", p.page_error_from}};
}

std::expected<void, std::string> merge_plan(FaultPlan& plan,
                                            const Json& doc,
                                            const std::string& where) {
    if (!doc.is_object()) {
        return std::unexpected(where + " must be an object");
    }
    for (const auto& [key, value] : doc.items()) {
        const std::string field = where + "." + key;
        if (key == "latency_ms") {
            if (!value.is_number_integer() || value.get<std::int64_t>() < 0 ||
                value.get<std::int64_t>() > 600000) {
                return std::unexpected(field + " must be an integer in 0..600000");
            }
            plan.latency_ms = value.get<std::int64_t>();
        } else if (key == "error_rate" || key == "ambiguous_rate") {
            if (!value.is_number() || value.get<double>() < 0.0 || value.get<double>() > 1.0) {
                return std::unexpected(field + " must be a number in 0..1");
            }
            (key == "error_rate" ? plan.error_rate : plan.ambiguous_rate) = value.get<double>();
        } else if (key == "error_status") {
            if (!value.is_number_integer() || value.get<int>() < 500 || value.get<int>() > 599) {
                return std::unexpected(field + " must be an integer in 500..599");
            }
            plan.error_status = value.get<unsigned>();
        } else if (key == "page_error_from") {
            if (!value.is_number_integer() || value.get<std::int64_t>() < 0) {
                return std::unexpected(field + " must be a non-negative integer (0: off)");
            }
            plan.page_error_from = value.get<std::int64_t>();
        } else if (key == "ambiguous_write") {
            if (!value.is_number_integer() || value.get<std::int64_t>() < 0) {
                return std::unexpected(field + " must be a non-negative integer (0: none)");
            }
            plan.ambiguous_write = value.get<std::int64_t>();
        } else if (key == "down_after") {
            if (!value.is_boolean()) {
                return std::unexpected(field + " must be true or false");
            }
            plan.down_after = value.get<bool>();
        } else {
            return std::unexpected("unknown field " + field);
        }
    }
    return {};
}

}  // namespace

Json FaultSettings::to_json() const {
    return {{"seed", seed}, {"admin", plan_json(admin)}, {"gateway", plan_json(gateway)}};
}

std::expected<void, std::string> FaultSettings::merge(const Json& doc) {
    if (!doc.is_object()) {
        return std::unexpected("fault settings must be a JSON object");
    }
    FaultSettings next = *this;
    for (const auto& [key, value] : doc.items()) {
        if (key == "seed") {
            if (!value.is_number_unsigned()) {
                return std::unexpected("seed must be a non-negative integer");
            }
            next.seed = value.get<std::uint64_t>();
        } else if (key == "admin" || key == "gateway") {
            auto r = merge_plan(key == "admin" ? next.admin : next.gateway, value, key);
            if (!r) {
                return r;
            }
        } else {
            return std::unexpected("unknown field " + key);
        }
    }
    *this = next;
    return {};
}

FaultInjector::FaultInjector(FaultSettings settings) : settings_(settings), rng_(settings.seed) {}

void FaultInjector::reset(FaultSettings settings) {
    settings_ = settings;
    rng_.seed(settings.seed);
    writes_[0] = writes_[1] = 0;
    down_[0] = down_[1] = false;
}

FaultInjector::Decision FaultInjector::decide(bool gateway, bool write) {
    const FaultPlan& plan = gateway ? settings_.gateway : settings_.admin;
    // Always draw both numbers so that the sequence does not depend on the outcomes.
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    const double fail = uniform(rng_);
    const double ambiguous = uniform(rng_);
    Decision d;
    d.delay = std::chrono::milliseconds(plan.latency_ms);
    const int side = gateway ? 1 : 0;
    if (down_[side]) {
        d.action = Action::kFailBefore;
        d.status = plan.error_status;
        return d;
    }
    if (write && plan.ambiguous_write > 0 && ++writes_[side] == plan.ambiguous_write) {
        d.action = Action::kAmbiguous;
        d.status = 502;
        down_[side] = plan.down_after;
        return d;
    }
    if (fail < plan.error_rate) {
        d.action = Action::kFailBefore;
        d.status = plan.error_status;
    } else if (write && ambiguous < plan.ambiguous_rate) {
        d.action = Action::kAmbiguous;
        d.status = 502;
    }
    return d;
}

}  // namespace sim
