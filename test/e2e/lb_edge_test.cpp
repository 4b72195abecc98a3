// tandem-lb at the edge: a cluster's early answer (before the request body is complete) relayed
// at once; a small body that comes in pieces arrives whole; request bodies that trickle below the
// minimum rate cut with a 408, bodies at a legitimate rate untouched. Real processes on loopback
// (test/support: balancer.hpp).
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "support/balancer.hpp"
#include "support/http.hpp"
#include "support/wait.hpp"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using support::Balancer;
using support::cluster_yaml;
using support::kFastChecks;
using support::Upstream;

// A client connection on plain sockets: what it sends and when is the test's to choose.
class RawClient {
public:
    explicit RawClient(std::uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons(port);
        connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    }
    ~RawClient() { ::close(fd_); }
    RawClient(const RawClient&) = delete;
    RawClient& operator=(const RawClient&) = delete;

    [[nodiscard]] bool connected() const { return connected_; }
    bool send(const std::string& bytes) {
        return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
               static_cast<ssize_t>(bytes.size());
    }
    // Reads what arrives within `wait` (less if the peer closes); false once it closed.
    bool read_for(std::chrono::milliseconds wait) {
        const auto until = Clock::now() + wait;
        for (;;) {
            const auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
            pollfd p{fd_, POLLIN, 0};
            if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
                return true;
            }
            char buf[8192];
            const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n <= 0) {
                reset_ = n < 0;
                return false;
            }
            received_.append(buf, static_cast<std::size_t>(n));
        }
    }
    // Reads until a whole response (head and `Content-Length` body) is in, the peer closes or
    // `timeout` passes.
    void read_response(std::chrono::milliseconds timeout) {
        const auto until = Clock::now() + timeout;
        while (!complete() && Clock::now() < until) {
            if (!read_for(50ms)) {
                return;
            }
        }
    }
    [[nodiscard]] bool complete() const {
        const auto end = received_.find("\r\n\r\n");
        if (end == std::string::npos) {
            return false;
        }
        const auto cl = received_.find("Content-Length: ");
        const std::size_t len = cl < end ? std::stoul(received_.substr(cl + 16)) : 0;
        return received_.size() >= end + 4 + len;
    }
    [[nodiscard]] const std::string& received() const { return received_; }
    [[nodiscard]] bool reset() const { return reset_; }  // the connection ended with a reset

private:
    int fd_;
    bool connected_ = false;
    bool reset_ = false;
    std::string received_;
};

double seconds_since(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
}

TEST(Edge, AClustersEarlyAnswerIsRelayedAtOnceWhileTheBodyTrickles) {
    auto up = Upstream::start("east");
    ASSERT_TRUE(up);
    auto lb =
        Balancer::start("threads: 1\n" + cluster_yaml({{"east", up->address()}}) + kFastChecks);
    ASSERT_TRUE(lb);
    // (10000: a body small enough to go with its head, none of it there yet; 100000: moved.)
    for (const std::string framing :
         {"Content-Length: 10000", "Content-Length: 100000", "Transfer-Encoding: chunked"}) {
        SCOPED_TRACE(framing);
        RawClient c(lb->port);
        ASSERT_TRUE(c.connected());
        const auto start = Clock::now();
        // One byte of body, then nothing more for a while: the cluster answers without it.
        ASSERT_TRUE(c.send("POST /early?status=413 HTTP/1.1\r\nHost: h\r\n" + framing + "\r\n\r\n" +
                           (framing[0] == 'C' ? "x" : "1\r\nx\r\n")));
        c.read_response(5s);
        ASSERT_EQ(c.received().rfind("HTTP/1.1 413 Early\r\n", 0), 0U) << c.received();
        EXPECT_NE(c.received().find("Connection: close\r\n"), std::string::npos);
        EXPECT_NE(c.received().find("early\n"), std::string::npos);
        EXPECT_LT(seconds_since(start), 2.0);  // (the body timeout is 30 s)
        // What the client still sends is taken and dropped (no reset), and the balancer's side
        // of the connection is closed.
        EXPECT_TRUE(c.send(std::string(1000, 'y')));
        EXPECT_FALSE(c.read_for(10s)) << "the connection did not close";
        EXPECT_FALSE(c.reset());
    }
}

TEST(Edge, ASmallBodyThatComesInPiecesArrivesWhole) {
    auto up = Upstream::start("east");
    ASSERT_TRUE(up);
    auto lb =
        Balancer::start("threads: 1\n" + cluster_yaml({{"east", up->address()}}) + kFastChecks);
    ASSERT_TRUE(lb);
    std::string body(10000, '\0');
    for (std::size_t i = 0; i < body.size(); ++i) {
        body[i] = static_cast<char>('a' + i % 26);
    }
    RawClient c(lb->port);
    ASSERT_TRUE(c.connected());
    // The head with part of the body (what the balancer reads at once, then sends on), the rest
    // after a pause, in two pieces: the request waits for it and arrives whole.
    ASSERT_TRUE(c.send("PUT /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 10000\r\n\r\n" +
                       body.substr(0, 3000)));
    c.read_for(100ms);
    EXPECT_TRUE(c.received().empty()) << c.received();
    ASSERT_TRUE(c.send(body.substr(3000, 4000)));
    c.read_for(20ms);
    ASSERT_TRUE(c.send(body.substr(7000)));
    c.read_response(5s);
    ASSERT_EQ(c.received().rfind("HTTP/1.1 200 OK\r\n", 0), 0U) << c.received().substr(0, 300);
    EXPECT_TRUE(c.received().ends_with("\r\n\r\n" + body)) << "the body came back changed";
}

TEST(Edge, AnEarlyAnswerBeforeTheClusterClosesIsRelayedNotA502) {
    auto up = Upstream::start("east");
    ASSERT_TRUE(up);
    auto lb =
        Balancer::start("threads: 1\n" + cluster_yaml({{"east", up->address()}}) + kFastChecks);
    ASSERT_TRUE(lb);
    RawClient c(lb->port);
    ASSERT_TRUE(c.connected());
    // The whole body goes as fast as the sockets take it; the cluster answers 401 and closes.
    c.send("POST /early?status=401&close=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 4194304\r\n\r\n");
    for (int i = 0; i < 64 && !c.complete(); ++i) {
        if (!c.send(std::string(65536, 'z'))) {
            break;
        }
        c.read_for(1ms);
    }
    c.read_response(5s);
    EXPECT_EQ(c.received().rfind("HTTP/1.1 401 Early\r\n", 0), 0U) << c.received().substr(0, 200);
}

TEST(Edge, ABodyBelowTheMinimumRateIs408AndALegitimateOnePasses) {
    auto up = Upstream::start("east");
    ASSERT_TRUE(up);
    auto lb =
        Balancer::start("threads: 1\n" + cluster_yaml({{"east", up->address()}}) + kFastChecks +
                        "limits: {minBodyRate: 1KiB}\ntimeouts: {clientBodyGrace: 1s}\n");
    ASSERT_TRUE(lb);
    {
        RawClient c(lb->port);
        ASSERT_TRUE(c.connected());
        const auto start = Clock::now();
        c.send("POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\n");
        // A byte every 200 ms (slowhttptest's slow body): under 1 KiB/s once the grace is over.
        while (!c.complete() && seconds_since(start) < 10) {
            c.send("a");
            if (!c.read_for(200ms)) {
                break;
            }
        }
        EXPECT_EQ(c.received().rfind("HTTP/1.1 408 ", 0), 0U) << c.received();
        EXPECT_LT(seconds_since(start), 3.0);  // the grace and a tick, not timeouts.clientBody
    }
    {
        RawClient c(lb->port);
        ASSERT_TRUE(c.connected());
        c.send("POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 16384\r\n\r\n");
        // 2 KiB every 200 ms: 10 KiB/s, for longer than the grace.
        for (int i = 0; i < 8; ++i) {
            c.send(std::string(2048, 'b'));
            c.read_for(200ms);
        }
        c.read_response(5s);
        EXPECT_EQ(c.received().rfind("HTTP/1.1 200 ", 0), 0U) << c.received().substr(0, 300);
        EXPECT_NE(c.received().find("X-Echo-Body-Bytes: 16384"), std::string::npos);
    }
}

// Outlier detection: a cluster whose health checks pass but whose answers are 503s stops
// getting requests after `consecutiveErrors` of them, for baseEjection; without the section,
// half the requests keep failing.
TEST(Edge, ConsecutiveGatewayErrorsEjectACluster) {
    auto east = Upstream::start("east");
    auto west = Upstream::start("west");
    ASSERT_TRUE(east && west);
    ASSERT_EQ(support::http_request(east->port, "GET", "/__fail?status=503").status, 200U);
    const std::string clusters =
        "threads: 1\n" + cluster_yaml({{"east", east->address()}, {"west", west->address()}}) +
        kFastChecks;
    const auto failures = [](Balancer& lb, int n) {
        int failed = 0;
        for (int i = 0; i < n; ++i) {
            failed += support::http_request(lb.port, "GET", "/").status == 503 ? 1 : 0;
        }
        return failed;
    };
    {
        auto lb = Balancer::start(clusters);
        ASSERT_TRUE(lb);
        EXPECT_EQ(failures(*lb, 20), 10);  // (round robin, nothing learned)
    }
    auto lb =
        Balancer::start(clusters + "outlierDetection: {consecutiveErrors: 3, baseEjection: 1s}\n");
    ASSERT_TRUE(lb);
    EXPECT_EQ(failures(*lb, 20), 3);  // the third 503 ejects east; west takes the rest
    EXPECT_EQ(lb->metric("tandem_lb_outlier_ejections_total{cluster=\"east\""), 1.0);
    EXPECT_EQ(lb->status()["clusters"][0]["outlier_ejections"], 1);
    EXPECT_TRUE(lb->endpoint_healthy("east", true));  // (its checks still pass)
    // After baseEjection it is tried again; three more 503s eject it for twice as long.
    ASSERT_TRUE(support::wait_until(
        [&] { return support::http_request(lb->port, "GET", "/").status == 503; }, 5s));
    EXPECT_EQ(failures(*lb, 20), 2);
    EXPECT_EQ(lb->metric("tandem_lb_outlier_ejections_total{cluster=\"east\""), 2.0);
}

// The retry budget: with none left, a connect failure is answered instead of retried.
TEST(Edge, TheRetryBudgetCapsRetries) {
    auto west = Upstream::start("west");
    auto dropping = Upstream::start("dropping");
    ASSERT_TRUE(west && dropping);
    // A cluster that takes each request and closes the connection unanswered (a reset before any
    // response byte: it may have acted on it), kept in rotation: no checks, no ejection.
    ASSERT_EQ(support::http_request(dropping->port, "GET", "/__drop?on=1").status, 200U);
    const std::string base =
        "threads: 1\n" +
        cluster_yaml({{"dropping", dropping->address()}, {"west", west->address()}}) +
        "healthCheck: {enabled: false}\n";
    auto lb = Balancer::start(base + "retry: {ejectFor: 0s}\n");
    ASSERT_TRUE(lb);
    for (int i = 0; i < 6; ++i) {
        EXPECT_EQ(support::http_request(lb->port, "GET", "/").status, 200U);  // retried on west
    }
    const std::string no_budget =
        "retry: {ejectFor: 0s, budget: {percent: 0, minConcurrency: 0}}\n";
    ASSERT_TRUE(lb->reload(base + no_budget));
    int refused = 0;
    for (int i = 0; i < 6; ++i) {
        refused += support::http_request(lb->port, "GET", "/").status == 502 ? 1 : 0;
    }
    EXPECT_EQ(refused, 3);
    EXPECT_EQ(lb->metric("tandem_lb_retries_refused_total{cluster=\"dropping\""), 3.0);
    EXPECT_EQ(lb->status()["clusters"][0]["retries_refused"], 3);

    // A refused connection reached no process: its retry is the request's only try, so even an
    // empty budget lets it through.
    ASSERT_TRUE(lb->reload("threads: 1\n" +
                           cluster_yaml({{"gone", "127.0.0.1:1"}, {"west", west->address()}}) +
                           "healthCheck: {enabled: false}\n" + no_budget));
    for (int i = 0; i < 6; ++i) {
        EXPECT_EQ(support::http_request(lb->port, "GET", "/").status, 200U);
    }
    EXPECT_EQ(lb->metric("tandem_lb_retries_refused_total{cluster=\"gone\""), 0.0);
}

// The bytes queued in the kernel, unsent, for the balancer's side of the connection from
// client port `client` to the balancer's `port` (/proc/net/tcp's tx_queue); -1 if not found.
long send_queue(std::uint16_t port, std::uint16_t client) {
    std::ifstream in("/proc/net/tcp");
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line)) {
        std::istringstream f(line);
        std::string sl, local, remote, st, queues;
        f >> sl >> local >> remote >> st >> queues;
        const auto lport = std::stoul(local.substr(local.find(':') + 1), nullptr, 16);
        const auto rport = std::stoul(remote.substr(remote.find(':') + 1), nullptr, 16);
        if (lport == port && rport == client) {
            return std::stol(queues.substr(0, queues.find(':')), nullptr, 16);
        }
    }
    return -1;
}

// A client that does not read its response holds limits.clientUnsentBytes of it in the
// balancer's kernel, not the whole response in an autotuned send buffer.
TEST(Edge, ASlowReaderHoldsABoundedSendQueue) {
    auto up = Upstream::start("east");
    ASSERT_TRUE(up);
    for (const auto& [limit, bound] : {std::pair{"64KiB", 200L * 1024}, std::pair{"0", -1L}}) {
        SCOPED_TRACE(limit);
        auto lb = Balancer::start("threads: 1\n" + cluster_yaml({{"east", up->address()}}) +
                                  kFastChecks + "limits: {clientUnsentBytes: " + limit + "}\n");
        ASSERT_TRUE(lb);
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        const int small = 4096;
        ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons(lb->port);
        ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
        socklen_t len = sizeof a;
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
        const std::uint16_t me = ntohs(a.sin_port);
        const std::string req = "GET /chunked?bytes=8388608 HTTP/1.1\r\nHost: h\r\n\r\n";
        ASSERT_EQ(::send(fd, req.data(), req.size(), 0), static_cast<ssize_t>(req.size()));
        // Never read: the queue grows until the balancer stops adding to it.
        long last = -2;
        int same = 0;  // readings in a row (10 ms apart) that did not move
        ASSERT_TRUE(support::wait_until(
            [&] {
                const long q = send_queue(lb->port, me);
                same = q > 0 && q == last ? same + 1 : 0;
                last = q;
                return same >= 20;
            },
            10s));
        if (bound > 0) {
            EXPECT_LE(last, bound);
        } else {
            EXPECT_GT(last, 512L * 1024);  // (the kernel's autotuned default: what it bounds)
        }
        ::close(fd);
    }
}

}  // namespace
