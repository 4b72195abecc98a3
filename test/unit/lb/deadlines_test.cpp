// The ticker's rule: a watch whose deadline passed fires once; an idle one is parked after
// kParkAfter, once per idle period; a watch with nothing to cancel is left alone.
#include "deadlines.hpp"

#include <gtest/gtest.h>

namespace lb {
namespace {

TEST(Deadlines, APassedDeadlineFiresOnce) {
    boost::asio::io_context ctx;
    Socket s(ctx.get_executor());
    Watch w;
    const Clock::time_point t0{std::chrono::seconds(100)};
    w.arm(s, t0 + std::chrono::seconds(1));
    EXPECT_EQ(due(w, t0), Due::kNothing);
    EXPECT_EQ(due(w, t0 + std::chrono::seconds(1)), Due::kFire);
    w.fired = true;
    EXPECT_EQ(due(w, t0 + std::chrono::seconds(2)), Due::kNothing);
    w.arm(s, t0 + std::chrono::seconds(3));  // armed again: the new deadline counts
    EXPECT_EQ(due(w, t0 + std::chrono::seconds(3)), Due::kFire);
    w.disarm();
    EXPECT_EQ(due(w, t0 + std::chrono::seconds(9)), Due::kNothing);
}

TEST(Deadlines, AnIdleConnectionIsParkedAfterASecondOncePerIdlePeriod) {
    boost::asio::io_context ctx;
    Socket s(ctx.get_executor());
    Watch w;
    const Clock::time_point t0{std::chrono::seconds(100)};
    w.idle = true;
    w.idle_since = t0;
    w.arm(s, t0 + std::chrono::seconds(60));
    EXPECT_EQ(due(w, t0 + kParkAfter - std::chrono::milliseconds(1)), Due::kNothing);
    EXPECT_EQ(due(w, t0 + kParkAfter), Due::kPark);
    w.parked = true;
    EXPECT_EQ(due(w, t0 + std::chrono::seconds(30)), Due::kNothing);
    EXPECT_EQ(due(w, t0 + std::chrono::seconds(60)), Due::kFire);  // the idle timeout still holds
    w.idle = false;
    w.parked = false;
    EXPECT_EQ(due(w, t0 + std::chrono::seconds(5)), Due::kNothing);  // busy: never parked
}

TEST(Deadlines, TickCancelsWhatIsDueAndMarksIt) {
    boost::asio::io_context ctx;
    Socket a(ctx.get_executor());
    Socket b(ctx.get_executor());
    Watch late;
    Watch idle;
    Watch busy;
    const Clock::time_point t0{std::chrono::seconds(100)};
    late.arm(a, t0);
    idle.arm(b, t0 + std::chrono::seconds(60));
    idle.idle = true;
    idle.idle_since = t0 - std::chrono::seconds(2);
    busy.arm(b, t0 + std::chrono::seconds(60));
    WatchList list;
    list.push_back(late);
    list.push_back(idle);
    list.push_back(busy);
    tick(list, t0);
    EXPECT_TRUE(late.fired);
    EXPECT_TRUE(idle.park && idle.parked && !idle.fired);
    EXPECT_FALSE(busy.fired || busy.park);
    list.clear();
}

TEST(Deadlines, ABodyMustKeepAMinimumRateAfterItsGrace) {
    using std::chrono::seconds;
    const Clock::time_point t0{seconds(100)};
    const auto idle = seconds(30);
    const auto grace = seconds(10);
    // Rate off: only the gap between reads counts.
    EXPECT_EQ(body_read_deadline(t0, 0, t0 + seconds(50), idle, 0, grace), t0 + seconds(80));
    // One byte every 5 s at 1 KiB/s: cut about `grace` after the body started.
    EXPECT_EQ(body_read_deadline(t0, 0, t0, idle, 1024, grace), t0 + grace);
    EXPECT_LT(body_read_deadline(t0, 2, t0 + seconds(10), idle, 1024, grace), t0 + seconds(11));
    // A legitimate upload: each 1024 bytes buy a second; the gap rule still applies.
    EXPECT_EQ(body_read_deadline(t0, 100 * 1024, t0 + seconds(20), idle, 1024, grace),
              t0 + seconds(50));
    EXPECT_EQ(body_read_deadline(t0, 1000 * 1024, t0 + seconds(20), idle, 1024, grace),
              t0 + seconds(50));  // (capped by now + idle)
    EXPECT_EQ(body_read_deadline(t0, 30 * 1024, t0 + seconds(20), idle, 1024, grace),
              t0 + seconds(40));
}

}  // namespace
}  // namespace lb
