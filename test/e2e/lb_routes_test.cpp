// tandem-lb end to end, host routing: a portal/admin host pinned to one cluster (primary, with
// failover down its list) while API hosts go round robin; first match wins; a host no route
// takes; /status and the access log name the route; --check-config refuses a bad table. Real
// processes on loopback (test/support: balancer.hpp).
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/balancer.hpp"
#include "support/child_process.hpp"
#include "support/http.hpp"
#include "support/wait.hpp"

namespace {

using namespace std::chrono_literals;
using support::Balancer;
using support::kFastChecks;
using support::Upstream;
using support::wait_until;

std::string routes_yaml(const Upstream& east, const Upstream& west, const std::string& extra) {
    return "threads: 1\nclusters:\n  - {name: east, address: " + east.address() +
           "}\n  - {name: west, address: " + west.address() + "}\n" + kFastChecks + R"(routes:
  - name: portal
    hosts: [3scale.apps.example.com, 3scale-admin.apps.example.com]
    policy: primary
    clusters: [east, west]
)" + extra;
}

std::map<std::string, int> served(std::uint16_t port, const std::string& host, int n) {
    std::map<std::string, int> out;
    for (int i = 0; i < n; ++i) {
        const auto r = support::http_request(port, "GET", "/", "", {{"Host", host}});
        ++out[r.status == 200 ? r.body.substr(0, r.body.size() - 1) : std::to_string(r.status)];
    }
    return out;
}

TEST(BalancerRoutes, PortalHostsGoToThePrimaryApiHostsRoundRobin) {
    auto east = Upstream::start("east");
    auto west = Upstream::start("west");
    ASSERT_TRUE(east && west);
    const auto dir =
        std::filesystem::temp_directory_path() / ("tandem-lb-routes-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const auto log = dir / "access.log";
    auto lb = Balancer::start(routes_yaml(*east, *west,
                                          "  - name: api\n    hosts: [\"*\"]\n"
                                          "accessLog: {path: " +
                                              log.string() + "}\n"));
    ASSERT_TRUE(lb);
    EXPECT_EQ(served(lb->port, "3scale.apps.example.com", 10),
              (std::map<std::string, int>{{"east", 10}}));
    EXPECT_EQ(served(lb->port, "3SCALE-ADMIN.apps.example.com:443", 6),
              (std::map<std::string, int>{{"east", 6}}));
    EXPECT_EQ(served(lb->port, "api.example.com", 10),
              (std::map<std::string, int>{{"east", 5}, {"west", 5}}));
    const auto s = lb->status();
    ASSERT_EQ(s["routes"].size(), 2u);
    EXPECT_EQ(s["routes"][0]["name"], "portal");
    EXPECT_EQ(s["routes"][0]["policy"], "primary");
    EXPECT_EQ(s["routes"][0]["clusters"], nlohmann::json::array({"east", "west"}));
    // The access log names the route each request took.
    std::map<std::string, int> routes_logged;
    ASSERT_TRUE(wait_until(
        [&] {
            routes_logged.clear();
            std::ifstream in(log);
            for (std::string line; std::getline(in, line);) {
                ++routes_logged[nlohmann::json::parse(line).value("route", "")];
            }
            return routes_logged["portal"] + routes_logged["api"] == 26;
        },
        5s));
    EXPECT_EQ(routes_logged["portal"], 16);
    // The primary fails: the portal hosts go down the list, the API hosts to what is left.
    east->kill();
    ASSERT_TRUE(wait_until([&] { return lb->endpoint_healthy("east", false); }, 5s));
    EXPECT_EQ(served(lb->port, "3scale.apps.example.com", 6),
              (std::map<std::string, int>{{"west", 6}}));
    EXPECT_EQ(served(lb->port, "api.example.com", 6), (std::map<std::string, int>{{"west", 6}}));
    std::filesystem::remove_all(dir);
}

TEST(BalancerRoutes, AHostNoRouteTakesGets404) {
    auto east = Upstream::start("east");
    auto west = Upstream::start("west");
    ASSERT_TRUE(east && west);
    auto lb = Balancer::start(routes_yaml(*east, *west,
                                          "  - hosts: [\"*.api.example.com\"]\n"
                                          "    clusters: [west]\n"));
    ASSERT_TRUE(lb);
    EXPECT_EQ(served(lb->port, "pets.api.example.com", 4),
              (std::map<std::string, int>{{"west", 4}}));
    const auto r = support::http_request(lb->port, "GET", "/", "", {{"Host", "other.example.org"}});
    EXPECT_EQ(r.status, 404u);
    EXPECT_NE(r.body.find("no route"), std::string::npos) << r.body;
    EXPECT_EQ(served(lb->port, "api.example.com", 2), (std::map<std::string, int>{{"404", 2}}));
}

TEST(BalancerRoutes, CheckConfigRefusesUnknownClustersAndACatchAllBeforeOthers) {
    const auto dir = std::filesystem::temp_directory_path() /
                     ("tandem-lb-routes-cfg-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "lb.yaml") << R"(clusters:
  - {name: east, address: 127.0.0.1:1}
routes:
  - hosts: ["*"]
  - hosts: [portal.example.com]
    policy: primary
    clusters: [east, west]
)";
    support::ChildProcess check(
        {support::tandem_lb_path(), "--check-config", "-c", (dir / "lb.yaml").string()}, {}, true);
    const auto out = check.read_all(10s);
    EXPECT_EQ(check.wait(10s), 1);
    EXPECT_NE(out.find("lb.yaml:5: error: routes[1]: comes after the catch-all route routes[0]"),
              std::string::npos)
        << out;
    EXPECT_NE(out.find("lb.yaml:7: error: routes[1].clusters[1]: no cluster named 'west'"),
              std::string::npos)
        << out;
    std::filesystem::remove_all(dir);
}

}  // namespace
