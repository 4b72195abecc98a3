#include <map>

#include <gtest/gtest.h>

#include "lb/headers.hpp"
#include "lb/health_state.hpp"
#include "lb/picker.hpp"

namespace lb {
namespace {

namespace http = boost::beast::http;

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

TEST(Headers, HopByHopFieldsAndTheOnesConnectionNamesGo) {
    http::fields f;
    f.set(http::field::host, "api.example.com");
    f.insert(http::field::connection, "keep-alive, X-Secret-Hop");
    f.insert(http::field::connection, "Upgrade");
    f.set("X-Secret-Hop", "1");
    f.set(http::field::keep_alive, "timeout=5");
    f.set(http::field::transfer_encoding, "chunked");
    f.set(http::field::te, "trailers");
    f.set(http::field::upgrade, "websocket");
    f.set("Proxy-Connection", "keep-alive");
    f.set("X-Keep", "yes");
    strip_hop_by_hop(f);
    EXPECT_EQ(f[http::field::host], "api.example.com");
    EXPECT_EQ(f["X-Keep"], "yes");
    for (const char* gone : {"Connection", "X-Secret-Hop", "Keep-Alive", "Transfer-Encoding", "TE",
                             "Upgrade", "Proxy-Connection"}) {
        EXPECT_EQ(f.count(gone), 0u) << gone;
    }
}

TEST(Headers, ForwardingHeadersAppendTheClient) {
    http::fields f;
    add_forwarding(f, boost::asio::ip::make_address("192.0.2.7"), "https");
    EXPECT_EQ(f["X-Forwarded-For"], "192.0.2.7");
    EXPECT_EQ(f["X-Forwarded-Proto"], "https");
    EXPECT_EQ(f["Forwarded"], "for=192.0.2.7;proto=https");
    add_forwarding(f, boost::asio::ip::make_address("2001:db8::1"), "http");
    EXPECT_EQ(f["X-Forwarded-For"], "192.0.2.7, 2001:db8::1");
    EXPECT_EQ(f["X-Forwarded-Proto"], "http");
    EXPECT_EQ(f["Forwarded"], "for=192.0.2.7;proto=https, for=\"[2001:db8::1]\";proto=http");
}

}  // namespace
}  // namespace lb
