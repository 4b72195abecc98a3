// tandem-lb end to end over HTTP/2: h2c with prior knowledge on `listen`, h2 by ALPN on https
// (and HTTP/1.1 when https.alpn says so), streams of one connection spread over the clusters,
// request bodies beyond the window, request IDs and forwarding fields, h2load through it, a
// cluster (HTTP/1.1 or h2) killed under h2 load, and the floods that end only their own
// connection. Real processes on loopback: tandem-lb, fake upstreams, Debian's curl, nghttp and
// h2load; the attacker is libnghttp2's client session over a socket.
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <nghttp2/nghttp2.h>
#include <nlohmann/json.hpp>
#include <sys/socket.h>
#include <unistd.h>

#include "support/balancer.hpp"
#include "support/child_process.hpp"
#include "support/http.hpp"
#include "support/tls_bed.hpp"
#include "support/tools.hpp"
#include "support/wait.hpp"

namespace {

using namespace std::chrono_literals;
using support::Balancer;
using support::ChildProcess;
using support::kFastChecks;
using support::Upstream;
using support::wait_until;

std::string h2c_yaml(const Upstream& east,
                     const Upstream& west,
                     const std::string& extra = "",
                     const std::string& checks = kFastChecks) {
    return "threads: 1\nh2c: true\n" +
           support::cluster_yaml({{"east", east.address()}, {"west", west.address()}}) + checks +
           extra;
}

// Checks for a cluster under load: the survivor of a killed cluster takes all the load, and
// under the sanitizers, beside another test, its answers to kFastChecks' checks took more than
// 80 ms twice in a row (CI, 2026-12-07: east marked down, 650 streams answered 503). Here it
// must leave three 200 ms checks unanswered. The killed cluster's streams do not wait for its
// checks: a refused connect is retried at once.
const std::string kChecksUnderLoad =
    "healthCheck:\n  path: /health\n  interval: 200ms\n  timeout: 200ms\n  rise: 2\n"
    "  fall: 3\n  jitter: 0%\n";

std::string url(std::uint16_t port, const std::string& path = "/") {
    return "http://127.0.0.1:" + std::to_string(port) + path;
}

TEST(BalancerH2, PriorKnowledgeStreamsOfOneConnectionSpreadOverTheClusters) {
    auto east = Upstream::start("east");
    auto west = Upstream::start("west");
    ASSERT_TRUE(east && west);
    auto lb = Balancer::start(h2c_yaml(*east, *west));
    ASSERT_TRUE(lb);
    // curl with prior knowledge: HTTP/2 from the first byte
    const auto v = support::run_tool({"curl", "-s", "--http2-prior-knowledge", "-o", "/dev/null",
                                      "-w", "%{http_code} %{http_version}", url(lb->port)});
    EXPECT_EQ(v, "200 2");
    // ... and HTTP/1.1 on the same listener still
    const auto v1 = support::run_tool(
        {"curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{http_version}", url(lb->port)});
    EXPECT_EQ(v1, "200 1.1");
    // ten streams on one nghttp connection: five each
    std::vector<std::string> argv = {"nghttp"};
    for (int i = 0; i < 10; ++i) {
        argv.push_back(url(lb->port, "/?n=" + std::to_string(i)));
    }
    const auto bodies = support::run_tool(argv);
    std::map<std::string, int> seen;
    std::istringstream in(bodies);
    for (std::string line; std::getline(in, line);) {
        ++seen[line];
    }
    EXPECT_EQ(seen, (std::map<std::string, int>{{"east", 5}, {"west", 5}})) << bodies;
    EXPECT_GE(lb->metric("tandem_lb_client_requests_total{protocol=\"h2\""), 11);
    EXPECT_GE(lb->metric("tandem_lb_client_requests_total{protocol=\"http/1.1\""), 1);
    const auto s = lb->status();
    EXPECT_GE(s["protocols"]["h2"]["requests"].get<int>(), 11);
    EXPECT_GE(s["protocols"]["http/1.1"]["requests"].get<int>(), 1);
}

TEST(BalancerH2, BodiesBeyondTheWindowIdsAndForwardingFieldsReachTheCluster) {
    auto east = Upstream::start("east");
    auto west = Upstream::start("west");
    ASSERT_TRUE(east && west);
    auto lb = Balancer::start(h2c_yaml(*east, *west, "http2: {initialWindow: 64KiB}\n"));
    ASSERT_TRUE(lb);
    const auto file = lb->dir / "body.bin";
    const auto echoed = lb->dir / "echoed.bin";
    // > the stream's window (64 KiB) and the connection's; a pattern with no period that divides
    // a frame or a window, so a piece sent twice, dropped or out of order shows.
    std::string body(300000, '\0');
    for (std::size_t i = 0; i < body.size(); ++i) {
        body[i] = static_cast<char>(i * 131 % 251);
    }
    {
        std::ofstream out(file, std::ios::binary);
        out << body;
    }
    const auto out = support::run_tool({"curl", "-s", "--http2-prior-knowledge", "-D", "-", "-o",
                                        echoed.string(), "--data-binary", "@" + file.string(), "-H",
                                        "X-Custom: kept", url(lb->port, "/echo")});
    EXPECT_NE(out.find("HTTP/2 200"), std::string::npos) << out;
    EXPECT_NE(out.find("x-echo-body-bytes: 300000"), std::string::npos) << out;
    {
        // the cluster answers with the body it got: both directions, byte for byte
        std::ifstream in(echoed, std::ios::binary);
        const std::string back((std::istreambuf_iterator<char>(in)), {});
        EXPECT_EQ(back.size(), body.size());
        EXPECT_TRUE(back == body) << "the echoed body differs from the one sent";
    }
    EXPECT_NE(out.find("x-echo-custom: kept"), std::string::npos) << out;
    EXPECT_NE(out.find("x-echo-xfp: http"), std::string::npos) << out;
    EXPECT_NE(out.find("x-echo-xff: 127.0.0.1"), std::string::npos) << out;
    EXPECT_NE(out.find("x-echo-host: 127.0.0.1:" + std::to_string(lb->port)), std::string::npos)
        << out;
    EXPECT_NE(out.find("x-request-id: "), std::string::npos) << out;
    // Trailers, where HTTP/1.1 can carry them (chunked): the request's reach the cluster, the
    // response's reach the client as HTTP/2 trailers (after the body, ending the stream).
    const auto v =
        support::run_tool({"nghttp", "-v", "--no-content-length", "-d", file.string(), "--trailer",
                           "x-checksum: 7", url(lb->port, "/echo"), url(lb->port, "/trailers")});
    EXPECT_NE(v.find("x-echo-checksum: 7"), std::string::npos) << v;
    const auto data = v.find("recv DATA frame <length=6");
    const auto trailer = v.find("x-checksum: 42");
    EXPECT_NE(data, std::string::npos) << v;
    EXPECT_NE(trailer, std::string::npos) << v;
    EXPECT_GT(trailer, data) << v;
    EXPECT_NE(v.find("grpc-status: 0"), std::string::npos) << v;
    // A cluster that answers before taking the whole body, and closes: its answer is relayed.
    const auto big = lb->dir / "big.bin";
    {
        std::ofstream o(big, std::ios::binary);
        o << std::string(4 << 20, 'z');
    }
    EXPECT_EQ(support::run_tool({"curl", "-s", "--http2-prior-knowledge", "-o", "/dev/null", "-w",
                                 "%{http_code}", "--data-binary", "@" + big.string(),
                                 url(lb->port, "/early?status=401&close=1")}),
              "401");
    // A host no route takes is the balancer's own 404, as over HTTP/1.1.
    auto routed = Balancer::start(h2c_yaml(*east, *west,
                                           "routes:\n  - {hosts: [api.example.com], "
                                           "clusters: [east]}\n"));
    ASSERT_TRUE(routed);
    EXPECT_EQ(support::run_tool({"curl", "-s", "--http2-prior-knowledge", "-o", "/dev/null", "-w",
                                 "%{http_code}", url(routed->port)}),
              "404");
    EXPECT_EQ(
        support::run_tool({"curl", "-s", "--http2-prior-knowledge", "-H", "Host: api.example.com",
                           "-w", " %{http_code}", url(routed->port)}),
        "east\n 200");
}

TEST(BalancerH2, TheBalancersOwnAnswersReachH2Clients) {
    // A cluster nobody listens on, never checked: the connect fails, the retry too -> 502.
    auto gone = Upstream::start("gone");
    ASSERT_TRUE(gone);
    const auto dead = gone->address();
    gone->kill();  // a port nobody listens on: connection refused
    auto unchecked =
        Balancer::start("threads: 1\nh2c: true\n" + support::cluster_yaml({{"gone", dead}}) +
                        "healthCheck: {enabled: false}\n");
    ASSERT_TRUE(unchecked);
    const auto body = support::run_tool(
        {"curl", "-s", "--http2-prior-knowledge", "-w", " %{http_code}", url(unchecked->port)});
    EXPECT_NE(body.find("upstream connect failed (cluster gone)"), std::string::npos) << body;
    EXPECT_TRUE(body.ends_with(" 502")) << body;
    // Checked, it is down: no healthy cluster -> 503.
    auto checked = Balancer::start("threads: 1\nh2c: true\n" +
                                   support::cluster_yaml({{"gone", dead}}) + kFastChecks);
    ASSERT_TRUE(checked);
    ASSERT_TRUE(wait_until([&] { return checked->endpoint_healthy("gone", false); }, 5s));
    EXPECT_EQ(support::run_tool({"curl", "-s", "--http2-prior-knowledge", "-o", "/dev/null", "-w",
                                 "%{http_code}", url(checked->port)}),
              "503");
}

TEST(BalancerH2, AlpnOffersH2OnHttpsUnlessTheConfigurationSaysHttp11) {
    support::TlsBed bed;
    ASSERT_TRUE(bed.ready());
    const auto pki = bed.pki.dir;
    auto lb = Balancer::start("threads: 1\n" + bed.clusters(true) + kFastChecks +
                              support::TlsBed::https(pki / "api.pem", pki / "api.key"));
    ASSERT_TRUE(lb);
    const std::string target = "https://api.test:" + std::to_string(lb->https) + "/";
    const std::string resolve = "api.test:" + std::to_string(lb->https) + ":127.0.0.1";
    const auto get = [&](const std::string& version) {
        return support::run_tool({"curl", "-s", version, "--cacert", (pki / "ca.pem").string(),
                                  "--resolve", resolve, "-o", "/dev/null", "-w",
                                  "%{http_code} %{http_version}", target});
    };
    EXPECT_EQ(get("--http2"), "200 2");
    EXPECT_EQ(get("--http1.1"), "200 1.1");
    const auto load =
        support::run_tool({"h2load", "-n", "400", "-c", "2", "-m", "10", "--connect-to",
                           "127.0.0.1:" + std::to_string(lb->https), target});
    const auto r = support::h2load_result(load);
    EXPECT_EQ(r.succeeded, 400) << load;
    EXPECT_NE(load.find("Application protocol: h2"), std::string::npos) << load;
    auto h1 = Balancer::start("threads: 1\n" + bed.clusters(true) + kFastChecks +
                              support::TlsBed::https(pki / "api.pem", pki / "api.key") +
                              "  alpn: [http/1.1]\n");
    ASSERT_TRUE(h1);
    const std::string target1 = "https://api.test:" + std::to_string(h1->https) + "/";
    EXPECT_EQ(
        support::run_tool({"curl", "-s", "--http2", "--cacert", (pki / "ca.pem").string(),
                           "--resolve", "api.test:" + std::to_string(h1->https) + ":127.0.0.1",
                           "-o", "/dev/null", "-w", "%{http_code} %{http_version}", target1}),
        "200 1.1");
}

TEST(BalancerH2, H2loadThroughTheBalancerIsServedWholeAndSpread) {
    auto east = Upstream::start("east");
    auto west = Upstream::start("west");
    ASSERT_TRUE(east && west);
    auto lb = Balancer::start(h2c_yaml(*east, *west));
    ASSERT_TRUE(lb);
    const auto out =
        support::run_tool({"h2load", "-n", "4000", "-c", "4", "-m", "10", url(lb->port)}, 60s);
    const auto r = support::h2load_result(out);
    EXPECT_EQ(r.succeeded, 4000) << out;
    EXPECT_EQ(r.failed, 0);
    const double e = lb->metric("tandem_lb_requests_total{cluster=\"east\",code_class=\"2xx\"");
    const double w = lb->metric("tandem_lb_requests_total{cluster=\"west\",code_class=\"2xx\"");
    EXPECT_NEAR(e, 2000, 2) << w;
    EXPECT_NEAR(w, 2000, 2) << e;
    EXPECT_TRUE(wait_until([&] { return lb->metric("tandem_lb_h2_streams") == 0; }, 5s));
}

// h2load through `lb` (8 connections x 10 streams of /slow?ms=5); once west has served some of
// the load, it dies mid-flight: no stream fails, west's resets are retried.
void west_dies_under_load(const Balancer& lb, Upstream& west) {
    ChildProcess load(
        {"/usr/bin/h2load", "-D", "4", "-c", "8", "-m", "10", url(lb.port, "/slow?ms=5")}, {},
        true);
    // once west has served some of the load, it dies mid-flight
    ASSERT_TRUE(wait_until(
        [&] { return lb.metric("tandem_lb_requests_total{cluster=\"west\"") > 200; }, 10s));
    west.kill();
    const auto out = load.read_all(30s);
    load.wait(5s);
    const auto r = support::h2load_result(out);
    EXPECT_GT(r.succeeded, 500) << out;
    EXPECT_EQ(r.failed, 0) << out << "retries refused by the budget: "
                           << lb.metric("tandem_lb_retries_refused_total");
    EXPECT_EQ(r.errored, 0) << out;
    EXPECT_GT(lb.metric("tandem_lb_retries_total{cluster=\"west\""), 0);
}

TEST(BalancerH2, AClusterKilledUnderH2LoadFailsNoIdempotentStream) {
    auto east = Upstream::start("east");
    auto west = Upstream::start("west");
    ASSERT_TRUE(east && west);
    // 80 streams in flight, half of them on west when it dies: their resets are retried under
    // the retry budget (20% of the requests in flight by default, at least 3), which exists to
    // keep a sick fleet from serving requests twice; its floor here covers this load, as the
    // HTTP/1.1 test's covers its connections. (A refused connect is retried outside it.)
    auto lb = Balancer::start(
        h2c_yaml(*east, *west, "retry: {budget: {minConcurrency: 80}}\n", kChecksUnderLoad));
    ASSERT_TRUE(lb);
    west_dies_under_load(*lb, *west);
}

TEST(BalancerH2, AnH2ClusterKilledUnderH2LoadFailsNoIdempotentStream) {
    // The same with clusters of protocol h2: west's streams in flight end with its connection.
    auto east = Upstream::start_h2("east");
    auto west = Upstream::start_h2("west");
    ASSERT_TRUE(east && west);
    auto lb = Balancer::start(
        "threads: 1\nh2c: true\n" +
        support::cluster_yaml({{"east", east->address()}, {"west", west->address()}},
                              "    protocol: h2\n") +
        kChecksUnderLoad + "retry: {budget: {minConcurrency: 80}}\n");
    ASSERT_TRUE(lb);
    west_dies_under_load(*lb, *west);
}

// A client speaking h2c through libnghttp2's own session, over a plain socket to the balancer.
class RawClient {
public:
    // `receive_buffer`: SO_RCVBUF when not 0 (a flooder that reads nothing fills it soon).
    explicit RawClient(std::uint16_t port, int receive_buffer = 0) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        if (receive_buffer > 0) {
            ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
        }
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
        timeval tv{5, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        timeval send_tv{2, 0};  // (a flooder the balancer stopped reading gives up sending)
        ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &send_tv, sizeof send_tv);
        nghttp2_session_callbacks* cb = nullptr;
        nghttp2_session_callbacks_new(&cb);
        nghttp2_session_callbacks_set_on_frame_recv_callback(
            cb, [](nghttp2_session*, const nghttp2_frame* f, void* u) {
                auto* self = static_cast<RawClient*>(u);
                if (f->hd.type == NGHTTP2_GOAWAY) {
                    self->goaway_error = static_cast<int>(f->goaway.error_code);
                }
                return 0;
            });
        nghttp2_session_callbacks_set_on_stream_close_callback(
            cb, [](nghttp2_session*, std::int32_t, std::uint32_t error, void* u) {
                if (error != NGHTTP2_NO_ERROR) {
                    ++static_cast<RawClient*>(u)->resets;  // reset by the balancer
                }
                return 0;
            });
        nghttp2_session_callbacks_set_on_header_callback(
            cb, [](nghttp2_session*, const nghttp2_frame*, const std::uint8_t* n, std::size_t nl,
                   const std::uint8_t* v, std::size_t vl, std::uint8_t, void* u) {
                if (std::string_view(reinterpret_cast<const char*>(n), nl) == ":status") {
                    static_cast<RawClient*>(u)->statuses.emplace_back(
                        reinterpret_cast<const char*>(v), vl);
                }
                return 0;
            });
        nghttp2_option* opt = nullptr;
        nghttp2_option_new(&opt);
        nghttp2_option_set_no_http_messaging(opt, 1);  // (it may send what a client must not)
        // (an attacker does not wait for the server's SETTINGS before opening streams)
        nghttp2_option_set_peer_max_concurrent_streams(opt, 1U << 30);
        nghttp2_session_client_new2(&session_, cb, this, opt);
        nghttp2_option_del(opt);
        nghttp2_session_callbacks_del(cb);
        nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, nullptr, 0);
    }
    ~RawClient() {
        nghttp2_session_del(session_);
        ::close(fd_);
    }
    RawClient(const RawClient&) = delete;
    RawClient& operator=(const RawClient&) = delete;

    std::int32_t request(const std::string& path,
                         const std::vector<std::pair<std::string, std::string>>& extra = {}) {
        std::vector<std::pair<std::string, std::string>> f = {
            {":method", "GET"}, {":scheme", "http"}, {":authority", "api.test"}, {":path", path}};
        f.insert(f.end(), extra.begin(), extra.end());
        std::vector<nghttp2_nv> nva;
        for (auto& [n, v] : f) {
            nva.push_back({reinterpret_cast<std::uint8_t*>(n.data()),
                           reinterpret_cast<std::uint8_t*>(v.data()), n.size(), v.size(),
                           NGHTTP2_NV_FLAG_NONE});
        }
        return nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(), nullptr, nullptr);
    }
    void ping() { nghttp2_submit_ping(session_, NGHTTP2_FLAG_NONE, nullptr); }
    // A CONTINUATION flood, written frame by frame (no client library sends one): the preface,
    // SETTINGS, then a request's header block (encoded by libnghttp2's HPACK deflater) in a
    // HEADERS frame of one byte and a CONTINUATION frame per further byte.
    bool continuation_flood() {
        std::string out(kPreface);
        out += frame(4, 0, 0, "");  // SETTINGS
        nghttp2_hd_deflater* deflater = nullptr;
        nghttp2_hd_deflate_new(&deflater, 4096);
        std::vector<std::pair<std::string, std::string>> f = {{":method", "GET"},
                                                              {":scheme", "http"},
                                                              {":authority", "api.test"},
                                                              {":path", "/"},
                                                              {"x-pad", std::string(200, 'p')}};
        std::vector<nghttp2_nv> nva;
        for (auto& [n, v] : f) {
            nva.push_back({reinterpret_cast<std::uint8_t*>(n.data()),
                           reinterpret_cast<std::uint8_t*>(v.data()), n.size(), v.size(),
                           NGHTTP2_NV_FLAG_NO_INDEX});
        }
        std::string block(nghttp2_hd_deflate_bound(deflater, nva.data(), nva.size()), '\0');
        const auto n =
            nghttp2_hd_deflate_hd(deflater, reinterpret_cast<std::uint8_t*>(block.data()),
                                  block.size(), nva.data(), nva.size());
        nghttp2_hd_deflate_del(deflater);
        block.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
        out += frame(1, NGHTTP2_FLAG_END_STREAM, 1, block.substr(0, 1));  // HEADERS
        for (std::size_t i = 1; i < block.size(); ++i) {
            out += frame(9, 0, 1, block.substr(i, 1));  // CONTINUATION, never END_HEADERS
        }
        return ::send(fd_, out.data(), out.size(), MSG_NOSIGNAL) ==
               static_cast<ssize_t>(out.size());
    }
    void settings(std::size_t entries) {
        std::vector<nghttp2_settings_entry> iv(entries, {NGHTTP2_SETTINGS_ENABLE_PUSH, 0});
        nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, iv.data(), iv.size());
    }
    void reset(std::int32_t stream) {
        nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream, NGHTTP2_CANCEL);
    }
    // Sends what the session has queued; false when the balancer closed the connection.
    bool flush() {
        const std::uint8_t* d = nullptr;
        for (ssize_t n; (n = nghttp2_session_mem_send(session_, &d)) > 0;) {
            if (::send(fd_, d, static_cast<std::size_t>(n), MSG_NOSIGNAL) != n) {
                return false;
            }
        }
        return true;
    }
    // Reads until the balancer closes (or `until` is true, or 5 s pass); true when it closed.
    template <class Pred>
    bool read(Pred until) {
        char buf[16384];
        while (!until()) {
            const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n <= 0) {
                return n == 0 || errno == ECONNRESET;
            }
            nghttp2_session_mem_recv(session_, reinterpret_cast<const std::uint8_t*>(buf),
                                     static_cast<std::size_t>(n));
            flush();
        }
        return false;
    }
    bool read_to_close() {
        return read([] { return false; });
    }

    bool connected_ = false;
    int goaway_error = -1;
    int resets = 0;
    std::vector<std::string> statuses;

private:
    static constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    // A frame: its 9-byte header (RFC 9113 4.1) and payload.
    static std::string frame(std::uint8_t type,
                             std::uint8_t flags,
                             std::uint32_t stream,
                             const std::string& payload) {
        std::string h(9, '\0');
        h[0] = static_cast<char>(payload.size() >> 16);
        h[1] = static_cast<char>(payload.size() >> 8);
        h[2] = static_cast<char>(payload.size());
        h[3] = static_cast<char>(type);
        h[4] = static_cast<char>(flags);
        for (std::size_t i = 0; i < 4; ++i) {
            h[5 + i] = static_cast<char>(stream >> (24 - 8 * i));
        }
        return h + payload;
    }
    int fd_ = -1;
    nghttp2_session* session_ = nullptr;
};

TEST(BalancerH2, FloodsAndBombsEndOnlyTheirOwnConnection) {
    auto east = Upstream::start("east");
    auto west = Upstream::start("west");
    ASSERT_TRUE(east && west);
    auto lb = Balancer::start(h2c_yaml(*east, *west));
    ASSERT_TRUE(lb);
    // a well-behaved client on its own connection, before and after
    RawClient good(lb->port);
    ASSERT_TRUE(good.connected_);
    good.request("/");
    ASSERT_TRUE(good.flush());
    good.read([&] { return good.statuses.size() == 1; });
    ASSERT_EQ(good.statuses, std::vector<std::string>{"200"});

    // Rapid reset (CVE-2023-44487): streams opened and cancelled at once, thousands of them.
    {
        RawClient bad(lb->port);
        ASSERT_TRUE(bad.connected_);
        bool sent = true;
        for (int i = 0; i < 5000 && sent; ++i) {
            const auto stream = bad.request("/slow?ms=200");
            sent = bad.flush();  // (a reset before its HEADERS left would cancel it unsent)
            bad.reset(stream);
            sent = sent && bad.flush();
        }
        bad.flush();
        EXPECT_TRUE(bad.read_to_close());
        // (libnghttp2's rapid-reset limit ends the session with INTERNAL_ERROR)
        EXPECT_EQ(bad.goaway_error, NGHTTP2_INTERNAL_ERROR);
    }
    // HPACK bomb: one 3 KB field in the dynamic table (the encoder indexes fields up to 3/4 of
    // its 4 KiB table), then referenced 40 times, a byte each on the wire: decoded, far beyond
    // http2.maxHeaderListSize (64 KiB). Only that stream is reset; the connection goes on.
    {
        RawClient bomb(lb->port);
        std::vector<std::pair<std::string, std::string>> big;
        for (int i = 0; i < 40; ++i) {
            big.emplace_back("x-bomb", std::string(3000, 'a'));
        }
        bomb.request("/", big);
        bomb.request("/");
        ASSERT_TRUE(bomb.flush());
        bomb.read([&] { return bomb.statuses.size() == 1 && bomb.resets >= 1; });
        EXPECT_EQ(bomb.resets, 1) << bomb.goaway_error << " " << bomb.statuses.size();
        EXPECT_EQ(bomb.statuses, std::vector<std::string>{"200"});
    }
    // PING flood: pings sent without reading their acknowledgements, until the balancer's
    // queue of unsent acks passes its bound.
    {
        RawClient pinger(lb->port, 4096);
        bool sent = true;
        for (int i = 0; i < 1000000 && sent; ++i) {
            pinger.ping();
            if (i % 1000 == 999) {
                sent = pinger.flush();
            }
        }
        EXPECT_TRUE(pinger.read_to_close());
        EXPECT_EQ(pinger.goaway_error, NGHTTP2_ENHANCE_YOUR_CALM);  // (the lingering close)
    }
    // CONTINUATION flood: a header block in a CONTINUATION frame per byte (the limit is 8).
    {
        RawClient flood(lb->port);
        ASSERT_TRUE(flood.continuation_flood());
        EXPECT_TRUE(flood.read_to_close());
        EXPECT_GT(flood.goaway_error, 0) << "a GOAWAY with an error";
        EXPECT_TRUE(flood.statuses.empty());
    }
    // SETTINGS: one frame with more entries than the balancer takes (32).
    {
        RawClient settings(lb->port);
        settings.settings(40);
        settings.flush();
        EXPECT_TRUE(settings.read_to_close());
        EXPECT_EQ(settings.goaway_error, NGHTTP2_ENHANCE_YOUR_CALM);
    }
    // The good connection was not harmed.
    good.request("/");
    ASSERT_TRUE(good.flush());
    good.read([&] { return good.statuses.size() == 2; });
    EXPECT_EQ(good.statuses, (std::vector<std::string>{"200", "200"}));
    EXPECT_GE(lb->metric("tandem_lb_h2_connection_errors_total"), 4);
}

TEST(BalancerH2, ReloadAndDrainSendGoawayAndLetOpenStreamsFinish) {
    auto east = Upstream::start("east");
    auto west = Upstream::start("west");
    ASSERT_TRUE(east && west);
    const auto yaml = h2c_yaml(*east, *west);
    auto lb = Balancer::start(yaml);
    ASSERT_TRUE(lb);
    // A reload while a stream is under way: GOAWAY (no error) at once, the stream still gets
    // its answer, then the connection closes; a new one is served by the new generation.
    RawClient a(lb->port);
    a.request("/slow?ms=1500");
    ASSERT_TRUE(a.flush());
    ASSERT_TRUE(wait_until([&] { return lb->metric("tandem_lb_h2_streams") == 1; }, 5s));
    ASSERT_TRUE(lb->reload(yaml));
    EXPECT_TRUE(a.read([&] { return a.goaway_error >= 0; }) || a.goaway_error >= 0);
    EXPECT_EQ(a.goaway_error, NGHTTP2_NO_ERROR);
    EXPECT_TRUE(a.statuses.empty()) << "GOAWAY came before the answer";
    EXPECT_TRUE(a.read_to_close());
    EXPECT_EQ(a.statuses, std::vector<std::string>{"200"});
    RawClient b(lb->port);
    b.request("/");
    ASSERT_TRUE(b.flush());
    b.read([&] { return b.statuses.size() == 1; });
    EXPECT_EQ(b.statuses, std::vector<std::string>{"200"});
    // SIGTERM: the same, then the process exits 0.
    RawClient d(lb->port);
    d.request("/slow?ms=1000");
    ASSERT_TRUE(d.flush());
    ASSERT_TRUE(wait_until([&] { return lb->metric("tandem_lb_h2_streams") == 1; }, 5s));
    lb->process->signal(SIGTERM);
    EXPECT_TRUE(d.read_to_close());
    EXPECT_EQ(d.goaway_error, NGHTTP2_NO_ERROR);
    EXPECT_EQ(d.statuses, std::vector<std::string>{"200"});
    EXPECT_EQ(lb->process->wait(10s), 0);
}

TEST(BalancerH2, ASilentClientWithAStreamOpenIsPingedThenClosed) {
    auto east = Upstream::start("east");
    auto west = Upstream::start("west");
    ASSERT_TRUE(east && west);
    auto lb = Balancer::start(
        h2c_yaml(*east, *west, "http2: {pingInterval: 200ms, pingTimeout: 300ms}\n"));
    ASSERT_TRUE(lb);
    // One that answers PINGs (libnghttp2 acknowledges them as it reads) keeps its stream.
    RawClient alive(lb->port);
    alive.request("/slow?ms=1200");
    ASSERT_TRUE(alive.flush());
    // One that reads nothing while its stream is open: pinged, then closed.
    RawClient silent(lb->port);
    silent.request("/slow?ms=3000");
    ASSERT_TRUE(silent.flush());
    alive.read([&] { return alive.statuses.size() == 1; });
    EXPECT_EQ(alive.statuses, std::vector<std::string>{"200"});
    ASSERT_TRUE(
        wait_until([&] { return lb->metric("tandem_lb_h2_ping_timeouts_total") == 1; }, 5s));
    EXPECT_TRUE(silent.read_to_close());
    EXPECT_TRUE(silent.statuses.empty());
    EXPECT_TRUE(wait_until([&] { return lb->metric("tandem_lb_h2_streams") == 0; }, 5s));
}

TEST(BalancerH2, AnIdleConnectionEndsWithGoawayAfterTheIdleTimeout) {
    auto east = Upstream::start("east");
    auto west = Upstream::start("west");
    ASSERT_TRUE(east && west);
    auto lb = Balancer::start(h2c_yaml(*east, *west, "http2: {idleTimeout: 300ms}\n"));
    ASSERT_TRUE(lb);
    RawClient a(lb->port);
    a.request("/");
    ASSERT_TRUE(a.flush());
    const auto start = std::chrono::steady_clock::now();
    EXPECT_TRUE(a.read_to_close());
    const auto took = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(a.statuses, std::vector<std::string>{"200"});
    EXPECT_EQ(a.goaway_error, NGHTTP2_NO_ERROR);
    EXPECT_GE(took, 250ms);
    EXPECT_LT(took, 3s);
}

}  // namespace
