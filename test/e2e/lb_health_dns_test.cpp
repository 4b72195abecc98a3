// tandem-lb end to end, health and DNS: active checks under load, the --healthcheck command,
// DNS answers and their TTLs from a real DNS server on loopback, new DNS servers on reload.
// Real processes on loopback (test/support: balancer.hpp, dns_server.hpp); ports are 0
// everywhere and readiness is the processes' ready lines.
#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/balancer.hpp"
#include "support/child_process.hpp"
#include "support/dns_server.hpp"
#include "support/http.hpp"
#include "support/wait.hpp"

namespace {

using namespace std::chrono_literals;
using support::Balancer;
using support::ChildProcess;
using support::cluster_yaml;
using support::kFastChecks;
using support::Load;
using support::Upstream;
using support::wait_until;

// "first" on 127.0.0.2 and "second" on 127.0.0.3, on the same port: which one serves is up to
// the DNS answer for a name.
std::pair<std::unique_ptr<Upstream>, std::unique_ptr<Upstream>> upstreams_on_two_addresses() {
    auto a = Upstream::start("first", 0, "127.0.0.2");
    auto b = a ? Upstream::start("second", a->port, "127.0.0.3") : nullptr;
    return {std::move(a), std::move(b)};
}

TEST(Balancer, KilledUpstreamUnderLoadLosesNoRequestAndComesBackAfterRise) {
    auto a = Upstream::start("east");
    auto b = Upstream::start("west");
    ASSERT_TRUE(a && b);
    const std::uint16_t west_port = b->port;
    // The retry budget's floor covers the load's 8 connections: requests in flight on west when
    // it dies (reset after being sent) are retried only within the budget, by design, and with
    // the default floor (3 per worker) one worker holding 4 of them would answer one 502.
    auto lb = Balancer::start("threads: 2\n" +
                              cluster_yaml({{"east", a->address()}, {"west", b->address()}}) +
                              kFastChecks + "retry:\n  budget: {minConcurrency: 8}\n");
    ASSERT_TRUE(lb);
    Load load(lb->port, 8);
    ASSERT_TRUE(wait_until([&] { return load.served_by("west") > 200; }, 10s));
    const auto killed_at = std::chrono::steady_clock::now();
    b->kill();
    ASSERT_TRUE(wait_until([&] { return lb->endpoint_healthy("west", false); }, 5s));
    const auto detected = std::chrono::steady_clock::now() - killed_at;
    // fall (2) x interval (100 ms) + timeout, with slack for a loaded CI machine.
    EXPECT_LT(detected, 1500ms);
    const auto east_before = load.served_by("east");
    ASSERT_TRUE(wait_until([&] { return load.served_by("east") > east_before + 500; }, 10s));

    // Back on the same port: traffic returns after `rise` passing checks. (The port may be
    // another socket's ephemeral local port for a moment — the balancer's own connections to
    // east draw from the same range — so binding it again is retried until it is free.)
    std::unique_ptr<Upstream> b2;
    ASSERT_TRUE(wait_until(
        [&] {
            b2 = Upstream::start("west", west_port);
            return b2 != nullptr;
        },
        5s));
    const auto restarted = std::chrono::steady_clock::now();
    const auto west_before = load.served_by("west");
    ASSERT_TRUE(wait_until([&] { return load.served_by("west") > west_before + 100; }, 10s));
    EXPECT_LT(std::chrono::steady_clock::now() - restarted, 3s);
    load.stop();
    EXPECT_EQ(load.failed(), 0u) << (load.failures().empty() ? "" : load.failures().front());
    EXPECT_GT(load.ok(), 1000u);
    EXPECT_GE(lb->metric("tandem_lb_endpoint_transitions_total{cluster=\"west\""), 2);
}

TEST(Balancer, HealthcheckCommandFollowsHealthz) {
    auto a = Upstream::start("east");
    ASSERT_TRUE(a);
    auto lb =
        Balancer::start("threads: 1\n" + cluster_yaml({{"east", a->address()}}) + kFastChecks);
    ASSERT_TRUE(lb);
    // The probe reads the admin address from the same file the balancer runs with.
    const auto config = lb->dir / "probe.yaml";
    std::ofstream(config) << "admin: 127.0.0.1:" << lb->admin << "\n"
                          << cluster_yaml({{"east", a->address()}});
    const auto probe = [&] {
        ChildProcess p({TANDEM_LB_PATH, "--healthcheck", "-c", config.string()}, {}, true);
        p.read_all(10s);
        return p.wait(10s);
    };
    EXPECT_EQ(probe(), 0);
    a->kill();
    ASSERT_TRUE(wait_until([&] { return lb->endpoint_healthy("east", false); }, 5s));
    EXPECT_EQ(probe(), 1);  // no healthy cluster: keepalived gives the VIPs up
    lb->process->signal(SIGTERM);
    lb->process->wait(10s);
    EXPECT_EQ(probe(), 1);  // nothing listening
}

TEST(Balancer, FollowsDnsAfterTheTtlAndKeepsTheLastGoodAnswer) {
    support::FakeDnsServer dns;
    auto [a, b] = upstreams_on_two_addresses();
    ASSERT_TRUE(a && b) << "127.0.0.3:" << (a ? a->port : 0) << " is taken";
    dns.set("clusters.test", {"127.0.0.2"}, 1);
    auto lb = Balancer::start("threads: 1\n" +
                              cluster_yaml({{"svc", "clusters.test:" + std::to_string(a->port)}}) +
                              "dns:\n  servers: ['127.0.0.1:" + std::to_string(dns.port()) +
                              "']\n  minTtl: 200ms\n  retry: 200ms\n");
    ASSERT_TRUE(lb);
    EXPECT_EQ(support::http_request(lb->port, "GET", "/").headers["x-upstream"], "first");
    const auto changed_at = std::chrono::steady_clock::now();
    dns.set("clusters.test", {"127.0.0.3"}, 1);
    ASSERT_TRUE(wait_until(
        [&] {
            return support::http_request(lb->port, "GET", "/").headers["x-upstream"] == "second";
        },
        5s));
    // TTL 1 s: not before it expires (less a little for the time the first answer was in
    // flight), not much after.
    const auto followed = std::chrono::steady_clock::now() - changed_at;
    EXPECT_LT(followed, 2500ms);
    const auto status = lb->status();
    EXPECT_EQ(status["clusters"][0]["endpoints"].size(), 1u);
    EXPECT_EQ(status["clusters"][0]["endpoints"][0]["address"],
              "127.0.0.3:" + std::to_string(a->port));

    // The name disappears (NXDOMAIN): the last good answer stays in use.
    dns.remove("clusters.test");
    const auto queries = dns.queries("clusters.test");
    ASSERT_TRUE(wait_until([&] { return dns.queries("clusters.test") >= queries + 2; }, 5s));
    EXPECT_EQ(support::http_request(lb->port, "GET", "/").headers["x-upstream"], "second");
    EXPECT_GE(lb->metric("tandem_lb_dns_resolutions_total{cluster=\"svc\",result=\"failed\"}"), 1);
    EXPECT_FALSE(lb->status()["clusters"][0]["dns"]["error"].is_null());
}

// New DNS servers apply on reload: the answer the previous ones gave is served meanwhile, the
// new servers are asked right away (not when that answer's TTL is due).
TEST(Balancer, ReloadAsksNewDnsServersAtOnce) {
    support::FakeDnsServer dns_a;
    support::FakeDnsServer dns_b;
    auto [a, b] = upstreams_on_two_addresses();
    ASSERT_TRUE(a && b) << "127.0.0.3:" << (a ? a->port : 0) << " is taken";
    dns_a.set("clusters.test", {"127.0.0.2"}, 300);
    dns_b.set("clusters.test", {"127.0.0.3"}, 300);
    const auto yaml = [&](const support::FakeDnsServer& dns) {
        return "threads: 1\n" +
               cluster_yaml({{"svc", "clusters.test:" + std::to_string(a->port)}}) +
               "dns:\n  servers: ['127.0.0.1:" + std::to_string(dns.port()) + "']\n";
    };
    auto lb = Balancer::start(yaml(dns_a));
    ASSERT_TRUE(lb);
    EXPECT_EQ(support::http_request(lb->port, "GET", "/").headers["x-upstream"], "first");
    const auto changed_at = std::chrono::steady_clock::now();
    ASSERT_TRUE(lb->reload(yaml(dns_b)));
    EXPECT_EQ(lb->status()["config"]["last_reload"]["ok"], true);
    ASSERT_TRUE(wait_until(
        [&] {
            return support::http_request(lb->port, "GET", "/").headers["x-upstream"] == "second";
        },
        5s));
    EXPECT_LT(std::chrono::steady_clock::now() - changed_at, 3s);  // (the TTL is 300 s)
    EXPECT_EQ(dns_b.queries("clusters.test"), 1u);
    EXPECT_EQ(dns_a.queries("clusters.test"), 1u);
}

}  // namespace
