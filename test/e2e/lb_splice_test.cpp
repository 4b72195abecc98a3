// tandem-lb end to end, bodies moved without the parser (splice:): Content-Length and chunked
// bodies both ways arrive byte for byte over keep-alive connections, spliced (counted by
// tandem_lb_spliced_bytes_total) or copied when splicing is off; a pipelined request after a
// spliced body, or after a small one sent with its head, is answered; a client that goes away
// mid-body, a cluster that breaks off or stalls mid-body, and a client that stalls mid-upload each
// end only their own exchange, and the next requests' bodies are intact. The balancer and
// fake-upstream are real processes on loopback.
#include <chrono>
#include <string>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <gtest/gtest.h>

#include "support/balancer.hpp"
#include "support/http.hpp"
#include "support/wait.hpp"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using namespace std::chrono_literals;
using support::Balancer;
using support::cluster_yaml;
using support::Upstream;

constexpr const char* kSpliced = "tandem_lb_spliced_bytes_total";

// fake-upstream's /bytes pattern: n bytes where one moved, lost or repeated shows.
std::string pattern(std::uint64_t n) {
    std::string s(n, '\0');
    for (std::uint64_t i = 0; i < n; ++i) {
        s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
    }
    return s;
}

// A keep-alive client connection to the balancer.
struct Client {
    asio::io_context ioc;
    beast::tcp_stream stream{ioc};
    beast::flat_buffer buffer;
    explicit Client(std::uint16_t port) {
        stream.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    }
    // One request and its response on this connection; status 0 when it failed.
    http::response<http::string_body> send(http::verb method,
                                           const std::string& target,
                                           std::string body = {},
                                           bool chunked = false) {
        http::request<http::string_body> req{method, target, 11};
        req.set(http::field::host, "splice.test");
        req.body() = std::move(body);
        if (chunked) {
            req.chunked(true);
        } else if (method != http::verb::get) {
            req.prepare_payload();
        }
        stream.expires_after(30s);
        boost::system::error_code ec;
        http::write(stream, req, ec);
        http::response_parser<http::string_body> parser;
        parser.body_limit(64 * 1024 * 1024);
        if (!ec) {
            http::read(stream, buffer, parser, ec);
        }
        if (ec) {
            return {};
        }
        return parser.release();
    }
};

std::string yaml(const Upstream& up, const std::string& splice) {
    return "threads: 1\n" + cluster_yaml({{"east", up.address()}}) +
           "limits:\n  maxBodyBytes: 64MiB\n" + splice;
}

class Splice : public ::testing::TestWithParam<bool> {
protected:
    void SetUp() override {
        up_ = Upstream::start("east");
        ASSERT_TRUE(up_);
        lb_ = Balancer::start(
            yaml(*up_, GetParam() ? "splice:\n  minBytes: 4KiB\n" : "splice:\n  enabled: false\n"));
        ASSERT_TRUE(lb_);
    }
    [[nodiscard]] bool on() const { return GetParam(); }
    std::unique_ptr<Upstream> up_;
    std::unique_ptr<Balancer> lb_;
};

TEST_P(Splice, LengthDelimitedBodiesArriveWholeBothWaysOverKeepAlive) {
    Client c(lb_->port);
    const std::string up = pattern(3 * 1024 * 1024 + 5);
    for (int i = 0; i < 3; ++i) {
        const auto echo = c.send(http::verb::put, "/echo", up);
        ASSERT_EQ(echo.result_int(), 200U) << "round " << i;
        EXPECT_EQ(echo["X-Echo-Body-Bytes"], std::to_string(up.size()));
        EXPECT_TRUE(echo.body() == up) << "round " << i << ": the body came back changed";
        const auto down = c.send(http::verb::get, "/bytes?n=2000003");
        ASSERT_EQ(down.result_int(), 200U);
        EXPECT_TRUE(down.body() == pattern(2000003)) << "round " << i;
        const auto small = c.send(http::verb::get, "/");
        EXPECT_EQ(small.body(), "east\n") << "the connection carries on after large bodies";
    }
    const double spliced = lb_->metric(kSpliced);
    if (on()) {
        // Each body less what came with its head (at most one read of it) went through a pipe.
        EXPECT_GE(spliced, 3.0 * (2 * static_cast<double>(up.size()) + 2000003 - 3 * 21 * 1024));
    } else {
        EXPECT_EQ(spliced, 0.0);
    }
}

TEST_P(Splice, ChunkedBodiesArriveWholeBothWays) {
    Client c(lb_->port);
    const double before = lb_->metric(kSpliced);
    // One chunk of 3 MB, then five of 400 kB with extensions, re-chunked for the client.
    const auto one = c.send(http::verb::get, "/chunked?bytes=3000000");
    ASSERT_EQ(one.result_int(), 200U);
    EXPECT_EQ(one[http::field::transfer_encoding], "chunked");
    EXPECT_TRUE(one.body() == std::string(3000000, 'x'));
    const auto five = c.send(http::verb::get, "/chunked?bytes=2000000&pieces=5");
    ASSERT_EQ(five.result_int(), 200U);
    EXPECT_TRUE(five.body() == pattern(2000000));
    // A chunked upload (one chunk of 2 MB) and one of many small chunks.
    const std::string up = pattern(2 * 1024 * 1024 + 1);
    const auto echo = c.send(http::verb::put, "/echo", up, true);
    ASSERT_EQ(echo.result_int(), 200U);
    EXPECT_EQ(echo["X-Echo-Body-Bytes"], std::to_string(up.size()));
    EXPECT_TRUE(echo.body() == up);
    std::string framed;
    for (int i = 0; i < 300; ++i) {
        framed += "400\r\n" + pattern(1024) + "\r\n";
    }
    const std::string raw =
        "PUT /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        "Connection: close\r\n\r\n" +
        framed + "0\r\n\r\n";
    const std::string reply = support::raw_exchange(lb_->port, raw);
    EXPECT_NE(reply.find("X-Echo-Body-Bytes: 307200"), std::string::npos) << reply.substr(0, 300);
    const double spliced = lb_->metric(kSpliced) - before;
    if (on()) {
        EXPECT_GE(spliced, 3000000.0 + 5 * 380000 + 2 * 1024 * 1024 - 3 * 21 * 1024);
    } else {
        EXPECT_EQ(spliced, 0.0);
    }
    // An HTTP/1.0 client gets the chunked body unframed, ended by the close.
    const std::string old = support::raw_exchange(
        lb_->port, "GET /chunked?bytes=600000&pieces=2 HTTP/1.0\r\nHost: x\r\n\r\n");
    const auto at = old.find("\r\n\r\n");
    ASSERT_NE(at, std::string::npos) << old.substr(0, 300);
    EXPECT_EQ(old.find("Transfer-Encoding"), std::string::npos);
    EXPECT_TRUE(old.substr(at + 4) == pattern(600000));
}

TEST_P(Splice, APipelinedRequestAfterABodyIsAnswered) {
    // (300000: a body moved, spliced when on; 10000: one that goes with its head. Each is read
    // to its end, not past it.)
    for (const std::size_t n : {300000U, 10000U}) {
        SCOPED_TRACE(n);
        const std::string body = pattern(n);
        const std::string raw =
            "PUT /echo HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size()) +
            "\r\n\r\n" + body + "GET /bytes?n=7 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        const std::string reply = support::raw_exchange(lb_->port, raw);
        const auto first = reply.find("\r\n\r\n");
        ASSERT_NE(first, std::string::npos) << reply.substr(0, 300);
        EXPECT_EQ(reply.substr(first + 4, body.size()), body);
        const std::string second = reply.substr(first + 4 + body.size());
        EXPECT_EQ(second.rfind("HTTP/1.1 200 OK", 0), 0U) << second.substr(0, 200);
        EXPECT_TRUE(second.ends_with("\r\n\r\n" + pattern(7))) << second;
    }
}

TEST_P(Splice, AClientGoneMidResponseEndsOnlyItsOwnExchange) {
    {
        // Reads the head and a little, then goes away with megabytes still to come.
        asio::io_context ioc;
        asio::ip::tcp::socket s(ioc);
        s.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), lb_->port));
        const std::string req = "GET /bytes?n=30000000 HTTP/1.1\r\nHost: x\r\n\r\n";
        asio::write(s, asio::buffer(req));
        std::array<char, 1024> some{};
        boost::system::error_code ec;
        (void)s.read_some(asio::buffer(some), ec);
        EXPECT_FALSE(ec);
        s.set_option(asio::socket_base::linger(true, 0));  // a reset: the worst case
    }
    // The next clients' bodies are whole (no pipe with another body's bytes was reused).
    for (int i = 0; i < 4; ++i) {
        Client c(lb_->port);
        const auto r = c.send(http::verb::get, "/bytes?n=500000");
        ASSERT_EQ(r.result_int(), 200U);
        EXPECT_TRUE(r.body() == pattern(500000)) << i;
    }
}

TEST_P(Splice, AClusterThatBreaksOffMidBodyClosesTheClientConnection) {
    Client c(lb_->port);
    http::request<http::empty_body> req{http::verb::get, "/partial?bytes=400000&send=150000", 11};
    req.set(http::field::host, "x");
    http::write(c.stream, req);
    http::response_parser<http::string_body> p;
    p.body_limit(1 << 20);
    boost::system::error_code ec;
    c.stream.expires_after(10s);
    http::read(c.stream, c.buffer, p, ec);
    EXPECT_EQ(ec, http::error::partial_message) << ec.message();
    EXPECT_EQ(p.get().result_int(), 200U);
    // The connection is closed (the only way to say the body is incomplete); the next is fine.
    Client next(lb_->port);
    EXPECT_TRUE(next.send(http::verb::get, "/bytes?n=200000").body() == pattern(200000));
}

TEST(SpliceTimeouts, AStalledClusterOrClientIsCutByItsTimeout) {
    auto up = Upstream::start("east");
    ASSERT_TRUE(up);
    auto lb = Balancer::start(yaml(*up, "splice:\n  minBytes: 4KiB\n") +
                              "timeouts:\n  upstreamResponse: 1s\n  clientBody: 1s\n"
                              "  clientBodyGrace: 1s\n");
    ASSERT_TRUE(lb);
    {
        // The cluster sends part of the body, then nothing for 20 s: cut after about 1 s.
        Client c(lb->port);
        http::request<http::empty_body> req{http::verb::get,
                                            "/partial?bytes=400000&send=150000&hold=20000", 11};
        req.set(http::field::host, "x");
        http::write(c.stream, req);
        http::response_parser<http::string_body> p;
        p.body_limit(1 << 20);
        boost::system::error_code ec;
        const auto t0 = std::chrono::steady_clock::now();
        c.stream.expires_after(10s);
        http::read(c.stream, c.buffer, p, ec);
        EXPECT_EQ(ec, http::error::partial_message) << ec.message();
        EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
    }
    {
        // A client that stops mid-upload gets 408 after clientBody.
        asio::io_context ioc;
        asio::ip::tcp::socket s(ioc);
        s.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), lb->port));
        const std::string head = "PUT /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n";
        asio::write(s, asio::buffer(head + pattern(100000)));
        std::string got;
        std::array<char, 4096> buf{};
        boost::system::error_code ec;
        const auto t0 = std::chrono::steady_clock::now();
        while (!ec) {
            const std::size_t n = s.read_some(asio::buffer(buf), ec);
            got.append(buf.data(), n);
        }
        EXPECT_EQ(got.rfind("HTTP/1.1 408", 0), 0U) << got.substr(0, 200);
        EXPECT_LT(std::chrono::steady_clock::now() - t0, 8s);
    }
    Client c(lb->port);
    EXPECT_TRUE(c.send(http::verb::put, "/echo", pattern(300000)).body() == pattern(300000));
}

INSTANTIATE_TEST_SUITE_P(OnAndOff, Splice, ::testing::Values(true, false), [](const auto& p) {
    return p.param ? "Spliced" : "Copied";
});

}  // namespace
