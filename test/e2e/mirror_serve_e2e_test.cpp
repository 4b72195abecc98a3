// The mirror inside tandem serve, end to end: a developer signs up and creates an application on
// the portal instance (east) through tandem-lb (the portal host goes to east, API hosts round
// robin); east's webhooks nudge serve, and within moments the key works on both clusters: 20 of
// 20 requests through tandem-lb. A key regenerated, a plan change, a suspension and a deletion
// follow; east gone, west keeps everything. Real processes on loopback: simulators (with
// webhooks), tandem-lb, tandem serve. Every wait is on observable state.
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/balancer.hpp"
#include "support/http.hpp"
#include "support/serve_process.hpp"
#include "support/sim_fleet.hpp"
#include "support/wait.hpp"

namespace {

using namespace std::chrono_literals;
using support::append;
using support::Balancer;
using support::Serve;
using support::SimFleet;
using support::wait_until;
using Json = nlohmann::json;

constexpr const char* kPortal = "3scale.apps.example.test";
constexpr const char* kApi = "echo.api.test";
constexpr const char* kWebhookToken = "c0ffee-webhook-token-4f9a1b2c3d";

// east and west behind tandem-lb: their gateways for API hosts, their admin/portal side for the
// portal host (east first, west if east fails).
struct PortalBed {
    SimFleet fleet{{"east", "west"}, {"--empty"}, {}, {{"echo.yaml", support::kEchoTwoPlans}}};
    std::unique_ptr<Balancer> lb;
    std::unique_ptr<Serve> serve;

    PortalBed() {
        const auto port = [&](const char* name, bool admin) {
            auto& sim = fleet.sim(name);
            return std::to_string(admin ? sim.admin_port() : sim.gateway_port());
        };
        lb = Balancer::start(
            "threads: 1\nclusters:\n"
            "  - {name: east, address: 127.0.0.1:" +
            port("east", false) +
            "}\n"
            "  - {name: west, address: 127.0.0.1:" +
            port("west", false) +
            "}\n"
            "  - {name: east-portal, address: 127.0.0.1:" +
            port("east", true) +
            "}\n"
            "  - {name: west-portal, address: 127.0.0.1:" +
            port("west", true) +
            "}\n"
            "healthCheck: {path: /status/ready, interval: 100ms, timeout: 80ms, rise: 2, "
            "fall: 2, jitter: 0%}\n"
            "routes:\n"
            "  - {name: portal, hosts: [" +
            std::string(kPortal) +
            "], policy: primary, "
            "clusters: [east-portal, west-portal]}\n"
            "  - {name: api, hosts: [\"*\"], policy: roundRobin, clusters: [east, west]}\n");
    }

    // The admin/portal side of the portal instance, through tandem-lb.
    support::HttpReply portal(const std::string& method,
                              const std::string& target,
                              const std::string& body = "") {
        std::vector<std::pair<std::string, std::string>> headers = {
            {"Host", kPortal},
            {"Authorization", support::basic_auth(fleet.sim("east").token(), "")}};
        if (!body.empty()) {
            headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
        }
        return support::http_request(lb->port, method, target, body, headers);
    }

    // Of n requests with `key` through tandem-lb, how many were answered 200.
    int ok_through_lb(const std::string& key, int n = 20) {
        int ok = 0;
        for (int i = 0; i < n; ++i) {
            ok += support::http_request(lb->port, "GET", "/?user_key=" + key, "", {{"Host", kApi}})
                              .status == 200
                      ? 1
                      : 0;
        }
        return ok;
    }

    Json west_app(const std::string& account_username) {
        auto& west = fleet.sim("west");
        const auto a =
            west.admin("GET", "/admin/api/accounts/find.json?username=" + account_username);
        if (a.status != 200) {
            return {};
        }
        const auto id = Json::parse(a.body)["account"]["id"].dump();
        const auto apps =
            Json::parse(west.admin("GET", "/admin/api/accounts/" + id + "/applications.json").body);
        return apps["applications"].empty() ? Json() : apps["applications"][0]["application"];
    }
};

std::string plan_id(support::SimProcess& sim, const std::string& system_name) {
    const auto services = Json::parse(sim.admin("GET", "/admin/api/services.json").body);
    const auto plans = Json::parse(
        sim.admin("GET", "/admin/api/services/" + services["services"][0]["service"]["id"].dump() +
                             "/application_plans.json")
            .body);
    for (const auto& p : plans["plans"]) {
        if (p["application_plan"]["system_name"] == system_name) {
            return p["application_plan"]["id"].dump();
        }
    }
    return "";
}

TEST(MirrorServe, ADeveloperOnThePortalWorksEverywhereAtOnceWithAWebhook) {
    PortalBed bed;
    ASSERT_TRUE(bed.lb);
    auto& fleet = bed.fleet;
    ASSERT_EQ(fleet.tandem({"apply"}).code, 0);
    fleet.set_env("TANDEM_WEBHOOK_TOKEN", kWebhookToken);
    // A long interval: what reaches west within seconds came by the webhook.
    append(fleet.dir() / "fleet.yaml",
           "serve:\n  listen: 127.0.0.1:0\n  interval: 60s\n  watchInterval: 100ms\n"
           "mirror:\n  source: east\n  interval: 60s\n  deletes: true\n"
           "  webhookToken: {env: TANDEM_WEBHOOK_TOKEN}\n");
    bed.serve = Serve::start(fleet, "fleet.yaml", /*merge_stderr=*/true);
    ASSERT_TRUE(bed.serve);
    auto& serve = *bed.serve;
    ASSERT_TRUE(wait_until([&] { return serve.status()["mirror"]["comparisons"] == 1; }, 20s));
    // serve sets east's webhooks to its own listener, once told where 3scale reaches it
    append(fleet.dir() / "fleet.yaml",
           "  webhooks: {url: \"http://127.0.0.1:" + std::to_string(serve.port) + "\"}\n");
    ASSERT_TRUE(wait_until(
        [&] { return serve.status()["mirror"]["webhooks"]["configured_on_source"] == "yes"; }, 20s))
        << serve.status()["mirror"].dump();
    const auto hooks = Json::parse(fleet.sim("east").admin("GET", "/admin/api/webhooks.json").body);
    EXPECT_EQ(hooks["webhook"]["active"], true);
    EXPECT_EQ(hooks["webhook"]["application_created_on"], true);

    // The developer, on east's portal side through tandem-lb (once its checks passed)
    ASSERT_TRUE(wait_until([&] { return bed.lb->endpoint_healthy("east-portal", true); }, 10s));
    const auto signup =
        bed.portal("POST", "/admin/api/signup.json",
                   "org_name=Dev+Co&username=dev&email=dev@dev.test&password=portal-pass");
    ASSERT_EQ(signup.status, 201u) << signup.body;
    const auto account = Json::parse(signup.body)["account"]["id"].dump();
    const auto created = bed.portal(
        "POST", "/admin/api/accounts/" + account + "/applications.json",
        "name=Mine&plan_id=" + plan_id(fleet.sim("east"), "basic") + "&user_key=dev-key-0001");
    ASSERT_EQ(created.status, 201u) << created.body;
    const auto app = Json::parse(created.body)["application"]["id"].dump();
    const auto created_at = std::chrono::steady_clock::now();
    ASSERT_TRUE(wait_until([&] { return bed.ok_through_lb("dev-key-0001") == 20; }, 15s))
        << serve.status()["mirror"].dump();
    EXPECT_LT(std::chrono::steady_clock::now() - created_at, 15s) << "not the 60 s interval";
    EXPECT_GE(serve.status()["mirror"]["webhooks"]["received"].get<int>(), 1);
    EXPECT_GE(serve.metric("tandem_mirror_objects_total{action=\"create\",instance=\"west\","
                           "kind=\"application\""),
              1.0);
    EXPECT_TRUE(wait_until(
        [&] { return serve.metric("tandem_mirror_propagation_lag_seconds_count") >= 1; }, 10s));

    // The key regenerated on east: the new one works everywhere, the old one nowhere
    const std::string app_path = "/admin/api/accounts/" + account + "/applications/" + app;
    ASSERT_EQ(bed.portal("PUT", app_path + ".json", "user_key=dev-key-0002").status, 200u);
    ASSERT_TRUE(wait_until([&] { return bed.ok_through_lb("dev-key-0002") == 20; }, 15s));
    EXPECT_EQ(bed.ok_through_lb("dev-key-0001"), 0);
    // A plan change and a suspension
    ASSERT_EQ(bed.portal("PUT", app_path + "/change_plan.json",
                         "plan_id=" + plan_id(fleet.sim("east"), "premium"))
                  .status,
              200u);
    const std::string premium_on_west = plan_id(fleet.sim("west"), "premium");
    ASSERT_TRUE(
        wait_until([&] { return bed.west_app("dev")["plan_id"].dump() == premium_on_west; }, 15s));
    ASSERT_EQ(bed.portal("PUT", app_path + "/suspend.json").status, 200u);
    ASSERT_TRUE(wait_until([&] { return bed.west_app("dev")["state"] == "suspended"; }, 15s));
    EXPECT_EQ(bed.ok_through_lb("dev-key-0002"), 0);
    // Deleted on east: gone from west
    ASSERT_EQ(bed.portal("DELETE", app_path + ".json").status, 200u);
    ASSERT_TRUE(wait_until([&] { return bed.west_app("dev").is_null(); }, 15s));

    // A wrong token is refused, and the token is never shown or logged
    EXPECT_EQ(
        support::http_request(serve.port, "POST", "/webhooks/3scale/not-the-token", "<x/>").status,
        404u);
    EXPECT_EQ(serve.status()["mirror"]["webhooks"]["refused"], 1);
    EXPECT_EQ(serve.status().dump().find(kWebhookToken), std::string::npos);

    // east gone: the mirror pauses and west keeps everything
    ASSERT_EQ(bed.portal("POST", "/admin/api/accounts/" + account + "/applications.json",
                         "name=Second&plan_id=" + plan_id(fleet.sim("east"), "basic") +
                             "&user_key=dev-key-0003")
                  .status,
              201u);
    ASSERT_TRUE(wait_until([&] { return bed.ok_through_lb("dev-key-0003") == 20; }, 15s));
    fleet.kill("east");
    support::http_request(serve.port, "POST", std::string("/webhooks/3scale/") + kWebhookToken,
                          "<event/>");
    ASSERT_TRUE(wait_until([&] { return serve.status()["mirror"]["paused"] == true; }, 15s));
    EXPECT_EQ(serve.metric("tandem_mirror_paused"), 1.0);
    EXPECT_FALSE(bed.west_app("dev").is_null());
    ASSERT_TRUE(wait_until([&] { return bed.ok_through_lb("dev-key-0003") == 20; }, 10s))
        << "west serves it alone once tandem-lb sees east down";
    EXPECT_EQ(serve.stop(), 0);
    const auto out = serve.process->read_all(5s);
    EXPECT_EQ(out.find(kWebhookToken), std::string::npos) << "the token in serve's log";
    EXPECT_NE(out.find("mirror"), std::string::npos);
}

}  // namespace
