// `tandem` against real threescale-sim processes over loopback.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <signal.h>

#include "support/sim_fleet.hpp"

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using support::CommandRun;
using support::duplicated_rules;
using support::edit;
using support::json_of;
using support::run_tandem;
using support::slurp;
using Fleet = support::SimFleet;
using support::kEchoProduct;

TEST(SyncE2E, ApplyFromEmptyThenDriftIsCleanAndASecondApplyWritesNothing) {
    Fleet fleet({"east", "west"});
    auto plan = fleet.tandem({"plan"});
    EXPECT_EQ(plan.code, 2) << plan.out;
    EXPECT_NE(plan.out.find("+ create product petstore"), std::string::npos) << plan.out;
    EXPECT_EQ(fleet.writes("east"), 0u);  // plan is read-only

    auto apply = fleet.tandem({"apply"});
    ASSERT_EQ(apply.code, 0) << apply.out;
    EXPECT_NE(apply.out.find("east: 32 done, 0 failed — converged"), std::string::npos)
        << apply.out;
    EXPECT_NE(apply.out.find("west: 32 done, 0 failed — converged"), std::string::npos);

    auto drift = fleet.tandem({"drift"});
    EXPECT_EQ(drift.code, 0) << drift.out;
    EXPECT_NE(drift.out.find("east: in sync"), std::string::npos) << drift.out;

    fleet.reset_counters();
    auto again = fleet.tandem({"apply"});
    EXPECT_EQ(again.code, 0) << again.out;
    EXPECT_EQ(fleet.writes("east"), 0u);
    EXPECT_EQ(fleet.writes("west"), 0u);
    EXPECT_EQ(duplicated_rules(fleet.sim("east")), 0);

    // the production config serves the desired rules: a gateway call is counted as list_pets
    const auto st = json_of(fleet.sim("east").admin("GET", "/admin/api/services.json"));
    ASSERT_EQ(st["services"].size(), 1u);
}

TEST(SyncE2E, AChangeInTheCrsShowsExactlyInThePlanThenApplyConverges) {
    Fleet fleet({"east", "west"});
    ASSERT_EQ(fleet.tandem({"apply"}).code, 0);
    const auto products = fleet.dir() / "products";
    edit(products / "petstore.yaml", "value: 100\n", "value: 50\n");  // basic/hits/minute
    edit(products / "petstore.yaml", "metricMethodRef: status\n      increment: 1",
         "metricMethodRef: status\n      increment: 2");
    edit(products / "petstore.yaml", "allow_origin: \"*\"",
         "allow_origin: https://shop.example.com");
    edit(products / "petstore.yaml", "trialPeriod: 14", "trialPeriod: 30");
    auto plan = fleet.tandem({"plan", "--output", "json", "--instance", "east"});
    ASSERT_EQ(plan.code, 2) << plan.out;
    const Json report = Json::parse(plan.out.substr(plan.out.find('{')), nullptr, false);
    ASSERT_FALSE(report.is_discarded()) << plan.out;
    EXPECT_EQ(report["schema_version"], 1);
    ASSERT_EQ(report["instances"].size(), 1u);
    std::multiset<std::string> ops;
    for (const auto& op : report["instances"][0]["operations"]) {
        ops.insert(op["action"].get<std::string>() + " " + op["type"].get<std::string>() + " " +
                   op["name"].get<std::string>());
    }
    EXPECT_EQ(ops, (std::multiset<std::string>{
                       "update limit basic/hits/minute", "update mapping rule GET /status$",
                       "update policy chain policies", "update application plan premium",
                       "deploy proxy config staging", "promote proxy config production"}))
        << plan.out;
    auto apply = fleet.tandem({"apply"});
    ASSERT_EQ(apply.code, 0) << apply.out;
    auto drift = fleet.tandem({"drift"});
    EXPECT_EQ(drift.code, 0) << drift.out;

    // a new pattern is a new rule: the CR owns its rules, so apply deletes the old one itself
    edit(products / "petstore.yaml", "pattern: /status$", "pattern: /healthz$");
    plan = fleet.tandem({"plan"});
    EXPECT_NE(plan.out.find("- delete mapping rule petstore: GET /status$"), std::string::npos)
        << plan.out;
    ASSERT_EQ(fleet.tandem({"apply"}).code, 0);
    drift = fleet.tandem({"drift"});
    EXPECT_EQ(drift.code, 0) << drift.out;
    EXPECT_EQ(drift.out.find("/status$"), std::string::npos) << drift.out;
}

TEST(SyncE2E, DriftCatchesAChangeMadeDirectlyOnOneInstance) {
    Fleet fleet({"east", "west"});
    ASSERT_EQ(fleet.tandem({"apply"}).code, 0);
    // someone raises the basic plan's hits/minute on west by hand
    auto& west = fleet.sim("west");
    const Json services = json_of(west.admin("GET", "/admin/api/services.json"));
    const std::string svc = services["services"][0]["service"]["id"].dump();
    const Json plans =
        json_of(west.admin("GET", "/admin/api/services/" + svc + "/application_plans.json"));
    std::string plan_id;
    for (const auto& p : plans["plans"]) {
        if (p["application_plan"]["system_name"] == "basic") {
            plan_id = p["application_plan"]["id"].dump();
        }
    }
    const Json limits =
        json_of(west.admin("GET", "/admin/api/application_plans/" + plan_id + "/limits.json"));
    for (const auto& l : limits["limits"]) {
        if (l["limit"]["period"] == "minute" && l["limit"]["value"] == 50) {  // 100 split 50/50
            ASSERT_EQ(west.admin("PUT",
                                 "/admin/api/application_plans/" + plan_id + "/metrics/" +
                                     l["limit"]["metric_id"].dump() + "/limits/" +
                                     l["limit"]["id"].dump() + ".json",
                                 "value=1000")
                          .status,
                      200u);
        }
    }
    auto drift = fleet.tandem({"drift", "--output", "json"});
    ASSERT_EQ(drift.code, 2) << drift.out;
    const Json report = Json::parse(drift.out.substr(drift.out.find('{')));
    ASSERT_EQ(report["drifts"].size(), 1u) << drift.out;
    const Json& d = report["drifts"][0];
    EXPECT_EQ(d["instance"], "west");
    EXPECT_EQ(d["kind"], "split_mismatch");
    EXPECT_EQ(d["object"]["type"], "limit");
    EXPECT_EQ(d["object"]["name"], "basic/hits/minute");
    EXPECT_EQ(d["field"], "value");
    EXPECT_EQ(d["expected"], "50");
    EXPECT_EQ(d["actual"], "1000");
    EXPECT_EQ(d["global_value"], 100);
    EXPECT_EQ(d["weight"], 1);
    EXPECT_EQ(d["rule"], "hamilton 100*1/2 = 50.00 -> 50");
    EXPECT_EQ(report["summary"]["by_instance"]["east"], 0);
    auto md = fleet.tandem({"drift", "--output", "markdown"});
    EXPECT_EQ(md.code, 2);
    EXPECT_NE(
        md.out.find(
            "| west | split_mismatch | limit petstore: basic/hits/minute | value | `50 (of 100)` "
            "| `1000` |"),
        std::string::npos)
        << md.out;
    // apply restores it in place
    ASSERT_EQ(fleet.tandem({"apply"}).code, 0);
    EXPECT_EQ(fleet.tandem({"drift"}).code, 0);
}

TEST(SyncE2E, TheCrOwnsItsChildrenAndPruneRemovesWholeObjectsInOrder) {
    // default tenants: the "API" product and "API Backend" exist and are not in the CRs
    Fleet fleet({"east"}, {});
    ASSERT_EQ(fleet.tandem({"apply"}).code, 0);
    auto& east = fleet.sim("east");
    const Json services = json_of(east.admin("GET", "/admin/api/services.json"));
    std::string svc;
    for (const auto& s : services["services"]) {
        if (s["service"]["system_name"] == "petstore") {
            svc = "/admin/api/services/" + s["service"]["id"].dump();
        }
    }
    // hand-made: a metric, a rule using it, in the promoted config; and a plan
    const Json m = json_of(east.admin("POST", svc + "/metrics.json",
                                      "friendly_name=Legacy&system_name=legacy&unit=call"));
    ASSERT_EQ(
        east.admin("POST", svc + "/proxy/mapping_rules.json",
                   "http_method=GET&pattern=/legacy&delta=1&metric_id=" + m["metric"]["id"].dump())
            .status,
        201u);
    ASSERT_EQ(
        east.admin("POST", svc + "/application_plans.json", "name=Old plan&system_name=old_plan")
            .status,
        201u);
    ASSERT_EQ(east.admin("POST", svc + "/proxy/deploy.json").status, 201u);
    const Json latest = json_of(east.admin("GET", svc + "/proxy/configs/sandbox/latest.json"));
    ASSERT_EQ(east.admin("POST",
                         svc + "/proxy/configs/sandbox/" +
                             latest["proxy_config"]["version"].dump() + "/promote.json",
                         "to=production")
                  .status,
              201u);

    // the hand-made children of a product its CR owns are drift; whole objects no CR describes
    // are listed, and count only for drift --prune
    auto drift = fleet.tandem({"drift"});
    EXPECT_EQ(drift.code, 2);
    for (const char* expected :
         {"unmanaged  product api", "unmanaged  backend api_backend",
          "changed  metric petstore: legacy  exists: expected no",
          "changed  mapping rule petstore: GET /legacy  exists: expected no",
          "changed  application plan petstore: old_plan  exists: expected no"}) {
        EXPECT_NE(drift.out.find(expected), std::string::npos) << expected << "\n" << drift.out;
    }
    // apply deletes the children, the metric only after a config without it is promoted (3scale
    // refuses otherwise); the product and backend no CR describes stay
    auto apply = fleet.tandem({"apply"});
    ASSERT_EQ(apply.code, 0) << apply.out;
    EXPECT_EQ(apply.out.find("FAIL"), std::string::npos) << apply.out;
    EXPECT_LT(apply.out.find("promote proxy config of petstore"),
              apply.out.find("delete metric petstore: legacy"));
    EXPECT_EQ(apply.out.find("delete product api"), std::string::npos) << apply.out;
    drift = fleet.tandem({"drift"});
    EXPECT_EQ(drift.code, 0) << drift.out;
    EXPECT_NE(drift.out.find("unmanaged  product api"), std::string::npos) << drift.out;
    EXPECT_EQ(fleet.tandem({"drift", "--prune"}).code, 2);
    // with --prune the product goes before the backend it used
    auto prune = fleet.tandem({"apply", "--prune"});
    ASSERT_EQ(prune.code, 0) << prune.out;
    EXPECT_EQ(prune.out.find("FAIL"), std::string::npos) << prune.out;
    const auto at = [&](const std::string& s) { return prune.out.find(s); };
    EXPECT_LT(at("delete product api"), at("delete backend api_backend"));
    auto clean = fleet.tandem({"drift", "--prune"});
    EXPECT_EQ(clean.code, 0) << clean.out;
}

TEST(SyncE2E, ApplyConvergesUnderInjectedFaultsWithoutDuplicates) {
    for (const int seed : {1, 2, 3, 4, 5, 6}) {
        SCOPED_TRACE("seed " + std::to_string(seed));
        const std::vector<std::string> faults = {
            "--empty",
            "--fault-seed",
            std::to_string(seed),
            "--fault-error-rate",
            "0.1",
            "--fault-ambiguous-rate",
            "0.12"};  // with retries: about 20% of calls fail once
        Fleet fleet({"east", "west"}, faults);
        int runs = 0;
        CommandRun r;
        do {
            r = fleet.tandem({"apply"});
            ++runs;
        } while (r.code != 0 && runs < 12);
        EXPECT_EQ(r.code, 0) << r.out;
        for (const char* name : {"east", "west"}) {
            fleet.sim(name).control("PUT", "/__sim/faults", "{}");
            EXPECT_EQ(duplicated_rules(fleet.sim(name)), 0) << name;
            const Json counters = fleet.counters(name);
            EXPECT_GT(counters["faults"]["ambiguous"].get<int>() +
                          counters["faults"]["failed_before"].get<int>(),
                      0);
        }
        auto drift = fleet.tandem({"drift"});
        EXPECT_EQ(drift.code, 0) << drift.out;
    }
}

// One definition of converged, under a fault at every step of the first apply of new products:
// the n-th write is performed, then answered 502 — and either the instance stays up (the applier
// resolves the unknown outcome in the same run) or it goes away (the run is interrupted there,
// after 3scale made its default "GET /" rule, say). apply exits 0 only when a drift right after it
// is clean (and does, when it can read the instance), and a rerun converges to exactly the CRs: no
// leftover, no duplicate.
TEST(SyncE2E, AFaultAtEveryWriteOfAFirstApplyThenApplyAndDriftAgree) {
    Fleet fleet({"east"});
    support::fault_at_every_write(fleet, "east");
}

// A kustomize layout: base + a prod overlay that patches a limit. tandem does not run kustomize;
// `kubectl kustomize overlays/prod | tandem … --resources -` applies the overlay, and the base
// directory read directly (its kustomization skipped with a notice) is the base.
TEST(SyncE2E, AKustomizeOverlayPipedOnStandardInputIsWhatIsApplied) {
    if (std::system("command -v kubectl >/dev/null 2>&1") != 0) {
        GTEST_SKIP() << "kubectl (Debian's kubernetes-client) is not installed";
    }
    Fleet fleet({"east"});
    const fs::path base = fleet.dir() / "base";
    const fs::path prod = fleet.dir() / "overlays" / "prod";
    fs::create_directories(prod);
    fs::rename(fleet.dir() / "products", base);
    std::string files;
    for (const auto& e : fs::directory_iterator(base)) {
        files += "  - " + e.path().filename().string() + "\n";
    }
    std::ofstream(base / "kustomization.yaml") << "resources:\n" << files;
    // bases and patchesStrategicMerge: what Debian 12's kubectl 1.20 (kustomize 2.0) reads too
    std::ofstream(prod / "kustomization.yaml")
        << "bases:\n  - ../../base\npatchesStrategicMerge:\n  - limits.yaml\n";
    // a strategic merge patch cannot merge a list by key in a CR without a schema: replace it
    std::ofstream(prod / "limits.yaml") << R"(apiVersion: capabilities.3scale.net/v1beta1
kind: Product
metadata:
  name: petstore
spec:
  applicationPlans:
    basic:
      limits:
        - period: minute
          value: 400
          metricMethodRef:
            systemName: hits
)";
    edit(fleet.dir() / "fleet.yaml", "  - products/", "  - base/");
    const auto piped = [&](const std::string& command) {
        const std::string line = "kubectl kustomize " + prod.string() + " | " + TANDEM_PATH + " " +
                                 command + " -f " + (fleet.dir() / "fleet.yaml").string() +
                                 " --resources -";
        return support::run_shell(line, fleet.env());
    };
    const auto plan = piped("plan");
    EXPECT_EQ(plan.code, 2) << plan.out;
    EXPECT_NE(plan.out.find("create limit petstore: basic/hits/minute"), std::string::npos)
        << plan.out;
    ASSERT_EQ(piped("apply").code, 0);
    EXPECT_EQ(piped("drift").code, 0);
    const Json state = json_of(fleet.sim("east").control("GET", "/__sim/state"));
    bool found = false;
    for (const auto& l : state["limits"]) {
        found = found || (l["period"] == "minute" && l["value"] == 400);
    }
    EXPECT_TRUE(found) << "the overlay's limit is not on the instance";
    // the base read directly: its kustomization is skipped with a notice; the base's limit differs
    const auto drift = fleet.tandem({"drift"});
    EXPECT_EQ(drift.code, 2) << drift.out;
    EXPECT_NE(drift.out.find("kustomization.yaml:1: notice: a kustomization, not a resource"),
              std::string::npos)
        << drift.out;
    EXPECT_NE(drift.out.find("basic/hits/minute  value: expected"), std::string::npos) << drift.out;
}

TEST(SyncE2E, KillMinus9DuringApplyThenARerunConverges) {
    Fleet fleet({"east", "west"}, {"--empty", "--fault-latency-ms", "15"});
    {
        support::ChildProcess p({TANDEM_PATH, "apply", "-f", (fleet.dir() / "fleet.yaml").string()},
                                fleet.env(), true);
        int done = 0;
        while (done < 12) {
            const auto line = p.read_line(std::chrono::seconds(60));
            ASSERT_TRUE(line.has_value()) << "apply ended before it could be killed";
            done += line->find("] ok") != std::string::npos ? 1 : 0;
        }
        p.signal(SIGKILL);
        EXPECT_EQ(p.wait(std::chrono::seconds(10)), 128 + SIGKILL);
    }
    EXPECT_EQ(fleet.tandem({"drift"}).code, 2);  // half done
    auto rerun = fleet.tandem({"apply"});
    EXPECT_EQ(rerun.code, 0) << rerun.out;
    EXPECT_EQ(fleet.tandem({"drift"}).code, 0);
    EXPECT_EQ(duplicated_rules(fleet.sim("east")), 0);
    EXPECT_EQ(duplicated_rules(fleet.sim("west")), 0);
}

TEST(SyncE2E, ExitCodesForUnreachableAndBadInput) {
    Fleet fleet({"east"});
    // an instance where nothing listens: plan and drift say 3 and still report the other
    std::string yaml = slurp(fleet.dir() / "fleet.yaml");
    yaml.replace(
        yaml.find("resources:"), 0,
        "  - name: gone\n    adminUrl: http://127.0.0.1:1\n    token: {env: TANDEM_EAST_TOKEN}\n"
        "    timeout: 2s\n");
    std::ofstream(fleet.dir() / "fleet.yaml") << yaml;
    auto plan = fleet.tandem({"plan"});
    EXPECT_EQ(plan.code, 3) << plan.out;
    EXPECT_NE(plan.out.find("gone: UNREACHABLE"), std::string::npos) << plan.out;
    EXPECT_NE(plan.out.find("east: "), std::string::npos);
    auto drift = fleet.tandem({"drift", "--output", "json"});
    EXPECT_EQ(drift.code, 3);
    const Json report = Json::parse(drift.out.substr(drift.out.find('{')));
    EXPECT_FALSE(report["complete"].get<bool>());
    auto apply = fleet.tandem({"apply"});
    EXPECT_EQ(apply.code, 1);  // one instance failing does not stop the others...
    EXPECT_NE(apply.out.find("east: 32 done, 0 failed — converged"), std::string::npos)
        << apply.out;
    EXPECT_EQ(fleet.tandem({"drift", "--instance", "east"}).code, 0);

    // invalid input: exit 1, nothing contacted
    fleet.reset_counters();
    edit(fleet.dir() / "products" / "petstore.yaml", "period: day", "period: fortnight");
    auto bad = fleet.tandem({"apply"});
    EXPECT_EQ(bad.code, 1);
    EXPECT_NE(bad.out.find("petstore.yaml:"), std::string::npos) << bad.out;
    EXPECT_NE(bad.out.find("nothing was contacted"), std::string::npos) << bad.out;
    EXPECT_EQ(fleet.counters("east")["admin"]["reads"], 0);
    EXPECT_EQ(fleet.tandem({"plan", "--instance", "nope"}).code, 1);
}

TEST(SyncE2E, TheTokenNeverAppearsInAnyOutput) {
    const std::string canary = "CANARY-9d1e6b2f-never-print-me";
    Fleet fleet({"east"}, {"--empty"});
    std::map<std::string, std::string> env = fleet.env();
    // the sim's real token is different: every call with the canary gets 403
    env["TANDEM_EAST_TOKEN"] = canary;
    std::vector<std::vector<std::string>> commands = {{"validate"},
                                                      {"plan"},
                                                      {"plan", "--output", "json"},
                                                      {"apply"},
                                                      {"drift"},
                                                      {"drift", "--output", "json"},
                                                      {"drift", "--output", "markdown"}};
    for (const auto& cmd : commands) {
        auto args = cmd;
        args.insert(args.begin() + 1, {"-f", (fleet.dir() / "fleet.yaml").string()});
        const auto r = run_tandem(args, env);
        EXPECT_EQ(r.out.find(canary), std::string::npos) << cmd[0];
        EXPECT_EQ(r.out.find("CANARY"), std::string::npos) << cmd[0];
        if (cmd[0] != "validate") {
            EXPECT_NE(r.out.find("Access denied"), std::string::npos) << r.out;
        }
    }
    // and with the right token, through a full apply and drift
    for (const auto& cmd : commands) {
        const auto r = fleet.tandem(cmd);
        EXPECT_EQ(r.out.find("tok-east-4a61b3"), std::string::npos) << cmd[0];
    }
}

}  // namespace

namespace {

// Applies the echo product, then gives every instance the same application (user_key
// split-demo-key) through its admin API.
void prepare(Fleet& fleet, const std::vector<std::string>& names) {
    const auto apply = fleet.tandem({"apply"});
    ASSERT_EQ(apply.code, 0) << apply.out;
    for (const auto& name : names) {
        auto& sim = fleet.sim(name);
        const Json services = json_of(sim.admin("GET", "/admin/api/services.json"));
        const std::string svc = services["services"][0]["service"]["id"].dump();
        const Json plans =
            json_of(sim.admin("GET", "/admin/api/services/" + svc + "/application_plans.json"));
        const std::string plan = plans["plans"][0]["application_plan"]["id"].dump();
        const Json acc =
            json_of(sim.admin("POST", "/admin/api/signup.json",
                              "org_name=Acme&username=acme&email=a@acme.test&password=secret1"));
        ASSERT_EQ(
            sim.admin("POST",
                      "/admin/api/accounts/" + acc["account"]["id"].dump() + "/applications.json",
                      "plan_id=" + plan + "&name=app&user_key=split-demo-key")
                .status,
            201u);
    }
}

// Sends `total` requests, to instance pattern[i % size] for request i; accepted per instance.
std::map<std::string, int> send(Fleet& fleet, const std::vector<std::string>& pattern, int total) {
    std::map<std::string, int> accepted;
    for (int i = 0; i < total; ++i) {
        const std::string& name = pattern[static_cast<std::size_t>(i) % pattern.size()];
        const auto r = support::http_request(fleet.sim(name).gateway_port(), "GET",
                                             "/anything?user_key=split-demo-key", "",
                                             {{"Host", "echo.api.test"}});
        EXPECT_TRUE(r.status == 200 || r.status == 429) << r.status << " " << r.body;
        accepted[name] += r.status == 200 ? 1 : 0;
    }
    return accepted;
}

int sum(const std::map<std::string, int>& m) {
    int total = 0;
    for (const auto& [k, v] : m) {
        total += v;
    }
    return total;
}

// 1790000040 is 14:14:00 UTC: every instance's clock frozen at the start of the same minute.
const std::vector<std::string> kFrozen = {"--empty", "--freeze-clock", "--clock-start",
                                          "1790000040"};

TEST(SplitE2E, TwoInstancesAlternatingAdmitExactlyTheGlobalLimit) {
    Fleet fleet({"east", "west"}, kFrozen, {}, {{"echo.yaml", kEchoProduct}});
    prepare(fleet, {"east", "west"});
    const auto accepted = send(fleet, {"east", "west"}, 160);
    EXPECT_EQ(accepted.at("east"), 50);
    EXPECT_EQ(accepted.at("west"), 50);
    EXPECT_EQ(sum(accepted), 100);
    for (const char* name : {"east", "west"}) {  // the next window admits again
        fleet.sim(name).control("POST", "/__sim/clock", R"({"advance_seconds":60})");
    }
    EXPECT_EQ(sum(send(fleet, {"east", "west"}, 10)), 10);
}

TEST(SplitE2E, ThreeInstancesSplit34_33_33) {
    Fleet fleet({"east", "west", "north"}, kFrozen, {}, {{"echo.yaml", kEchoProduct}});
    prepare(fleet, {"east", "west", "north"});
    const auto split = fleet.tandem({"split", "--output", "json"});
    ASSERT_EQ(split.code, 0) << split.out;
    const Json report = Json::parse(split.out.substr(split.out.find('{')));
    EXPECT_EQ(report["limits"][0]["instances"], Json::parse(R"({"east":34,"west":33,"north":33})"));
    EXPECT_EQ(
        report["limits"][0]["bounds"],
        Json::parse(
            R"({"all_up":100,"one_instance_down":66,"sticky_client":33,"transition_window":134})"));
    const auto accepted = send(fleet, {"east", "west", "north"}, 150);
    EXPECT_EQ(accepted.at("east"), 34);
    EXPECT_EQ(accepted.at("west"), 33);
    EXPECT_EQ(accepted.at("north"), 33);
    EXPECT_EQ(sum(accepted), 100);
}

TEST(SplitE2E, WeightsTwoToOneWithTrafficTwoToOne) {
    Fleet fleet({"east", "west"}, kFrozen, {}, {{"echo.yaml", kEchoProduct}},
                {{"east", 2}, {"west", 1}});
    prepare(fleet, {"east", "west"});
    const auto accepted = send(fleet, {"east", "east", "west"}, 150);
    EXPECT_EQ(accepted.at("east"), 67);
    EXPECT_EQ(accepted.at("west"), 33);
    EXPECT_EQ(sum(accepted), 100);
}

TEST(SplitE2E, WithoutReSplitsOverTheRemainingInstances) {
    Fleet fleet({"east", "west", "north"}, kFrozen, {}, {{"echo.yaml", kEchoProduct}});
    prepare(fleet, {"east", "west", "north"});
    const auto text = fleet.tandem({"split", "--without", "north"});
    EXPECT_EQ(text.code, 0);
    EXPECT_NE(text.out.find("basic / hits / minute: global 100 -> east 50 west 50"),
              std::string::npos)
        << text.out;
    // what an operator applies while north is gone; north is not contacted
    fleet.reset_counters();
    const auto apply = fleet.tandem({"apply", "--without", "north"});
    ASSERT_EQ(apply.code, 0) << apply.out;
    EXPECT_NE(apply.out.find("update limit echo: basic/hits/minute"), std::string::npos);
    EXPECT_EQ(fleet.counters("north")["admin"]["reads"], 0);
    EXPECT_EQ(sum(send(fleet, {"east", "west"}, 120)), 100);
    // drift against the whole fleet shows the re-split values as split mismatches
    const auto drift = fleet.tandem({"drift"});
    EXPECT_EQ(drift.code, 2);
    EXPECT_NE(drift.out.find("split_mismatch"), std::string::npos) << drift.out;
}

TEST(SplitE2E, APositiveLimitThatWouldBecomeZeroIsRefusedBeforeAnyCall) {
    std::string tiny = kEchoProduct;
    tiny.replace(tiny.find("value: 100"), 10, "value: 2  ");
    Fleet fleet({"east", "west", "north"}, {"--empty"}, {}, {{"echo.yaml", tiny}});
    const auto plan = fleet.tandem({"plan"});
    EXPECT_EQ(plan.code, 1);
    EXPECT_NE(plan.out.find("echo.yaml:"), std::string::npos) << plan.out;
    EXPECT_NE(plan.out.find("0 disables it on north"), std::string::npos) << plan.out;
    EXPECT_EQ(fleet.counters("east")["admin"]["reads"], 0);
    std::string yaml = slurp(fleet.dir() / "fleet.yaml");  // with a policy it goes through
    yaml += "split:\n  products:\n    echo: min1\n";
    std::ofstream(fleet.dir() / "fleet.yaml") << yaml;
    EXPECT_EQ(fleet.tandem({"validate"}).code, 0);
    const auto split = fleet.tandem({"split"});
    EXPECT_NE(split.out.find("global 2 -> east 1 west 1 north 1"), std::string::npos) << split.out;
}

}  // namespace

namespace {

const std::string kAccountCrs = std::string(support::kAcmeAccount) + R"(---
apiVersion: capabilities.3scale.net/v1beta1
kind: DeveloperUser
metadata:
  name: acme-dev
spec:
  username: acme-dev
  email: dev@acme.example
  passwordCredentialsRef: {name: acme-dev-password}
  developerAccountRef: {name: acme}
---
apiVersion: v1
kind: Secret
metadata:
  name: acme-dev-password
  annotations: {tandem.3scale.net/env.password: ACME_DEV_PASSWORD}
---
apiVersion: capabilities.3scale.net/v1beta1
kind: Application
metadata:
  name: acme-echo
spec:
  accountCR: {name: acme}
  productCR: {name: echo}
  applicationPlanName: basic
  name: Acme on Echo
  description: production
  authSecretRef: {name: acme-echo-keys}
---
apiVersion: v1
kind: Secret
metadata: {name: acme-echo-keys}
stringData: {UserKey: split-demo-key}
)";

// The account, its users and the application with the same user_key, on every instance: 3scale's
// signup makes applications with random keys on default plans; only the desired one survives.
TEST(AccountsE2E, IdenticalApplicationsOnEveryInstance) {
    // default tenants: the "API" product has a default plan, so signup adds an app there
    std::vector<std::string> args = kFrozen;
    args.erase(args.begin());  // not --empty
    Fleet fleet({"east", "west"}, args, {},
                {{"echo.yaml", kEchoProduct}, {"accounts.yaml", kAccountCrs}});
    std::map<std::string, std::string> env = fleet.env();
    env["ACME_DEV_PASSWORD"] = "DEV-PASSWORD-CANARY";
    const auto tandem = [&](std::vector<std::string> a) {
        a.insert(a.begin() + 1, {"-f", (fleet.dir() / "fleet.yaml").string()});
        return run_tandem(a, env);
    };
    const auto apply = tandem({"apply"});
    ASSERT_EQ(apply.code, 0) << apply.out;
    EXPECT_NE(apply.out.find("create developer account acme-admin"), std::string::npos);
    EXPECT_NE(apply.out.find("create user acme-admin: acme-dev"), std::string::npos) << apply.out;
    EXPECT_NE(apply.out.find("create application acme-admin: echo Acme on Echo"),
              std::string::npos);
    EXPECT_NE(apply.out.find("delete application acme-admin: api API signup"), std::string::npos)
        << apply.out;
    const auto drift = tandem({"drift"});
    EXPECT_EQ(drift.code, 0) << drift.out;  // the tenant's default "API" product: unmanaged
    EXPECT_EQ(drift.out.find("application"), std::string::npos) << drift.out;
    fleet.reset_counters();
    EXPECT_EQ(tandem({"apply"}).code, 0);
    EXPECT_EQ(fleet.writes("east"), 0u);
    EXPECT_EQ(fleet.writes("west"), 0u);
    // the same key works on both gateways, and the split global limit holds
    const auto accepted = send(fleet, {"east", "west"}, 140);
    EXPECT_EQ(sum(accepted), 100);
    // on each instance: one account with two active users (admin + member) and one application
    for (const char* name : {"east", "west"}) {
        const Json state = json_of(fleet.sim(name).control("GET", "/__sim/state"));
        int acme_apps = 0;
        for (const auto& a : state["applications"]) {
            acme_apps += a["name"] == "Acme on Echo" ? 1 : 0;
            EXPECT_NE(a["name"], "API signup") << name;
        }
        EXPECT_EQ(acme_apps, 1);
        int active = 0;
        for (const auto& u : state["users"]) {
            active += (u["username"] == "acme-dev" || u["username"] == "acme-admin") &&
                              u["state"] == "active"
                          ? 1
                          : 0;
        }
        EXPECT_EQ(active, 2) << name;
    }
    // suspend through the CR: the gateways refuse the key everywhere
    edit(fleet.dir() / "products" / "accounts.yaml", "description: production",
         "description: production\n  suspend: true");
    const auto suspend = tandem({"apply"});
    ASSERT_EQ(suspend.code, 0) << suspend.out;
    for (const char* name : {"east", "west"}) {
        const auto r =
            support::http_request(fleet.sim(name).gateway_port(), "GET",
                                  "/x?user_key=split-demo-key", "", {{"Host", "echo.api.test"}});
        EXPECT_EQ(r.status, 403u) << name;
    }
    // someone resumes it by hand on east: drift names that application's state, on east only
    {
        auto& east = fleet.sim("east");
        const Json found =
            json_of(east.admin("GET", "/admin/api/applications/find.json?user_key=split-demo-key"));
        const std::string path = "/admin/api/accounts/" +
                                 found["application"]["account_id"].dump() + "/applications/" +
                                 found["application"]["id"].dump() + "/resume.json";
        ASSERT_EQ(east.admin("PUT", path).status, 200u);
    }
    const auto direct = tandem({"drift", "--output", "json"});
    EXPECT_EQ(direct.code, 2);
    const Json report = Json::parse(direct.out.substr(direct.out.find('{')));
    int app_drifts = 0;
    for (const auto& d : report["drifts"]) {
        if (d["object"]["type"] == "application") {
            ++app_drifts;
            EXPECT_EQ(d["instance"], "east");
            EXPECT_EQ(d["field"], "suspended");
            EXPECT_EQ(d["expected"], "true");
            EXPECT_EQ(d["actual"], "false");
        }
    }
    EXPECT_EQ(app_drifts, 1) << direct.out;
    // no secret in any output
    for (const auto& r : {apply, drift, suspend, direct, tandem({"plan", "--output", "json"}),
                          tandem({"drift", "--output", "markdown"})}) {
        for (const char* secret : {"ADMIN-PASSWORD-CANARY", "DEV-PASSWORD-CANARY", "split-demo-key",
                                   "tok-east-4a61b3"}) {
            EXPECT_EQ(r.out.find(secret), std::string::npos) << secret;
        }
    }
}

}  // namespace
