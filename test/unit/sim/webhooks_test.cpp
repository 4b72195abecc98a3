// threescale-sim's webhooks (settings, the events a write emits, their XML) and the fault that
// fails the later pages of a paginated list.
#include <gtest/gtest.h>

#include "sim_harness.hpp"

namespace sim::testing {
namespace {

std::string id(const Json& j) {
    return std::to_string(j.get<Id>());
}

class Webhooks : public ::testing::Test {
protected:
    void enable(const std::string& extra = "") {
        const auto r = h.put("/admin/api/webhooks.json",
                             "url=http://127.0.0.1:9/hook&active=true&provider_actions=true"
                             "&account_created_on=true&application_created_on=true"
                             "&application_plan_changed_on=true&application_key_deleted_on=true"
                             "&application_deleted_on=true&application_suspended_on=true" +
                                 extra);
        ASSERT_EQ(r.status, 200u) << r.body;
    }
    SimHarness h{/*seed_defaults=*/false};
};

TEST_F(Webhooks, SettingsHaveTheSpecsFieldsAndRefuseABadUrl) {
    const auto before = h.get("/admin/api/webhooks.json");
    ASSERT_EQ(before.status, 200u);
    EXPECT_EQ(before.json["webhook"]["active"], false);
    EXPECT_TRUE(before.json["webhook"].contains("application_key_updated_on"));
    EXPECT_EQ(h.put("/admin/api/webhooks.json", "url=ftp://x").status, 422u);
    enable();
    EXPECT_EQ(h.get("/admin/api/webhooks.json").json["webhook"]["url"], "http://127.0.0.1:9/hook");
}

TEST_F(Webhooks, WritesEmitTheEnabledEventsAsXml) {
    const auto p = h.make_product("shop");
    h.sim().take_webhooks();
    const auto signup = h.post("/admin/api/signup.json",
                               "org_name=A%26B&username=dev&email=dev@x.test&password=secret123");
    ASSERT_EQ(signup.status, 201u);
    EXPECT_TRUE(h.sim().take_webhooks().empty());  // not active yet
    enable();
    const std::string acc = id(signup.json["account"]["id"]);
    const auto app = h.post("/admin/api/accounts/" + acc + "/applications.json",
                            "name=Mine&plan_id=" + std::to_string(p.plan));
    ASSERT_EQ(app.status, 201u);
    const std::string app_path =
        "/admin/api/accounts/" + acc + "/applications/" + id(app.json["application"]["id"]);
    ASSERT_EQ(h.put(app_path + "/suspend.json", "").status, 200u);
    ASSERT_EQ(h.put("/admin/api/accounts/" + acc + ".json", "org_name=Renamed").status, 200u);
    ASSERT_EQ(h.del(app_path + ".json").status, 200u);
    const auto events = h.sim().take_webhooks();
    ASSERT_EQ(events.size(), 3u);  // account_updated_on is off
    EXPECT_EQ(events[0].url, "http://127.0.0.1:9/hook");
    EXPECT_NE(events[0].body.find("<type>application</type><action>created</action>"),
              std::string::npos);
    EXPECT_NE(events[0].body.find("<name>Mine</name>"), std::string::npos);
    EXPECT_NE(events[1].body.find("<action>suspended</action>"), std::string::npos);
    EXPECT_NE(events[1].body.find("<state>suspended</state>"), std::string::npos);
    // a delete carries the object that went
    EXPECT_NE(events[2].body.find("<action>deleted</action>"), std::string::npos);
    EXPECT_NE(events[2].body.find("<name>Mine</name>"), std::string::npos);
    EXPECT_TRUE(events[2].body.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
}

TEST_F(Webhooks, DashboardActionsFireOnlyWithProviderActions) {
    enable("&provider_actions=false");
    ASSERT_EQ(h.post("/admin/api/signup.json",
                     "org_name=A&username=dev&email=dev@x.test&password=secret123")
                  .status,
              201u);
    EXPECT_TRUE(h.sim().take_webhooks().empty());
}

TEST_F(Webhooks, TextIsEscapedInTheXml) {
    EXPECT_EQ(webhook_event_xml("account", "created", Json{{"org_name", "A<&>\"B"}}),
              "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<event><type>account</type><action>"
              "created</action><object><account><org_name>A&lt;&amp;&gt;&quot;B</org_name>"
              "</account></object></event>\n");
}

TEST_F(Webhooks, AccountStatesFollowTheirEvents) {
    const auto signup = h.post("/admin/api/signup.json",
                               "org_name=A&username=dev&email=dev@x.test&password=secret123");
    const std::string acc = "/admin/api/accounts/" + id(signup.json["account"]["id"]);
    EXPECT_EQ(h.put(acc + "/approve.json", "").status, 200u);  // already approved
    EXPECT_EQ(h.put(acc + "/make_pending.json", "").json["account"]["state"], "pending");
    EXPECT_EQ(h.put(acc + "/reject.json", "").json["account"]["state"], "rejected");
    EXPECT_EQ(h.put(acc + "/approve.json", "").status, 422u);  // rejected -> pending first
}

TEST(SimFaults, LaterPagesOfAListFail) {
    SimHarness h;
    for (int i = 0; i < 3; ++i) {
        ASSERT_EQ(h.post("/admin/api/signup.json", "org_name=A&username=dev" + std::to_string(i) +
                                                       "&email=d" + std::to_string(i) +
                                                       "@x.test&password=secret123")
                      .status,
                  201u);
    }
    Request set;
    set.method = "PATCH";
    set.target = "/__sim/faults";
    set.body = R"({"admin":{"page_error_from":2}})";
    ASSERT_EQ(h.sim().handle_control(set).status, 200u);
    Request first;
    first.method = "GET";
    first.target = "/admin/api/accounts.json?page=1&per_page=2";
    EXPECT_EQ(h.sim().decide(false, first).action, FaultInjector::Action::kNone);
    Request second = first;
    second.target = "/admin/api/accounts.json?page=2&per_page=2";
    const auto d = h.sim().decide(false, second);
    EXPECT_EQ(d.action, FaultInjector::Action::kFailBefore);
    EXPECT_EQ(d.status, 503u);
}

}  // namespace
}  // namespace sim::testing
