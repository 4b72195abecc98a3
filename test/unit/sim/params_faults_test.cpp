#include <gtest/gtest.h>

#include "sim/faults.hpp"
#include "sim/params.hpp"
#include "sim_harness.hpp"

namespace sim::testing {
namespace {

TEST(Params, RackStyleNesting) {
    const auto j = parse_form("a=1&b[c]=2&d[]=3&d[]=4&e[f][g]=x+y&h=%26");
    ASSERT_TRUE(j.has_value());
    EXPECT_EQ(
        *j, Json::parse(R"({"a":"1","b":{"c":"2"},"d":["3","4"],"e":{"f":{"g":"x y"}},"h":"&"})"));
    EXPECT_FALSE(parse_form("a[b=1").has_value());
    EXPECT_FALSE(parse_form("a=%G1").has_value());
    EXPECT_FALSE(parse_form("a=1&a[b]=2").has_value());  // conflicting types
    EXPECT_TRUE(parse_form("").has_value());
}

TEST(Params, WrappedBeatsFlat) {
    const Params p(Json::parse(R"({"name":"flat","service":{"name":"wrapped"}})"), "service");
    EXPECT_EQ(*p.get("name"), "wrapped");
    const Params q(Json::parse(R"({"name":"flat"})"), "service");
    EXPECT_EQ(*q.get("name"), "flat");
    EXPECT_TRUE(Params(Json::parse(R"({"service":[1]})"), "service").wrapper_has_wrong_type());
}

TEST(Faults, SameSeedSameDecisions) {
    FaultSettings s;
    s.seed = 7;
    s.admin.error_rate = 0.2;
    s.admin.ambiguous_rate = 0.3;
    FaultInjector a(s);
    FaultInjector b(s);
    int failed = 0;
    int ambiguous = 0;
    for (int i = 0; i < 2000; ++i) {
        const auto x = a.decide(false, true);
        const auto y = b.decide(false, true);
        ASSERT_EQ(x.action, y.action);
        failed += x.action == FaultInjector::Action::kFailBefore ? 1 : 0;
        ambiguous += x.action == FaultInjector::Action::kAmbiguous ? 1 : 0;
    }
    EXPECT_NEAR(failed / 2000.0, 0.2, 0.04);
    EXPECT_NEAR(ambiguous / 2000.0, 0.8 * 0.3, 0.04);
    // reads are never ambiguous
    FaultInjector c(s);
    for (int i = 0; i < 500; ++i) {
        EXPECT_NE(c.decide(false, false).action, FaultInjector::Action::kAmbiguous);
    }
}

TEST(Faults, SettingsMergeValidates) {
    FaultSettings s;
    EXPECT_TRUE(s.merge(Json::parse(R"({"admin":{"error_rate":0.5}})")).has_value());
    EXPECT_EQ(s.admin.error_rate, 0.5);
    EXPECT_FALSE(s.merge(Json::parse(R"({"admin":{"error_rate":2}})")).has_value());
    EXPECT_FALSE(s.merge(Json::parse(R"({"admin":{"typo":1}})")).has_value());
    EXPECT_EQ(s.admin.error_rate, 0.5);  // unchanged after a rejected merge
}

TEST(Faults, FailBeforeDoesNothingAndAmbiguousWritesThenAnswers502) {
    SimHarness h;
    Request req;
    req.method = "POST";
    req.target = "/admin/api/services.json";
    req.body = "name=Faulty";
    req.headers = {{"authorization", basic(kToken, "")},
                   {"content-type", "application/x-www-form-urlencoded"}};
    FaultInjector::Decision fail{std::chrono::milliseconds(0), FaultInjector::Action::kFailBefore,
                                 503};
    EXPECT_EQ(h.sim().handle_admin(req, fail).status, 503u);
    EXPECT_TRUE(h.get("/admin/api/services.json").json["services"].empty());
    FaultInjector::Decision ambiguous{std::chrono::milliseconds(0),
                                      FaultInjector::Action::kAmbiguous, 502};
    EXPECT_EQ(h.sim().handle_admin(req, ambiguous).status, 502u);
    EXPECT_EQ(h.get("/admin/api/services.json").json["services"].size(), 1u);  // it was written
    const Json c = h.sim().counters_json();
    EXPECT_EQ(c["faults"]["failed_before"], 1);
    EXPECT_EQ(c["faults"]["ambiguous"], 1);
}

TEST(StateDocument, RoundTripsThroughJson) {
    SimHarness h;
    h.make_product("persist");
    const Json doc = h.sim().store().to_json();
    auto loaded = Store::from_json(doc);
    ASSERT_TRUE(loaded.has_value());
    EXPECT_EQ(loaded->to_json(), doc);
    EXPECT_FALSE(Store::from_json(Json::parse(R"({"format":"other"})")).has_value());
    EXPECT_FALSE(
        Store::from_json(Json::parse(R"({"format":"threescale-sim-state/v1","services":[{}]})"))
            .has_value());
}

}  // namespace
}  // namespace sim::testing
