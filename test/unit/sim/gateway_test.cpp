// The simulated gateway: APIcast routing/auth/mapping rules and apisonator limit semantics.
#include <gtest/gtest.h>

#include "ratelimit/period.hpp"
#include "sim_harness.hpp"

namespace sim::testing {
namespace {

class GatewayTest : public ::testing::Test {
protected:
    SimHarness h;
    SimHarness::Product p = h.make_product("pets");

    std::string rules() const { return SimHarness::svc(p) + "/proxy/mapping_rules.json"; }
    std::string limit_url(Id metric) const {
        return "/admin/api/application_plans/" + std::to_string(p.plan) + "/metrics/" +
               std::to_string(metric) + "/limits.json";
    }
    Reply call(const std::string& path, const std::string& key, const std::string& method = "GET") {
        const char sep = path.find('?') == std::string::npos ? '?' : '&';
        return h.gateway(method, path + sep + "user_key=" + key, p.host);
    }
    Id method(const std::string& name) {
        const auto m =
            h.post(SimHarness::svc(p) + "/metrics/" + std::to_string(p.hits) + "/methods.json",
                   "friendly_name=" + name + "&system_name=" + name);
        EXPECT_EQ(m.status, 201u) << m.body;
        return m.json["method"]["id"];
    }
    void rule(const std::string& verb,
              const std::string& pattern,
              Id metric,
              int delta = 1,
              bool last = false) {
        const auto r = h.post(rules(), "http_method=" + verb + "&pattern=" + form_escape(pattern) +
                                           "&delta=" + std::to_string(delta) + "&metric_id=" +
                                           std::to_string(metric) + (last ? "&last=true" : ""));
        ASSERT_EQ(r.status, 201u) << r.body;
    }
};

TEST_F(GatewayTest, ServesOnlyThePromotedProductionConfig) {
    const auto app = h.make_app(p.plan, "dev", "&user_key=k1");
    EXPECT_EQ(call("/", "k1").status, 404u);  // no production config yet
    h.promote(p);
    const auto ok = call("/", "k1");
    EXPECT_EQ(ok.status, 200u) << ok.body;
    EXPECT_EQ(ok.json["instance"], "test");
    EXPECT_EQ(h.gateway("GET", "/?user_key=k1", "unknown.example.org").status, 404u);
    // a new mapping rule is not live until deployed and promoted
    rule("GET", "/new", p.hits);
    h.post(SimHarness::svc(p) + "/proxy/deploy.json", "");
    EXPECT_EQ(call("/new", "k1").json["usage"]["hits"], 1);  // matched by "GET /" only
    (void)app;
}

TEST_F(GatewayTest, ErrorsLikeApicast) {
    h.make_app(p.plan, "dev", "&user_key=k1");
    h.post(SimHarness::svc(p) + "/proxy/mapping_rules/" +
               id(h.get(rules()).json["mapping_rules"][0]["mapping_rule"]["id"]) + ".json",
           "");
    rule("GET", "/pets", p.hits);
    h.promote(p);
    const auto missing = h.gateway("GET", "/pets", p.host);
    EXPECT_EQ(missing.status, 403u);
    EXPECT_EQ(missing.body, "Authentication parameters missing");
    const auto bad = call("/pets", "nope");
    EXPECT_EQ(bad.status, 403u);
    EXPECT_EQ(bad.body, "Authentication failed");
    const auto nomatch = call("/pets", "k1", "POST");
    EXPECT_EQ(nomatch.status, 404u);
    EXPECT_EQ(nomatch.body, "No Mapping Rule matched");
    EXPECT_EQ(call("/pets", "k1").status, 200u);
}

TEST_F(GatewayTest, CredentialsLocationHeadersAndSuspendedApps) {
    const auto app = h.make_app(p.plan, "dev", "&user_key=k1");
    h.call("PATCH", SimHarness::svc(p) + "/proxy.json",
           "credentials_location=headers&auth_user_key=x-api-key");
    h.promote(p);
    EXPECT_EQ(call("/", "k1").status, 403u);  // the query is no longer looked at
    EXPECT_EQ(h.gateway("GET", "/", p.host, {{"x-api-key", "k1"}}).status, 200u);
    h.put("/admin/api/accounts/" + id(app["account_id"]) + "/applications/" + id(app["id"]) +
              "/suspend.json",
          "");
    EXPECT_EQ(h.gateway("GET", "/", p.host, {{"x-api-key", "k1"}}).status, 403u);
}

TEST_F(GatewayTest, AppIdAndAppKeyForBackendVersion2) {
    const auto v2 = h.make_product("v2", "2");
    const auto acc =
        h.post("/admin/api/signup.json", "org_name=X&username=x&email=x@x.org&password=secret1");
    const auto app =
        h.post("/admin/api/accounts/" + id(acc.json["account"]["id"]) + "/applications.json",
               "plan_id=" + std::to_string(v2.plan) +
                   "&name=a&application_id=aid-1&application_key=akey-1");
    ASSERT_EQ(app.status, 201u);
    h.promote(v2);
    EXPECT_EQ(h.gateway("GET", "/?app_id=aid-1&app_key=akey-1", v2.host).status, 200u);
    EXPECT_EQ(h.gateway("GET", "/?app_id=aid-1&app_key=wrong", v2.host).status, 403u);
    EXPECT_EQ(h.gateway("GET", "/?app_id=aid-1", v2.host).status, 403u);
    EXPECT_EQ(h.gateway("GET", "/?user_key=aid-1", v2.host).status, 403u);  // missing
    EXPECT_EQ(h.gateway("GET", "/?user_key=aid-1", v2.host).body,
              "Authentication parameters missing");
}

TEST_F(GatewayTest, MappingRulesPlaceholdersAnchorsLastAndQuery) {
    h.make_app(p.plan, "dev", "&user_key=k1");
    const Id show = method("show_pet");
    const Id exact = method("exact");
    const Id search = method("search");
    rule("GET", "/pets/{id}", show);
    rule("GET", "/exact$", exact, 1, /*last=*/true);
    rule("GET", "/find?q={term}&kind=dog", search, 5);
    h.promote(p);
    auto r = call("/pets/42.json", "k1");  // "GET /" + "/pets/{id}"
    EXPECT_EQ(r.json["usage"], Json({{"hits", 1}, {"show_pet", 1}}));
    r = call("/exact", "k1");  // GET / matches first, then exact (last)
    EXPECT_EQ(r.json["usage"], Json({{"hits", 1}, {"exact", 1}}));
    r = call("/exactly", "k1");
    EXPECT_EQ(r.json["usage"], Json({{"hits", 1}}));
    r = call("/find?q=rex&kind=dog", "k1");
    EXPECT_EQ(r.json["usage"], Json({{"hits", 1}, {"search", 5}}));
    r = call("/find?q=rex&kind=cat", "k1");
    EXPECT_EQ(r.json["usage"], Json({{"hits", 1}}));
}

TEST_F(GatewayTest, BackendRulesLiveUnderTheUsagePath) {
    h.make_app(p.plan, "dev", "&user_key=k1");
    const auto usage = h.get(SimHarness::svc(p) + "/backend_usages.json").json[0]["backend_usage"];
    h.put(SimHarness::svc(p) + "/backend_usages/" + id(usage["id"]) + ".json", "path=/v1");
    const auto r =
        h.post("/admin/api/backend_apis/" + std::to_string(p.backend) + "/mapping_rules.json",
               "http_method=GET&pattern=/cats&delta=2&metric_id=" + std::to_string(p.backend_hits));
    ASSERT_EQ(r.status, 201u) << r.body;
    h.promote(p);
    const std::string be_hits = "hits." + std::to_string(p.backend);
    EXPECT_EQ(call("/v1/cats", "k1").json["usage"], Json({{"hits", 1}, {be_hits, 2}}));
    EXPECT_EQ(call("/cats", "k1").json["usage"], Json({{"hits", 1}}));
}

// For every period: V requests fit in one window, the next is 429 until the window rolls over at
// the calendar boundary (UTC; weeks on Monday), and counting restarts there.
TEST(GatewayLimits, WindowBoundariesForEveryPeriod) {
    for (const auto period : ratelimit::kAllPeriods) {
        SCOPED_TRACE(std::string(ratelimit::to_string(period)));
        SimHarness h;
        const auto p = h.make_product("lim");
        h.make_app(p.plan, "dev", "&user_key=k1");
        ASSERT_EQ(h.post("/admin/api/application_plans/" + std::to_string(p.plan) + "/metrics/" +
                             std::to_string(p.hits) + "/limits.json",
                         "period=" + std::string(ratelimit::to_string(period)) + "&value=3")
                      .status,
                  201u);
        h.promote(p);
        const auto send = [&] { return h.gateway("GET", "/?user_key=k1", p.host).status; };
        const auto w = ratelimit::window_at(period, h.sim().clock().now());
        if (period == ratelimit::Period::kEternity) {
            EXPECT_EQ(send(), 200u);
            EXPECT_EQ(send(), 200u);
            EXPECT_EQ(send(), 200u);
            EXPECT_EQ(send(), 429u);
            h.sim().clock().advance(std::chrono::hours(24 * 3650));
            EXPECT_EQ(send(), 429u);
            continue;
        }
        h.sim().clock().set(w.start);
        EXPECT_EQ(send(), 200u);
        EXPECT_EQ(send(), 200u);
        h.sim().clock().set(w.end - std::chrono::seconds(1));
        EXPECT_EQ(send(), 200u);  // same window: the third
        EXPECT_EQ(send(), 429u);  // usage + 1 > 3
        h.sim().clock().set(w.end);
        EXPECT_EQ(send(), 200u);  // a new window
        EXPECT_EQ(send(), 200u);
        EXPECT_EQ(send(), 200u);
        EXPECT_EQ(send(), 429u);
    }
}

TEST_F(GatewayTest, ZeroMeansDisabledAndDeltasCountInFull) {
    h.make_app(p.plan, "dev", "&user_key=k1");
    const Id heavy = method("heavy");
    const Id off = method("off");
    rule("POST", "/heavy", heavy, 2);
    rule("GET", "/off", off);
    ASSERT_EQ(h.post(limit_url(heavy), "period=minute&value=5").status, 201u);
    ASSERT_EQ(h.post(limit_url(off), "period=eternity&value=0").status, 201u);
    h.promote(p);
    EXPECT_EQ(call("/off", "k1").status, 429u);
    EXPECT_EQ(call("/heavy", "k1", "POST").status, 200u);  // 2
    EXPECT_EQ(call("/heavy", "k1", "POST").status, 200u);  // 4
    EXPECT_EQ(call("/heavy", "k1", "POST").status, 429u);  // 6 > 5
    EXPECT_EQ(call("/", "k1").status, 200u);               // hits is not limited
}

TEST_F(GatewayTest, MethodsAndBackendHitsCountAgainstProductHits) {
    h.make_app(p.plan, "dev", "&user_key=k1");
    const Id list = method("list");
    h.del(SimHarness::svc(p) + "/proxy/mapping_rules/" +
          id(h.get(rules()).json["mapping_rules"][0]["mapping_rule"]["id"]) + ".json");
    rule("GET", "/list", list);
    h.post("/admin/api/backend_apis/" + std::to_string(p.backend) + "/mapping_rules.json",
           "http_method=GET&pattern=/be&delta=1&metric_id=" + std::to_string(p.backend_hits));
    ASSERT_EQ(h.post(limit_url(p.hits), "period=hour&value=2").status, 201u);
    h.promote(p);
    EXPECT_EQ(call("/list", "k1").status, 200u);  // method -> hits: 1
    EXPECT_EQ(call("/be", "k1").status, 200u);    // backend hits -> product hits: 2
    EXPECT_EQ(call("/list", "k1").status, 429u);
    EXPECT_EQ(call("/be", "k1").status, 429u);
}

TEST_F(GatewayTest, CountersArePerApplicationAndLimitChangesApplyAtOnce) {
    h.make_app(p.plan, "one", "&user_key=k1");
    h.make_app(p.plan, "two", "&user_key=k2");
    const auto limit = h.post(limit_url(p.hits), "period=day&value=1");
    h.promote(p);
    EXPECT_EQ(call("/", "k1").status, 200u);
    EXPECT_EQ(call("/", "k1").status, 429u);
    EXPECT_EQ(call("/", "k2").status, 200u);  // its own counter
    // limits live in the backend: no deploy/promote needed
    h.put("/admin/api/application_plans/" + std::to_string(p.plan) + "/metrics/" +
              std::to_string(p.hits) + "/limits/" + id(limit.json["limit"]["id"]) + ".json",
          "value=3");
    EXPECT_EQ(call("/", "k1").status, 200u);
    EXPECT_EQ(call("/", "k1").status, 200u);
    EXPECT_EQ(call("/", "k1").status, 429u);
    const Json c = h.sim().gateway().counters_json();
    EXPECT_EQ(c["authorized"], 4);
    EXPECT_EQ(c["limited"], 2);
}

}  // namespace
}  // namespace sim::testing
