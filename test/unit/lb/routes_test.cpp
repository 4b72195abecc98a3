// Host routing: which route a Host takes, how a route's policy picks its cluster, and what the
// configuration refuses.
#include "lb/routes.hpp"

#include <gtest/gtest.h>

#include "lb/endpoint_selector.hpp"

namespace lb {
namespace {

using boost::asio::ip::make_address;
using boost::asio::ip::tcp;

TEST(Routes, HostsAreComparedWithoutCasePortOrTrailingDot) {
    EXPECT_EQ(route_host("API.Example.com.:8080"), "api.example.com");
    EXPECT_EQ(route_host("[::1]:80"), "::1");
    EXPECT_EQ(route_host("::1"), "::1");
    EXPECT_EQ(route_host("10.0.0.1:443"), "10.0.0.1");
    EXPECT_TRUE(host_matches("*.example.com", "portal.example.com"));
    EXPECT_TRUE(host_matches("*.example.com", "a.b.example.com"));
    EXPECT_FALSE(host_matches("*.example.com", "example.com"));
    EXPECT_FALSE(host_matches("*.example.com", "badexample.com"));
    EXPECT_TRUE(host_matches("*", "anything"));
    EXPECT_FALSE(host_matches("api.example.com", "api.example.com.evil"));
}

TEST(Routes, TheFirstMatchWinsAndWithoutACatchAllSomeHostsHaveNone) {
    std::vector<RouteConfig> routes(2);
    routes[0].hosts = {"3scale.apps.example.com", "3scale-admin.apps.example.com"};
    routes[1].hosts = {"*.apps.example.com"};
    EXPECT_EQ(match_route(routes, "3scale-admin.apps.example.com:443"), 0u);
    EXPECT_EQ(match_route(routes, "API.apps.example.com"), 1u);
    EXPECT_EQ(match_route(routes, "elsewhere.example.org"), std::nullopt);
    EXPECT_EQ(match_route({}, "anything"), 0u);  // no routes: the implicit catch-all
}

Snapshot three_clusters(bool a = true, bool b = true, bool c = true) {
    Snapshot s;
    s.clusters.push_back({{{tcp::endpoint(make_address("10.0.0.1"), 80), a}}});
    s.clusters.push_back({{{tcp::endpoint(make_address("10.0.0.2"), 80), b}}});
    s.clusters.push_back({{{tcp::endpoint(make_address("10.0.0.3"), 80), c}}});
    return s;
}

TEST(Routes, PrimaryTakesTheFirstHealthyInOrderRoundRobinSpreads) {
    std::vector<RouteConfig> routes(2);
    routes[0].policy = RoutePolicy::kPrimary;
    routes[0].clusters = {1, 0};  // west first, then east
    routes[1].clusters = {0, 1, 2};
    EndpointSelector sel({{1, false}, {1, false}, {1, false}}, routes);
    sel.apply(three_clusters());
    const auto now = EndpointSelector::Clock::now();
    for (int i = 0; i < 5; ++i) {
        EXPECT_EQ(sel.choose(0, std::nullopt, now)->cluster, 1u);
    }
    std::map<std::size_t, int> spread;
    for (int i = 0; i < 30; ++i) {
        ++spread[sel.choose(1, std::nullopt, now)->cluster];
    }
    EXPECT_EQ(spread, (std::map<std::size_t, int>{{0, 10}, {1, 10}, {2, 10}}));
    // the primary fails: down the list; a retry after it failed goes down the list too
    sel.apply(three_clusters(true, false, true));
    EXPECT_EQ(sel.choose(0, std::nullopt, now)->cluster, 0u);
    sel.apply(three_clusters());
    EXPECT_EQ(sel.choose(0, 1, now)->cluster, 0u);
    // nothing else eligible: the excluded one rather than nothing; none: no choice
    sel.apply(three_clusters(false, true, true));
    EXPECT_EQ(sel.choose(0, 1, now)->cluster, 1u);
    sel.apply(three_clusters(false, false, true));
    EXPECT_FALSE(sel.choose(0, std::nullopt, now));  // (cluster 2 is not in the route)
    EXPECT_EQ(sel.choose(1, std::nullopt, now)->cluster, 2u);
}

TEST(Routes, AClusterOutOfServiceIsSkippedByEveryPolicy) {
    std::vector<RouteConfig> routes(1);
    routes[0].policy = RoutePolicy::kPrimary;
    routes[0].clusters = {0, 1};
    EndpointSelector sel({{1, false}, {1, false}, {1, false}}, routes);
    auto s = three_clusters();
    s.clusters[0].admin = AdminState::kMaint;
    sel.apply(s);
    EXPECT_EQ(sel.choose(0, std::nullopt, EndpointSelector::Clock::now())->cluster, 1u);
}

std::vector<std::string> errors_of(const std::string& yaml) {
    std::vector<std::string> out;
    if (auto r = parse_lb_config(yaml, "lb.yaml"); !r) {
        for (const auto& d : r.error()) {
            out.push_back(d.to_string());
        }
    }
    return out;
}

constexpr const char* kClusters =
    "clusters:\n  - {name: east, address: 10.0.0.1:80}\n  - {name: west, address: 10.0.0.2:80}\n";

TEST(Routes, TheConfigurationNamesClustersThatExistAndKeepsTheCatchAllLast) {
    const auto ok = parse_lb_config(std::string(kClusters) + R"(routes:
  - name: portal
    hosts: [3scale.apps.example.com, 3scale-admin.apps.example.com]
    policy: primary
    clusters: [east, west]
  - hosts: ["*"]
    policy: roundRobin
)",
                                    "lb.yaml");
    ASSERT_TRUE(ok) << ok.error().front().to_string();
    ASSERT_EQ(ok->routes.size(), 2u);
    EXPECT_EQ(ok->routes[0].name, "portal");
    EXPECT_EQ(ok->routes[0].clusters, (std::vector<std::size_t>{0, 1}));
    EXPECT_EQ(ok->routes[1].name, "routes[1]");
    EXPECT_EQ(ok->routes[1].clusters, (std::vector<std::size_t>{0, 1}));
    const auto errors = errors_of(std::string(kClusters) + R"(routes:
  - hosts: ["*"]
  - hosts: [API.example.com]
    policy: primary
    clusters: [east, north, east]
  - hosts: [api.example.com, "bad host"]
    policy: sticky
  - hosts: []
  - hosts: [portal.example.com]
    policy: primary
)");
    const auto has = [&](const std::string& text) {
        for (const auto& e : errors) {
            if (e.find(text) != std::string::npos) {
                return true;
            }
        }
        return false;
    };
    EXPECT_TRUE(has("lb.yaml:6: error: routes[1]: comes after the catch-all route routes[0]"));
    EXPECT_TRUE(has("lb.yaml:8: error: routes[1].clusters[1]: no cluster named 'north'"));
    EXPECT_TRUE(has("routes[1].clusters[2]: 'east' is listed twice"));
    EXPECT_TRUE(has("routes[2].hosts[0]: 'api.example.com' is taken by routes[1] already"));
    EXPECT_TRUE(has("routes[2].hosts[1]: must be a host name"));
    EXPECT_TRUE(has("routes[2].policy: must be primary"));
    EXPECT_TRUE(has("routes[3].hosts: is required"));
    EXPECT_TRUE(has("routes[4].clusters: is required with policy primary"));
}

}  // namespace
}  // namespace lb
