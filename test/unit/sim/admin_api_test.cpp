// Pins the admin API behaviour and quirks the README lists (threescale-sim, "Admin API").
// Each test fails if the simulator "cleans up" the quirk it names.
#include <gtest/gtest.h>

#include "sim_harness.hpp"

namespace sim::testing {
namespace {

class AdminApiTest : public ::testing::Test {
protected:
    SimHarness h{/*seed_defaults=*/false};
};

// ------------------------------------------------------------------------------ auth, format

TEST_F(AdminApiTest, AuthFailuresAre403AccessDeniedNever401) {
    for (const std::string& auth :
         {std::string(""), basic("wrong", ""), std::string("Bearer ") + kToken}) {
        const auto r = h.call("GET", "/admin/api/services.json", "", "", auth);
        EXPECT_EQ(r.status, 403u) << auth;
        EXPECT_EQ(r.json, Json({{"error", "Access denied"}}));
    }
}

TEST_F(AdminApiTest, TokenAcceptedAsParamOrBasicUserOrBasicPassword) {
    EXPECT_EQ(
        h.call("GET", std::string("/admin/api/services.json?access_token=") + kToken, "", "", "")
            .status,
        200u);
    EXPECT_EQ(h.call("GET", "/admin/api/services.json", "", "", basic(kToken, "")).status, 200u);
    EXPECT_EQ(h.call("GET", "/admin/api/services.json", "", "", basic("", kToken)).status, 200u);
    EXPECT_EQ(h.call("POST", "/admin/api/services.json",
                     std::string("access_token=") + kToken + "&name=Xy",
                     "application/x-www-form-urlencoded", "")
                  .status,
              201u);
}

TEST_F(AdminApiTest, ReadOnlyTokenCanReadButNotWrite) {
    const auto ro = basic("read-only-token-77", "");
    EXPECT_EQ(h.call("GET", "/admin/api/services.json", "", "", ro).status, 200u);
    const auto w = h.call("POST", "/admin/api/services.json", "name=x",
                          "application/x-www-form-urlencoded", ro);
    EXPECT_EQ(w.status, 403u);
    EXPECT_EQ(w.json["error"], "Your access token does not have the correct permissions");
}

TEST_F(AdminApiTest, OnlyJsonPathsAreServed) {
    EXPECT_EQ(h.get("/admin/api/services").status, 406u);      // porta defaults to XML
    EXPECT_EQ(h.get("/admin/api/services.xml").status, 406u);  // XML is not simulated
    EXPECT_EQ(h.get("/admin/api/services.json").status, 200u);
}

TEST_F(AdminApiTest, UnknownRouteAndUnknownIdAre404StatusNotFound) {
    for (const char* path : {"/admin/api/nothing.json", "/admin/api/services/999999.json",
                             "/admin/api/services/abc.json"}) {
        const auto r = h.get(path);
        EXPECT_EQ(r.status, 404u) << path;
        EXPECT_EQ(r.json, Json({{"status", "Not found"}})) << path;
    }
}

// ------------------------------------------------------------------- bodies and wrapping

TEST_F(AdminApiTest, FlatWrappedFormAndJsonBodiesAllCreate) {
    EXPECT_EQ(h.post("/admin/api/services.json", "name=A&system_name=aa").status, 201u);
    EXPECT_EQ(
        h.post("/admin/api/services.json", "service%5Bname%5D=B&service[system_name]=bb").status,
        201u);
    EXPECT_EQ(
        h.post_json("/admin/api/services.json", {{"name", "C"}, {"system_name", "cc"}}).status,
        201u);
    const auto d = h.post_json("/admin/api/services.json",
                               {{"service", {{"name", "D"}, {"system_name", "dd"}}}});
    ASSERT_EQ(d.status, 201u);
    EXPECT_EQ(d.json["service"]["system_name"], "dd");
    EXPECT_EQ(h.get("/admin/api/services.json").json["services"].size(), 4u);
}

TEST_F(AdminApiTest, WrapperWithWrongTypeIs422) {
    const auto r = h.post_json("/admin/api/services.json", {{"service", "oops"}});
    EXPECT_EQ(r.status, 422u);
    EXPECT_EQ(r.json["error"], "Wrong type for parameter: service");
}

TEST_F(AdminApiTest, MissingRequiredParameterIs400PlainText) {
    const auto r = h.post("/admin/api/services.json", "unrelated=1");
    EXPECT_EQ(r.status, 400u);
    EXPECT_EQ(r.content_type.rfind("text/plain", 0), 0u);
    EXPECT_EQ(r.body, "Required parameter missing: service");
}

TEST_F(AdminApiTest, ValidationErrorsAre422WithFieldArrays) {
    const auto r = h.post("/admin/api/services.json", "name=&system_name=xx");
    EXPECT_EQ(r.status, 422u);
    EXPECT_EQ(r.json, Json::parse(R"({"errors":{"name":["can't be blank"]}})"));
}

TEST_F(AdminApiTest, MalformedJsonAndUnknownContentTypeAre400) {
    EXPECT_EQ(h.call("POST", "/admin/api/services.json", "{not json", "application/json").status,
              400u);
    EXPECT_EQ(h.call("POST", "/admin/api/services.json", "<x/>", "application/xml").status, 400u);
    EXPECT_EQ(h.post("/admin/api/services.json", "name=%zz").status, 400u);
    // nesting deep enough to exhaust the stack when serialized is refused, not crashed on
    const std::string deep = std::string(100000, '[') + std::string(100000, ']');
    EXPECT_EQ(
        h.call("POST", "/admin/api/services.json", "{\"name\":" + deep + "}", "application/json")
            .status,
        400u);
    const auto p = h.make_product("deep");
    EXPECT_EQ(h.put(SimHarness::svc(p) + "/proxy/policies.json", "policies_config=" + deep).status,
              422u);
}

TEST_F(AdminApiTest, WrongTypesAre422NotCrashes) {
    const auto p = h.make_product("typed");
    EXPECT_EQ(
        h.post_json(
             SimHarness::svc(p) + "/proxy/mapping_rules.json",
             {{"http_method", "GET"}, {"pattern", "/x"}, {"delta", "abc"}, {"metric_id", p.hits}})
            .status,
        422u);
    EXPECT_EQ(h.post_json(SimHarness::svc(p) + "/proxy/mapping_rules.json",
                          {{"http_method", Json::array()},
                           {"pattern", "/x"},
                           {"delta", 1},
                           {"metric_id", p.hits}})
                  .status,
              422u);
    EXPECT_EQ(h.post_json("/admin/api/services.json", {{"name", {{"nested", true}}}}).status, 422u);
}

// --------------------------------------------------------------------------------- products

TEST_F(AdminApiTest, ProductCreateAnswers201WithLocationAndAutoCreatedObjects) {
    const auto r = h.post("/admin/api/services.json", "name=My API");
    ASSERT_EQ(r.status, 201u);
    const Json& s = r.json["service"];
    EXPECT_EQ(s["system_name"], "my_api");  // derived with parameterize.underscore
    const std::string base = "/admin/api/services/" + id(s["id"]);
    bool has_location = false;
    for (const auto& [name, value] : r.headers) {
        has_location =
            has_location || (name == "Location" && value.find(base) != std::string::npos);
    }
    EXPECT_TRUE(has_location);

    const auto metrics = h.get(base + "/metrics.json").json["metrics"];
    ASSERT_EQ(metrics.size(), 1u);
    EXPECT_EQ(metrics[0]["metric"]["system_name"], "hits");
    EXPECT_EQ(metrics[0]["metric"]["unit"], "hit");

    const auto rules = h.get(base + "/proxy/mapping_rules.json").json["mapping_rules"];
    ASSERT_EQ(rules.size(), 1u);
    EXPECT_EQ(rules[0]["mapping_rule"]["pattern"], "/");
    EXPECT_EQ(rules[0]["mapping_rule"]["http_method"], "GET");
    EXPECT_EQ(rules[0]["mapping_rule"]["delta"], 1);
    EXPECT_EQ(rules[0]["mapping_rule"]["metric_id"], metrics[0]["metric"]["id"]);

    const auto proxy = h.get(base + "/proxy.json").json["proxy"];
    EXPECT_EQ(proxy["secret_token"].get<std::string>().rfind(
                  "Shared_secret_sent_from_proxy_to_API_backend_", 0),
              0u);
    EXPECT_EQ(proxy["credentials_location"], "query");
}

TEST_F(AdminApiTest, SystemNamesAreValidatedAndUnique) {
    EXPECT_EQ(h.post("/admin/api/services.json", "name=A&system_name=has.dot").status, 422u);
    EXPECT_EQ(h.post("/admin/api/services.json", "name=A&system_name=a_1-b/c").status, 201u);
    const auto dup = h.post("/admin/api/services.json", "name=B&system_name=a_1-b/c");
    EXPECT_EQ(dup.status, 422u);
    EXPECT_EQ(dup.json["errors"]["system_name"][0], "has already been taken");
}

TEST_F(AdminApiTest, PaginationQuirks) {
    for (int i = 0; i < 7; ++i) {
        ASSERT_EQ(h.post("/admin/api/services.json", "name=P" + std::to_string(i)).status, 201u);
    }
    const auto page3 = h.get("/admin/api/services.json?per_page=3&page=3");
    EXPECT_EQ(page3.json["services"].size(), 1u);
    EXPECT_EQ(page3.json["metadata"],
              Json::parse(R"({"per_page":3,"total_entries":7,"total_pages":3,"current_page":3})"));
    // metadata only when there is more than one page
    EXPECT_FALSE(h.get("/admin/api/services.json").json.contains("metadata"));
    EXPECT_FALSE(h.get("/admin/api/services.json?per_page=7").json.contains("metadata"));
    // out-of-range per_page silently becomes 500 (not clamped to the range, no error)
    const auto big = h.get("/admin/api/services.json?per_page=1000");
    EXPECT_EQ(big.status, 200u);
    EXPECT_EQ(big.json["services"].size(), 7u);
    EXPECT_EQ(h.get("/admin/api/services.json?per_page=0").json["services"].size(), 7u);
    // page < 1 is page 1; past the end is an empty list
    EXPECT_EQ(h.get("/admin/api/services.json?per_page=2&page=0").json["services"].size(), 2u);
    const auto past = h.get("/admin/api/services.json?per_page=2&page=9");
    EXPECT_EQ(past.status, 200u);
    EXPECT_TRUE(past.json["services"].empty());
}

TEST_F(AdminApiTest, NonPaginatedListsIgnorePerPage) {
    const auto p = h.make_product("np");
    const std::string svc = SimHarness::svc(p);
    for (int i = 0; i < 3; ++i) {
        h.post(svc + "/proxy/mapping_rules.json",
               "http_method=GET&pattern=/r" + std::to_string(i) +
                   "&delta=1&metric_id=" + std::to_string(p.hits));
        h.post(svc + "/metrics.json", "friendly_name=M" + std::to_string(i) + "&system_name=mm" +
                                          std::to_string(i) + "&unit=u");
        h.post(svc + "/application_plans.json", "name=Plan" + std::to_string(i));
    }
    const auto rules = h.get(svc + "/proxy/mapping_rules.json?per_page=1");
    EXPECT_EQ(rules.json["mapping_rules"].size(), 4u);
    EXPECT_FALSE(rules.json.contains("metadata"));
    EXPECT_EQ(h.get(svc + "/metrics.json?per_page=1").json["metrics"].size(), 4u);
    EXPECT_EQ(h.get(svc + "/application_plans.json?per_page=1").json["plans"].size(), 4u);
    // ...while backend lists are paginated
    const auto be =
        h.get("/admin/api/backend_apis/" + std::to_string(p.backend) + "/metrics.json?per_page=1");
    EXPECT_EQ(be.json["metrics"].size(), 1u);
}

TEST_F(AdminApiTest, BackendSoftDeleteKeepsItsSystemNameTaken) {
    const auto b = h.post("/admin/api/backend_apis.json",
                          "name=Old&system_name=old_be&private_endpoint=https://old.example.org");
    const std::string id_s = id(b.json["backend_api"]["id"]);
    EXPECT_EQ(h.del("/admin/api/backend_apis/" + id_s + ".json").status, 200u);
    EXPECT_EQ(h.get("/admin/api/backend_apis/" + id_s + ".json").status, 404u);
    EXPECT_TRUE(h.get("/admin/api/backend_apis.json").json["backend_apis"].empty());
    const std::string again =
        "name=New&system_name=old_be&private_endpoint=https://new.example.org";
    EXPECT_EQ(h.post("/admin/api/backend_apis.json", again).status, 422u);
    EXPECT_EQ(
        h.get("/admin/api/objects/status.json?object_type=backend_api&object_id=" + id_s).status,
        200u);
    h.sim().clock().advance(std::chrono::seconds(10));
    EXPECT_EQ(
        h.get("/admin/api/objects/status.json?object_type=backend_api&object_id=" + id_s).status,
        404u);
    EXPECT_EQ(h.post("/admin/api/backend_apis.json", again).status, 201u);
}

TEST_F(AdminApiTest, DeleteIsEmpty200AndSoftDeleteKeepsSystemNameTaken) {
    ASSERT_EQ(h.post("/admin/api/services.json", "name=Keep").status, 201u);
    const auto s = h.post("/admin/api/services.json", "name=Gone&system_name=gone");
    const std::string path = "/admin/api/services/" + id(s.json["service"]["id"]);
    const auto d = h.del(path + ".json");
    EXPECT_EQ(d.status, 200u);
    EXPECT_TRUE(d.body.empty());
    EXPECT_EQ(h.get(path + ".json").status, 404u);
    EXPECT_EQ(h.get("/admin/api/services.json").json["services"].size(), 1u);
    const std::string status = "/admin/api/objects/status.json?object_type=service&object_id=" +
                               id(s.json["service"]["id"]);
    EXPECT_EQ(h.get(status).status, 200u);  // still being deleted
    EXPECT_EQ(h.post("/admin/api/services.json", "name=Gone&system_name=gone").status, 422u);
    h.sim().clock().advance(std::chrono::seconds(11));  // the background job finishes
    EXPECT_EQ(h.get(status).status, 404u);
    EXPECT_EQ(h.post("/admin/api/services.json", "name=Gone&system_name=gone").status, 201u);
}

TEST_F(AdminApiTest, TheLastProductCannotBeDeleted) {
    const auto s = h.post("/admin/api/services.json", "name=Only");
    const auto r = h.del("/admin/api/services/" + id(s.json["service"]["id"]) + ".json");
    EXPECT_EQ(r.status, 422u);
    EXPECT_EQ(r.json["error"]["event"], "mark_as_deleted");
}

TEST_F(AdminApiTest, SeededTenantHasTheDefaultApiProduct) {
    SimHarness seeded(/*seed_defaults=*/true);
    const auto services = seeded.get("/admin/api/services.json").json["services"];
    ASSERT_EQ(services.size(), 1u);
    EXPECT_EQ(services[0]["service"]["system_name"], "api");
    EXPECT_EQ(seeded.get("/admin/api/accounts.json").json["accounts"].size(), 1u);
}

// --------------------------------------------------------------------------------- backends

TEST_F(AdminApiTest, BackendPrivateEndpointGetsAnExplicitPort) {
    const auto a = h.post("/admin/api/backend_apis.json",
                          "name=Alpha&private_endpoint=https://api.example.com");
    ASSERT_EQ(a.status, 201u);
    EXPECT_EQ(a.json["backend_api"]["private_endpoint"], "https://api.example.com:443");
    const auto b = h.post("/admin/api/backend_apis.json",
                          "name=Beta&private_endpoint=http://api.example.com/v1");
    EXPECT_EQ(b.json["backend_api"]["private_endpoint"], "http://api.example.com:80/v1");
    EXPECT_EQ(
        h.post("/admin/api/backend_apis.json", "name=Gamma&private_endpoint=ftp://x.org").status,
        422u);
    EXPECT_EQ(
        h.post("/admin/api/backend_apis.json", "name=Delta&private_endpoint=http://localhost:8080")
            .status,
        422u);
    EXPECT_EQ(h.post("/admin/api/backend_apis.json", "name=Epsilon").status, 422u);
}

TEST_F(AdminApiTest, BackendMetricSystemNamesCarryTheBackendIdSuffix) {
    const auto b = h.post("/admin/api/backend_apis.json",
                          "name=Be&system_name=be&private_endpoint=https://x.org");
    const std::string be = id(b.json["backend_api"]["id"]);
    const auto metrics = h.get("/admin/api/backend_apis/" + be + "/metrics.json").json["metrics"];
    ASSERT_EQ(metrics.size(), 1u);
    EXPECT_EQ(metrics[0]["metric"]["system_name"], "hits." + be);
    const auto m = h.post("/admin/api/backend_apis/" + be + "/metrics.json",
                          "friendly_name=Bytes&system_name=bytes&unit=byte");
    ASSERT_EQ(m.status, 201u);
    EXPECT_EQ(m.json["metric"]["system_name"], "bytes." + be);
    // created with the bare name: the suffixed one is not a second metric
    EXPECT_EQ(h.post("/admin/api/backend_apis/" + be + "/metrics.json",
                     "friendly_name=Bytes2&system_name=bytes&unit=byte")
                  .status,
              422u);
}

TEST_F(AdminApiTest, BackendUsagesAreABareArrayAndBlockBackendDeletion) {
    const auto p = h.make_product("shop");
    const auto list = h.get(SimHarness::svc(p) + "/backend_usages.json");
    ASSERT_TRUE(list.json.is_array());
    ASSERT_EQ(list.json.size(), 1u);
    EXPECT_EQ(list.json[0]["backend_usage"]["backend_id"], p.backend);  // not backend_api_id
    EXPECT_EQ(list.json[0]["backend_usage"]["path"], "/");

    const auto refused = h.del("/admin/api/backend_apis/" + std::to_string(p.backend) + ".json");
    EXPECT_EQ(refused.status, 403u);  // a refused delete is 403 with an errors body
    EXPECT_EQ(refused.json["errors"]["base"][0],
              "cannot be deleted because it is used by at least one Product");
}

TEST_F(AdminApiTest, BackendUsagePathIsUniquePerProductAndUpdatedInPlace) {
    const auto p = h.make_product("multi");
    const auto b2 =
        h.post("/admin/api/backend_apis.json", "name=two&private_endpoint=https://two.org");
    const std::string usages = SimHarness::svc(p) + "/backend_usages.json";
    const auto dup =
        h.post(usages, "backend_api_id=" + id(b2.json["backend_api"]["id"]) + "&path=/");
    EXPECT_EQ(dup.status, 422u);
    EXPECT_EQ(dup.json["errors"]["path"][0], "has already been taken");
    const auto again =
        h.post(usages, "backend_api_id=" + std::to_string(p.backend) + "&path=/other");
    EXPECT_EQ(again.status, 422u);  // a backend is used once per product
    const auto ok =
        h.post(usages, "backend_api_id=" + id(b2.json["backend_api"]["id"]) + "&path=/v2/");
    ASSERT_EQ(ok.status, 201u);
    EXPECT_EQ(ok.json["backend_usage"]["path"], "/v2");
    const std::string one =
        SimHarness::svc(p) + "/backend_usages/" + id(ok.json["backend_usage"]["id"]) + ".json";
    EXPECT_EQ(h.put(one, "path=/v3").json["backend_usage"]["path"], "/v3");
}

TEST_F(AdminApiTest, DeletingABackendUsageDeletesItsLimitsButNotPricingRules) {
    const auto p = h.make_product("lim");
    const std::string plan_metric = "/admin/api/application_plans/" + std::to_string(p.plan) +
                                    "/metrics/" + std::to_string(p.backend_hits);
    ASSERT_EQ(h.post(plan_metric + "/limits.json", "period=minute&value=10").status, 201u);
    ASSERT_EQ(h.post(plan_metric + "/pricing_rules.json", "min=1&max=10&cost_per_unit=0.5").status,
              201u);
    const std::string product_limits = "/admin/api/application_plans/" + std::to_string(p.plan) +
                                       "/metrics/" + std::to_string(p.hits) + "/limits.json";
    ASSERT_EQ(h.post(product_limits, "period=day&value=100").status, 201u);
    const auto usage = h.get(SimHarness::svc(p) + "/backend_usages.json").json[0]["backend_usage"];
    ASSERT_EQ(h.del(SimHarness::svc(p) + "/backend_usages/" + id(usage["id"]) + ".json").status,
              200u);
    const auto limits =
        h.get("/admin/api/application_plans/" + std::to_string(p.plan) + "/limits.json");
    ASSERT_EQ(limits.json["limits"].size(), 1u);  // only the product metric's limit remains
    EXPECT_EQ(limits.json["limits"][0]["limit"]["metric_id"], p.hits);
    EXPECT_EQ(
        h.get("/admin/api/application_plans/" + std::to_string(p.plan) + "/pricing_rules.json")
            .json["pricing_rules"]
            .size(),
        1u);
}

// -------------------------------------------------------------------------- metrics, methods

TEST_F(AdminApiTest, MetricListReturnsMetricsAndMethodsFlat) {
    const auto p = h.make_product("flat");
    const std::string base = SimHarness::svc(p) + "/metrics";
    ASSERT_EQ(h.post(base + ".json", "friendly_name=Bytes&system_name=bytes&unit=byte").status,
              201u);
    const auto m = h.post(base + "/" + std::to_string(p.hits) + "/methods.json",
                          "friendly_name=List pets&system_name=list_pets&unit=ignored");
    ASSERT_EQ(m.status, 201u);
    EXPECT_EQ(m.json["method"]["parent_id"], p.hits);
    EXPECT_FALSE(m.json["method"].contains("unit"));  // methods inherit the parent's unit
    const auto all = h.get(base + ".json").json["metrics"];
    ASSERT_EQ(all.size(), 3u);
    int methods = 0;
    for (const auto& entry : all) {
        methods += entry.contains("method") ? 1 : 0;
    }
    EXPECT_EQ(methods, 1);
    const auto only = h.get(base + "/" + std::to_string(p.hits) + "/methods.json").json["methods"];
    EXPECT_EQ(only.size(), 1u);
}

TEST_F(AdminApiTest, MethodsOnlyUnderHits) {
    const auto p = h.make_product("meth");
    const auto bytes = h.post(SimHarness::svc(p) + "/metrics.json",
                              "friendly_name=Bytes&system_name=bytes&unit=byte");
    const auto r =
        h.post(SimHarness::svc(p) + "/metrics/" + id(bytes.json["metric"]["id"]) + "/methods.json",
               "friendly_name=Xx&system_name=xx");
    EXPECT_EQ(r.status, 422u);
    EXPECT_EQ(r.json["errors"]["parent_id"][0], "You can only create methods under 'hits'");
}

TEST_F(AdminApiTest, HitsCannotBeDeletedNorAMetricUsedByTheLatestConfig) {
    const auto p = h.make_product("del");
    const std::string base = SimHarness::svc(p);
    const auto hits = h.del(base + "/metrics/" + std::to_string(p.hits) + ".json");
    EXPECT_EQ(hits.status, 403u);
    EXPECT_EQ(hits.json["errors"]["base"][0], "The Hits metric cannot be deleted");

    const auto m = h.post(base + "/metrics/" + std::to_string(p.hits) + "/methods.json",
                          "friendly_name=Get&system_name=get_it");
    const std::string method_id = id(m.json["method"]["id"]);
    const auto rule = h.post(base + "/proxy/mapping_rules.json",
                             "http_method=GET&pattern=/it&delta=1&metric_id=" + method_id);
    h.promote(p);  // the method is now in the latest staging and production configs
    const std::string method_path =
        base + "/metrics/" + std::to_string(p.hits) + "/methods/" + method_id + ".json";
    const auto refused = h.del(method_path);
    EXPECT_EQ(refused.status, 403u);
    EXPECT_EQ(refused.json["errors"]["base"][0],
              "is used by the latest gateway configuration and cannot be deleted");
    // remove the rule and deploy + promote a config without it: then the delete works
    ASSERT_EQ(h.del(base + "/proxy/mapping_rules/" + id(rule.json["mapping_rule"]["id"]) + ".json")
                  .status,
              200u);
    h.promote(p);
    EXPECT_EQ(h.del(method_path).status, 200u);
}

// ---------------------------------------------------------------------------- mapping rules

TEST_F(AdminApiTest, MappingRulesValidateMethodsDeltaAndOwner) {
    const auto p = h.make_product("rules");
    const std::string rules = SimHarness::svc(p) + "/proxy/mapping_rules.json";
    const std::string hits = std::to_string(p.hits);
    EXPECT_EQ(h.post(rules, "http_method=TRACE&pattern=/a&delta=1&metric_id=" + hits).status, 422u);
    EXPECT_EQ(h.post(rules, "http_method=CONNECT&pattern=/a&delta=1&metric_id=" + hits).status,
              422u);
    EXPECT_EQ(h.post(rules, "http_method=GET&pattern=/a&delta=0&metric_id=" + hits).status, 422u);
    EXPECT_EQ(h.post(rules, "http_method=GET&pattern=noslash&delta=1&metric_id=" + hits).status,
              422u);
    // a backend's metric cannot be used by a product rule
    EXPECT_EQ(h.post(rules, "http_method=GET&pattern=/a&delta=1&metric_id=" +
                                std::to_string(p.backend_hits))
                  .status,
              422u);
    EXPECT_EQ(
        h.post(rules, "http_method=OPTIONS&pattern=/a/{id}$&delta=2&metric_id=" + hits).status,
        201u);
}

TEST_F(AdminApiTest, MappingRulePositionsActLikeActsAsList) {
    const auto p = h.make_product("pos");  // has the default GET / at position 1
    const std::string rules = SimHarness::svc(p) + "/proxy/mapping_rules";
    const std::string hits = std::to_string(p.hits);
    const auto a = h.post(rules + ".json", "http_method=GET&pattern=/a&delta=1&metric_id=" + hits);
    EXPECT_EQ(a.json["mapping_rule"]["position"], 2);  // new rules go to the bottom
    const auto b =
        h.post(rules + ".json", "http_method=GET&pattern=/b&delta=1&position=1&metric_id=" + hits);
    EXPECT_EQ(b.json["mapping_rule"]["position"], 1);  // an explicit position shifts the others
    const auto list = h.get(rules + ".json").json["mapping_rules"];
    ASSERT_EQ(list.size(), 3u);
    EXPECT_EQ(list[0]["mapping_rule"]["pattern"], "/b");
    EXPECT_EQ(list[1]["mapping_rule"]["pattern"], "/");
    EXPECT_EQ(list[2]["mapping_rule"]["pattern"], "/a");
    // PATCH (spec) and PUT (also routed) both update
    const std::string one = rules + "/" + id(a.json["mapping_rule"]["id"]) + ".json";
    EXPECT_EQ(h.call("PATCH", one, "delta=3").json["mapping_rule"]["delta"], 3);
    EXPECT_EQ(h.put(one, "delta=4").json["mapping_rule"]["delta"], 4);
}

// ---------------------------------------------------------------------------------- plans

TEST_F(AdminApiTest, PlansListUnderThePlansKeyHiddenByDefault) {
    const auto p = h.make_product("plans");
    const std::string plans = SimHarness::svc(p) + "/application_plans";
    const auto list = h.get(plans + ".json");
    ASSERT_TRUE(list.json.contains("plans"));
    EXPECT_EQ(list.json["plans"][0]["application_plan"]["state"], "hidden");
    const auto pub = h.post(plans + ".json", "name=Gold&system_name=gold&state_event=publish");
    EXPECT_EQ(pub.json["application_plan"]["state"], "published");
    EXPECT_EQ(h.post(plans + ".json", "name=Gold2&system_name=gold").status, 422u);
    const auto def =
        h.put(plans + "/" + id(pub.json["application_plan"]["id"]) + "/default.json", "");
    EXPECT_TRUE(def.json["application_plan"]["default"].get<bool>());
}

TEST_F(AdminApiTest, PlanWithApplicationsCannotBeDeleted) {
    const auto p = h.make_product("busy");
    h.make_app(p.plan, "busyuser", "");
    const auto r =
        h.del(SimHarness::svc(p) + "/application_plans/" + std::to_string(p.plan) + ".json");
    EXPECT_EQ(r.status, 403u);
    EXPECT_TRUE(r.json["errors"].contains("base"));
}

// --------------------------------------------------------------------------------- limits

TEST_F(AdminApiTest, OneLimitPerPlanMetricAndPeriodUpdatedInPlace) {
    const auto p = h.make_product("limits");
    const std::string base = "/admin/api/application_plans/" + std::to_string(p.plan) +
                             "/metrics/" + std::to_string(p.hits) + "/limits";
    const auto a = h.post(base + ".json", "period=minute&value=100");
    ASSERT_EQ(a.status, 201u);
    const auto dup = h.post(base + ".json", "period=minute&value=5");
    EXPECT_EQ(dup.status, 422u);
    EXPECT_EQ(dup.json["errors"]["period"][0], "has already been taken");
    EXPECT_EQ(h.post(base + ".json", "period=second&value=5").status, 422u);
    const std::string one = base + "/" + id(a.json["limit"]["id"]) + ".json";
    const auto upd = h.put(one, "value=50");
    EXPECT_EQ(upd.json["limit"]["value"], 50);
    EXPECT_EQ(upd.json["limit"]["id"], a.json["limit"]["id"]);
    // porta's before_save: a negative value is stored as 0 (disabled)
    EXPECT_EQ(h.put(one, "value=-3").json["limit"]["value"], 0);
    EXPECT_EQ(h.post(base + ".json", "unrelated=1").status, 400u);
}

TEST_F(AdminApiTest, LimitsOnBackendMetricsNeedTheBackendUsage) {
    const auto p = h.make_product("bl");
    const std::string plan = "/admin/api/application_plans/" + std::to_string(p.plan);
    EXPECT_EQ(h.post(plan + "/metrics/" + std::to_string(p.backend_hits) + "/limits.json",
                     "period=hour&value=7")
                  .status,
              201u);
    const auto other =
        h.post("/admin/api/backend_apis.json", "name=other&private_endpoint=https://o.org");
    const auto other_hits =
        h.get("/admin/api/backend_apis/" + id(other.json["backend_api"]["id"]) + "/metrics.json")
            .json["metrics"][0]["metric"]["id"];
    EXPECT_EQ(
        h.post(plan + "/metrics/" + id(other_hits) + "/limits.json", "period=hour&value=7").status,
        404u);
}

TEST_F(AdminApiTest, PlanLimitsArePaginatedTo500NotTheSpecs50) {
    const auto p = h.make_product("many");
    const std::string svc = SimHarness::svc(p);
    for (int i = 0; i < 9; ++i) {
        const auto m =
            h.post(svc + "/metrics.json", "friendly_name=M" + std::to_string(i) + "&system_name=m" +
                                              std::to_string(i) + "&unit=u");
        for (const char* period : {"minute", "hour", "day", "week", "month", "year"}) {
            ASSERT_EQ(h.post("/admin/api/application_plans/" + std::to_string(p.plan) +
                                 "/metrics/" + id(m.json["metric"]["id"]) + "/limits.json",
                             std::string("period=") + period + "&value=1")
                          .status,
                      201u);
        }
    }
    const auto all =
        h.get("/admin/api/application_plans/" + std::to_string(p.plan) + "/limits.json");
    EXPECT_EQ(all.json["limits"].size(), 54u);  // more than 50 on one page
    EXPECT_FALSE(all.json.contains("metadata"));
}

TEST_F(AdminApiTest, PricingRulesRenderDecimalsAsStringsAndRefuseOverlaps) {
    const auto p = h.make_product("price");
    const std::string base = "/admin/api/application_plans/" + std::to_string(p.plan) +
                             "/metrics/" + std::to_string(p.hits) + "/pricing_rules";
    const auto a = h.post(base + ".json", "min=1&max=100&cost_per_unit=15.45");
    ASSERT_EQ(a.status, 201u);
    EXPECT_EQ(a.json["pricing_rule"]["cost_per_unit"], "15.45");
    EXPECT_EQ(h.post(base + ".json", "min=50&max=200&cost_per_unit=1").status, 422u);
    const auto open = h.post(base + ".json", "min=101&max=&cost_per_unit=0");
    ASSERT_EQ(open.status, 201u);
    EXPECT_TRUE(open.json["pricing_rule"]["max"].is_null());  // empty max = infinity
    EXPECT_EQ(open.json["pricing_rule"]["cost_per_unit"], "0.0");
    EXPECT_EQ(h.post(base + ".json", "min=500&cost_per_unit=0.12345").status, 422u);
    EXPECT_EQ(h.del(base + "/" + id(a.json["pricing_rule"]["id"]) + ".json").status, 200u);
}

// ------------------------------------------------------------------ policies, proxy, configs

TEST_F(AdminApiTest, PolicyChainGetsApicastAppendedAndKeepsMissingEnabled) {
    const auto p = h.make_product("pol");
    const std::string url = SimHarness::svc(p) + "/proxy/policies.json";
    const std::string chain =
        R"([{"name":"headers","version":"builtin","configuration":{}},)"
        R"({"name":"cors","version":"builtin","configuration":{},"enabled":true}])";
    const auto r = h.put(url, "policies_config=" + chain);  // a JSON string in a form body
    ASSERT_EQ(r.status, 200u) << r.body;
    const auto stored = h.get(url).json["policies_config"];
    ASSERT_EQ(stored.size(), 3u);
    EXPECT_FALSE(stored[0].contains("enabled"));  // stored without it...
    EXPECT_EQ(stored[2]["name"], "apicast");      // ...and apicast appended
    // ...and only enabled policies reach the gateway chain (in the new staging config)
    const auto cfg = h.get(SimHarness::svc(p) + "/proxy/configs/sandbox/latest.json");
    const auto gw_chain = cfg.json["proxy_config"]["content"]["proxy"]["policy_chain"];
    ASSERT_EQ(gw_chain.size(), 2u);
    EXPECT_EQ(gw_chain[0]["name"], "cors");
    // JSON body, wrapped as proxy[policies_config]
    const auto j =
        h.call("PUT", url, Json({{"proxy", {{"policies_config", Json::parse(chain)}}}}).dump(),
               "application/json");
    EXPECT_EQ(j.status, 200u);
    EXPECT_EQ(h.put(url, "policies_config=[{\"version\":\"builtin\"}]").status, 422u);
    EXPECT_EQ(h.put(url, "policies_config=not-json").status, 422u);
    EXPECT_EQ(
        h.put(url, R"(policies_config=[{"name":"custom","version":"1.0","configuration":{}}])")
            .status,
        422u);  // not in this tenant's policy registry
}

TEST_F(AdminApiTest, ProxyPatchNormalizesEndpointsAndDeploysToStaging) {
    const auto p = h.make_product("px");
    const auto before = h.get(SimHarness::svc(p) + "/proxy/configs/sandbox.json");
    const auto n = before.json["proxy_configs"].size();
    const auto r = h.call("PATCH", SimHarness::svc(p) + "/proxy.json",
                          "endpoint=https://public.example.org&error_status_no_match=418");
    ASSERT_EQ(r.status, 200u);
    EXPECT_EQ(r.json["proxy"]["endpoint"], "https://public.example.org:443");
    const auto after = h.get(SimHarness::svc(p) + "/proxy/configs/sandbox.json");
    EXPECT_EQ(after.json["proxy_configs"].size(), n + 1);
    EXPECT_EQ(
        h.call("PATCH", SimHarness::svc(p) + "/proxy.json", "error_status_no_match=700").status,
        422u);
    EXPECT_EQ(
        h.call("PATCH", SimHarness::svc(p) + "/proxy.json", "credentials_location=cookie").status,
        422u);
}

TEST_F(AdminApiTest, DeployIsANoOpWithoutBackendsAndOnlyVersionsChangedContent) {
    const auto s = h.post("/admin/api/services.json", "name=NoBackend");
    const std::string svc = "/admin/api/services/" + id(s.json["service"]["id"]);
    EXPECT_EQ(h.post(svc + "/proxy/deploy.json", "").status, 201u);
    EXPECT_EQ(h.get(svc + "/proxy/configs/sandbox/latest.json").status, 404u);

    const auto p = h.make_product("dep");
    const std::string base = SimHarness::svc(p);
    h.post(base + "/proxy/deploy.json", "");
    const auto v1 =
        h.get(base + "/proxy/configs/sandbox/latest.json").json["proxy_config"]["version"];
    h.post(base + "/proxy/deploy.json", "");
    EXPECT_EQ(h.get(base + "/proxy/configs/sandbox/latest.json").json["proxy_config"]["version"],
              v1);
    // mapping-rule changes alone do not create a config; deploy does
    h.post(base + "/proxy/mapping_rules.json",
           "http_method=POST&pattern=/x&delta=1&metric_id=" + std::to_string(p.hits));
    EXPECT_EQ(h.get(base + "/proxy/configs/sandbox/latest.json").json["proxy_config"]["version"],
              v1);
    h.post(base + "/proxy/deploy.json", "");
    EXPECT_EQ(h.get(base + "/proxy/configs/sandbox/latest.json").json["proxy_config"]["version"],
              v1.get<int>() + 1);
}

TEST_F(AdminApiTest, PromoteKeepsTheVersionAndRefusesADoublePromote) {
    const auto p = h.make_product("prom");
    const std::string base = SimHarness::svc(p);
    h.post(base + "/proxy/deploy.json", "");
    EXPECT_EQ(h.get(base + "/proxy/configs/production/latest.json").status, 404u);
    const auto v =
        id(h.get(base + "/proxy/configs/staging/latest.json").json["proxy_config"]["version"]);
    const std::string promote = base + "/proxy/configs/sandbox/" + v + "/promote.json";
    const auto missing_to = h.post(promote, "");
    EXPECT_EQ(missing_to.status, 400u);
    const auto r = h.post(promote, "to=production");
    ASSERT_EQ(r.status, 201u);
    EXPECT_EQ(id(r.json["proxy_config"]["version"]), v);
    EXPECT_EQ(r.json["proxy_config"]["environment"], "production");
    const auto again = h.post(promote, "to=production");
    EXPECT_EQ(again.status, 422u);
    EXPECT_EQ(again.json["errors"]["version"][0], "has already been taken");
    const auto bad = h.get(base + "/proxy/configs/qa.json");
    EXPECT_EQ(bad.status, 400u);
    EXPECT_EQ(bad.json, Json({{"error", "invalid environment"}}));
}

// ------------------------------------------------------------------ accounts, applications

TEST_F(AdminApiTest, SignupExpressCreatesAppsOnEveryDefaultPlan) {
    const auto a = h.make_product("first");
    const auto b = h.make_product("second");
    h.put(SimHarness::svc(a) + "/application_plans/" + std::to_string(a.plan) + "/default.json",
          "");
    const auto r = h.post("/admin/api/signup.json",
                          "org_name=Acme&username=acme&email=ops@acme.test&password=secret123");
    ASSERT_EQ(r.status, 201u) << r.body;
    const std::string acc = id(r.json["account"]["id"]);
    const auto apps =
        h.get("/admin/api/accounts/" + acc + "/applications.json").json["applications"];
    ASSERT_EQ(apps.size(), 1u);  // only "first" has a default application plan
    EXPECT_EQ(apps[0]["application"]["service_id"], a.service);
    EXPECT_EQ(apps[0]["application"]["name"], "API signup");
    EXPECT_EQ(apps[0]["application"]["user_key"].get<std::string>().size(), 32u);  // random
    (void)b;
}

TEST_F(AdminApiTest, SignupValidatesAndUsernamesAreUnique) {
    const auto r = h.post("/admin/api/signup.json", "org_name=&username=&email=bad&password=");
    EXPECT_EQ(r.status, 422u);
    for (const char* field : {"org_name", "username", "email", "password"}) {
        EXPECT_TRUE(r.json["errors"].contains(field)) << field;
    }
    ASSERT_EQ(
        h.post("/admin/api/signup.json", "org_name=A&username=dup&email=a@x.org&password=secret1")
            .status,
        201u);
    const auto dup =
        h.post("/admin/api/signup.json", "org_name=B&username=dup&email=b@x.org&password=secret1");
    EXPECT_EQ(dup.status, 422u);
    EXPECT_EQ(dup.json["errors"]["username"][0], "has already been taken");
}

TEST_F(AdminApiTest, AccountFindPrefersUsernameOverEmail) {
    h.post("/admin/api/signup.json",
           "org_name=A&username=alice&email=alice@x.org&password=secret1");
    const auto bob = h.post("/admin/api/signup.json",
                            "org_name=B&username=bob&email=bob@x.org&password=secret1");
    const auto found = h.get("/admin/api/accounts/find.json?username=bob&email=alice@x.org");
    ASSERT_EQ(found.status, 200u);
    EXPECT_EQ(found.json["account"]["id"], bob.json["account"]["id"]);
    EXPECT_EQ(h.get("/admin/api/accounts/find.json?email=alice@x.org").json["account"]["org_name"],
              "A");
    EXPECT_EQ(h.get("/admin/api/accounts/find.json?username=nobody").status, 404u);
}

TEST_F(AdminApiTest, DeletedAccountKeepsItsUsernameUntilPurged) {
    const auto r =
        h.post("/admin/api/signup.json", "org_name=A&username=temp&email=t@x.org&password=secret1");
    const std::string acc = "/admin/api/accounts/" + id(r.json["account"]["id"]) + ".json";
    EXPECT_EQ(h.del(acc).status, 200u);
    EXPECT_EQ(h.get(acc).status, 404u);
    EXPECT_EQ(h.get("/admin/api/accounts/find.json?username=temp").status, 404u);
    EXPECT_EQ(
        h.post("/admin/api/signup.json", "org_name=A&username=temp&email=t2@x.org&password=secret1")
            .status,
        422u);
    h.sim().clock().advance(std::chrono::seconds(60));
    EXPECT_EQ(
        h.post("/admin/api/signup.json", "org_name=A&username=temp&email=t2@x.org&password=secret1")
            .status,
        201u);
}

TEST_F(AdminApiTest, ApplicationsWithExplicitCredentials) {
    const auto v1 = h.make_product("keys1");
    const auto v2 = h.make_product("keys2", "2");
    const auto app = h.make_app(v1.plan, "dev1", "&user_key=fixed-key-123");
    EXPECT_EQ(app["user_key"], "fixed-key-123");
    EXPECT_EQ(app["state"], "live");
    // user_key is unique across the whole tenant
    const auto acc = h.get("/admin/api/accounts/find.json?username=dev1").json["account"]["id"];
    const std::string apps = "/admin/api/accounts/" + id(acc) + "/applications";
    const auto dup = h.post(apps + ".json", "plan_id=" + std::to_string(v1.plan) +
                                                "&name=again&user_key=fixed-key-123");
    EXPECT_EQ(dup.status, 422u);
    EXPECT_EQ(dup.json["errors"]["user_key"][0], "has already been taken");

    const auto two =
        h.post(apps + ".json", "plan_id=" + std::to_string(v2.plan) +
                                   "&name=v2&application_id=my-app-id&application_key[]="
                                   "key-one-1&application_key[]=key-two-2");
    ASSERT_EQ(two.status, 201u) << two.body;
    EXPECT_EQ(two.json["application"]["application_id"], "my-app-id");
    EXPECT_FALSE(two.json["application"].contains("user_key"));
    const std::string keys = apps + "/" + id(two.json["application"]["id"]) + "/keys.json";
    const auto listed = h.get(keys).json["keys"];
    ASSERT_EQ(listed.size(), 2u);
    EXPECT_EQ(listed[0]["key"]["value"], "key-one-1");
    for (int i = 3; i <= 5; ++i) {
        EXPECT_EQ(h.post(keys, "key=another-key-" + std::to_string(i)).status, 201u);
    }
    EXPECT_EQ(h.post(keys, "key=the-sixth-key").status, 422u);  // at most 5 keys
    EXPECT_EQ(h.post(keys, "key=abc").status, 422u);
    const auto found = h.get("/admin/api/applications/find.json?app_id=my-app-id");
    EXPECT_EQ(found.json["application"]["id"], two.json["application"]["id"]);
    EXPECT_EQ(
        h.get("/admin/api/applications/find.json?user_key=fixed-key-123").json["application"]["id"],
        app["id"]);
}

TEST_F(AdminApiTest, ApplicationSuspendResumeAndPlanChange) {
    const auto p = h.make_product("states");
    const auto app = h.make_app(p.plan, "stater", "");
    const std::string base =
        "/admin/api/accounts/" + id(app["account_id"]) + "/applications/" + id(app["id"]);
    EXPECT_EQ(h.put(base + "/suspend.json", "").json["application"]["state"], "suspended");
    EXPECT_EQ(h.put(base + "/resume.json", "").json["application"]["state"], "live");
    EXPECT_EQ(h.put(base + "/accept.json", "").status, 422u);
    const auto gold = h.post(SimHarness::svc(p) + "/application_plans.json", "name=Gold");
    const auto changed =
        h.put(base + "/change_plan.json", "plan_id=" + id(gold.json["application_plan"]["id"]));
    EXPECT_EQ(changed.json["application"]["plan_id"], gold.json["application_plan"]["id"]);
    EXPECT_EQ(h.del(base + ".json").status, 200u);
    EXPECT_EQ(h.get(base + ".json").status, 404u);
}

TEST_F(AdminApiTest, ApplicationsListAllIsPaginatedAndFiltered) {
    const auto p = h.make_product("la");
    const auto q = h.make_product("lb");
    for (int i = 0; i < 3; ++i) {
        h.make_app(p.plan, "u" + std::to_string(i), "");
    }
    h.make_app(q.plan, "other", "");
    EXPECT_EQ(h.get("/admin/api/applications.json").json["applications"].size(), 4u);
    EXPECT_EQ(h.get("/admin/api/applications.json?service_id=" + std::to_string(p.service))
                  .json["applications"]
                  .size(),
              3u);
    const auto page = h.get("/admin/api/applications.json?per_page=2&page=2");
    EXPECT_EQ(page.json["applications"].size(), 2u);
    EXPECT_EQ(page.json["metadata"]["total_entries"], 4);
}

TEST_F(AdminApiTest, ObjectStatusNeedsItsParameters) {
    EXPECT_EQ(h.get("/admin/api/objects/status.json").status, 400u);
    EXPECT_EQ(h.get("/admin/api/objects/status.json?object_type=service").status, 400u);
    EXPECT_EQ(h.get("/admin/api/objects/status.json?object_type=widget&object_id=1").status, 400u);
}

TEST_F(AdminApiTest, WriteCountersCountOnlyWrites) {
    h.get("/admin/api/services.json");
    h.post("/admin/api/services.json", "name=Counted");
    const Json c = h.sim().counters_json();
    EXPECT_EQ(c["admin"]["reads"], 1);
    EXPECT_EQ(c["admin"]["writes"], 1);
    EXPECT_EQ(c["admin"]["routes"]["POST /admin/api/services.json"]["by_status"]["201"], 1);
}

}  // namespace
}  // namespace sim::testing

namespace sim::testing {
namespace {

TEST(AdminUsers, CreateActivateRolesSuspendAndTheLastAdmin) {
    SimHarness h;
    const auto acc = h.post("/admin/api/signup.json",
                            "org_name=Acme&username=boss&email=boss@acme.test&password=secret1");
    const std::string users = "/admin/api/accounts/" + id(acc.json["account"]["id"]) + "/users";
    const auto list = h.get(users + ".json").json["users"];
    ASSERT_EQ(list.size(), 1u);
    EXPECT_EQ(list[0]["user"]["role"], "admin");
    const std::string boss = users + "/" + id(list[0]["user"]["id"]);
    const auto u = h.post(users + ".json", "username=dev&email=dev@acme.test&password=secret2");
    ASSERT_EQ(u.status, 201u) << u.body;
    EXPECT_EQ(u.json["user"]["state"], "pending");
    EXPECT_EQ(u.json["user"]["role"], "member");
    const std::string dev = users + "/" + id(u.json["user"]["id"]);
    EXPECT_EQ(h.put(dev + "/activate.json", "").json["user"]["state"], "active");
    EXPECT_EQ(h.put(dev + "/admin.json", "").json["user"]["role"], "admin");
    EXPECT_EQ(h.put(dev + "/suspend.json", "").json["user"]["state"], "suspended");
    EXPECT_EQ(h.put(dev + "/unsuspend.json", "").json["user"]["state"], "active");
    EXPECT_EQ(h.put(dev + "/unsuspend.json", "").status, 200u);  // already there
    // usernames are unique across the tenant
    EXPECT_EQ(h.post(users + ".json", "username=dev&email=x@acme.test&password=secret2").status,
              422u);
    EXPECT_EQ(h.put(dev + ".json", "email=new@acme.test").json["user"]["email"], "new@acme.test");
    // the last admin stays
    EXPECT_EQ(h.put(dev + "/member.json", "").status, 200u);
    EXPECT_EQ(h.put(boss + "/member.json", "").status, 422u);
    EXPECT_EQ(h.del(boss + ".json").status, 403u);
    EXPECT_EQ(h.del(dev + ".json").status, 200u);
}

}  // namespace
}  // namespace sim::testing
