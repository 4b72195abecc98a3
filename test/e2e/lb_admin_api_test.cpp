// tandem-lb end to end, the runtime API: PUT /clusters/NAME/state (ready, drain, maint) and what
// each state does to traffic, health checks, /status, /metrics and reloads; who may change it
// (admin.token, loopback). Real processes on loopback (test/support: balancer.hpp).
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <nlohmann/json.hpp>

#include "support/balancer.hpp"
#include "support/http.hpp"
#include "support/wait.hpp"

namespace {

using namespace std::chrono_literals;
using support::Balancer;
using support::cluster_yaml;
using support::kFastChecks;
using support::Load;
using support::Upstream;
using support::wait_until;
using Json = nlohmann::json;
using Headers = std::vector<std::pair<std::string, std::string>>;

support::HttpReply put_state(const Balancer& lb,
                             const std::string& cluster,
                             const std::string& state,
                             const Headers& headers = {},
                             const std::string& ip = "127.0.0.1") {
    return support::http_request_at(ip, lb.admin, "PUT", "/clusters/" + cluster + "/state",
                                    R"({"state": ")" + state + R"("})", headers);
}

Json cluster_of(const Balancer& lb, const std::string& name) {
    const auto status = lb.status();
    for (const auto& c : status["clusters"]) {
        if (c["name"] == name) {
            return c;
        }
    }
    return {};
}

// This machine's first IPv4 address that is not loopback ("" when it has none).
std::string non_loopback_ipv4() {
    ifaddrs* list = nullptr;
    if (::getifaddrs(&list) != 0) {
        return "";
    }
    std::string out;
    for (auto* i = list; i != nullptr && out.empty(); i = i->ifa_next) {
        if (i->ifa_addr != nullptr && i->ifa_addr->sa_family == AF_INET) {
            const auto* in = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
            const auto ip = boost::asio::ip::address_v4(ntohl(in->sin_addr.s_addr));
            if (!ip.is_loopback()) {
                out = ip.to_string();
            }
        }
    }
    ::freeifaddrs(list);
    return out;
}

TEST(BalancerAdminApi, MaintTakesNoTrafficWhileChecksGoOnAndReadyBringsItBack) {
    auto east = Upstream::start("east");
    auto west = Upstream::start("west");
    ASSERT_TRUE(east && west);
    auto lb = Balancer::start(cluster_yaml({{"east", east->address()}, {"west", west->address()}}) +
                              kFastChecks);
    ASSERT_TRUE(lb);
    EXPECT_EQ(cluster_of(*lb, "west")["admin_state"], "ready");
    EXPECT_EQ(lb->metric("tandem_lb_cluster_admin_state{cluster=\"west\",state=\"ready\"}"), 1);
    Load load(lb->port, 4);
    ASSERT_TRUE(wait_until([&] { return load.served_by("west") >= 50; }, 10s));

    const auto r = put_state(*lb, "west", "maint");
    ASSERT_EQ(r.status, 200u) << r.body;
    const auto answer = Json::parse(r.body);
    EXPECT_EQ(answer["admin_state"], "maint");
    EXPECT_EQ(answer["previous"], "ready");
    const auto checks_before = cluster_of(*lb, "west")["endpoints"][0]["checks"].get<int>();
    const auto west_at_maint = load.served_by("west");
    const auto east_at_maint = load.served_by("east");
    ASSERT_TRUE(wait_until([&] { return load.served_by("east") >= east_at_maint + 300; }, 10s));
    // (a request already on its way when the state changed may still land on west)
    EXPECT_LE(load.served_by("west"), west_at_maint + 4);
    const auto west_in_maint = load.served_by("west");
    ASSERT_TRUE(wait_until([&] { return load.served_by("east") >= east_at_maint + 600; }, 10s));
    EXPECT_EQ(load.served_by("west"), west_in_maint) << "a cluster in maint took a new request";
    // The checks go on (every 100 ms): wait for the next ones, still without traffic to west.
    EXPECT_TRUE(wait_until(
        [&] {
            return cluster_of(*lb, "west")["endpoints"][0]["checks"].get<int>() > checks_before + 1;
        },
        5s))
        << "checks stopped in maint";
    EXPECT_EQ(load.served_by("west"), west_in_maint) << "a cluster in maint took a new request";
    const auto c = cluster_of(*lb, "west");
    EXPECT_EQ(c["admin_state"], "maint");
    EXPECT_EQ(c["healthy"], true);
    EXPECT_EQ(lb->metric("tandem_lb_cluster_admin_state{cluster=\"west\",state=\"maint\"}"), 1);
    EXPECT_EQ(lb->metric("tandem_lb_cluster_admin_state{cluster=\"west\",state=\"ready\"}"), 0);
    // The state as GET shows it.
    const auto got = support::http_request(lb->admin, "GET", "/clusters/west/state");
    EXPECT_EQ(Json::parse(got.body)["admin_state"], "maint");

    ASSERT_EQ(put_state(*lb, "west", "ready").status, 200u);
    const auto west_back = load.served_by("west");
    EXPECT_TRUE(wait_until([&] { return load.served_by("west") >= west_back + 100; }, 10s));
    load.stop();
    EXPECT_EQ(load.failed(), 0u) << testing::PrintToString(load.failures());
}

TEST(BalancerAdminApi, DrainLetsTheRequestInFlightFinishAndTakesNoNewOne) {
    auto east = Upstream::start("east");
    auto west = Upstream::start("west");
    ASSERT_TRUE(east && west);
    auto lb = Balancer::start(cluster_yaml({{"east", east->address()}, {"west", west->address()}}) +
                              kFastChecks);
    ASSERT_TRUE(lb);
    ASSERT_EQ(put_state(*lb, "east", "maint").status, 200u);  // every request to west now
    support::HttpReply slow;
    std::jthread t([&] { slow = support::http_request(lb->port, "GET", "/slow?ms=700"); });
    ASSERT_TRUE(wait_until(
        [&] { return support::http_request(west->port, "GET", "/count?slow=1").body == "1\n"; },
        5s));
    ASSERT_EQ(put_state(*lb, "west", "drain").status, 200u);
    ASSERT_EQ(put_state(*lb, "east", "ready").status, 200u);
    for (int i = 0; i < 20; ++i) {
        const auto r = support::http_request(lb->port, "GET", "/");
        EXPECT_EQ(r.body, "east\n") << "a draining cluster took a new request";
    }
    t.join();
    EXPECT_EQ(slow.status, 200u) << slow.error;
    EXPECT_EQ(slow.body, "west\n");
    // Every cluster out of service: the balancer says so on /healthz.
    ASSERT_EQ(put_state(*lb, "east", "maint").status, 200u);
    const auto h = support::http_request(lb->admin, "GET", "/healthz");
    EXPECT_EQ(h.status, 503u);
    EXPECT_EQ(h.body, "no healthy cluster in service\n");
    EXPECT_EQ(support::http_request(lb->port, "GET", "/").status, 503u);
}

TEST(BalancerAdminApi, TheStateSurvivesAReload) {
    auto east = Upstream::start("east");
    auto west = Upstream::start("west");
    ASSERT_TRUE(east && west);
    auto lb = Balancer::start(cluster_yaml({{"east", east->address()}, {"west", west->address()}}) +
                              kFastChecks);
    ASSERT_TRUE(lb);
    ASSERT_EQ(put_state(*lb, "west", "maint").status, 200u);
    // The reload changes west's weight and adds a cluster: west stays in maint.
    auto dr = Upstream::start("dr");
    ASSERT_TRUE(dr);
    ASSERT_TRUE(lb->reload("clusters:\n  - name: east\n    address: " + east->address() +
                           "\n  - name: west\n    address: " + west->address() +
                           "\n    weight: 3\n  - name: dr\n    address: " + dr->address() + "\n" +
                           kFastChecks));
    EXPECT_EQ(lb->status()["config"]["generation"], 2);
    EXPECT_EQ(cluster_of(*lb, "west")["admin_state"], "maint");
    EXPECT_EQ(cluster_of(*lb, "dr")["admin_state"], "ready");
    for (int i = 0; i < 20; ++i) {
        EXPECT_NE(support::http_request(lb->port, "GET", "/").body, "west\n");
    }
}

TEST(BalancerAdminApi, MutationsNeedTheTokenWhenOneIsSet) {
    auto east = Upstream::start("east");
    ASSERT_TRUE(east);
    const auto dir =
        std::filesystem::temp_directory_path() / ("tandem-lb-token-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "token") << "s3cr3t-admin-token\n";
    auto lb = Balancer::start(
        "admin:\n  listen: 127.0.0.1:0\n  token: {file: " + (dir / "token").string() + "}\n" +
        cluster_yaml({{"east", east->address()}}) + kFastChecks);
    ASSERT_TRUE(lb);
    auto r = put_state(*lb, "east", "drain");
    EXPECT_EQ(r.status, 401u);
    EXPECT_EQ(r.headers["www-authenticate"], "Bearer");
    r = put_state(*lb, "east", "drain", {{"Authorization", "Bearer s3cr3t-admin-tokeN"}});
    EXPECT_EQ(r.status, 401u);
    r = put_state(*lb, "east", "drain", {{"Authorization", "Bearer s3cr3t-admin-token-and-more"}});
    EXPECT_EQ(r.status, 401u);
    EXPECT_EQ(r.body.find("s3cr3t"), std::string::npos);
    EXPECT_EQ(cluster_of(*lb, "east")["admin_state"], "ready");
    const Headers good{{"Authorization", "Bearer s3cr3t-admin-token"}};
    r = put_state(*lb, "east", "drain", good);
    EXPECT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(cluster_of(*lb, "east")["admin_state"], "drain");
    // What is wrong with a request, with the right token.
    r = put_state(*lb, "nowhere", "drain", good);
    EXPECT_EQ(r.status, 404u);
    r = put_state(*lb, "east", "sleeping", good);
    EXPECT_EQ(r.status, 400u);
    EXPECT_NE(r.body.find("ready"), std::string::npos) << r.body;
    r = support::http_request(lb->admin, "POST", "/clusters/east/state", "{}", good);
    EXPECT_EQ(r.status, 405u);
    // Reading needs no token.
    EXPECT_EQ(support::http_request(lb->admin, "GET", "/clusters/east/state").status, 200u);
    std::filesystem::remove_all(dir);
}

TEST(BalancerAdminApi, WithoutATokenOnlyALoopbackListenerAcceptsChanges) {
    const auto ip = non_loopback_ipv4();
    if (ip.empty()) {
        GTEST_SKIP() << "this machine has no IPv4 address besides loopback";
    }
    auto east = Upstream::start("east");
    ASSERT_TRUE(east);
    auto lb = Balancer::start("admin: " + ip + ":0\n" + cluster_yaml({{"east", east->address()}}) +
                              kFastChecks);
    ASSERT_TRUE(lb);
    const auto r = put_state(*lb, "east", "maint", {}, ip);
    EXPECT_EQ(r.status, 403u);
    EXPECT_NE(r.body.find("admin.token"), std::string::npos) << r.body;
    const auto s = support::http_request_at(ip, lb->admin, "GET", "/clusters/east/state");
    EXPECT_EQ(Json::parse(s.body)["admin_state"], "ready");
}

}  // namespace
