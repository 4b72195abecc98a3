#pragma once

#include <cstdint>

#include "lb/config.hpp"

namespace lb {

// Whether one more request may start retrying while `in_flight` requests are under way (its
// own included) and `retrying` of them are retrying already: retries stay within `percent` of
// the requests in flight, and `min_concurrency` retries are always allowed (so a quiet worker
// still retries). Envoy's retry budget; a refused retry answers with the error it had. Pure.
inline bool retry_allowed(std::uint64_t in_flight,
                          std::uint64_t retrying,
                          const RetryBudgetConfig& budget) {
    const std::uint64_t share = in_flight * budget.percent / 100;
    const std::uint64_t limit = share > budget.min_concurrency ? share : budget.min_concurrency;
    return retrying + 1 <= limit;
}

}  // namespace lb
