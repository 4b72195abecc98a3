#include "ratelimit/split.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <numeric>

namespace ratelimit {

namespace {

__extension__ using Int128 = __int128;  // L * w does not fit 64 bits for huge limits

constexpr std::array<std::string_view, 4> kPolicyNames = {"error", "min1", "coarsen", "none"};

std::string fraction(std::int64_t total, std::int64_t w, std::int64_t weight_sum) {
    char buf[128];
    const double q =
        static_cast<double>(total) * static_cast<double>(w) / static_cast<double>(weight_sum);
    std::snprintf(buf, sizeof buf, "%lld*%lld/%lld = %.2f", static_cast<long long>(total),
                  static_cast<long long>(w), static_cast<long long>(weight_sum), q);
    return buf;
}

}  // namespace

std::string_view to_string(SplitPolicy policy) noexcept {
    return kPolicyNames.at(static_cast<std::size_t>(policy));
}

std::optional<SplitPolicy> parse_split_policy(std::string_view text) noexcept {
    for (std::size_t i = 0; i < kPolicyNames.size(); ++i) {
        if (kPolicyNames[i] == text) {
            return static_cast<SplitPolicy>(i);
        }
    }
    return std::nullopt;
}

std::vector<std::int64_t> hamilton(std::int64_t total, const std::vector<std::int64_t>& weights) {
    const std::size_t n = weights.size();
    std::vector<std::int64_t> out(n, 0);
    if (n == 0 || total <= 0) {
        return out;
    }
    const Int128 weight_sum = std::accumulate(weights.begin(), weights.end(), Int128{0});
    std::vector<Int128> remainder(n);
    std::int64_t assigned = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const Int128 scaled = static_cast<Int128>(total) * weights[i];
        out[i] = static_cast<std::int64_t>(scaled / weight_sum);
        remainder[i] = scaled % weight_sum;  // fractional part, in units of 1/W
        assigned += out[i];
    }
    std::vector<std::size_t> order(n);
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return remainder[a] > remainder[b]; });
    for (std::int64_t r = total - assigned, k = 0; r > 0; --r, ++k) {
        ++out[order[static_cast<std::size_t>(k)]];
    }
    return out;
}

std::optional<std::pair<Period, std::int64_t>> coarser(Period period) noexcept {
    switch (period) {
        case Period::kMinute:
            return std::pair{Period::kHour, std::int64_t{60}};
        case Period::kHour:
            return std::pair{Period::kDay, std::int64_t{24}};
        case Period::kDay:
            return std::pair{Period::kWeek, std::int64_t{7}};
        case Period::kWeek:
            return std::pair{Period::kMonth, std::int64_t{4}};
        case Period::kMonth:
            return std::pair{Period::kYear, std::int64_t{12}};
        case Period::kYear:
        case Period::kEternity:
            break;
    }
    return std::nullopt;
}

SplitResult split(std::int64_t total,
                  const std::vector<std::int64_t>& weights,
                  SplitPolicy policy,
                  Period period) {
    SplitResult out;
    const std::size_t n = weights.size();
    const std::int64_t weight_sum =
        std::accumulate(weights.begin(), weights.end(), std::int64_t{0});
    if (policy == SplitPolicy::kNone || n <= 1) {
        for (std::size_t i = 0; i < n; ++i) {
            out.shares.push_back(
                {total, n <= 1 ? "single instance: the global value" : "policy none: not split"});
        }
        return out;
    }
    if (total <= 0) {
        for (std::size_t i = 0; i < n; ++i) {
            out.shares.push_back({0, "0 stays 0 (disabled everywhere)"});
        }
        return out;
    }
    const auto values = hamilton(total, weights);
    std::vector<std::int64_t> floors(n);
    for (std::size_t i = 0; i < n; ++i) {
        floors[i] = static_cast<std::int64_t>(static_cast<Int128>(total) * weights[i] / weight_sum);
    }
    for (std::size_t i = 0; i < n; ++i) {
        std::string rule = "hamilton " + fraction(total, weights[i], weight_sum) + " -> " +
                           std::to_string(floors[i]);
        if (values[i] > floors[i]) {
            rule += " + 1 (largest remainder)";
        }
        out.shares.push_back({values[i], std::move(rule)});
        out.zero_from_positive = out.zero_from_positive || values[i] == 0;
    }
    if (!out.zero_from_positive || policy == SplitPolicy::kError) {
        return out;
    }
    for (auto& share : out.shares) {
        if (share.value == 0) {
            share.value = 1;
            share.rule += "; raised to 1 (" + std::string(to_string(policy)) + ")";
        }
    }
    if (policy == SplitPolicy::kCoarsen) {
        // the same budget on the next coarser period(s) where it splits without zeros
        Period p = period;
        std::int64_t budget = total;
        while (auto up = coarser(p)) {
            p = up->first;
            budget *= up->second;
            auto coarse = hamilton(budget, weights);
            if (std::none_of(coarse.begin(), coarse.end(), [](std::int64_t v) { return v == 0; })) {
                out.coarser_period = p;
                out.coarser_values = std::move(coarse);
                break;
            }
        }
    }
    return out;
}

Bounds bounds(const std::vector<std::int64_t>& values) {
    Bounds b;
    if (values.empty()) {
        return b;
    }
    b.all_up = std::accumulate(values.begin(), values.end(), std::int64_t{0});
    b.one_down = values.size() > 1 ? b.all_up - *std::max_element(values.begin(), values.end()) : 0;
    b.sticky_client = *std::min_element(values.begin(), values.end());
    b.transition_window =
        values.size() > 1 ? b.all_up + *std::max_element(values.begin(), values.end()) : b.all_up;
    return b;
}

}  // namespace ratelimit
