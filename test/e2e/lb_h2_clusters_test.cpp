// tandem-lb to h2 clusters (clusters[].protocol: h2) end to end: gRPC unary, bidirectional
// streaming and a trailers-only error through it, from HTTP/2 and HTTP/1.1 clients; streams
// multiplexed on one upstream connection per cluster; health checks over h2; refused streams
// and GOAWAY retried on the other cluster; h2 by ALPN over TLS. Real processes on loopback:
// tandem-lb, fake-h2-upstream (libnghttp2), Debian's curl and h2load; the gRPC client is the
// balancer's own H2Session in the client role over a socket.
#include <algorithm>
#include <chrono>
#include <csignal>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "h2_session.hpp"
#include "support/balancer.hpp"
#include "support/child_process.hpp"
#include "support/tls_bed.hpp"
#include "support/tools.hpp"
#include "support/wait.hpp"

namespace {

using namespace std::chrono_literals;
using support::Balancer;
using support::kFastChecks;
using support::Upstream;
using support::wait_until;

std::string h2_clusters_yaml(const Upstream& east,
                             const Upstream& west,
                             const std::string& per_cluster = "",
                             const std::string& extra = "") {
    return "threads: 1\nh2c: true\n" +
           support::cluster_yaml({{"east", east.address()}, {"west", west.address()}},
                                 "    protocol: h2\n" + per_cluster) +
           kFastChecks + extra;
}

// Both clusters pass their checks (over h2).
bool both_healthy(const Balancer& lb) {
    return wait_until(
        [&] { return lb.endpoint_healthy("east", true) && lb.endpoint_healthy("west", true); },
        10s);
}

// Two h2 clusters, east and west, behind a balancer (h2c on its listener) that sees both
// healthy; `lb` is empty when something did not come up.
struct Bed {
    std::unique_ptr<Upstream> east;
    std::unique_ptr<Upstream> west;
    std::string yaml;
    std::unique_ptr<Balancer> lb;
    std::string base;  // http://127.0.0.1:PORT
};
Bed start_bed(const std::string& extra = "") {
    Bed b;
    b.east = Upstream::start_h2("east");
    b.west = Upstream::start_h2("west");
    if (!b.east || !b.west) {
        return b;
    }
    b.yaml = h2_clusters_yaml(*b.east, *b.west, "", extra);
    b.lb = Balancer::start(b.yaml);
    if (b.lb && !both_healthy(*b.lb)) {
        b.lb.reset();
    }
    if (b.lb) {
        b.base = "http://127.0.0.1:" + std::to_string(b.lb->port);
    }
    return b;
}

std::string grpc_frame(const std::string& payload) {
    std::string m(5, '\0');
    m[4] = static_cast<char>(payload.size());  // (short test messages)
    return m + payload;
}

// A client on a socket to `port`, speaking h2c through lb::H2Session (the client role): what
// came back per stream.
class H2Client {
public:
    struct Response {
        unsigned status = 0;
        std::map<std::string, std::string> fields;
        std::string body;
        std::map<std::string, std::string> trailers;
        bool ended = false;
        bool closed = false;
        std::uint32_t error = 0;
    };

    explicit H2Client(std::uint16_t port) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        connected = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
        timeval tv{0, 200 * 1000};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        lb::H2Session::Events ev;
        ev.response = [this](lb::H2ResponseHead h) {
            auto& r = responses[h.stream];
            r.status = h.status;
            for (auto& f : h.fields) {
                r.fields[f.name] = f.value;
            }
        };
        ev.body = [this](std::int32_t id, std::string_view d) {
            responses[id].body.append(d);
            session_->consume(id, d.size());
        };
        ev.trailers = [this](std::int32_t id, std::vector<lb::H2Field> fs) {
            for (auto& f : fs) {
                responses[id].trailers[f.name] = f.value;
            }
        };
        ev.end = [this](std::int32_t id) { responses[id].ended = true; };
        ev.closed = [this](std::int32_t id, std::uint32_t error) {
            responses[id].closed = true;
            responses[id].error = error;
        };
        session_ = lb::H2Session::client(lb::H2Limits{}, std::move(ev));
    }
    ~H2Client() { ::close(fd_); }
    H2Client(const H2Client&) = delete;
    H2Client& operator=(const H2Client&) = delete;

    // A request; its body follows through send() unless `end`.
    std::int32_t request(const std::string& method,
                         const std::string& path,
                         std::vector<lb::H2Field> fields,
                         bool end) {
        lb::H2RequestHead h;
        h.method = method;
        h.scheme = "http";
        h.authority = "api.test";
        h.path = path;
        h.fields = std::move(fields);
        h.end_stream = end;
        return session_->request(h);
    }
    std::int32_t grpc(const std::string& method_path) {
        return request("POST", method_path,
                       {{"content-type", "application/grpc"}, {"te", "trailers"}}, false);
    }
    void send(std::int32_t id, const std::string& data, bool last) {
        session_->body(id, data, last);
    }
    // Writes what is queued and reads until `until` holds (5 s at most).
    template <class Pred>
    bool pump(Pred until) {
        const auto deadline = std::chrono::steady_clock::now() + 5s;
        char buf[16384];
        while (std::chrono::steady_clock::now() < deadline) {
            if (!flush()) {
                return false;
            }
            if (until()) {
                return true;
            }
            const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n == 0) {
                return until();
            }
            if (n > 0 && !session_->receive(std::string_view(buf, static_cast<std::size_t>(n)))) {
                return false;
            }
        }
        return until();
    }
    bool done(std::int32_t id) {
        return pump([&] { return responses[id].closed; });
    }
    // Sends all that is queued (as far as the windows let the session), waiting for nothing else.
    bool flush() {
        for (std::string out; !(out = session_->output()).empty();) {
            if (::send(fd_, out.data(), out.size(), MSG_NOSIGNAL) < 0) {
                return false;
            }
        }
        return true;
    }

    bool connected = false;
    std::map<std::int32_t, Response> responses;

private:
    int fd_ = -1;
    std::unique_ptr<lb::H2Session> session_;
};

TEST(BalancerH2Clusters, GrpcUnaryStreamingAndErrorsFromH2Clients) {
    auto bed = start_bed();
    ASSERT_TRUE(bed.lb) << "both healthy: health checks over h2";
    auto& lb = bed.lb;
    H2Client c(lb->port);
    ASSERT_TRUE(c.connected);
    // Unary, four calls on one connection: both clusters answer, grpc-status in trailers.
    std::map<std::string, int> by;
    for (int i = 0; i < 4; ++i) {
        const auto id = c.grpc("/tandem.Echo/Unary");
        c.send(id, grpc_frame("hello"), true);
        ASSERT_TRUE(c.done(id));
        auto& r = c.responses[id];
        EXPECT_EQ(r.status, 200u);
        EXPECT_EQ(r.fields.at("content-type"), "application/grpc");
        EXPECT_EQ(r.trailers.count("grpc-status"), 1u) << "trailers end to end";
        EXPECT_EQ(r.trailers["grpc-status"], "0");
        ASSERT_GE(r.body.size(), 5u);
        ++by[r.body.substr(5)];
    }
    EXPECT_EQ(by["east: hello"], 2);
    EXPECT_EQ(by["west: hello"], 2);
    // Bidirectional streaming: each answer comes before the next message is sent (a proxy that
    // waits for the whole request would hang here).
    const auto s = c.grpc("/tandem.Echo/Stream");
    for (std::size_t i = 0; i < 3; ++i) {
        const std::string msg = "m" + std::to_string(i);
        c.send(s, grpc_frame(msg), false);
        const std::size_t want = i + 1;
        ASSERT_TRUE(c.pump([&] {
            std::size_t n = 0;
            for (std::size_t pos = 0;
                 (pos = c.responses[s].body.find(": m", pos)) != std::string::npos; ++pos) {
                ++n;
            }
            return n == want;
        })) << "message "
            << i << " answered while the stream is open";
    }
    c.send(s, "", true);
    ASSERT_TRUE(c.done(s));
    EXPECT_EQ(c.responses[s].trailers["grpc-status"], "0");
    EXPECT_NE(c.responses[s].body.find("m2"), std::string::npos);
    // A trailers-only error.
    const auto f = c.grpc("/tandem.Echo/Fail");
    c.send(f, grpc_frame("x"), true);
    ASSERT_TRUE(c.done(f));
    EXPECT_EQ(c.responses[f].fields["grpc-status"], "5");
    EXPECT_EQ(c.responses[f].fields["grpc-message"], "no such");
    // The calls shared one connection per cluster (one worker).
    const auto st = lb->status();
    for (const auto& cl : st["clusters"]) {
        EXPECT_EQ(cl["protocol"], "h2");
        EXPECT_EQ(cl["h2_connections"], 1) << cl.dump();
    }
    EXPECT_EQ(lb->metric("tandem_lb_h2_upstream_connections"), 2);
}

TEST(BalancerH2Clusters, CurlNghttpHttp11ClientsAndH2loadReachH2Clusters) {
    auto bed = start_bed();
    ASSERT_TRUE(bed.lb);
    auto& lb = bed.lb;
    const std::string& base = bed.base;
    // curl over h2c, and nghttp's ten streams on one connection: spread 5/5.
    EXPECT_EQ(support::run_tool({"curl", "-s", "--http2-prior-knowledge", "-o", "/dev/null", "-w",
                                 "%{http_code} %{http_version}", base + "/"}),
              "200 2");
    std::vector<std::string> nghttp = {"nghttp"};
    for (int i = 0; i < 10; ++i) {
        nghttp.push_back(base + "/?n=" + std::to_string(i));
    }
    const auto bodies = support::run_tool(nghttp);
    EXPECT_EQ(std::count(bodies.begin(), bodies.end(), '\n'), 10) << bodies;
    std::size_t east_lines = 0;
    for (std::size_t pos = 0; (pos = bodies.find("east\n", pos)) != std::string::npos; ++pos) {
        ++east_lines;
    }
    EXPECT_EQ(east_lines, 5u) << bodies;
    // HTTP/1.1 in, h2 out: the same forwarding fields as towards HTTP/1.1 clusters.
    const auto out =
        support::run_tool({"curl", "-s", "-i", "--http1.1", "-H", "Host: api.test", base + "/x"});
    EXPECT_NE(out.find("HTTP/1.1 200"), std::string::npos) << out;
    EXPECT_NE(out.find("x-echo-authority: api.test"), std::string::npos) << out;
    EXPECT_NE(out.find("x-echo-forwarded-for: 127.0.0.1"), std::string::npos) << out;
    EXPECT_NE(out.find("x-echo-scheme: http"), std::string::npos) << out;
    EXPECT_NE(out.find("x-echo-method: GET"), std::string::npos) << out;
    EXPECT_TRUE(std::regex_search(out, std::regex("x-echo-request-id: [0-9a-f-]{16,}"))) << out;
    // A POST body through it.
    const auto post = support::run_tool({"curl", "-s", "-i", "--http1.1", "--data-binary",
                                         std::string(70000, 'b'), base + "/upload"});
    EXPECT_NE(post.find("x-echo-body-bytes: 70000"), std::string::npos) << post.substr(0, 600);
    // gRPC over HTTP/1.1 to the balancer: the answer chunked, grpc-status in its trailers.
    const auto grpc = support::run_tool(
        {"curl", "-s", "--raw", "-i", "--http1.1", "-H", "content-type: application/grpc", "-H",
         "te: trailers", "--data-binary", grpc_frame("hi"), base + "/tandem.Echo/Unary"});
    EXPECT_NE(grpc.find("Transfer-Encoding: chunked"), std::string::npos) << grpc;
    EXPECT_NE(grpc.find("\r\n0\r\ngrpc-status: 0\r\n"), std::string::npos) << grpc;
    // h2load: 2,000 streams over 4 connections × 10, spread evenly; the clusters see two
    // upstream connections in all (one each).
    const auto load =
        support::run_tool({"h2load", "-n", "2000", "-c", "4", "-m", "10", base + "/"}, 60s);
    EXPECT_NE(load.find("2000 succeeded, 0 failed, 0 errored"), std::string::npos) << load;
    EXPECT_NEAR(lb->metric("tandem_lb_requests_total{cluster=\"east\",code_class=\"2xx\""), 1000,
                10);
    EXPECT_EQ(lb->metric("tandem_lb_h2_upstream_connections"), 2);
}

TEST(BalancerH2Clusters, RefusedStreamsGoawayAndSickClustersGoElsewhere) {
    auto bed = start_bed("retry:\n  attempts: 1\n");
    ASSERT_TRUE(bed.lb);
    auto& lb = bed.lb;
    auto& east = bed.east;
    // east refuses every stream (RST_STREAM REFUSED_STREAM): gRPC calls — POSTs, never retried
    // once sent — go to west all the same (a refused stream was not processed).
    {
        H2Client direct(east->port);
        const auto id = direct.request("GET", "/__refuse?on=1", {}, true);
        ASSERT_TRUE(direct.done(id));
    }
    H2Client c(lb->port);
    for (int i = 0; i < 6; ++i) {
        const auto id = c.grpc("/tandem.Echo/Unary");
        c.send(id, grpc_frame("again"), true);
        ASSERT_TRUE(c.done(id));
        EXPECT_EQ(c.responses[id].body.substr(5), "west: again") << i;
        EXPECT_EQ(c.responses[id].trailers["grpc-status"], "0");
    }
    EXPECT_GE(lb->metric("tandem_lb_retries_total{cluster=\"east\""), 3);
    {
        H2Client direct(east->port);
        const auto id = direct.request("GET", "/__refuse?on=0", {}, true);
        ASSERT_TRUE(direct.done(id));
    }
    // A cluster's GOAWAY: the balancer's connection to it takes no new stream, a new one does.
    for (int i = 0; i < 8; ++i) {
        const auto id = c.request("GET", i == 2 ? "/__goaway" : "/", {}, true);
        ASSERT_TRUE(c.done(id));
        EXPECT_EQ(c.responses[id].status, 200u) << i;
    }
    // Health checks over h2: east sick → every request to west.
    {
        H2Client direct(east->port);
        const auto id = direct.request("GET", "/__sick", {}, true);
        ASSERT_TRUE(direct.done(id));
    }
    ASSERT_TRUE(wait_until([&] { return lb->endpoint_healthy("east", false); }, 10s));
    for (int i = 0; i < 4; ++i) {
        const auto id = c.request("GET", "/", {}, true);
        ASSERT_TRUE(c.done(id));
        EXPECT_EQ(c.responses[id].body, "west\n");
    }
}

TEST(BalancerH2Clusters, H2ByAlpnOverTls) {
    support::TestPki pki;
    ASSERT_TRUE(pki.ok);
    auto east = Upstream::start_h2("east", pki.server_args());
    auto west = Upstream::start_h2("west", pki.server_args());
    ASSERT_TRUE(east && west);
    const std::string tls =
        "    tls:\n      serverName: router.test\n      caFile: " + (pki.dir / "ca.pem").string() +
        "\n";
    auto lb = Balancer::start(h2_clusters_yaml(*east, *west, tls) +
                              support::TlsBed::https(pki.dir / "api.pem", pki.dir / "api.key"));
    ASSERT_TRUE(lb);
    ASSERT_TRUE(both_healthy(*lb)) << lb->status().dump();
    // TLS and h2 by ALPN on both sides: curl --http2 on the https listener, h2 to the clusters.
    const auto curl = support::run_tool(
        {"curl", "-s", "--http2", "--cacert", (pki.dir / "ca.pem").string(), "--resolve",
         "api.test:" + std::to_string(lb->https) + ":127.0.0.1", "-D", "-", "-o", "/dev/null",
         "https://api.test:" + std::to_string(lb->https) + "/"});
    EXPECT_NE(curl.find("HTTP/2 200"), std::string::npos) << curl;
    EXPECT_NE(curl.find("x-echo-scheme: https"), std::string::npos) << curl;
    H2Client c(lb->port);
    const auto id = c.request("GET", "/", {}, true);
    ASSERT_TRUE(c.done(id));
    EXPECT_EQ(c.responses[id].status, 200u);
    EXPECT_EQ(c.responses[id].fields["x-echo-scheme"], "http");
    const auto g = c.grpc("/tandem.Echo/Unary");
    c.send(g, grpc_frame("tls"), true);
    ASSERT_TRUE(c.done(g));
    EXPECT_EQ(c.responses[g].trailers["grpc-status"], "0");
    // A cluster that does not agree to h2 (an HTTP/1.1-only router): checks fail, and say why.
    auto h1 = Upstream::start("h1", 0, "127.0.0.1", pki.server_args());
    ASSERT_TRUE(h1);
    auto lb2 = Balancer::start(
        "threads: 1\n" +
        support::cluster_yaml({{"h1", h1->address()}}, "    protocol: h2\n" + tls) + kFastChecks);
    ASSERT_TRUE(lb2);
    ASSERT_TRUE(wait_until(
        [&] {
            const auto d = lb2->status().dump();
            return d.find("did not agree to h2") != std::string::npos;
        },
        10s))
        << lb2->status().dump();
}

}  // namespace

namespace {

TEST(BalancerH2Clusters, LargeBodiesFlowControlledAndStreamsLiveThroughAReload) {
    auto bed = start_bed();
    ASSERT_TRUE(bed.lb);
    auto& lb = bed.lb;
    const std::string& base = bed.base;
    const std::string& yaml = bed.yaml;
    // 3 MB each way, through windows of 256 KiB (client side) and 64 KiB (the fake's): whole.
    H2Client c(lb->port);
    const std::string big(3'000'000, 'u');
    const auto up = c.request("POST", "/upload", {{"content-length", "3000000"}}, false);
    c.send(up, big, true);
    ASSERT_TRUE(c.pump([&] { return c.responses[up].closed; }));
    EXPECT_EQ(c.responses[up].fields["x-echo-body-bytes"], "3000000");
    const auto down = c.request("GET", "/big?bytes=3000000", {}, true);
    ASSERT_TRUE(c.done(down));
    EXPECT_EQ(c.responses[down].body.size(), 3'000'000u);
    const auto h1 =
        support::run_tool({"curl", "-s", "--http1.1", "-o", "/dev/null", "-w",
                           "%{http_code} %{size_download}", base + "/big?bytes=3000000"});
    EXPECT_EQ(h1, "200 3000000");
    // A reload with a stream under way on the old generation's connection: it finishes; the
    // new generation opens its own; the old one's close.
    const auto slow = c.request("GET", "/slow?ms=600", {}, true);
    c.flush();
    // (once the balancer has it: a stream it has not read before its GOAWAY is refused)
    ASSERT_TRUE(wait_until([&] { return lb->metric("tandem_lb_h2_streams") >= 1; }, 5s));
    ASSERT_TRUE(lb->reload(yaml));
    ASSERT_TRUE(c.done(slow));
    EXPECT_EQ(c.responses[slow].status, 200u);
    H2Client next(lb->port);
    const auto after = next.request("GET", "/", {}, true);
    ASSERT_TRUE(next.done(after));
    EXPECT_EQ(next.responses[after].status, 200u);
    EXPECT_TRUE(
        wait_until([&] { return lb->metric("tandem_lb_h2_upstream_connections") <= 2; }, 10s))
        << lb->metric("tandem_lb_h2_upstream_connections");
}

}  // namespace

namespace {

// A plain blocking TCP connection to 127.0.0.1:`port` (5 s reads).
int connect_loopback(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        return -1;
    }
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

// A request still under way when the drain starts (its head half sent) is answered by an h2
// cluster, on a connection the drain opens for it and closes after (the h2 connections the
// worker had went away: they were idle); the balancer then exits 0.
TEST(BalancerH2Clusters, ARequestUnderWayWhenTheDrainStartsStillGetsItsStream) {
    auto bed = start_bed();
    ASSERT_TRUE(bed.lb);
    auto& lb = bed.lb;
    const std::string& base = bed.base;
    EXPECT_EQ(support::run_tool({"curl", "-s", base + "/"}).size(), 5u);  // (connections exist)
    const int fd = connect_loopback(lb->port);
    ASSERT_GE(fd, 0);
    const std::string first = "GET /x HTTP/1.1\r\nHost: api.test\r\n";
    ASSERT_EQ(::send(fd, first.data(), first.size(), 0), static_cast<ssize_t>(first.size()));
    // (a request on another connection of the one worker: it has read the half head by then)
    EXPECT_EQ(support::run_tool({"curl", "-s", base + "/"}).size(), 5u);
    lb->process->signal(SIGTERM);
    // The drain has begun once the listener is closed (the worker closes it as it starts).
    ASSERT_TRUE(wait_until(
        [&] {
            const int probe = connect_loopback(lb->port);
            if (probe >= 0) {
                ::close(probe);
            }
            return probe < 0;
        },
        5s));
    ASSERT_EQ(::send(fd, "\r\n", 2, 0), 2);
    std::string answer;
    char buf[4096];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) {  // (draining: it closes after)
        answer.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    EXPECT_TRUE(answer.starts_with("HTTP/1.1 200")) << answer;
    EXPECT_TRUE(answer.ends_with("\r\n5\r\neast\n\r\n0\r\n\r\n") ||
                answer.ends_with("\r\n5\r\nwest\n\r\n0\r\n\r\n"))
        << answer;
    EXPECT_EQ(lb->process->wait(10s), 0);
}

}  // namespace
