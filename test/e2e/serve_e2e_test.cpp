// tandem serve end to end: real threescale-sim processes, tandem-lb and tandem serve itself on
// loopback (ports 0, readiness from the ready lines; every wait is on an observable state).
#include <atomic>
#include <csignal>
#include <fstream>
#include <thread>

#include <boost/asio.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/balancer.hpp"
#include "support/child_process.hpp"
#include "support/http.hpp"
#include "support/serve_process.hpp"
#include "support/sim_fleet.hpp"
#include "support/wait.hpp"

namespace {

using namespace std::chrono_literals;
using support::append;
using support::Balancer;
using support::json_of;
using support::Serve;
using support::SimFleet;
using support::wait_until;
using Json = nlohmann::json;

// The value of the echo plan's one per-minute limit on `sim`: -1 when there is none (or the
// instance does not answer), -2 when there are several (a duplicate).
std::int64_t minute_limit_at(std::uint16_t admin_port) {
    const auto r = support::http_request(admin_port, "GET", "/__sim/state", "", {}, 5s);
    if (r.status != 200) {
        return -1;
    }
    const auto state = Json::parse(r.body);
    std::int64_t value = -1;
    for (const auto& l : state["limits"]) {
        if (l["period"] == "minute") {
            value = value == -1 ? l["value"].get<std::int64_t>() : -2;
        }
    }
    return value;
}

std::int64_t minute_limit(support::SimProcess& sim) {
    return minute_limit_at(sim.admin_port());
}

// Sets the echo plan's per-minute limit on `sim` behind tandem's back (as an admin in the UI).
void edit_limit(support::SimProcess& sim, std::int64_t value) {
    const auto state = Json::parse(sim.control("GET", "/__sim/state").body);
    for (const auto& l : state["limits"]) {
        if (l["period"] == "minute") {
            const auto path = "/admin/api/application_plans/" + l["plan_id"].dump() + "/metrics/" +
                              l["metric_id"].dump() + "/limits/" + l["id"].dump() + ".json";
            const auto r = sim.admin("PUT", path, "value=" + std::to_string(value));
            ASSERT_EQ(r.status, 200u) << r.body;
            return;
        }
    }
    FAIL() << "no per-minute limit on the instance";
}

const char* const kServeBasics =
    "serve:\n  listen: 127.0.0.1:0\n  interval: 1s\n  watchInterval: 100ms\n  maxBackoff: 2s\n";

std::string cluster_state(const Balancer& lb, const std::string& name, const char* field) {
    const auto s = lb.status();
    for (const auto& c : s["clusters"]) {
        if (c["name"] == name) {
            return c[field].dump();
        }
    }
    return "";
}

TEST(Serve, EnforceRevertsAnOutOfBandEditAndReportOnlyReportsIt) {
    SimFleet fleet({"east", "west"}, {"--empty"}, {}, {{"echo.yaml", support::kEchoProduct}});
    append(fleet.dir() / "fleet.yaml", std::string(kServeBasics) + "  mode: enforce\n");
    auto serve = Serve::start(fleet);
    ASSERT_TRUE(serve);
    // The first passes create everything; the 100/minute is split 50/50.
    ASSERT_TRUE(wait_until([&] { return minute_limit(fleet.sim("west")) == 50; }, 20s));
    ASSERT_TRUE(wait_until([&] { return minute_limit(fleet.sim("east")) == 50; }, 20s));
    EXPECT_TRUE(wait_until(
        [&] { return support::http_request(serve->port, "GET", "/readyz").status == 200; }, 5s));
    EXPECT_EQ(support::http_request(serve->port, "GET", "/healthz").status, 200u);

    edit_limit(fleet.sim("west"), 500);
    ASSERT_EQ(minute_limit(fleet.sim("west")), 500);
    ASSERT_TRUE(wait_until([&] { return minute_limit(fleet.sim("west")) == 50; }, 10s))
        << "the edit was not reverted";
    EXPECT_TRUE(wait_until(
        [&] {
            return serve->metric("tandem_reconcile_total{instance=\"west\",result=\"applied\"}") >=
                   2;
        },
        5s));
    EXPECT_GE(serve->metric("tandem_apply_operations_total{action=\"update\",instance=\"west\","
                            "result=\"ok\"}"),
              1);
    EXPECT_EQ(serve->metric("tandem_instance_up{instance=\"west\"}"), 1);
    EXPECT_GT(serve->metric("tandem_last_success_timestamp_seconds{instance=\"west\"}"), 1.7e9);
    EXPECT_EQ(serve->stop(), 0);

    support::edit(fleet.dir() / "fleet.yaml", "  mode: enforce\n", "  mode: report\n");
    serve = Serve::start(fleet);
    ASSERT_TRUE(serve);
    edit_limit(fleet.sim("west"), 500);
    const int before = serve->passes("west");
    ASSERT_TRUE(wait_until(
        [&] {
            const auto i = serve->instance("west");
            return !i.is_null() && i["passes"].get<int>() >= before + 2 &&
                   i["last_pass"]["result"] == "drift";
        },
        15s))
        << serve->status().dump(2);
    EXPECT_EQ(minute_limit(fleet.sim("west")), 500) << "report mode wrote";
    const auto west = serve->instance("west");
    // (a limit's value is its instance's share of the global one: a split mismatch)
    EXPECT_EQ(west["last_pass"]["drift"].value("split_mismatch", 0), 1) << west.dump(2);
    EXPECT_EQ(west["last_pass"]["differences_found"], 1);
    EXPECT_EQ(serve->metric("tandem_drift_objects{instance=\"west\",kind=\"split_mismatch\"}"), 1);
    EXPECT_EQ(serve->metric("tandem_drift_objects{instance=\"east\""), 0);
    EXPECT_EQ(serve->status()["mode"], "report");
    EXPECT_EQ(serve->stop(), 0);
}

TEST(Serve, ABrokenEditKeepsTheLastGoodStateAndAFixedOneIsTakenAtOnce) {
    SimFleet fleet({"east", "west"}, {"--empty"}, {}, {{"echo.yaml", support::kEchoProduct}});
    append(fleet.dir() / "fleet.yaml", kServeBasics);
    auto serve = Serve::start(fleet);
    ASSERT_TRUE(serve);
    ASSERT_TRUE(wait_until([&] { return minute_limit(fleet.sim("west")) == 50; }, 20s));
    const auto product = fleet.dir() / "products" / "echo.yaml";
    support::edit(product, "value: 100", "value: lots");
    ASSERT_TRUE(wait_until(
        [&] {
            const auto s = serve->status();
            return !s.is_null() && s["desired_state"]["serving_last_good"] == true;
        },
        10s));
    const auto s = serve->status();
    EXPECT_NE(s["desired_state"]["last_reload"]["error"].get<std::string>().find("echo.yaml"),
              std::string::npos)
        << s.dump(2);
    EXPECT_EQ(serve->metric("tandem_config_last_reload_successful"), 0);
    // The passes go on with the last good state.
    const int before = serve->passes("west");
    ASSERT_TRUE(wait_until([&] { return serve->passes("west") >= before + 2; }, 10s));
    EXPECT_EQ(minute_limit(fleet.sim("west")), 50);
    support::edit(product, "value: lots", "value: 300");
    ASSERT_TRUE(wait_until([&] { return minute_limit(fleet.sim("west")) == 150; }, 10s));
    EXPECT_EQ(serve->metric("tandem_config_last_reload_successful"), 1);
    // SIGHUP reads the files again at once (a new generation of the desired state).
    const auto generation = serve->status()["desired_state"]["generation"].get<int>();
    serve->process->signal(SIGHUP);
    ASSERT_TRUE(wait_until(
        [&] {
            const auto d = serve->status()["desired_state"];
            return d["generation"] == generation + 1 && d["last_reload"]["cause"] == "SIGHUP";
        },
        10s));
    EXPECT_EQ(serve->stop(), 0);
}

// Two clusters behind tandem-lb, whose health checks ask the simulators' gateways.
struct Bed {
    SimFleet fleet{{"east", "west"}, {"--empty"}, {}, {{"echo.yaml", support::kEchoProduct}}};
    std::unique_ptr<Balancer> lb;

    Bed() {
        lb = Balancer::start(
            "threads: 1\nclusters:\n  - name: east\n    address: 127.0.0.1:" +
            std::to_string(fleet.sim("east").gateway_port()) +
            "\n  - name: west\n    address: 127.0.0.1:" +
            std::to_string(fleet.sim("west").gateway_port()) +
            "\nhealthCheck:\n  path: /status/ready\n  interval: 100ms\n  timeout: 80ms\n"
            "  rise: 2\n  fall: 2\n  jitter: 0%\n");
    }
    void serve_section(const std::string& balancer_url) {
        append(fleet.dir() / "fleet.yaml",
               std::string(kServeBasics) + "  balancers:\n    - {url: " + balancer_url +
                   "}\n  resplit: {after: 1s, restoreAfter: 1s, poll: 200ms, timeout: 150ms}\n");
    }
};

TEST(Serve, ReSplitsWhenAClusterGoesAwayAndRestoresWithoutEverOverAdmitting) {
    Bed bed;
    ASSERT_TRUE(bed.lb);
    bed.serve_section("http://127.0.0.1:" + std::to_string(bed.lb->admin));
    auto serve = Serve::start(bed.fleet);
    ASSERT_TRUE(serve);
    auto& fleet = bed.fleet;
    ASSERT_TRUE(wait_until([&] { return minute_limit(fleet.sim("west")) == 50; }, 20s));

    // east goes away: within `after` + a pass, west holds the whole 100 and east is in maint.
    fleet.kill("east");
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(wait_until([&] { return minute_limit(fleet.sim("west")) == 100; }, 15s))
        << serve->status().dump(2);
    const auto took = std::chrono::steady_clock::now() - t0;
    // after (1s) + the balancer's fall (2 x 100ms) + a poll (200ms) + a pass (< 1s)
    EXPECT_LT(took, 6s);
    EXPECT_EQ(cluster_state(*bed.lb, "east", "admin_state"), "\"maint\"");
    EXPECT_EQ(serve->instance("east")["split_state"], "out");
    EXPECT_EQ(serve->metric("tandem_instance_in_split{instance=\"east\"}"), 0);
    EXPECT_EQ(serve->metric("tandem_split_transitions_total{instance=\"east\",to=\"out\"}"), 1);

    // east comes back empty: everything is created on it while it is in maint; west is lowered
    // to 50 first, then east is set ready. Sampled all along: never more than 100 admitted.
    std::atomic<bool> sampling{true};
    std::atomic<int> samples{0};
    std::vector<std::string> violations;
    const auto east_port = fleet.sim("east").admin_port();  // (the same after the restart)
    const auto west_port = fleet.sim("west").admin_port();
    std::jthread sampler([&] {
        while (sampling) {
            // the balancer's view first: a correct order can never look like a violation
            const bool ready = cluster_state(*bed.lb, "east", "admin_state") == "\"ready\"";
            const auto west = minute_limit_at(west_port);
            const auto east = minute_limit_at(east_port);
            if (ready && (east < 0 || west < 0 || east + west > 100)) {
                violations.push_back("east ready with east " + std::to_string(east) + " and west " +
                                     std::to_string(west));
            }
            ++samples;
        }
    });
    fleet.restart("east");
    ASSERT_TRUE(wait_until(
        [&] { return cluster_state(*bed.lb, "east", "admin_state") == "\"ready\""; }, 20s))
        << serve->status().dump(2);
    ASSERT_TRUE(wait_until([&] { return minute_limit(fleet.sim("east")) == 50; }, 5s));
    EXPECT_EQ(minute_limit(fleet.sim("west")), 50);
    sampling = false;
    sampler.join();
    EXPECT_GT(samples.load(), 20);
    EXPECT_TRUE(violations.empty()) << testing::PrintToString(violations);
    const auto s = serve->status();
    std::vector<std::string> path;
    for (const auto& t : s["transitions"]) {
        if (t["instance"] == "east") {
            path.push_back(t["from"].get<std::string>() + "->" + t["to"].get<std::string>());
        }
    }
    EXPECT_EQ(path, (std::vector<std::string>{"in->out", "out->restoring", "restoring->in"}));
    EXPECT_EQ(serve->instance("east")["split_state"], "in");
    EXPECT_EQ(serve->stop(), 0);
}

TEST(Serve, WithNoBalancerReachableNothingIsReSplit) {
    Bed bed;
    ASSERT_TRUE(bed.lb);
    bed.serve_section("http://127.0.0.1:" + std::to_string(bed.lb->admin));
    auto serve = Serve::start(bed.fleet);
    ASSERT_TRUE(serve);
    auto& fleet = bed.fleet;
    ASSERT_TRUE(wait_until([&] { return minute_limit(fleet.sim("west")) == 50; }, 20s));
    bed.lb.reset();  // the balancer goes away, then east does
    fleet.kill("east");
    ASSERT_TRUE(wait_until(
        [&] {
            const auto s = serve->status();
            return !s.is_null() && s["balancers"][0]["reachable"] == false;
        },
        5s));
    // Long enough for `after` several times over, counted in west's passes (1s apart).
    const int before = serve->passes("west");
    ASSERT_TRUE(wait_until([&] { return serve->passes("west") >= before + 3; }, 15s));
    EXPECT_EQ(minute_limit(fleet.sim("west")), 50);
    EXPECT_EQ(serve->instance("east")["split_state"], "in");
    EXPECT_EQ(serve->metric("tandem_balancer_up"), 0);
    EXPECT_EQ(serve->instance("east")["up"], false);
    EXPECT_EQ(serve->stop(), 0);
}

TEST(Serve, TwoServeProcessesUnderFaultsConvergeWithoutADuplicate) {
    SimFleet fleet({"east", "west"}, {"--empty"}, {},
                   {{"echo.yaml", support::kEchoProduct}, {"acme.yaml", support::kAcmeKeylessApp}});
    append(fleet.dir() / "fleet.yaml", kServeBasics);
    support::edit(fleet.dir() / "fleet.yaml", "    timeout: 5s\n",
                  "    timeout: 5s\n    retries: {attempts: 2, baseDelay: 1ms, maxDelay: 5ms}\n");
    for (const auto* name : {"east", "west"}) {
        // writes performed then answered 502, and plain 503s, at random
        fleet.sim(name).control("PUT", "/__sim/faults",
                                R"({"seed":7,"admin":{"ambiguous_rate":0.25,"error_rate":0.1}})");
    }
    auto a = Serve::start(fleet);
    auto b = Serve::start(fleet);
    ASSERT_TRUE(a && b);
    ASSERT_TRUE(wait_until(
        [&] {
            return a->passes("east") >= 4 && b->passes("east") >= 4 && a->passes("west") >= 4 &&
                   b->passes("west") >= 4;
        },
        60s));
    for (const auto* name : {"east", "west"}) {
        fleet.sim(name).control("PUT", "/__sim/faults", "{}");
    }
    // Both converge: a pass of each that started after the faults ended finds nothing to do.
    for (auto* s : {a.get(), b.get()}) {
        for (const auto* name : {"east", "west"}) {
            const int from = s->passes(name);
            ASSERT_TRUE(wait_until(
                [&] {
                    const auto i = s->instance(name);
                    return i["passes"].get<int>() > from + 1 &&
                           i["last_pass"]["result"] == "converged";
                },
                20s))
                << s->status().dump(2);
        }
    }
    EXPECT_EQ(a->stop(), 0);
    EXPECT_EQ(b->stop(), 0);
    for (const auto* name : {"east", "west"}) {
        SCOPED_TRACE(name);
        EXPECT_EQ(support::duplicated_rules(fleet.sim(name)), 0);
        EXPECT_EQ(minute_limit(fleet.sim(name)), 50);
        const auto state = json_of(fleet.sim(name).control("GET", "/__sim/state"));
        // one application, and the same user_key on both instances
        std::vector<std::string> keys;
        for (const auto& app : state["applications"]) {
            keys.push_back(app["user_key"].get<std::string>());
        }
        ASSERT_EQ(keys.size(), 1u) << state["applications"].dump(2);
        const auto east_keys = json_of(fleet.sim("east").control("GET", "/__sim/state"));
        EXPECT_EQ(keys.front(), east_keys["applications"][0]["user_key"].get<std::string>());
        for (const auto* kind : {"services", "backend_apis", "plans", "accounts", "users"}) {
            std::map<std::string, int> seen;
            for (const auto& o : state[kind]) {
                const auto key = o.value("system_name", o.value("username", o.dump())) +
                                 o.value("_owner_id", Json()).dump() +
                                 o.value("service_id", Json()).dump() +
                                 o.value("account_id", Json()).dump();
                EXPECT_EQ(++seen[key], 1) << kind << " duplicated: " << key;
            }
        }
    }
    const auto drift = fleet.tandem({"drift", "--prune"});
    EXPECT_EQ(drift.code, 0) << drift.out;
    EXPECT_EQ(drift.out.find("ADMIN-PASSWORD-CANARY"), std::string::npos);
}

}  // namespace
