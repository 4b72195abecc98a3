#include "lb/health_state.hpp"

#include <gtest/gtest.h>

namespace lb {
namespace {

TEST(HealthState, RiseConsecutivePassesToComeUpFallFailuresToGoDown) {
    HealthState h(2, 3);  // starts down
    EXPECT_FALSE(h.up());
    EXPECT_EQ(h.record(true), Transition::kNone);
    EXPECT_EQ(h.record(true), Transition::kWentUp);
    EXPECT_EQ(h.counter(), 4u);  // jumps to rise + fall - 1
    EXPECT_EQ(h.record(false), Transition::kNone);
    EXPECT_EQ(h.record(false), Transition::kNone);
    EXPECT_EQ(h.record(false), Transition::kWentDown);
    EXPECT_EQ(h.counter(), 0u);  // drops to 0
}

TEST(HealthState, AFlapResetsProgressLikeHaproxy) {
    HealthState h(3, 2);
    h.record(true);
    h.record(true);
    h.record(false);  // below rise: back to 0
    EXPECT_EQ(h.counter(), 0u);
    h.record(true);
    h.record(true);
    EXPECT_FALSE(h.up());
    EXPECT_EQ(h.record(true), Transition::kWentUp);
    // one failure then a pass: still up, back at the top
    EXPECT_EQ(h.record(false), Transition::kNone);
    EXPECT_EQ(h.record(true), Transition::kNone);
    EXPECT_EQ(h.counter(), 4u);
    HealthState initially_up(2, 1, Health::kUp);
    EXPECT_EQ(initially_up.record(false), Transition::kWentDown);
}

}  // namespace
}  // namespace lb
