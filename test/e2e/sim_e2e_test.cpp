// threescale-sim as a real process over loopback: startup, HTTP edge cases, faults, clock, state.
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/stat.h>

#include "support/sim_process.hpp"

namespace {

using Json = nlohmann::json;
using support::SimProcess;

Json json_of(const support::HttpReply& r) {
    return Json::parse(r.body, nullptr, false);
}

std::filesystem::path temp_dir() {
    auto dir = std::filesystem::temp_directory_path() /
               ("tandem-sim-e2e-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    return dir;
}

TEST(SimProcessE2E, RefusesToStartWithoutAToken) {
    support::ChildProcess p({SimProcess::binary(), "--admin-port", "0"},
                            {{"TANDEM_SIM_TOKEN", ""}});
    EXPECT_EQ(p.wait(std::chrono::seconds(10)), 2);
}

TEST(SimProcessE2E, RejectsBadFlags) {
    support::ChildProcess p({SimProcess::binary(), "--fault-error-rate", "1.5"},
                            {{"TANDEM_SIM_TOKEN", "x"}});
    const auto rc = p.wait(std::chrono::seconds(10));
    ASSERT_TRUE(rc.has_value());
    EXPECT_NE(*rc, 0);
}

TEST(SimProcessE2E, ServesTheAdminApiOverHttpWithBasicAuth) {
    SimProcess sim;
    const auto ok = sim.admin("GET", "/admin/api/services.json");
    ASSERT_EQ(ok.status, 200u) << ok.error;
    EXPECT_EQ(json_of(ok)["services"][0]["service"]["system_name"], "api");  // seeded tenant
    const auto bearer = support::http_request(sim.admin_port(), "GET", "/admin/api/services.json",
                                              "", {{"Authorization", "Bearer " + sim.token()}});
    EXPECT_EQ(bearer.status, 403u);
    EXPECT_EQ(sim.admin("GET", "/admin/api/services").status, 406u);
    EXPECT_EQ(sim.control("GET", "/__sim/health").status, 200u);  // no auth on /__sim/
}

TEST(SimProcessE2E, KeepsConnectionsAliveAndAnswersMalformedRequestsWith400) {
    SimProcess sim;
    const std::string get = "GET /__sim/health HTTP/1.1\r\nHost: x\r\n\r\n";
    const std::string two =
        support::raw_exchange(sim.admin_port(), get +
                                                    "GET /__sim/health HTTP/1.1\r\nHost: "
                                                    "x\r\nConnection: close\r\n\r\n");
    std::size_t count = 0;
    for (std::size_t pos = 0; (pos = two.find("HTTP/1.1 200", pos)) != std::string::npos; ++pos) {
        ++count;
    }
    EXPECT_EQ(count, 2u);
    const std::string bad = support::raw_exchange(sim.admin_port(), "NOT HTTP AT ALL\r\n\r\n");
    EXPECT_EQ(bad.rfind("HTTP/1.1 400", 0), 0u) << bad;
    const std::string big_header =
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(64 * 1024, 'a') + "\r\n\r\n";
    EXPECT_EQ(support::raw_exchange(sim.admin_port(), big_header).rfind("HTTP/1.1 431", 0), 0u);
}

TEST(SimProcessE2E, OversizedBodiesAre413) {
    SimProcess sim({"--max-body", "1024"});
    const auto r = sim.admin("POST", "/admin/api/services.json", "name=" + std::string(4096, 'x'));
    EXPECT_EQ(r.status, 413u);
    EXPECT_EQ(sim.admin("GET", "/admin/api/services.json").status, 200u);  // still serving
}

TEST(SimProcessE2E, InjectedFaultsOverTheWire) {
    SimProcess sim({"--empty"});
    ASSERT_EQ(sim.control("PUT", "/__sim/faults", R"({"admin":{"error_rate":1.0}})").status, 200u);
    EXPECT_EQ(sim.admin("POST", "/admin/api/services.json", "name=Never").status, 503u);
    ASSERT_EQ(sim.control("PUT", "/__sim/faults", R"({"admin":{"ambiguous_rate":1.0}})").status,
              200u);
    EXPECT_EQ(sim.admin("POST", "/admin/api/services.json", "name=Maybe").status, 502u);
    ASSERT_EQ(sim.control("PUT", "/__sim/faults", R"({"admin":{"latency_ms":300}})").status, 200u);
    const auto start = std::chrono::steady_clock::now();
    const auto list = sim.admin("GET", "/admin/api/services.json");
    EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(300));
    ASSERT_EQ(list.status, 200u);
    const auto services = json_of(list)["services"];
    ASSERT_EQ(services.size(), 1u);  // "Never" was not created, "Maybe" was
    EXPECT_EQ(services[0]["service"]["name"], "Maybe");
    const auto counters = json_of(sim.control("GET", "/__sim/counters"));
    EXPECT_EQ(counters["faults"]["failed_before"], 1);
    EXPECT_EQ(counters["faults"]["ambiguous"], 1);
    EXPECT_EQ(counters["admin"]["writes"], 1);  // the failed-before request wrote nothing
    EXPECT_EQ(sim.control("PUT", "/__sim/faults", R"({"admin":{"error_rate":"x"}})").status, 400u);
}

TEST(SimProcessE2E, FaultFlagsAreDeterministicForASeed) {
    const auto run = [] {
        SimProcess sim({"--empty", "--fault-seed", "99", "--fault-error-rate", "0.5"});
        std::string statuses;
        for (int i = 0; i < 20; ++i) {
            statuses += std::to_string(sim.admin("GET", "/admin/api/services.json").status) + ",";
        }
        return statuses;
    };
    const std::string first = run();
    EXPECT_EQ(first, run());
    EXPECT_NE(first.find("503"), std::string::npos);
    EXPECT_NE(first.find("200"), std::string::npos);
}

// Through the admin API: a self-managed product at echo.api.test with a backend, a plan whose
// hits are limited to `per_minute`, and an application with user_key e2e-key; deployed and
// promoted.
void setup_echo_product(SimProcess& sim, int per_minute) {
    const auto created = [](const support::HttpReply& r) {
        EXPECT_EQ(r.status, 201u) << r.body;
        return Json::parse(r.body, nullptr, false);
    };
    const auto s = created(sim.admin("POST", "/admin/api/services.json",
                                     "name=Echo&system_name=echo&deployment_option=self_managed"));
    const std::string svc = "/admin/api/services/" + s["service"]["id"].dump();
    const auto b = created(
        sim.admin("POST", "/admin/api/backend_apis.json",
                  "name=Echo&system_name=echo_be&private_endpoint=https://echo.example.net"));
    created(sim.admin("POST", svc + "/backend_usages.json",
                      "backend_api_id=" + b["backend_api"]["id"].dump() + "&path=/"));
    const auto plan = created(sim.admin("POST", svc + "/application_plans.json", "name=Basic"));
    const auto metrics = json_of(sim.admin("GET", svc + "/metrics.json"));
    const std::string hits = metrics["metrics"][0]["metric"]["id"].dump();
    const std::string plan_id = plan["application_plan"]["id"].dump();
    created(sim.admin(
        "POST", "/admin/api/application_plans/" + plan_id + "/metrics/" + hits + "/limits.json",
        "period=minute&value=" + std::to_string(per_minute)));
    const auto acc = created(sim.admin("POST", "/admin/api/signup.json",
                                       "org_name=Dev&username=dev&email=d@x.org&password=secret1"));
    created(sim.admin("POST",
                      "/admin/api/accounts/" + acc["account"]["id"].dump() + "/applications.json",
                      "plan_id=" + plan_id + "&name=app&user_key=e2e-key"));
    ASSERT_EQ(sim.admin("PATCH", svc + "/proxy.json", "endpoint=https://echo.api.test").status,
              200u);
    created(sim.admin("POST", svc + "/proxy/deploy.json"));
    const auto latest = json_of(sim.admin("GET", svc + "/proxy/configs/sandbox/latest.json"));
    created(sim.admin("POST",
                      svc + "/proxy/configs/sandbox/" + latest["proxy_config"]["version"].dump() +
                          "/promote.json",
                      "to=production"));
}

TEST(SimProcessE2E, GatewayLimitsRollOverWithTheControlledClock) {
    SimProcess sim({"--empty", "--freeze-clock", "--clock-start", "1790000000"});
    setup_echo_product(sim, 2);
    const auto call = [&] {
        return support::http_request(sim.gateway_port(), "GET", "/anything?user_key=e2e-key", "",
                                     {{"Host", "echo.api.test"}});
    };
    // 1790000000 is 14:13:20 UTC: move to the start of the next minute (14:14:00)
    ASSERT_EQ(sim.control("POST", "/__sim/clock", R"({"set_epoch":1790000040})").status, 200u);
    EXPECT_EQ(call().status, 200u);
    const auto second = call();
    EXPECT_EQ(second.status, 200u);
    EXPECT_EQ(second.headers.at("x-sim-instance"), "sim");
    const auto limited = call();
    EXPECT_EQ(limited.status, 429u);
    EXPECT_EQ(limited.body, "Usage limit exceeded");
    ASSERT_EQ(sim.control("POST", "/__sim/clock", R"({"advance_seconds":59})").status, 200u);
    EXPECT_EQ(call().status, 429u);  // 14:14:59, same minute
    ASSERT_EQ(sim.control("POST", "/__sim/clock", R"({"advance_seconds":1})").status, 200u);
    EXPECT_EQ(call().status, 200u);  // 14:15:00, a new window
    EXPECT_EQ(sim.control("POST", "/__sim/clock", R"({"advance":1})").status, 400u);
    const auto state = json_of(sim.control("GET", "/__sim/state"));
    EXPECT_EQ(state["clock"]["epoch"], 1790000100);
    EXPECT_FALSE(state["usage"].empty());
}

TEST(SimProcessE2E, StateFilePersistsAcrossRestartsAndSigtermExitsZero) {
    const auto dir = temp_dir();
    const auto file = dir / "state.json";
    {
        SimProcess sim({"--state-file", file.string(), "--name", "east"});
        ASSERT_EQ(sim.admin("POST", "/admin/api/services.json", "name=Durable&system_name=durable")
                      .status,
                  201u);
        sim.process().signal(SIGTERM);
        EXPECT_EQ(sim.process().wait(std::chrono::seconds(10)), 0);
    }
    struct stat st {};
    ASSERT_EQ(::stat(file.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    SimProcess again({"--state-file", file.string(), "--name", "east"});
    const auto list = json_of(again.admin("GET", "/admin/api/services.json"))["services"];
    ASSERT_EQ(list.size(), 2u);
    EXPECT_EQ(list[1]["service"]["system_name"], "durable");
    std::filesystem::remove_all(dir);
}

TEST(SimProcessE2E, CorruptStateFileIsAClearStartupError) {
    const auto dir = temp_dir();
    const auto file = dir / "state.json";
    { std::ofstream(file) << "{ not json"; }
    support::ChildProcess p({SimProcess::binary(), "--state-file", file.string()},
                            {{"TANDEM_SIM_TOKEN", "x"}});
    EXPECT_EQ(p.wait(std::chrono::seconds(10)), 2);
    std::filesystem::remove_all(dir);
}

TEST(SimProcessE2E, DifferentInstancesHaveDifferentIds) {
    SimProcess east({"--name", "east"});
    SimProcess west({"--name", "west"});
    const auto e = json_of(east.admin("GET", "/admin/api/services.json"))["services"][0]["service"];
    const auto w = json_of(west.admin("GET", "/admin/api/services.json"))["services"][0]["service"];
    EXPECT_EQ(e["system_name"], w["system_name"]);
    EXPECT_NE(e["id"], w["id"]);
}

}  // namespace

namespace {

TEST(SimProcessE2E, AuthorizedGatewayRequestsAreForwardedToTheUpstream) {
    // The "upstream" is another simulator's admin port: /__sim/health answers with its name.
    SimProcess upstream({"--name", "upstream-service"});
    SimProcess sim({"--empty", "--upstream", "127.0.0.1:" + std::to_string(upstream.admin_port())});
    setup_echo_product(sim, 1);
    const auto call = [&] {
        return support::http_request(sim.gateway_port(), "GET", "/__sim/health?user_key=e2e-key",
                                     "", {{"Host", "echo.api.test"}});
    };
    const auto forwarded = call();
    ASSERT_EQ(forwarded.status, 200u) << forwarded.body;
    EXPECT_EQ(json_of(forwarded)["name"], "upstream-service");
    EXPECT_EQ(call().status, 429u);  // limited requests never reach the upstream

    SimProcess dead({"--empty", "--upstream", "127.0.0.1:1"});
    setup_echo_product(dead, 5);
    const auto r = support::http_request(dead.gateway_port(), "GET", "/x?user_key=e2e-key", "",
                                         {{"Host", "echo.api.test"}});
    EXPECT_EQ(r.status, 502u);
}

TEST(SimProcessE2E, UpstreamFlagIsValidated) {
    support::ChildProcess p({SimProcess::binary(), "--upstream", "not-an-address"},
                            {{"TANDEM_SIM_TOKEN", "x"}});
    EXPECT_EQ(p.wait(std::chrono::seconds(10)), 2);
}

}  // namespace

namespace {

// Random requests over real ids, methods, bodies and types: every answer is a 2xx/4xx, never a
// 5xx or a dead process. Deterministic for the seed.
TEST(SimProcessE2E, RandomRequestsNeverCrashOrAnswer5xx) {
    SimProcess sim;
    setup_echo_product(sim, 10);
    std::vector<std::string> ids;
    const auto collect = [&](const Json& j, const auto& self) -> void {
        if (j.is_object()) {
            for (const auto& [k, v] : j.items()) {
                if ((k == "id" || k.ends_with("_id")) && v.is_number_integer()) {
                    ids.push_back(v.dump());
                }
                self(v, self);
            }
        } else if (j.is_array()) {
            for (const auto& v : j) {
                self(v, self);
            }
        }
    };
    collect(json_of(sim.control("GET", "/__sim/state")), collect);
    ASSERT_FALSE(ids.empty());
    std::mt19937 rng(20261120);
    const auto pick = [&](const auto& v) { return v[rng() % v.size()]; };
    const std::vector<std::string> templates = {"services",
                                                "services/{}",
                                                "services/{}/metrics",
                                                "services/{}/metrics/{}/methods",
                                                "services/{}/proxy/mapping_rules",
                                                "services/{}/proxy/mapping_rules/{}",
                                                "services/{}/backend_usages",
                                                "services/{}/backend_usages/{}",
                                                "backend_apis/{}",
                                                "backend_apis/{}/metrics",
                                                "backend_apis/{}/mapping_rules",
                                                "services/{}/application_plans",
                                                "services/{}/application_plans/{}/default",
                                                "application_plans/{}/limits",
                                                "application_plans/{}/metrics/{}/limits",
                                                "application_plans/{}/metrics/{}/limits/{}",
                                                "application_plans/{}/metrics/{}/pricing_rules",
                                                "services/{}/proxy/policies",
                                                "services/{}/proxy",
                                                "services/{}/proxy/deploy",
                                                "services/{}/proxy/configs/sandbox/{}/promote",
                                                "accounts/{}/applications",
                                                "accounts/{}/applications/{}/suspend",
                                                "accounts/{}/applications/{}/keys",
                                                "signup",
                                                "accounts/find",
                                                "objects/status"};
    const std::vector<std::string> methods = {"GET", "POST", "PUT", "PATCH", "DELETE"};
    const std::vector<std::string> keys = {"name",
                                           "system_name",
                                           "pattern",
                                           "http_method",
                                           "delta",
                                           "metric_id",
                                           "period",
                                           "value",
                                           "policies_config",
                                           "backend_api_id",
                                           "path",
                                           "to",
                                           "plan_id",
                                           "user_key",
                                           "username",
                                           "email",
                                           "password",
                                           "org_name",
                                           "application_key[]",
                                           "service[name]",
                                           "a[b][c]",
                                           "endpoint",
                                           "min",
                                           "max",
                                           "cost_per_unit",
                                           "object_type",
                                           "object_id",
                                           "key",
                                           "position"};
    const std::vector<std::string> values = {"",
                                             "x",
                                             "-1",
                                             "0",
                                             "1",
                                             "99999999999999999999",
                                             "1.5",
                                             "true",
                                             "[]",
                                             "{}",
                                             "null",
                                             "%00",
                                             "%7B%7D",
                                             "/x/{y}$",
                                             "GET",
                                             "TRACE",
                                             "minute",
                                             "production",
                                             "https://a.example.org",
                                             "[{\"name\":\"cors\",\"version\":\"builtin\"}]"};
    std::map<unsigned, int> seen;
    for (int i = 0; i < 1500; ++i) {
        std::string path = "/admin/api/" + pick(templates) + ".json";
        for (std::size_t pos; (pos = path.find("{}")) != std::string::npos;) {
            path.replace(pos, 2, pick(ids));
        }
        std::string body;
        for (auto n = rng() % 6; n > 0; --n) {
            body += (body.empty() ? "" : "&") + pick(keys) + "=" + pick(values);
        }
        const auto r = sim.admin(pick(methods), path, body);
        ASSERT_NE(r.status, 0u) << "no answer to " << path << " " << body << ": " << r.error;
        ASSERT_LT(r.status, 500u) << path << " " << body << " -> " << r.body;
        ++seen[r.status];
    }
    EXPECT_GT(seen[200] + seen[201], 20);  // the run did reach the handlers
    EXPECT_GT(seen[422], 10);
    EXPECT_EQ(sim.control("GET", "/__sim/health").status, 200u);
}

}  // namespace
