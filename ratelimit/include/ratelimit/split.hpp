#pragma once

// Splitting one global 3scale limit across N independent instances, each enforcing its own share
// (the rules and their policies: README, "Global limits, split across the instances").

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ratelimit/period.hpp"

namespace ratelimit {

// What to do when a positive global limit would give some instance 0 (3scale's "disabled").
enum class SplitPolicy {
    kError,    // refuse (the default): a 0 would reject every request that instance receives
    kMin1,     // give those instances 1: over-admits by at most the number of instances bumped
    kCoarsen,  // min1 on the period, plus the same budget on a coarser period, split exactly
    kNone,     // no split: every instance enforces the global value (a balancer that pins a key)
};

std::string_view to_string(SplitPolicy policy) noexcept;
std::optional<SplitPolicy> parse_split_policy(std::string_view text) noexcept;

// Largest-remainder (Hamilton) apportionment: total * w_i / W rounded down, then the remainder
// one unit each to the largest fractional parts, ties to the lower index. Sums to `total`
// exactly. Weights must be positive.
std::vector<std::int64_t> hamilton(std::int64_t total, const std::vector<std::int64_t>& weights);

struct Share {
    std::int64_t value = 0;
    std::string rule;  // how it was computed, e.g. "100*1/3 = 33.33 -> 33 + 1 (remainder)"
};

struct SplitResult {
    std::vector<Share> shares;
    bool zero_from_positive = false;  // some instance got 0 from a positive total (before policy)
    std::optional<Period> coarser_period;      // kCoarsen: the added limit's period...
    std::vector<std::int64_t> coarser_values;  // ...and its per-instance values
};

// Splits `total` under `policy`. With kError the shares are still computed (zeros included) and
// zero_from_positive says whether the caller must refuse.
SplitResult split(std::int64_t total,
                  const std::vector<std::int64_t>& weights,
                  SplitPolicy policy,
                  Period period);

// The next coarser period and how many of `period` it holds at least (a month holds 4 whole weeks).
std::optional<std::pair<Period, std::int64_t>> coarser(Period period) noexcept;

// What a global limit becomes, given the per-instance values, behind a round-robin balancer:
// all instances up; one instance down with no re-split (the worst one to lose); a client pinned
// to one instance (the smallest share); and the window in which an instance leaves or comes back
// (tandem serve's re-split): windows are per instance, so what the leaving instance admitted
// before it left, or what the others admitted above the shares they are lowered back to, stays
// counted — the fleet admits at most one share more (the largest) in that one window. The
// windows after it hold the global value again.
struct Bounds {
    std::int64_t all_up = 0;
    std::int64_t one_down = 0;
    std::int64_t sticky_client = 0;
    std::int64_t transition_window = 0;
};
Bounds bounds(const std::vector<std::int64_t>& values);

}  // namespace ratelimit
