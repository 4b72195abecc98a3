// The re-split rule (serve::Membership): quorum, timers, restore order, the last instance.
#include "serve/membership.hpp"

#include <gtest/gtest.h>

namespace {

using serve::BalancerView;
using serve::Membership;
using serve::SplitState;
using namespace std::chrono_literals;

const Membership::Timing kTiming{60s, 120s};

BalancerView view(std::map<std::string, bool> healthy, bool reachable = true) {
    BalancerView v;
    v.reachable = reachable;
    for (const auto& [name, h] : healthy) {
        v.clusters[name] = {h, "ready"};
    }
    return v;
}

const BalancerView kGone = view({}, false);

struct Clock {
    Membership::Clock::time_point now{};
    Membership::Clock::time_point at(std::chrono::seconds s) const { return now + s; }
};

TEST(Membership, OutAfterAQuorumSawItDownForTheWholeDelay) {
    Membership m({"east", "west"}, kTiming);
    Clock c;
    const auto down = view({{"east", false}, {"west", true}});
    EXPECT_TRUE(m.observe({down}, c.at(0s)).empty());
    EXPECT_TRUE(m.observe({down}, c.at(59s)).empty());
    EXPECT_EQ(m.state("east"), SplitState::kIn);
    const auto t = m.observe({down}, c.at(60s));
    ASSERT_EQ(t.size(), 1u);
    EXPECT_EQ(t[0].instance, "east");
    EXPECT_EQ(t[0].to, SplitState::kOut);
    EXPECT_EQ(m.without(), std::vector<std::string>{"east"});
}

TEST(Membership, ABreakInTheFailureStartsTheDelayAgain) {
    Membership m({"east", "west"}, kTiming);
    Clock c;
    const auto down = view({{"east", false}, {"west", true}});
    const auto up = view({{"east", true}, {"west", true}});
    m.observe({down}, c.at(0s));
    m.observe({up}, c.at(30s));  // healthy again for one poll
    m.observe({down}, c.at(31s));
    EXPECT_TRUE(m.observe({down}, c.at(90s)).empty());
    EXPECT_EQ(m.observe({down}, c.at(91s)).size(), 1u);
}

TEST(Membership, TheQuorumIsAMajorityOfTheBalancersReached) {
    Membership m({"east", "west"}, kTiming);
    Clock c;
    const auto down = view({{"east", false}, {"west", true}});
    const auto up = view({{"east", true}, {"west", true}});
    // one of three says down: no quorum (a balancer with a broken path to east alone)
    m.observe({down, up, up}, c.at(0s));
    EXPECT_TRUE(m.observe({down, up, up}, c.at(300s)).empty());
    // one of two: a tie is no quorum either
    m.observe({down, up}, c.at(301s));
    EXPECT_TRUE(m.observe({down, up}, c.at(600s)).empty());
    // two of three unreachable, the one reached says down: a majority of those reached
    m.observe({down, kGone, kGone}, c.at(601s));
    EXPECT_EQ(m.observe({down, kGone, kGone}, c.at(661s)).size(), 1u);
}

TEST(Membership, NoBalancerReachedChangesNothingAndRestartsTheClocks) {
    Membership m({"east", "west"}, kTiming);
    Clock c;
    const auto down = view({{"east", false}, {"west", true}});
    m.observe({down}, c.at(0s));
    EXPECT_TRUE(m.observe({kGone}, c.at(59s)).empty());
    EXPECT_TRUE(m.observe({down}, c.at(61s)).empty());  // the delay started again at 61s
    EXPECT_TRUE(m.observe({kGone}, c.at(1000s)).empty());
    EXPECT_EQ(m.state("east"), SplitState::kIn);
}

TEST(Membership, TheLastInstanceInNeverGoesOut) {
    Membership m({"east", "west"}, kTiming);
    Clock c;
    const auto both_down = view({{"east", false}, {"west", false}});
    m.observe({both_down}, c.at(0s));
    const auto t = m.observe({both_down}, c.at(60s));
    ASSERT_EQ(t.size(), 1u);  // the first in fleet order goes; west stays to hold the limits
    EXPECT_EQ(m.state("east"), SplitState::kOut);
    EXPECT_TRUE(m.observe({both_down}, c.at(600s)).empty());
    EXPECT_EQ(m.state("west"), SplitState::kIn);
}

TEST(Membership, BackInOnlyAfterRestoringAndTheCallerSaysTheOthersConverged) {
    Membership m({"east", "west"}, kTiming);
    Clock c;
    const auto down = view({{"east", false}, {"west", true}});
    const auto up = view({{"east", true}, {"west", true}});
    m.observe({down}, c.at(0s));
    m.observe({down}, c.at(60s));
    const auto out_generation = m.split_generation();
    EXPECT_FALSE(m.restored("east"));  // not restoring: nothing to restore
    m.observe({up}, c.at(100s));
    EXPECT_TRUE(m.observe({up}, c.at(219s)).empty());
    const auto t = m.observe({up}, c.at(220s));
    ASSERT_EQ(t.size(), 1u);
    EXPECT_EQ(t[0].to, SplitState::kRestoring);
    EXPECT_TRUE(m.without().empty());  // in the split again: the others' shares go down
    EXPECT_GT(m.restoring_since("east"), out_generation);
    EXPECT_EQ(m.state("east"), SplitState::kRestoring);
    const auto in = m.restored("east");
    ASSERT_TRUE(in);
    EXPECT_EQ(in->to, SplitState::kIn);
    EXPECT_EQ(m.state("east"), SplitState::kIn);
}

TEST(Membership, AFailureWhileRestoringSendsItOutAgain) {
    Membership m({"east", "west"}, kTiming);
    Clock c;
    const auto down = view({{"east", false}, {"west", true}});
    const auto up = view({{"east", true}, {"west", true}});
    m.observe({down}, c.at(0s));
    m.observe({down}, c.at(60s));
    m.observe({up}, c.at(61s));
    m.observe({up}, c.at(181s));
    ASSERT_EQ(m.state("east"), SplitState::kRestoring);
    const auto t = m.observe({down}, c.at(182s));
    ASSERT_EQ(t.size(), 1u);
    EXPECT_EQ(t[0].to, SplitState::kOut);
    EXPECT_EQ(m.without(), std::vector<std::string>{"east"});
    EXPECT_FALSE(m.restored("east"));
}

TEST(Membership, AClusterInMaintAtStartIsTakenAsOut) {
    Membership m({"east", "west"}, kTiming);
    BalancerView v = view({{"east", true}, {"west", true}});
    v.clusters["east"].admin_state = "maint";
    const auto t = m.adopt({v});
    ASSERT_EQ(t.size(), 1u);
    EXPECT_EQ(m.state("east"), SplitState::kOut);
    EXPECT_EQ(m.state("west"), SplitState::kIn);
}

TEST(Membership, AClusterNoBalancerKnowsIsNeverJudged) {
    Membership m({"east", "west", "north"}, kTiming);
    Clock c;
    const auto v = view({{"east", true}, {"west", true}});  // north is not on the balancer
    m.observe({v}, c.at(0s));
    EXPECT_TRUE(m.observe({v}, c.at(1000s)).empty());
    EXPECT_EQ(m.state("north"), SplitState::kIn);
}

}  // namespace
