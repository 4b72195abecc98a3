// tandem mirror end to end: what developers create on the portal instance (east) reaches the
// others (west) through `tandem mirror --once`, against real threescale-sim processes. The
// faults: a source that fails in the middle of a paginated read, or is gone, deletes nothing.
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "config/fleet.hpp"
#include "mirror/mirror.hpp"
#include "support/http.hpp"
#include "support/sim_fleet.hpp"
#include "sync/curl_http_client.hpp"

namespace {

using namespace std::chrono_literals;
using support::append;
using support::SimFleet;
using support::SimProcess;
using Json = nlohmann::json;

Json get(SimProcess& sim, const std::string& path) {
    const auto r = sim.admin("GET", path);
    EXPECT_EQ(r.status, 200u) << path << ": " << r.body;
    return r.status == 200 ? Json::parse(r.body) : Json();
}

// The account whose admin is `username` on `sim` (null when none).
Json account_of(SimProcess& sim, const std::string& username) {
    const auto r = sim.admin("GET", "/admin/api/accounts/find.json?username=" + username);
    return r.status == 200 ? Json::parse(r.body)["account"] : Json();
}

std::string id(const Json& j) {
    return std::to_string(j["id"].get<std::int64_t>());
}

Json applications_of(SimProcess& sim, const Json& account) {
    Json out = Json::array();
    const Json list = get(sim, "/admin/api/accounts/" + id(account) + "/applications.json");
    for (const auto& a : list["applications"]) {
        out.push_back(a["application"]);
    }
    return out;
}

Json users_of(SimProcess& sim, const Json& account) {
    Json out = Json::object();
    const Json list = get(sim, "/admin/api/accounts/" + id(account) + "/users.json");
    for (const auto& u : list["users"]) {
        out[u["user"]["username"].get<std::string>()] = u["user"];
    }
    return out;
}

std::string plan_system_name(SimProcess& sim, const Json& app) {
    const Json plans =
        get(sim, "/admin/api/services/" + app["service_id"].dump() + "/application_plans.json");
    for (const auto& p : plans["plans"]) {
        if (p["application_plan"]["id"] == app["plan_id"]) {
            return p["application_plan"]["system_name"];
        }
    }
    return "";
}

std::string plan_id(SimProcess& sim, const std::string& system_name) {
    const Json services = get(sim, "/admin/api/services.json");
    const Json plans = get(sim, "/admin/api/services/" + id(services["services"][0]["service"]) +
                                    "/application_plans.json");
    for (const auto& p : plans["plans"]) {
        if (p["application_plan"]["system_name"] == system_name) {
            return id(p["application_plan"]);
        }
    }
    ADD_FAILURE() << "no plan " << system_name;
    return "";
}

int status_with_key(SimProcess& sim, const std::string& key) {
    return static_cast<int>(support::http_request(sim.gateway_port(), "GET", "/?user_key=" + key,
                                                  "", {{"Host", "echo.api.test"}})
                                .status);
}

// A developer signs up on the portal instance: the account with its admin.
Json sign_up(SimProcess& sim, const std::string& username) {
    const auto r = sim.admin("POST", "/admin/api/signup.json",
                             "org_name=" + username + "+Co&username=" + username +
                                 "&email=" + username + "@dev.test&password=portal-pass");
    EXPECT_EQ(r.status, 201u) << r.body;
    return Json::parse(r.body)["account"];
}

Json create_app(SimProcess& sim,
                const Json& account,
                const std::string& name,
                const std::string& user_key,
                const std::string& plan = "basic") {
    const auto r =
        sim.admin("POST", "/admin/api/accounts/" + id(account) + "/applications.json",
                  "name=" + name + "&description=made+on+the+portal&plan_id=" + plan_id(sim, plan) +
                      "&user_key=" + user_key);
    EXPECT_EQ(r.status, 201u) << r.body;
    return Json::parse(r.body)["application"];
}

class MirrorE2E : public ::testing::Test {
protected:
    void SetUp() override {
        const auto apply = fleet.tandem({"apply"});
        ASSERT_EQ(apply.code, 0) << apply.out;
        append(fleet.dir() / "fleet.yaml", "mirror:\n  source: east\n  deletes: true\n");
    }
    support::CommandRun mirror(std::vector<std::string> extra = {}) {
        std::vector<std::string> args = {"mirror", "--once"};
        args.insert(args.end(), extra.begin(), extra.end());
        return fleet.tandem(args);
    }
    SimFleet fleet{{"east", "west"}, {"--empty"}, {}, {{"echo.yaml", support::kEchoTwoPlans}}};
};

TEST_F(MirrorE2E, WhatADeveloperCreatesOnThePortalWorksOnEveryInstanceAndFollowsChanges) {
    auto& east = fleet.sim("east");
    auto& west = fleet.sim("west");
    const Json dev = sign_up(east, "dev");
    const auto member = east.admin("POST", "/admin/api/accounts/" + id(dev) + "/users.json",
                                   "username=teammate&email=mate@dev.test&password=portal-pass");
    ASSERT_EQ(member.status, 201u) << member.body;  // pending until activated
    const Json app = create_app(east, dev, "Mine", "dev-key-0001");
    EXPECT_EQ(status_with_key(west, "dev-key-0001"), 403);

    const auto dry = mirror({"--dry-run"});
    EXPECT_EQ(dry.code, 2) << dry.out;
    EXPECT_TRUE(account_of(west, "dev").is_null()) << "a dry run writes nothing";
    const auto first = mirror();
    ASSERT_EQ(first.code, 0) << first.out;
    EXPECT_EQ(first.out.find("portal-pass"), std::string::npos) << first.out;
    EXPECT_EQ(first.out.find("dev-key-0001"), std::string::npos) << "credentials never shown";
    const Json copy = account_of(west, "dev");
    ASSERT_FALSE(copy.is_null()) << first.out;
    EXPECT_EQ(copy["org_name"], "dev Co");
    auto users = users_of(west, copy);
    EXPECT_EQ(users["dev"]["role"], "admin");
    EXPECT_EQ(users["teammate"]["state"], "pending");  // as on the source
    auto apps = applications_of(west, copy);
    ASSERT_EQ(apps.size(), 1u) << apps.dump();
    EXPECT_EQ(apps[0]["user_key"], "dev-key-0001");
    EXPECT_EQ(apps[0]["name"], "Mine");
    EXPECT_EQ(apps[0]["description"], "made on the portal");
    EXPECT_EQ(plan_system_name(west, apps[0]), "basic");
    EXPECT_EQ(status_with_key(west, "dev-key-0001"), 200);
    EXPECT_EQ(mirror({"--dry-run"}).code, 0) << "converged";

    // the key regenerated, the plan changed, the application suspended, the user activated
    const std::string app_path = "/admin/api/accounts/" + id(dev) + "/applications/" + id(app);
    ASSERT_EQ(east.admin("PUT", app_path + ".json", "user_key=dev-key-0002").status, 200u);
    ASSERT_EQ(
        east.admin("PUT", app_path + "/change_plan.json", "plan_id=" + plan_id(east, "premium"))
            .status,
        200u);
    ASSERT_EQ(east.admin("PUT", app_path + "/suspend.json").status, 200u);
    ASSERT_EQ(east.admin("PUT", "/admin/api/accounts/" + id(dev) + "/users/" +
                                    id(Json::parse(member.body)["user"]) + "/activate.json")
                  .status,
              200u);
    const auto second = mirror();
    ASSERT_EQ(second.code, 0) << second.out;
    apps = applications_of(west, copy);
    ASSERT_EQ(apps.size(), 1u) << apps.dump();
    EXPECT_EQ(apps[0]["user_key"], "dev-key-0002");
    EXPECT_EQ(plan_system_name(west, apps[0]), "premium");
    EXPECT_EQ(apps[0]["state"], "suspended");
    EXPECT_EQ(users_of(west, copy)["teammate"]["state"], "active");
    EXPECT_EQ(status_with_key(west, "dev-key-0001"), 403);  // the old key no longer works
    ASSERT_EQ(east.admin("PUT", app_path + "/resume.json").status, 200u);

    // deleted on the source: deleted here (deletes: true, a complete read)
    ASSERT_EQ(east.admin("DELETE", app_path + ".json").status, 200u);
    const auto third = mirror();
    ASSERT_EQ(third.code, 0) << third.out;
    EXPECT_TRUE(applications_of(west, copy).empty());
    EXPECT_EQ(status_with_key(west, "dev-key-0002"), 403);
    EXPECT_EQ(mirror({"--dry-run"}).code, 0);
}

TEST_F(MirrorE2E, ASourceThatFailsMidReadOrIsGoneDeletesNothing) {
    auto& east = fleet.sim("east");
    auto& west = fleet.sim("west");
    // more accounts than one page (the admin client asks for 500 at a time)
    for (int i = 0; i < 501; ++i) {
        const auto r =
            east.admin("POST", "/admin/api/signup.json",
                       "org_name=Org" + std::to_string(i) + "&username=dev" + std::to_string(i) +
                           "&email=dev" + std::to_string(i) + "@dev.test&password=portal-pass");
        ASSERT_EQ(r.status, 201u) << r.body;
    }
    const auto first = mirror({"-o", "json"});
    ASSERT_EQ(first.code, 0) << first.out.substr(0, 2000);
    EXPECT_EQ(Json::parse(first.out)["accounts"], 501);
    ASSERT_FALSE(account_of(west, "dev500").is_null());

    // dev500 goes on the source; then its second page of accounts fails
    ASSERT_EQ(
        east.admin("DELETE", "/admin/api/accounts/" + id(account_of(east, "dev500")) + ".json")
            .status,
        200u);
    ASSERT_EQ(
        east.admin("DELETE", "/admin/api/accounts/" + id(account_of(east, "dev499")) + ".json")
            .status,
        200u);
    sign_up(east, "late");  // still more than a page
    sign_up(east, "later");
    ASSERT_EQ(east.control("PATCH", "/__sim/faults", R"({"admin":{"page_error_from":2}})").status,
              200u);
    const auto failing = mirror();
    EXPECT_EQ(failing.code, 3) << failing.out;
    EXPECT_NE(failing.out.find("nothing was compared, written or deleted"), std::string::npos)
        << failing.out;
    EXPECT_FALSE(account_of(west, "dev500").is_null());
    EXPECT_FALSE(account_of(west, "dev499").is_null());

    fleet.kill("east");
    const auto gone = mirror();
    EXPECT_EQ(gone.code, 3) << gone.out;
    EXPECT_FALSE(account_of(west, "dev500").is_null());
    EXPECT_EQ(get(west, "/admin/api/accounts.json?per_page=500&page=2")["accounts"].size(), 1u)
        << "west keeps all 501";
}

TEST_F(MirrorE2E, WithoutDeletesWhatOnlyAnotherInstanceHasIsReportedAndKept) {
    auto& west = fleet.sim("west");
    support::edit(fleet.dir() / "fleet.yaml", "deletes: true", "deletes: false");
    sign_up(west, "local");
    const auto r = mirror();
    EXPECT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("left in place (mirror.deletes is false): delete developer account local"),
              std::string::npos)
        << r.out;
    EXPECT_FALSE(account_of(west, "local").is_null());
    support::edit(fleet.dir() / "fleet.yaml", "deletes: false", "deletes: true");
    EXPECT_EQ(mirror().code, 0);
    EXPECT_TRUE(account_of(west, "local").is_null());
}

// CRs win for what they describe; what they do not describe in a CR's account is mirrored, and
// apply --prune leaves the mirror's objects alone.
TEST(MirrorCrs, CrsWinAndPruneLeavesTheMirrorsObjectsAlone) {
    SimFleet fleet({"east", "west"}, {"--empty"}, {},
                   {{"echo.yaml", support::kEchoTwoPlans}, {"acme.yaml", support::kAcmeAccount}});
    ASSERT_EQ(fleet.tandem({"apply"}).code, 0);
    append(fleet.dir() / "fleet.yaml", "mirror:\n  source: east\n  deletes: true\n");
    auto& east = fleet.sim("east");
    auto& west = fleet.sim("west");
    const Json acme = account_of(east, "acme-admin");
    ASSERT_FALSE(acme.is_null());
    ASSERT_EQ(east.admin("PUT", "/admin/api/accounts/" + id(acme) + ".json",
                         "org_name=Renamed+on+the+portal")
                  .status,
              200u);
    ASSERT_EQ(east.admin("POST", "/admin/api/accounts/" + id(acme) + "/users.json",
                         "username=acme-dev&email=acme-dev@acme.test&password=portal-pass")
                  .status,
              201u);
    create_app(east, acme, "Portal app", "acme-portal-key");
    const auto r = fleet.tandem({"mirror", "--once"});
    ASSERT_EQ(r.code, 0) << r.out;
    const Json west_acme = account_of(west, "acme-admin");
    EXPECT_EQ(west_acme["org_name"], "Acme Inc.") << "the CR's name, not the portal's";
    EXPECT_TRUE(users_of(west, west_acme).contains("acme-dev"));
    EXPECT_EQ(status_with_key(west, "acme-portal-key"), 200);
    const auto prune = fleet.tandem({"apply", "--prune"});
    ASSERT_EQ(prune.code, 0) << prune.out;
    EXPECT_TRUE(users_of(west, west_acme).contains("acme-dev")) << prune.out;
    EXPECT_EQ(status_with_key(west, "acme-portal-key"), 200) << prune.out;
}

// The source's client in process, with its account lists missing one account: what a paginated
// read returns when an account before it is deleted between two pages (the rest shifts, one is
// skipped), though the read succeeded. The mirror asks the source directly before deleting.
class SkippingClient final : public syncer::HttpClient {
public:
    explicit SkippingClient(std::string skipped) : skipped_(std::move(skipped)) {}
    syncer::HttpResponse send(const syncer::HttpRequest& request) override {
        auto r = real_.send(request);
        if (request.url.find("/admin/api/accounts.json") == std::string::npos || r.status != 200) {
            return r;
        }
        auto doc = Json::parse(r.body);
        auto& list = doc["accounts"];
        for (auto it = list.begin(); it != list.end(); ++it) {
            if ((*it)["account"]["org_name"] == skipped_) {
                list.erase(it);
                break;
            }
        }
        r.body = doc.dump();
        return r;
    }

private:
    syncer::CurlHttpClient real_{syncer::TlsOptions{}};
    std::string skipped_;
};

TEST_F(MirrorE2E, ADeletionIsConfirmedOnTheSourceFirst) {
    auto& east = fleet.sim("east");
    auto& west = fleet.sim("west");
    sign_up(east, "keep");
    sign_up(east, "gone");
    ASSERT_EQ(mirror().code, 0);
    ASSERT_FALSE(account_of(west, "keep").is_null());
    ASSERT_EQ(east.admin("DELETE", "/admin/api/accounts/" + id(account_of(east, "gone")) + ".json")
                  .status,
              200u);
    for (const auto& [name, value] : fleet.env()) {
        ::setenv(name.c_str(), value.c_str(), 1);
    }
    auto loaded = config::load_fleet(fleet.dir() / "fleet.yaml");
    ASSERT_TRUE(loaded.has_value());
    mirror::MirrorOptions options;
    options.deletes = true;
    const auto result = mirror::run_mirror(
        *loaded, options, {}, [](const config::Instance& i) -> std::unique_ptr<syncer::HttpClient> {
            if (i.name == "east") {
                return std::make_unique<SkippingClient>("keep Co");
            }
            return std::make_unique<syncer::CurlHttpClient>(syncer::TlsOptions{});
        });
    ASSERT_TRUE(result.complete);
    ASSERT_EQ(result.targets.size(), 1u);
    const auto& west_result = result.targets[0];
    // "gone" is confirmed gone and deleted; "keep", missed by the list, is held
    EXPECT_TRUE(account_of(west, "gone").is_null());
    EXPECT_FALSE(account_of(west, "keep").is_null());
    ASSERT_EQ(west_result.strays.size(), 1u);
    EXPECT_EQ(west_result.strays[0].account, "keep");
    EXPECT_EQ(west_result.strays[0].changes.back().field, "held");
    EXPECT_NE(mirror::mirror_text(result, true).find("the source still has it"), std::string::npos);
}

}  // namespace
