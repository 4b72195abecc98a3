#include "lb/picker.hpp"

#include <map>

#include <gtest/gtest.h>

namespace lb {
namespace {

std::map<std::size_t, int> spread(Picker& p, const std::vector<bool>& healthy, int n) {
    std::map<std::size_t, int> out;
    for (int i = 0; i < n; ++i) {
        if (auto k = p.pick(healthy)) {
            ++out[*k];
        }
    }
    return out;
}

TEST(Picker, AlternatesPerRequestAndHonoursWeights) {
    Picker even({{1, false}, {1, false}});
    EXPECT_EQ(even.pick({true, true}), 0u);
    EXPECT_EQ(even.pick({true, true}), 1u);
    EXPECT_EQ(even.pick({true, true}), 0u);
    Picker weighted({{2, false}, {1, false}});
    // smooth: a, b, a — not a, a, b
    EXPECT_EQ(weighted.pick({true, true}), 0u);
    EXPECT_EQ(weighted.pick({true, true}), 1u);
    EXPECT_EQ(weighted.pick({true, true}), 0u);
    Picker three({{5, false}, {1, false}, {1, false}});
    const auto s = spread(three, {true, true, true}, 700);
    EXPECT_EQ(s.at(0), 500);
    EXPECT_EQ(s.at(1), 100);
    EXPECT_EQ(s.at(2), 100);
}

TEST(Picker, BackupOnlyWhenNoPrimaryIsHealthyAndNoneWhenAllDown) {
    Picker p({{1, false}, {1, false}, {1, true}});
    EXPECT_EQ(spread(p, {true, false, true}, 10), (std::map<std::size_t, int>{{0, 10}}));
    EXPECT_EQ(spread(p, {false, false, true}, 4), (std::map<std::size_t, int>{{2, 4}}));
    EXPECT_FALSE(p.pick({false, false, false}).has_value());
}

TEST(Picker, ARetryGoesToAnotherMemberWhenThereIsOne) {
    Picker p({{1, false}, {1, false}});
    for (int i = 0; i < 10; ++i) {
        EXPECT_EQ(p.pick({true, true}, 0), 1u);
    }
    EXPECT_EQ(p.pick({true, false}, 0), 0u);  // the only one left
}

}  // namespace
}  // namespace lb
