#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
#include <random>
#include <string>

#include "sim/http.hpp"

namespace sim {

struct FaultPlan {
    std::int64_t latency_ms = 0;  // added before answering
    double error_rate = 0.0;      // answered error_status before doing anything
    double ambiguous_rate = 0.0;  // writes: performed, then answered 502
    unsigned error_status = 503;
    // A fault at one step: the n-th write from now (1-based; 0 = none) is performed, then
    // answered 502; with down_after, every later request answers error_status (an instance that
    // went away in the middle of a run).
    std::int64_t ambiguous_write = 0;
    bool down_after = false;
    // Admin lists: every GET asking for page N or later answers error_status (a source that
    // fails in the middle of a paginated read); 0 = off.
    std::int64_t page_error_from = 0;
};

struct FaultSettings {
    std::uint64_t seed = 1;
    FaultPlan admin;
    FaultPlan gateway;

    [[nodiscard]] Json to_json() const;
    // Merges a (partial) JSON document into these settings; errors name the field.
    std::expected<void, std::string> merge(const Json& doc);
};

// Deterministic from the seed: the n-th request always gets the same decision.
class FaultInjector {
public:
    enum class Action { kNone, kFailBefore, kAmbiguous };
    struct Decision {
        std::chrono::milliseconds delay{0};
        Action action = Action::kNone;
        unsigned status = 0;
    };

    explicit FaultInjector(FaultSettings settings = {});
    Decision decide(bool gateway, bool write);
    [[nodiscard]] const FaultSettings& settings() const { return settings_; }
    void reset(FaultSettings settings);

private:
    FaultSettings settings_;
    std::mt19937_64 rng_;
    std::int64_t writes_[2] = {0, 0};  // admin, gateway: since the settings were applied
    bool down_[2] = {false, false};
};

}  // namespace sim
