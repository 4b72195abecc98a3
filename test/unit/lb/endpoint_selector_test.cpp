// The endpoint choice's rules: round robin over healthy endpoints of the cluster the picker
// chooses, passive ejections honoured while something else is eligible, never a 503 made by an
// ejection alone, ejections forgotten once a check passes again.
#include "lb/endpoint_selector.hpp"

#include <map>

#include <gtest/gtest.h>

#include "lb/retry_budget.hpp"

namespace lb {
namespace {

using Clock = EndpointSelector::Clock;
using boost::asio::ip::make_address;
using boost::asio::ip::tcp;

tcp::endpoint ep(const char* ip) {
    return {make_address(ip), 80};
}

// Two clusters: "a" with two endpoints, "b" with one.
Snapshot snapshot(bool a1 = true, bool a2 = true, bool b1 = true) {
    Snapshot s;
    s.clusters.push_back({{{ep("10.0.0.1"), a1}, {ep("10.0.0.2"), a2}}});
    s.clusters.push_back({{{ep("10.0.1.1"), b1}}});
    return s;
}

EndpointSelector two_clusters() {
    return EndpointSelector({{1, false}, {1, false}});
}

std::map<std::string, int> count(EndpointSelector& sel, int n, Clock::time_point now) {
    std::map<std::string, int> out;
    for (int i = 0; i < n; ++i) {
        const auto c = sel.choose(std::nullopt, now);
        ++out[c ? c->address.address().to_string() : "none"];
    }
    return out;
}

TEST(EndpointSelector, ClustersAlternateAndEndpointsTakeTurnsWithinOne) {
    auto sel = two_clusters();
    sel.apply(snapshot());
    const Clock::time_point now{};
    const auto seen = count(sel, 8, now);
    EXPECT_EQ(seen.at("10.0.1.1"), 4);  // cluster b: half the requests
    EXPECT_EQ(seen.at("10.0.0.1"), 2);  // cluster a's half, shared by its endpoints
    EXPECT_EQ(seen.at("10.0.0.2"), 2);
}

TEST(EndpointSelector, UnhealthyEndpointsAndClustersAreSkipped) {
    auto sel = two_clusters();
    sel.apply(snapshot(true, false, true));
    EXPECT_EQ(count(sel, 4, {}).count("10.0.0.2"), 0u);
    sel.apply(snapshot(false, false, true));
    EXPECT_EQ(count(sel, 4, {}).at("10.0.1.1"), 4);  // cluster a has nothing healthy
    sel.apply(snapshot(false, false, false));
    EXPECT_FALSE(sel.choose(std::nullopt, {}));  // nothing healthy: the caller answers 503
}

TEST(EndpointSelector, ARetryGoesToAnotherCluster) {
    auto sel = two_clusters();
    sel.apply(snapshot());
    for (int i = 0; i < 4; ++i) {
        const auto c = sel.choose(0, {});
        ASSERT_TRUE(c);
        EXPECT_EQ(c->cluster, 1u);
    }
}

TEST(EndpointSelector, AnEjectedEndpointIsSkippedUntilItsTimeIsUp) {
    auto sel = two_clusters();
    sel.apply(snapshot());
    const Clock::time_point t0{std::chrono::seconds(100)};
    EXPECT_TRUE(sel.eject({0, ep("10.0.0.1")}, t0, std::chrono::seconds(3)));
    EXPECT_FALSE(sel.eject({0, ep("10.0.0.1")}, t0 + std::chrono::seconds(1),
                           std::chrono::seconds(3)));  // already ejected: not a new one
    auto seen = count(sel, 8, t0 + std::chrono::seconds(2));
    EXPECT_EQ(seen.count("10.0.0.1"), 0u);
    EXPECT_EQ(seen.at("10.0.0.2"), 4);
    // (the second ejection pushed the end to t0 + 4 s)
    seen = count(sel, 8, t0 + std::chrono::seconds(5));
    EXPECT_EQ(seen.at("10.0.0.1"), 2);
    EXPECT_FALSE(sel.eject({0, ep("10.9.9.9")}, t0, std::chrono::seconds(3)));  // not there
}

TEST(EndpointSelector, EjectionsNeverMakeA503ByThemselves) {
    auto sel = two_clusters();
    sel.apply(snapshot(true, false, false));  // only 10.0.0.1 passes its checks
    const Clock::time_point t0{std::chrono::seconds(100)};
    sel.eject({0, ep("10.0.0.1")}, t0, std::chrono::seconds(3));
    const auto c = sel.choose(std::nullopt, t0 + std::chrono::seconds(1));
    ASSERT_TRUE(c);  // the active checks' view alone decides
    EXPECT_EQ(c->address, ep("10.0.0.1"));
}

TEST(EndpointSelector, ANewSnapshotKeepsEjectionsUnlessACheckPassedSince) {
    auto sel = two_clusters();
    sel.apply(snapshot());
    const Clock::time_point t0{std::chrono::seconds(100)};
    sel.eject({0, ep("10.0.0.1")}, t0, std::chrono::seconds(30));
    sel.eject({0, ep("10.0.0.2")}, t0, std::chrono::seconds(30));
    sel.apply(snapshot(true, false, true));  // 10.0.0.2 went down, 10.0.0.1 is still ejected
    EXPECT_EQ(count(sel, 4, t0).at("10.0.1.1"), 4);
    sel.apply(snapshot(true, true, true));  // 10.0.0.2 passed its checks again: trusted
    const auto seen = count(sel, 4, t0);
    EXPECT_EQ(seen.at("10.0.0.2"), 2);
    EXPECT_EQ(seen.count("10.0.0.1"), 0u);
}

OutlierConfig outliers(std::uint32_t errors, unsigned percent = 50) {
    OutlierConfig c;
    c.consecutive_errors = errors;
    c.base_ejection = std::chrono::seconds(30);
    c.max_ejection = std::chrono::seconds(300);
    c.max_ejection_percent = percent;
    return c;
}

TEST(EndpointSelector, ConsecutiveGatewayErrorsEjectForLongerEachTime) {
    auto sel = two_clusters();
    sel.apply(snapshot());
    const Clock::time_point t0{std::chrono::seconds(1000)};
    const EndpointSelector::Choice b{1, ep("10.0.1.1")};
    const auto cfg = outliers(3);
    // Off: nothing counts.
    for (int i = 0; i < 10; ++i) {
        EXPECT_FALSE(sel.report(b, true, t0, outliers(0)));
    }
    // Two errors, a success (the streak ends), three errors: ejected.
    EXPECT_FALSE(sel.report(b, true, t0, cfg));
    EXPECT_FALSE(sel.report(b, true, t0, cfg));
    EXPECT_FALSE(sel.report(b, false, t0, cfg));
    EXPECT_FALSE(sel.report(b, true, t0, cfg));
    EXPECT_FALSE(sel.report(b, true, t0, cfg));
    EXPECT_TRUE(sel.report(b, true, t0, cfg));
    // For base_ejection: cluster b has no eligible endpoint; a takes everything.
    EXPECT_EQ(count(sel, 4, t0 + std::chrono::seconds(29))["10.0.1.1"], 0);
    EXPECT_GT(count(sel, 4, t0 + std::chrono::seconds(30))["10.0.1.1"], 0);
    // Ejected again at once: twice as long.
    const auto t1 = t0 + std::chrono::seconds(31);
    for (int i = 0; i < 2; ++i) {
        EXPECT_FALSE(sel.report(b, true, t1, cfg));
    }
    EXPECT_TRUE(sel.report(b, true, t1, cfg));
    EXPECT_EQ(count(sel, 4, t1 + std::chrono::seconds(59))["10.0.1.1"], 0);
    EXPECT_GT(count(sel, 4, t1 + std::chrono::seconds(60))["10.0.1.1"], 0);
    // Answering well for a base_ejection forgives one ejection: the next is 30 s again, then
    // capped at max_ejection however many there were.
    const auto t2 = t1 + std::chrono::seconds(60);
    EXPECT_FALSE(sel.report(b, false, t2 + std::chrono::seconds(30), cfg));
    for (int i = 0; i < 3; ++i) {
        sel.report(b, true, t2 + std::chrono::seconds(31), cfg);
    }
    EXPECT_EQ(count(sel, 4, t2 + std::chrono::seconds(31 + 59))["10.0.1.1"], 0);
    EXPECT_GT(count(sel, 4, t2 + std::chrono::seconds(31 + 60))["10.0.1.1"], 0);
}

TEST(EndpointSelector, NoMoreThanTheShareOfAClusterIsEjectedButOneAlwaysMayBe) {
    auto sel = two_clusters();
    sel.apply(snapshot());
    const Clock::time_point t0{std::chrono::seconds(1000)};
    const EndpointSelector::Choice a1{0, ep("10.0.0.1")};
    const EndpointSelector::Choice a2{0, ep("10.0.0.2")};
    const auto cfg = outliers(1, 10);  // 10% of 2 endpoints is 0: still one may go
    EXPECT_TRUE(sel.report(a1, true, t0, cfg));
    EXPECT_FALSE(sel.report(a2, true, t0, cfg));  // the second would exceed the share
    EXPECT_EQ(count(sel, 6, t0)["10.0.0.2"], 3);  // a2 still serves its cluster's half
    // Once a1 is back, a2's next error ejects it.
    EXPECT_TRUE(sel.report(a2, true, t0 + std::chrono::seconds(31), cfg));
    // The outlier record follows an endpoint across snapshots by address.
    sel.apply(snapshot());
    EXPECT_EQ(count(sel, 6, t0 + std::chrono::seconds(32))["10.0.0.2"], 0);
}

TEST(RetryBudget, AShareOfTheRequestsInFlightWithAFloor) {
    RetryBudgetConfig b;  // 20%, at least 3
    EXPECT_TRUE(retry_allowed(1, 0, b));
    EXPECT_TRUE(retry_allowed(5, 2, b));
    EXPECT_FALSE(retry_allowed(5, 3, b));    // the floor of 3 is used up
    EXPECT_TRUE(retry_allowed(100, 19, b));  // 20 of 100
    EXPECT_FALSE(retry_allowed(100, 20, b));
    b.percent = 0;
    b.min_concurrency = 0;
    EXPECT_FALSE(retry_allowed(1000, 0, b));  // (no retries at all)
}

}  // namespace
}  // namespace lb
