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

TEST(Headers, RequestHeadDropsHopByHopFieldsAndTheOnesConnectionNames) {
    RequestHead h;
    h.method(http::verb::post);
    h.target("/v1/things?x=1");
    h.version(10);
    h.set(http::field::host, "api.example.com");
    h.insert(http::field::connection, "keep-alive, X-Secret-Hop");
    h.insert(http::field::connection, "Upgrade");
    h.set("X-Secret-Hop", "1");
    h.set(http::field::keep_alive, "timeout=5");
    h.set(http::field::transfer_encoding, "chunked");
    h.set(http::field::te, "trailers");
    h.set(http::field::trailer, "X-Checksum");
    h.set(http::field::upgrade, "websocket");
    h.set("Proxy-Connection", "keep-alive");
    h.set(http::field::expect, "100-continue");
    h.set("X-Keep", "yes");
    std::string out = "previous contents";
    write_request_head(h, ClientAddress(boost::asio::ip::make_address("192.0.2.7")), "https",
                       Framing::kChunked, true, out);
    EXPECT_EQ(out,
              "POST /v1/things?x=1 HTTP/1.1\r\n"
              "Host: api.example.com\r\n"
              "X-Keep: yes\r\n"
              "X-Forwarded-For: 192.0.2.7\r\n"
              "X-Forwarded-Proto: https\r\n"
              "Forwarded: for=192.0.2.7;proto=https\r\n"
              "Transfer-Encoding: chunked\r\n"
              "\r\n");
    // Expect stays when it was not answered here.
    write_request_head(h, ClientAddress(boost::asio::ip::make_address("192.0.2.7")), "https",
                       Framing::kAsIs, false, out);
    EXPECT_NE(out.find("Expect: 100-continue\r\n"), std::string::npos);
    EXPECT_EQ(out.find("Transfer-Encoding"), std::string::npos);
}

TEST(Headers, AWebSocketHandshakeAsksTheUpgradeOfTheNextHop) {
    RequestHead h;
    h.method(http::verb::get);
    h.target("/chat");
    h.set(http::field::host, "api.example.com");
    h.set(http::field::connection, "keep-alive, Upgrade");
    h.set(http::field::upgrade, "websocket");
    h.set(http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
    h.set(http::field::sec_websocket_version, "13");
    std::string out;
    write_request_head(h, ClientAddress(boost::asio::ip::make_address("192.0.2.7")), "http",
                       Framing::kAsIs, false, out, "websocket");
    EXPECT_EQ(out,
              "GET /chat HTTP/1.1\r\n"
              "Host: api.example.com\r\n"
              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
              "Sec-WebSocket-Version: 13\r\n"
              "X-Forwarded-For: 192.0.2.7\r\n"
              "X-Forwarded-Proto: http\r\n"
              "Forwarded: for=192.0.2.7;proto=http\r\n"
              "Connection: upgrade\r\n"
              "Upgrade: websocket\r\n"
              "\r\n");
    ResponseHead r;
    r.result(http::status::switching_protocols);
    r.set(http::field::connection, "Upgrade");
    r.set(http::field::upgrade, "websocket");
    r.set(http::field::sec_websocket_accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    write_response_head(r, Framing::kAsIs, ConnectionToken::kNone, out, "websocket");
    EXPECT_EQ(out,
              "HTTP/1.1 101 Switching Protocols\r\n"
              "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
              "Connection: upgrade\r\n"
              "Upgrade: websocket\r\n"
              "\r\n");
}

TEST(Headers, ForwardingFieldsAppendTheClientToEveryEarlierEntry) {
    RequestHead h;
    h.method(http::verb::get);
    h.target("/");
    h.insert("X-Forwarded-For", "198.51.100.1");
    h.insert("x-forwarded-for", "198.51.100.2, 198.51.100.3");
    h.insert("X-Forwarded-Proto", "http");
    h.insert(http::field::forwarded, "for=198.51.100.1");
    std::string out;
    write_request_head(h, ClientAddress(boost::asio::ip::make_address("2001:db8::1")), "https",
                       Framing::kAsIs, false, out);
    EXPECT_EQ(out,
              "GET / HTTP/1.1\r\n"
              "X-Forwarded-For: 198.51.100.1, 198.51.100.2, 198.51.100.3, 2001:db8::1\r\n"
              "X-Forwarded-Proto: https\r\n"
              "Forwarded: for=198.51.100.1, for=\"[2001:db8::1]\";proto=https\r\n"
              "\r\n");
    // More earlier entries than the inline slots hold: none is lost, order kept.
    RequestHead many;
    many.method(http::verb::get);
    many.target("/");
    std::string expected = "X-Forwarded-For: ";
    for (int i = 1; i <= 7; ++i) {
        many.insert("X-Forwarded-For", "10.0.0." + std::to_string(i));
        expected += "10.0.0." + std::to_string(i) + ", ";
    }
    write_request_head(many, ClientAddress(boost::asio::ip::make_address("192.0.2.7")), "http",
                       Framing::kAsIs, false, out);
    EXPECT_NE(out.find(expected + "192.0.2.7\r\n"), std::string::npos) << out;
}

TEST(Headers, ResponseHeadKeepsTheReasonAndSetsFramingAndConnection) {
    ResponseHead h;
    h.result(http::status::not_found);
    h.reason("Nothing Here");
    h.version(10);
    h.set(http::field::server, "nginx");
    h.set(http::field::connection, "keep-alive");
    h.set(http::field::keep_alive, "timeout=65");
    h.set(http::field::content_length, "12");
    std::string out;
    write_response_head(h, Framing::kAsIs, ConnectionToken::kNone, out);
    EXPECT_EQ(out,
              "HTTP/1.1 404 Nothing Here\r\n"
              "Server: nginx\r\n"
              "Content-Length: 12\r\n"
              "\r\n");
    ResponseHead c;
    c.result(http::status::ok);  // no reason from upstream: the standard one
    c.set(http::field::transfer_encoding, "chunked");
    write_response_head(c, Framing::kChunked, ConnectionToken::kClose, out);
    EXPECT_EQ(out,
              "HTTP/1.1 200 OK\r\n"
              "Transfer-Encoding: chunked\r\n"
              "Connection: close\r\n"
              "\r\n");
    write_response_head(c, Framing::kAsIs, ConnectionToken::kKeepAlive, out);
    EXPECT_EQ(out, "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\n");
}

TEST(BlockPool, RecyclesBlocksBySizeClassAndBoundsWhatItKeeps) {
    detail::BlockPool pool;
    void* a = pool.allocate(40);
    pool.deallocate(a, 40);
    EXPECT_EQ(pool.allocate(64), a);  // the same class (64 bytes) reuses the block
    void* big = pool.allocate(4096);  // beyond the largest class: operator new
    pool.deallocate(big, 4096);
    std::vector<void*> blocks;
    for (unsigned i = 0; i < detail::BlockPool::kMaxFree + 10; ++i) {
        blocks.push_back(pool.allocate(200));
    }
    for (void* b : blocks) {
        pool.deallocate(b, 200);  // the ones beyond kMaxFree go back to operator delete
    }
    pool.deallocate(a, 64);
    Fields f{PoolAllocator<char>{}};
    f.set("X-Test", std::string(300, 'v'));
    EXPECT_EQ(f["X-Test"].size(), 300u);
}

}  // namespace
}  // namespace lb
