#pragma once

#include <cstdint>
#include <map>
#include <regex>
#include <string>
#include <tuple>
#include <vector>

#include "ratelimit/period.hpp"
#include "sim/clock.hpp"
#include "sim/http.hpp"
#include "sim/options.hpp"
#include "sim/store.hpp"

namespace sim {

// What APIcast and the 3scale backend do to a request: find the product by Host among the
// promoted production configs, authenticate the application, match mapping rules to metric
// increments, and enforce the application's plan limits on calendar-aligned UTC windows.
class Gateway {
public:
    enum class Verdict { kAuthorized, kUnknownHost, kAuthMissing, kNoMatch, kAuthFailed, kLimited };

    struct Outcome {
        Verdict verdict = Verdict::kUnknownHost;
        Response response;
    };

    Gateway(Store& store, SimClock& clock, const SimOptions& options);

    Outcome handle(const Request& request);

    // Current counters per application, metric and period (the current windows only).
    [[nodiscard]] Json usage_json() const;
    [[nodiscard]] Json counters_json() const;
    void reset_counters();

private:
    struct CompiledRule {
        std::string method;
        std::regex path;
        std::vector<std::pair<std::string, std::string>> query;  // value "{x}" = any value
        std::string metric;
        std::int64_t delta = 1;
        bool last = false;
    };
    struct Window {
        std::int64_t start = 0;
        std::int64_t value = 0;
    };
    using UsageKey = std::tuple<Id, Id, ratelimit::Period>;  // application, metric, period

    const std::vector<CompiledRule>& rules_for(const Json& config);
    std::map<Id, std::int64_t> expand_usage(Id service_id,
                                            const std::map<std::string, std::int64_t>& usage);

    Store& store_;
    SimClock& clock_;
    const SimOptions& options_;
    std::map<Id, std::vector<CompiledRule>> compiled_;  // by proxy config id (immutable)
    std::map<UsageKey, Window> usage_;
    std::map<std::string, std::uint64_t> verdicts_;
};

}  // namespace sim
