#include "ratelimit/split.hpp"

#include <numeric>
#include <random>

#include <gtest/gtest.h>

namespace ratelimit {
namespace {

std::vector<std::int64_t> values_of(const SplitResult& r) {
    std::vector<std::int64_t> out;
    for (const auto& s : r.shares) {
        out.push_back(s.value);
    }
    return out;
}

TEST(Hamilton, TheExamplesOfTheIssue) {
    EXPECT_EQ(hamilton(100, {1, 1}), (std::vector<std::int64_t>{50, 50}));
    EXPECT_EQ(hamilton(100, {1, 1, 1}), (std::vector<std::int64_t>{34, 33, 33}));
    EXPECT_EQ(hamilton(100, {2, 1, 1}), (std::vector<std::int64_t>{50, 25, 25}));
    EXPECT_EQ(hamilton(100, {2, 1}), (std::vector<std::int64_t>{67, 33}));
    EXPECT_EQ(hamilton(10, {1, 1, 1}), (std::vector<std::int64_t>{4, 3, 3}));
    // ties go to the earlier instance in the fleet's order
    EXPECT_EQ(hamilton(1, {1, 1, 1}), (std::vector<std::int64_t>{1, 0, 0}));
    EXPECT_EQ(hamilton(2, {1, 1, 1}), (std::vector<std::int64_t>{1, 1, 0}));
    EXPECT_EQ(hamilton(0, {1, 1}), (std::vector<std::int64_t>{0, 0}));
}

// Largest remainder is not house-monotone with unequal weights: one more unit of global limit
// can take one unit from an instance. Documented; every share stays within 1 of its quota.
TEST(Hamilton, AlabamaParadoxWithUnequalWeightsIsBoundedToOneUnit) {
    bool seen = false;
    for (std::int64_t total = 1; total < 2000 && !seen; ++total) {
        const auto a = hamilton(total, {6, 6, 2});
        const auto b = hamilton(total + 1, {6, 6, 2});
        for (std::size_t i = 0; i < a.size(); ++i) {
            if (b[i] < a[i]) {
                seen = true;
                EXPECT_EQ(b[i], a[i] - 1);
            }
        }
    }
    EXPECT_TRUE(seen);
}

TEST(Hamilton, NoOverflowForLargeValues) {
    const std::int64_t big = 4'000'000'000'000'000'000;
    const auto v = hamilton(big, {1000, 999, 1});
    EXPECT_EQ(std::accumulate(v.begin(), v.end(), std::int64_t{0}), big);
}

// Property tests over random totals and weights (deterministic seed).
TEST(Hamilton, Properties) {
    std::mt19937_64 rng(42);
    for (int iteration = 0; iteration < 20000; ++iteration) {
        const auto n = 1 + rng() % 7;
        std::vector<std::int64_t> w(n);
        for (auto& x : w) {
            x = static_cast<std::int64_t>(1 + rng() % (iteration % 2 == 0 ? 3 : 1000));
        }
        const auto total = static_cast<std::int64_t>(rng() % 100000);
        const auto v = hamilton(total, w);
        const std::int64_t wsum = std::accumulate(w.begin(), w.end(), std::int64_t{0});
        // the sum is exact
        ASSERT_EQ(std::accumulate(v.begin(), v.end(), std::int64_t{0}), total);
        // deterministic
        ASSERT_EQ(v, hamilton(total, w));
        for (std::size_t i = 0; i < n; ++i) {
            // within one unit of the exact quota
            const double quota =
                static_cast<double>(total) * static_cast<double>(w[i]) / static_cast<double>(wsum);
            ASSERT_LT(std::abs(static_cast<double>(v[i]) - quota), 1.0) << total << " " << i;
        }
        // monotonic in the total: the sum always; every share when the weights are equal (with
        // unequal weights largest-remainder has the Alabama paradox, pinned below)
        const auto more = hamilton(total + 1, w);
        ASSERT_EQ(std::accumulate(more.begin(), more.end(), std::int64_t{0}), total + 1);
        const bool equal = std::all_of(w.begin(), w.end(), [&](auto x) { return x == w[0]; });
        for (std::size_t i = 0; equal && i < n; ++i) {
            ASSERT_GE(more[i], v[i]);
        }
        for (std::size_t i = 0; i < n; ++i) {
            ASSERT_GE(more[i], v[i] - 1);  // and never by more than one unit
        }
        // never 0 from a positive value once min1 applies
        const auto r = split(total, w, SplitPolicy::kMin1, Period::kMinute);
        for (const auto& s : r.shares) {
            ASSERT_TRUE(total == 0 || s.value >= 1);
        }
    }
}

TEST(Split, ZeroStaysZeroAndPositiveToZeroIsFlagged) {
    auto r = split(0, {1, 1, 1}, SplitPolicy::kError, Period::kMinute);
    EXPECT_EQ(values_of(r), (std::vector<std::int64_t>{0, 0, 0}));
    EXPECT_FALSE(r.zero_from_positive);
    r = split(2, {1, 1, 1}, SplitPolicy::kError, Period::kMinute);
    EXPECT_TRUE(r.zero_from_positive);
    EXPECT_EQ(values_of(r), (std::vector<std::int64_t>{1, 1, 0}));
}

TEST(Split, Policies) {
    auto min1 = split(1, {1, 1, 1}, SplitPolicy::kMin1, Period::kMinute);
    EXPECT_EQ(values_of(min1), (std::vector<std::int64_t>{1, 1, 1}));
    EXPECT_NE(min1.shares[2].rule.find("raised to 1 (min1)"), std::string::npos);
    EXPECT_FALSE(min1.coarser_period.has_value());

    auto coarsen = split(1, {1, 1, 1}, SplitPolicy::kCoarsen, Period::kMinute);
    EXPECT_EQ(values_of(coarsen), (std::vector<std::int64_t>{1, 1, 1}));
    ASSERT_EQ(coarsen.coarser_period, Period::kHour);  // 60/hour: 20/20/20, exact
    EXPECT_EQ(coarsen.coarser_values, (std::vector<std::int64_t>{20, 20, 20}));

    auto none = split(100, {1, 1, 1}, SplitPolicy::kNone, Period::kMinute);
    EXPECT_EQ(values_of(none), (std::vector<std::int64_t>{100, 100, 100}));

    auto single = split(100, {5}, SplitPolicy::kError, Period::kMinute);
    EXPECT_EQ(values_of(single), (std::vector<std::int64_t>{100}));
}

TEST(Split, RulesExplainEveryValue) {
    const auto r = split(100, {1, 1, 1}, SplitPolicy::kError, Period::kMinute);
    EXPECT_EQ(r.shares[0].rule, "hamilton 100*1/3 = 33.33 -> 33 + 1 (largest remainder)");
    EXPECT_EQ(r.shares[1].rule, "hamilton 100*1/3 = 33.33 -> 33");
}

TEST(Split, Bounds) {
    const auto b = bounds({34, 33, 33});
    EXPECT_EQ(b.all_up, 100);
    EXPECT_EQ(b.one_down, 66);
    EXPECT_EQ(b.sticky_client, 33);
    // the east instance (34) leaves mid-window having admitted its 34; the others now admit 100
    EXPECT_EQ(b.transition_window, 134);
    EXPECT_EQ(bounds({100}).one_down, 0);
    EXPECT_EQ(bounds({100}).transition_window, 100);  // nothing to re-split
}

TEST(Split, PolicyNames) {
    for (const auto p :
         {SplitPolicy::kError, SplitPolicy::kMin1, SplitPolicy::kCoarsen, SplitPolicy::kNone}) {
        EXPECT_EQ(parse_split_policy(to_string(p)), p);
    }
    EXPECT_FALSE(parse_split_policy("floor"));
}

}  // namespace
}  // namespace ratelimit
