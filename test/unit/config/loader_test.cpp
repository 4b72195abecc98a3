#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <gtest/gtest.h>

#include "config/fleet.hpp"
#include "config/normalize.hpp"

namespace config {
namespace {

namespace fs = std::filesystem;

const fs::path kTestdata = TANDEM_TESTDATA_DIR;
const fs::path kExamples = TANDEM_EXAMPLES_DIR;

class InvalidCorpus : public ::testing::TestWithParam<std::string> {};

// Every case under testdata/config/invalid must fail with (at least) the diagnostics listed in
// its `expected` file, each naming the file, the line and the field.
TEST_P(InvalidCorpus, ReportsEveryProblemWithFileLineAndField) {
    ::setenv("TANDEM_TEST_TOKEN", "unit-test-token", 1);
    ::unsetenv("TANDEM_TEST_UNSET_VARIABLE");
    const fs::path dir = kTestdata / "config" / "invalid" / GetParam();
    const auto fleet = load_fleet(dir / "fleet.yaml");
    ASSERT_FALSE(fleet.has_value()) << "expected the case to be rejected";
    std::string all;
    for (const auto& d : fleet.error()) {
        all += d.to_string() + "\n";
    }
    std::ifstream in(dir / "expected");
    std::string line;
    int expectations = 0;
    while (std::getline(in, line)) {
        if (line.empty()) {
            continue;
        }
        ++expectations;
        EXPECT_NE(all.find(line), std::string::npos)
            << "missing diagnostic: " << line << "\n--- got:\n"
            << all;
    }
    EXPECT_GT(expectations, 0);
    EXPECT_EQ(all.find("unit-test-token"), std::string::npos) << "a token leaked";
    EXPECT_EQ(all.find("CANARY"), std::string::npos) << "a secret value leaked";
}

std::vector<std::string> invalid_cases() {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(kTestdata / "config" / "invalid")) {
        out.push_back(e.path().filename().string());
    }
    std::sort(out.begin(), out.end());
    return out;
}

INSTANTIATE_TEST_SUITE_P(Config,
                         InvalidCorpus,
                         ::testing::ValuesIn(invalid_cases()),
                         [](const auto& param_info) { return param_info.param; });

TEST(Loader, TheExampleFleetLoadsIntoTheModel) {
    ::setenv("TANDEM_EAST_TOKEN", "east-token", 1);
    ::setenv("TANDEM_WEST_TOKEN", "west-token", 1);
    ::setenv("ACME_ADMIN_PASSWORD", "admin-password", 1);
    ::setenv("ACME_DEV_PASSWORD", "dev-password", 1);
    ::setenv("ACME_PETSTORE_USER_KEY", "acme-user-key", 1);
    const auto fleet = load_fleet(kExamples / "fleet.yaml");
    ASSERT_TRUE(fleet.has_value()) << (fleet ? "" : fleet.error().front().to_string());
    ASSERT_EQ(fleet->instances.size(), 2u);
    EXPECT_EQ(fleet->instances[0].token.reveal(), "east-token");
    EXPECT_EQ(fleet->instances[0].admin_url, "https://3scale-admin.apps.east.example.com:443");
    EXPECT_EQ(fleet->instances[1].timeout, std::chrono::seconds(20));
    const auto& pets = fleet->desired.backends.at("pets_backend");
    EXPECT_EQ(pets.private_endpoint, "https://pets.internal.example.com:443");
    EXPECT_EQ(pets.methods.size(), 3u);
    EXPECT_EQ(pets.mapping_rules.size(), 3u);
    EXPECT_TRUE(pets.mapping_rules[2].last);
    const auto& orders = fleet->desired.backends.at("orders_backend");
    EXPECT_TRUE(orders.metrics.contains("hits"));  // added like the operator does
    EXPECT_EQ(orders.private_endpoint, "https://orders.internal.example.com:8443/api");
    const auto& p = fleet->desired.products.at("petstore");
    EXPECT_EQ(p.deployment_option, "self_managed");
    EXPECT_EQ(p.backend_version, "1");
    EXPECT_EQ(p.proxy.fields.at("endpoint"), "https://api.petstore.example.com:443");
    EXPECT_EQ(p.proxy.fields.at("auth_user_key"), "api-key");
    EXPECT_EQ(p.proxy.fields.at("error_status_limits_exceeded"), "429");
    ASSERT_EQ(p.policies.size(), 2u);
    EXPECT_EQ(p.policies[0].name, "cors");
    EXPECT_EQ(p.policies[0].configuration,
              R"({"allow_methods":["GET","POST"],"allow_origin":"*"})");
    EXPECT_EQ(p.policies[1].name, "apicast");
    const auto& premium = p.plans.at("premium");
    EXPECT_EQ(premium.cost_per_month, "49.0");
    EXPECT_EQ(premium.trial_period_days, 14);
    EXPECT_EQ(premium.approval_required, true);
    EXPECT_EQ(premium.pricing_rules[1].cost_per_unit, "0.005");
    EXPECT_EQ(premium.limits[1].metric.backend, "orders_backend");
    EXPECT_FALSE(p.plans.at("internal").published);  // absent = hidden
    ASSERT_EQ(fleet->desired.accounts.size(), 1u);
    EXPECT_EQ(fleet->desired.accounts.at("acme-admin").users.size(), 2u);
    EXPECT_EQ(fleet->desired.applications.at("petstore/acme-user-key").plan, "basic");
    EXPECT_EQ(p.plans.at("internal").limits[0].value, 0);
}

// A GitOps directory: the kustomization, ConfigMap, Deployment and APIManager beside the CRs are
// skipped with one notice each; .github is not read at all.
TEST(Loader, AGitOpsDirectorySkipsWhatTandemDoesNotApplyWithANoticeEach) {
    ::setenv("TANDEM_TEST_TOKEN", "unit-test-token", 1);
    const auto fleet = load_fleet(kTestdata / "config" / "valid" / "gitops" / "fleet.yaml");
    ASSERT_TRUE(fleet.has_value()) << (fleet ? "" : fleet.error().front().to_string());
    EXPECT_TRUE(fleet->desired.products.contains("echo"));
    EXPECT_TRUE(fleet->desired.backends.contains("echo_backend"));
    std::string notices;
    for (const auto& n : fleet->notices) {
        notices += n.to_string() + "\n";
    }
    for (const char* expected :
         {"kustomization.yaml:1: notice: a kustomization, not a resource: skipped",
          "apimanager.yaml:1: notice: kind: skipped: apps.3scale.net/v1alpha1 APIManager is not",
          "config.yaml:1: notice: kind: skipped: v1 ConfigMap",
          "config.yaml:8: notice: kind: skipped: apps/v1 Deployment"}) {
        EXPECT_NE(notices.find(expected), std::string::npos) << expected << "\n" << notices;
    }
    EXPECT_EQ(fleet->notices.size(), 4u) << notices;
    EXPECT_EQ(notices.find(".github"), std::string::npos) << notices;
}

// `kubectl kustomize overlays/prod | tandem plan -f fleet.yaml --resources -`
TEST(Loader, ResourcesFromStandardInputReplaceTheFleetsList) {
    ::setenv("TANDEM_TEST_TOKEN", "unit-test-token", 1);
    std::ifstream file(kTestdata / "config" / "valid" / "gitops" / "resources" / "products" /
                       "echo.yaml");
    std::stringstream stream;
    stream << file.rdbuf();
    const auto fleet = load_fleet(kTestdata / "config" / "valid" / "gitops" / "fleet.yaml",
                                  {.resources = {"-"}, .standard_input = &stream});
    ASSERT_TRUE(fleet.has_value()) << (fleet ? "" : fleet.error().front().to_string());
    EXPECT_TRUE(fleet->desired.products.contains("echo"));
    EXPECT_TRUE(fleet->notices.empty()) << fleet->notices.front().to_string();
    // a YAML error on stdin says where
    std::stringstream broken("apiVersion: v1\nkind: [oops\n");
    const auto bad = load_fleet(kTestdata / "config" / "valid" / "gitops" / "fleet.yaml",
                                {.resources = {"-"}, .standard_input = &broken});
    ASSERT_FALSE(bad.has_value());
    EXPECT_NE(bad.error().front().to_string().find("<stdin>:"), std::string::npos)
        << bad.error().front().to_string();
    // "-" only once
    std::stringstream empty;
    const auto twice = load_fleet(kTestdata / "config" / "valid" / "gitops" / "fleet.yaml",
                                  {.resources = {"-", "-"}, .standard_input = &empty});
    ASSERT_FALSE(twice.has_value());
    EXPECT_NE(twice.error().front().to_string().find("can be read only once"), std::string::npos);
}

// OIDC as the operator's documentation writes it: the issuer and a policy's configuration from
// Secrets, the authentication flows managed one by one.
TEST(Loader, AnOidcProductTakesItsIssuerAndAPolicyConfigurationFromSecrets) {
    ::setenv("TANDEM_TEST_TOKEN", "unit-test-token", 1);
    const auto fleet = load_fleet(kTestdata / "config" / "valid" / "oidc" / "fleet.yaml");
    ASSERT_TRUE(fleet.has_value()) << (fleet ? "" : fleet.error().front().to_string());
    const auto& p = fleet->desired.products.at("banking");
    EXPECT_EQ(p.backend_version, "oidc");
    EXPECT_EQ(p.proxy.fields.at("oidc_issuer_endpoint"),
              "https://banking-client:CLIENT-SECRET-CANARY@sso.example.com/auth/realms/banking");
    EXPECT_EQ(p.proxy.fields.at("oidc_issuer_type"), "keycloak");
    EXPECT_EQ(p.proxy.fields.at("jwt_claim_with_client_id"), "azp");
    EXPECT_EQ(p.oidc_flows, (std::map<std::string, bool>{{"service_accounts_enabled", true},
                                                         {"standard_flow_enabled", false}}));
    ASSERT_EQ(p.policies.size(), 2u);
    EXPECT_TRUE(p.policies[0].secret_configuration);
    EXPECT_NE(p.policies[0].configuration.find("POLICY-SECRET-CANARY"), std::string::npos);
    EXPECT_EQ(p.policies[0].configuration.front(), '{');  // canonical JSON
    EXPECT_FALSE(p.policies[1].secret_configuration);
}

TEST(Loader, ToolboxExportsLoadWithNotices) {
    const auto fleet = load_fleet(kTestdata / "config" / "valid" / "toolbox" / "fleet.yaml");
    ASSERT_TRUE(fleet.has_value()) << (fleet ? "" : fleet.error().front().to_string());
    EXPECT_EQ(fleet->instances[0].token.reveal(), "tok-from-file");
    const auto& api = fleet->desired.products.at("api");
    EXPECT_TRUE(api.plans.at("basic").published);  // toolbox "state: published"
    EXPECT_EQ(api.plans.at("basic").setup_fee, "0.0");
    EXPECT_EQ(api.plans.at("basic").pricing_rules[0].cost_per_unit, "1.0");
    EXPECT_EQ(api.proxy.fields.at("secret_token"), "some_secret");
    EXPECT_EQ(api.proxy.fields.at("endpoint"), "http://example.com:80");
    EXPECT_EQ(api.policies.size(), 1u);
    std::string notices;
    for (const auto& n : fleet->notices) {
        notices += n.to_string() + "\n";
    }
    EXPECT_NE(notices.find("status: ignored"), std::string::npos) << notices;
    EXPECT_NE(notices.find("spec.providerAccountRef: ignored"), std::string::npos) << notices;
}

TEST(Loader, AccountsUsersApplicationsAndSecrets) {
    ::setenv("TANDEM_TEST_TOKEN", "unit-test-token", 1);
    ::setenv("TANDEM_TEST_APP_KEY", "key-from-env-1", 1);
    const auto fleet = load_fleet(kTestdata / "config" / "valid" / "accounts" / "fleet.yaml");
    ASSERT_TRUE(fleet.has_value()) << (fleet ? "" : fleet.error().front().to_string());
    ASSERT_EQ(fleet->desired.accounts.size(), 1u);
    const auto& acme = fleet->desired.accounts.at("acme-admin");  // keyed by the admin username
    EXPECT_EQ(acme.org_name, "Acme Inc.");
    EXPECT_EQ(acme.monthly_billing_enabled, false);
    ASSERT_EQ(acme.users.size(), 2u);
    EXPECT_EQ(acme.users.at("acme-admin").role, "admin");
    EXPECT_EQ(acme.users.at("acme-admin").password, "admin-password-1");
    EXPECT_EQ(acme.users.at("acme-dev").password, "file-password-1");  // from a file
    EXPECT_TRUE(acme.users.at("acme-dev").suspended);
    ASSERT_EQ(fleet->desired.applications.size(), 2u);
    const auto& v1 = fleet->desired.applications.at("petstore/acme-petstore-user-key");  // base64
    EXPECT_EQ(v1.account, "acme-admin");
    EXPECT_EQ(v1.product, "petstore");  // productCR names the Product CR's metadata.name
    EXPECT_EQ(v1.plan, "basic");
    const auto& v2 = fleet->desired.applications.at("v2api/acme-v2-id");
    EXPECT_EQ(v2.application_keys, (std::vector<std::string>{"key-from-env-1"}));  // from env
    EXPECT_TRUE(v2.suspended);
}

TEST(Normalize, Urls) {
    EXPECT_EQ(normalize_url("https://API.Example.com"), "https://api.example.com:443");
    EXPECT_EQ(normalize_url("http://a.b/path?x=1"), "http://a.b:80/path?x=1");
    EXPECT_EQ(normalize_url("wss://a.b:8443"), "wss://a.b:8443");
    EXPECT_EQ(normalize_url("http://a.b:0080"), "http://a.b:80");
    EXPECT_FALSE(normalize_url("ftp://a.b"));
    EXPECT_FALSE(normalize_url("http://a.b:70000"));
    EXPECT_FALSE(normalize_url("a.b"));
}

TEST(Normalize, Decimals) {
    EXPECT_EQ(normalize_decimal("1"), "1.0");
    EXPECT_EQ(normalize_decimal("15.450"), "15.45");
    EXPECT_EQ(normalize_decimal("0.00"), "0.0");
    EXPECT_EQ(normalize_decimal("007.5"), "7.5");
    EXPECT_FALSE(normalize_decimal("-1"));
    EXPECT_FALSE(normalize_decimal("1e3"));
    EXPECT_FALSE(normalize_decimal("ten"));
}

TEST(Normalize, SystemNamesAndPatterns) {
    EXPECT_TRUE(valid_system_name("pets_v2-api/x"));
    EXPECT_FALSE(valid_system_name("a"));  // porta needs two characters
    EXPECT_FALSE(valid_system_name("pets.v2"));
    EXPECT_EQ(operator_default_system_name("My API 1"), "MyAPI1");
    EXPECT_TRUE(valid_mapping_pattern("/pets/{id}$"));
    EXPECT_FALSE(valid_mapping_pattern("/pets/{id"));
    EXPECT_FALSE(valid_mapping_pattern("pets"));
    EXPECT_FALSE(porta_http_method("TRACE"));
    EXPECT_TRUE(porta_http_method("OPTIONS"));
}

}  // namespace
}  // namespace config
