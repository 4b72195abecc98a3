// The operator's CRs as people write them, against real threescale-sim processes: applications
// without key Secrets, ApplicationAuth, OIDC, Secret references, ActiveDocs, GitOps layouts.
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <unistd.h>

#include "support/child_process.hpp"
#include "support/sim_fleet.hpp"

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using support::edit;
using support::json_of;
using support::kEchoProduct;
using support::SimFleet;

// An account with its admin, and an application as real CRs write it: no authSecretRef.
// (a reference: the string is initialised in another translation unit)
const std::string& kKeylessApp = support::kAcmeKeylessApp;

// The user_key of the application named `name` on `sim` ("" when there is none).
std::vector<std::string> user_keys(support::SimProcess& sim, const std::string& name) {
    std::vector<std::string> out;
    const Json state = json_of(sim.control("GET", "/__sim/state"));
    for (const auto& a : state["applications"]) {
        if (a["name"] == name) {
            out.push_back(a.value("user_key", ""));
        }
    }
    return out;
}

int status_with_key(support::SimProcess& sim, const std::string& key) {
    return static_cast<int>(support::http_request(sim.gateway_port(), "GET",
                                                  "/anything?user_key=" + key, "",
                                                  {{"Host", "echo.api.test"}})
                                .status);
}

// Generated once with a CSPRNG, identical on every instance, never printed, never regenerated.
TEST(ApplicationsE2E, WithoutAKeySecretTheCredentialsAreGeneratedOnceAndIdentical) {
    SimFleet fleet({"east", "west"}, {"--empty"}, {},
                   {{"echo.yaml", kEchoProduct}, {"accounts.yaml", kKeylessApp}});
    const auto plan = fleet.tandem({"plan", "--output", "json"});
    EXPECT_EQ(plan.code, 2) << plan.out;
    const auto apply = fleet.tandem({"apply"});
    ASSERT_EQ(apply.code, 0) << apply.out;
    EXPECT_NE(apply.out.find("create application acme-admin: echo Acme on Echo"), std::string::npos)
        << apply.out;
    const auto east = user_keys(fleet.sim("east"), "Acme on Echo");
    const auto west = user_keys(fleet.sim("west"), "Acme on Echo");
    ASSERT_EQ(east.size(), 1u);
    ASSERT_EQ(west.size(), 1u);
    EXPECT_EQ(east, west);
    EXPECT_EQ(east[0].size(), 32u);
    EXPECT_EQ(east[0].find_first_not_of("0123456789abcdef"), std::string::npos) << east[0];
    // the key authenticates on both gateways
    EXPECT_EQ(status_with_key(fleet.sim("east"), east[0]), 200);
    EXPECT_EQ(status_with_key(fleet.sim("west"), east[0]), 200);
    // converged: drift is clean, a rerun writes nothing and keeps the key
    const auto drift = fleet.tandem({"drift"});
    EXPECT_EQ(drift.code, 0) << drift.out;
    fleet.reset_counters();
    EXPECT_EQ(fleet.tandem({"apply"}).code, 0);
    EXPECT_EQ(fleet.writes("east") + fleet.writes("west"), 0u);
    EXPECT_EQ(user_keys(fleet.sim("west"), "Acme on Echo"), east);
    for (const auto& out : {plan.out, apply.out, drift.out}) {
        EXPECT_EQ(out.find(east[0]), std::string::npos) << "a generated key was printed";
        EXPECT_EQ(out.find("ADMIN-PASSWORD-CANARY"), std::string::npos);
    }
}

// A developer already made the application on west (through its portal): east adopts west's key;
// an instance whose application of that name has another key is converged to the adopted one.
TEST(ApplicationsE2E, ExistingCredentialsAreAdoptedAndDisagreementsConverge) {
    // the product and the account first, the Application CR later
    const std::string crs = kKeylessApp;
    const auto app_cr =
        crs.find("---\napiVersion: capabilities.3scale.net/v1beta1\nkind: Application\n");
    SimFleet fleet({"east", "west", "north"}, {"--empty"}, {},
                   {{"echo.yaml", kEchoProduct}, {"accounts.yaml", crs.substr(0, app_cr)}});
    ASSERT_EQ(fleet.tandem({"apply"}).code, 0);
    const auto make_app = [&](const std::string& instance, const std::string& key) {
        auto& sim = fleet.sim(instance);
        const Json found = json_of(sim.admin("GET", "/admin/api/accounts.json"));
        std::string account;
        for (const auto& a : found["accounts"]) {
            if (a["account"]["org_name"] == "Acme Inc.") {
                account = a["account"]["id"].dump();
            }
        }
        const Json services = json_of(sim.admin("GET", "/admin/api/services.json"));
        const std::string svc = services["services"][0]["service"]["id"].dump();
        const Json plans =
            json_of(sim.admin("GET", "/admin/api/services/" + svc + "/application_plans.json"));
        const std::string plan = plans["plans"][0]["application_plan"]["id"].dump();
        ASSERT_EQ(sim.admin("POST", "/admin/api/accounts/" + account + "/applications.json",
                            "plan_id=" + plan + "&name=Acme on Echo&description=production" +
                                "&user_key=" + key)
                      .status,
                  201u);
    };
    make_app("west", "west0000portal0key");
    make_app("north", "north000other0key");
    // now the Application CR, without authSecretRef
    std::ofstream(fleet.dir() / "products" / "accounts.yaml", std::ios::app) << crs.substr(app_cr);
    const auto drift = fleet.tandem({"drift", "--output", "json"});
    EXPECT_EQ(drift.code, 2) << drift.out;
    const Json report = Json::parse(drift.out.substr(drift.out.find('{')));
    std::set<std::string> where;
    for (const auto& d : report["drifts"]) {
        if (d["object"]["type"] == "application") {
            where.insert(d["instance"].get<std::string>() + " " + d["kind"].get<std::string>() +
                         " " + d.value("field", ""));
        }
    }
    EXPECT_EQ(where, (std::set<std::string>{"east missing ", "north changed credentials"}))
        << drift.out;
    EXPECT_EQ(drift.out.find("west0000portal0key"), std::string::npos);
    EXPECT_EQ(drift.out.find("north000other0key"), std::string::npos);
    const auto apply = fleet.tandem({"apply"});
    ASSERT_EQ(apply.code, 0) << apply.out;
    for (const char* name : {"east", "west", "north"}) {
        EXPECT_EQ(user_keys(fleet.sim(name), "Acme on Echo"),
                  (std::vector<std::string>{"west0000portal0key"}))
            << name;
    }
    EXPECT_EQ(status_with_key(fleet.sim("north"), "north000other0key"), 403);
    EXPECT_EQ(fleet.tandem({"drift"}).code, 0);
}

// The operator's ApplicationAuth: the key of an existing application, from a Secret.
TEST(ApplicationsE2E, AnApplicationAuthSetsTheKeyEverywhere) {
    std::string crs = kKeylessApp;
    crs += R"(---
apiVersion: capabilities.3scale.net/v1beta1
kind: ApplicationAuth
metadata:
  name: acme-echo-auth
spec:
  applicationCRName: acme-echo
  generateSecret: false
  authSecretRef: {name: acme-echo-key}
---
apiVersion: v1
kind: Secret
metadata:
  name: acme-echo-key
  annotations: {tandem.3scale.net/env.UserKey: ACME_ECHO_KEY}
)";
    SimFleet fleet({"east", "west"}, {"--empty"}, {},
                   {{"echo.yaml", kEchoProduct}, {"accounts.yaml", crs}});
    fleet.set_env("ACME_ECHO_KEY", "first-key-from-secret");
    ASSERT_EQ(fleet.tandem({"apply"}).code, 0);
    EXPECT_EQ(user_keys(fleet.sim("east"), "Acme on Echo"),
              (std::vector<std::string>{"first-key-from-secret"}));
    // rotated in the Secret: the same application gets the new key in place on every instance
    fleet.set_env("ACME_ECHO_KEY", "rotated-key-from-secret");
    const auto rotate = fleet.tandem({"apply"});
    ASSERT_EQ(rotate.code, 0) << rotate.out;
    EXPECT_NE(rotate.out.find("update application acme-admin: echo Acme on Echo"),
              std::string::npos)
        << rotate.out;
    for (const char* name : {"east", "west"}) {
        EXPECT_EQ(user_keys(fleet.sim(name), "Acme on Echo"),
                  (std::vector<std::string>{"rotated-key-from-secret"}))
            << name;
        EXPECT_EQ(status_with_key(fleet.sim(name), "rotated-key-from-secret"), 200);
    }
    EXPECT_EQ(rotate.out.find("rotated-key-from-secret"), std::string::npos);
    EXPECT_EQ(fleet.tandem({"drift"}).code, 0);
}

// plan lists everything apply then does — the users and applications under an account that does
// not exist yet, and the removal of what signup makes on default plans — with the same counts.
TEST(PlanE2E, PlanListsExactlyWhatApplyDoesUnderANewAccount) {
    std::string crs = kKeylessApp;
    crs += R"(---
apiVersion: capabilities.3scale.net/v1beta1
kind: DeveloperUser
metadata:
  name: acme-dev
spec:
  username: acme-dev
  email: dev@acme.example
  passwordCredentialsRef: {name: acme-admin-password}
  developerAccountRef: {name: acme}
)";
    // default tenants: the "API" product has a default plan, where signup adds an application
    SimFleet fleet({"east", "west"}, {}, {}, {{"echo.yaml", kEchoProduct}, {"accounts.yaml", crs}});
    const auto plan = fleet.tandem({"plan"});
    EXPECT_EQ(plan.code, 2) << plan.out;
    const auto apply = fleet.tandem({"apply"});
    ASSERT_EQ(apply.code, 0) << apply.out;
    for (const std::string name : {"east", "west"}) {
        std::multiset<std::string> planned;
        std::multiset<std::string> done;
        std::istringstream p(plan.out);
        bool mine = false;
        for (std::string line; std::getline(p, line);) {
            if (!line.starts_with(" ")) {
                mine = line.starts_with(name + ":");
            } else if (mine && line.starts_with("  ") && line.size() > 4 &&
                       (line[2] == '+' || line[2] == '~' || line[2] == '-' || line[2] == '>')) {
                planned.insert(line.substr(4, line.find(" (") - 4));
            }
        }
        std::istringstream a(apply.out);
        for (std::string line; std::getline(a, line);) {
            const std::string prefix = "[" + name + "] ok     ";
            if (line.starts_with(prefix)) {
                done.insert(line.substr(prefix.size()));
            }
        }
        EXPECT_EQ(planned, done) << name << "\n" << plan.out << apply.out;
        EXPECT_TRUE(planned.contains("create user acme-admin: acme-dev")) << plan.out;
        EXPECT_TRUE(planned.contains("create application acme-admin: echo Acme on Echo"));
        EXPECT_TRUE(planned.contains("delete application acme-admin: api API signup"));
    }
}

// OIDC: the issuer and a policy's configuration from Secrets (env annotations, so no secret sits
// in the files), the flows through the proxy's OIDC configuration endpoint; drift sees a flow
// changed by hand; no secret value in any output.
const char* kOidcProduct = R"(apiVersion: capabilities.3scale.net/v1beta1
kind: Backend
metadata:
  name: accounts-backend
spec:
  name: Accounts backend
  systemName: accounts_backend
  privateBaseURL: https://accounts.internal.example.com
---
apiVersion: capabilities.3scale.net/v1beta1
kind: Product
metadata:
  name: banking
spec:
  name: Banking API
  systemName: banking
  deployment:
    apicastSelfManaged:
      productionPublicBaseURL: https://banking.api.test
      authentication:
        oidc:
          issuerType: keycloak
          issuerEndpointRef: {name: banking-issuer}
          authenticationFlow:
            standardFlowEnabled: false
            serviceAccountsEnabled: true
          credentials: headers
  backendUsages:
    accounts_backend: {path: /}
  policies:
    - name: headers
      version: builtin
      enabled: true
      configurationRef: {name: banking-headers}
    - name: apicast
      version: builtin
      enabled: true
---
apiVersion: v1
kind: Secret
metadata:
  name: banking-issuer
  annotations: {tandem.3scale.net/env.issuerEndpoint: BANKING_ISSUER}
---
apiVersion: v1
kind: Secret
metadata:
  name: banking-headers
  annotations: {tandem.3scale.net/env.configuration: BANKING_HEADERS}
)";

TEST(OidcE2E, IssuerFlowsAndPolicyFromSecretsApplyDriftAndStaySecret) {
    SimFleet fleet({"east", "west"}, {"--empty"}, {}, {{"banking.yaml", kOidcProduct}});
    const std::string issuer =
        "https://banking-client:CLIENT-SECRET-CANARY@sso.example.com/auth/realms/banking";
    fleet.set_env("BANKING_ISSUER", issuer);
    fleet.set_env("BANKING_HEADERS",
                  R"({"request":[{"op":"set","header":"X-Token","value_type":"plain",)"
                  R"("value":"POLICY-SECRET-CANARY"}]})");
    std::vector<support::CommandRun> runs;
    runs.push_back(fleet.tandem({"plan", "--output", "json"}));
    runs.push_back(fleet.tandem({"apply"}));
    ASSERT_EQ(runs.back().code, 0) << runs.back().out;
    for (const char* name : {"east", "west"}) {
        const Json state = json_of(fleet.sim(name).control("GET", "/__sim/state"));
        bool checked = false;
        for (const auto& proxy : state["proxies"]) {
            if (proxy.value("oidc_issuer_type", "") != "keycloak") {
                continue;
            }
            checked = true;
            EXPECT_EQ(proxy["oidc_issuer_endpoint"], issuer);
            EXPECT_EQ(proxy["_oidc_configuration"]["standard_flow_enabled"], false) << name;
            EXPECT_EQ(proxy["_oidc_configuration"]["service_accounts_enabled"], true) << name;
            EXPECT_NE(proxy["policies_config"].dump().find("POLICY-SECRET-CANARY"),
                      std::string::npos);
        }
        EXPECT_TRUE(checked) << name << ": no OIDC product";
    }
    runs.push_back(fleet.tandem({"drift"}));
    EXPECT_EQ(runs.back().code, 0) << runs.back().out;
    fleet.reset_counters();
    EXPECT_EQ(fleet.tandem({"apply"}).code, 0);
    EXPECT_EQ(fleet.writes("east") + fleet.writes("west"), 0u);
    // someone enables the standard flow on west: drift names it; apply puts it back
    {
        auto& west = fleet.sim("west");
        const Json services = json_of(west.admin("GET", "/admin/api/services.json"));
        const std::string svc = services["services"][0]["service"]["id"].dump();
        ASSERT_EQ(
            west.admin("PATCH", "/admin/api/services/" + svc + "/proxy/oidc_configuration.json",
                       "standard_flow_enabled=true")
                .status,
            200u);
    }
    runs.push_back(fleet.tandem({"drift", "--output", "json"}));
    EXPECT_EQ(runs.back().code, 2);
    const Json report = Json::parse(runs.back().out.substr(runs.back().out.find('{')));
    ASSERT_EQ(report["drifts"].size(), 1u) << runs.back().out;
    EXPECT_EQ(report["drifts"][0]["instance"], "west");
    EXPECT_EQ(report["drifts"][0]["object"]["type"], "OIDC configuration");
    EXPECT_EQ(report["drifts"][0]["field"], "standard_flow_enabled");
    // a new policy configuration in the Secret: planned, shown redacted, applied
    fleet.set_env("BANKING_HEADERS",
                  R"({"request":[{"op":"set","header":"X-Token","value_type":"plain",)"
                  R"("value":"ROTATED-POLICY-CANARY"}]})");
    runs.push_back(fleet.tandem({"plan"}));
    EXPECT_NE(runs.back().out.find("update policy chain banking: policies"), std::string::npos)
        << runs.back().out;
    EXPECT_NE(runs.back().out.find("<redacted>"), std::string::npos) << runs.back().out;
    runs.push_back(fleet.tandem({"apply"}));
    EXPECT_EQ(runs.back().code, 0) << runs.back().out;
    runs.push_back(fleet.tandem({"drift", "--output", "markdown"}));
    EXPECT_EQ(runs.back().code, 0) << runs.back().out;
    for (const auto& r : runs) {
        for (const char* secret :
             {"CLIENT-SECRET-CANARY", "POLICY-SECRET-CANARY", "ROTATED-POLICY-CANARY"}) {
            EXPECT_EQ(r.out.find(secret), std::string::npos) << secret << " in\n" << r.out;
        }
    }
}

// ActiveDocs: the OpenAPI document from a Secret (YAML), a file and a URL; compared semantically
// (a reformatted document is no change); a URL that cannot be fetched stops the run before any
// instance is contacted.
const char* kOpenApiYaml = R"(openapi: 3.0.3
info:
  title: Echo
  version: 1.0.0
paths:
  /anything:
    get:
      responses:
        "200": {description: ok}
)";

TEST(ActiveDocsE2E, FromASecretAFileAndAUrlSyncedAndComparedSemantically) {
    // a plain HTTP server for the URL case (Debian's python3), on a free port
    const fs::path served =
        fs::temp_directory_path() / ("tandem-openapi-" + std::to_string(::getpid()));
    fs::create_directories(served);
    std::ofstream(served / "echo.json")
        << R"({"swagger":"2.0","info":{"title":"Echo URL","version":"1"},"paths":{}})";
    support::ChildProcess http({"/usr/bin/python3", "-u", "-m", "http.server", "0", "--bind",
                                "127.0.0.1", "--directory", served.string()},
                               {}, true);
    const auto banner = http.read_line(std::chrono::seconds(20));
    ASSERT_TRUE(banner.has_value());
    const auto at = banner->find(" port ");
    ASSERT_NE(at, std::string::npos) << *banner;
    const std::string port = banner->substr(at + 6, banner->find(' ', at + 6) - at - 6);
    std::string crs = R"(apiVersion: capabilities.3scale.net/v1beta1
kind: ActiveDoc
metadata: {name: echo-docs}
spec:
  name: Echo API
  productSystemName: echo
  published: true
  activeDocOpenAPIRef:
    secretRef: {name: echo-openapi}
---
apiVersion: v1
kind: Secret
metadata: {name: echo-openapi}
stringData:
  openapi.yaml: |
)";
    std::istringstream lines(kOpenApiYaml);
    for (std::string line; std::getline(lines, line);) {
        crs += "    " + line + "\n";
    }
    crs += R"(---
apiVersion: capabilities.3scale.net/v1beta1
kind: ActiveDoc
metadata: {name: echo-file}
spec:
  name: Echo from a file
  systemName: echo_file
  activeDocOpenAPIRef: {url: "file:openapi/echo.yaml"}
---
apiVersion: capabilities.3scale.net/v1beta1
kind: ActiveDoc
metadata: {name: echo-url}
spec:
  name: Echo from a URL
  systemName: echo_url
  skipSwaggerValidations: false
  activeDocOpenAPIRef: {url: "http://127.0.0.1:)" +
           port + R"(/echo.json"}
)";
    SimFleet fleet(
        {"east", "west"}, {"--empty"}, {},
        {{"echo.yaml", kEchoProduct}, {"docs.yaml", crs}, {"openapi/echo.yaml", kOpenApiYaml}});
    const auto apply = fleet.tandem({"apply"});
    ASSERT_EQ(apply.code, 0) << apply.out;
    for (const char* name : {"east", "west"}) {
        const Json docs = json_of(fleet.sim(name).admin("GET", "/admin/api/active_docs.json"));
        std::set<std::string> names;
        for (const auto& d : docs["api_docs"]) {
            names.insert(d["api_doc"]["system_name"].get<std::string>());
            const Json body = Json::parse(d["api_doc"]["body"].get<std::string>());
            EXPECT_TRUE(body.contains("openapi") || body.contains("swagger"));
            if (d["api_doc"]["system_name"] == "EchoAPI") {
                EXPECT_EQ(d["api_doc"]["published"], true);
                EXPECT_TRUE(d["api_doc"].contains("service_id")) << "not bound to the product";
            }
        }
        EXPECT_EQ(names, (std::set<std::string>{"EchoAPI", "echo_file", "echo_url"})) << name;
    }
    EXPECT_EQ(fleet.tandem({"drift"}).code, 0);
    fleet.reset_counters();
    EXPECT_EQ(fleet.tandem({"apply"}).code, 0);
    EXPECT_EQ(fleet.writes("east") + fleet.writes("west"), 0u);
    // the same document reformatted (JSON instead of YAML, other key order): no change
    std::ofstream(fleet.dir() / "products" / "openapi" / "echo.yaml")
        << R"({"paths":{"/anything":{"get":{"responses":{"200":{"description":"ok"}}}}},)"
        << R"("info":{"version":"1.0.0","title":"Echo"},"openapi":"3.0.3"})";
    const auto same = fleet.tandem({"plan"});
    EXPECT_EQ(same.code, 0) << same.out;
    // a new path: an update of that document, everywhere
    edit(fleet.dir() / "products" / "openapi" / "echo.yaml", R"("paths":{)",
         R"("paths":{"/status":{"get":{"responses":{"200":{"description":"up"}}}},)");
    const auto changed = fleet.tandem({"plan"});
    EXPECT_EQ(changed.code, 2) << changed.out;
    EXPECT_NE(changed.out.find("update ActiveDoc echo_file"), std::string::npos) << changed.out;
    EXPECT_NE(changed.out.find("(differs)"), std::string::npos) << changed.out;
    ASSERT_EQ(fleet.tandem({"apply"}).code, 0);
    EXPECT_EQ(fleet.tandem({"drift"}).code, 0);
    // no longer bound to the product: unbound everywhere, then clean
    edit(fleet.dir() / "products" / "docs.yaml", "  productSystemName: echo\n", "");
    const auto unbind = fleet.tandem({"apply"});
    EXPECT_EQ(unbind.code, 0) << unbind.out;
    EXPECT_NE(unbind.out.find("update ActiveDoc EchoAPI"), std::string::npos) << unbind.out;
    EXPECT_EQ(fleet.tandem({"drift"}).code, 0);
    // the URL's server goes away: the run stops before any instance is contacted
    http.signal(SIGTERM);
    (void)http.wait(std::chrono::seconds(10));
    fleet.reset_counters();
    const auto gone = fleet.tandem({"apply"});
    EXPECT_EQ(gone.code, 1) << gone.out;
    EXPECT_NE(gone.out.find("ActiveDoc echo_url"), std::string::npos) << gone.out;
    EXPECT_NE(gone.out.find("no instance was contacted"), std::string::npos) << gone.out;
    for (const char* name : {"east", "west"}) {
        EXPECT_EQ(fleet.counters(name)["admin"]["reads"].get<int>(), 0) << name;
    }
    fs::remove_all(served);
}

// The corpus: examples/gitops, CRs as the operator's documentation and `3scale product export`
// write them, in a kustomize layout. As written (base/) and through the prod overlay
// (kubectl kustomize | tandem --resources -): validates, plans, applies, drifts clean and
// re-applies with 0 writes.
TEST(CorpusE2E, TheGitOpsExampleAppliesAsWrittenAndThroughItsOverlay) {
    SimFleet fleet({"east", "west"}, {"--empty"}, {}, {{"placeholder.yaml", ""}});
    const fs::path corpus = fs::path(TANDEM_EXAMPLES_DIR) / "gitops";
    fs::remove(fleet.dir() / "products" / "placeholder.yaml");
    fs::copy(corpus / "base", fleet.dir() / "products", fs::copy_options::recursive);
    fleet.set_env("PETSTORE_HEADERS_POLICY",
                  R"({"request":[{"op":"set","header":"X-Gateway","value_type":"plain",)"
                  R"("value":"3scale"}]})");
    fleet.set_env("BANKING_OIDC_ISSUER",
                  "https://banking:ISSUER-CANARY@sso.example.com/auth/realms/banking");
    fleet.set_env("ACME_ADMIN_PASSWORD", "ADMIN-CANARY-1");
    fleet.set_env("ACME_DEV_PASSWORD", "DEV-CANARY-1");
    std::vector<support::CommandRun> runs;
    const auto run = [&](std::vector<std::string> args) {
        runs.push_back(fleet.tandem(std::move(args)));
        return runs.back();
    };
    EXPECT_EQ(run({"validate"}).code, 0) << runs.back().out;
    EXPECT_EQ(run({"plan"}).code, 2) << runs.back().out;
    ASSERT_EQ(run({"apply"}).code, 0) << runs.back().out;
    EXPECT_EQ(run({"drift", "--prune"}).code, 0) << runs.back().out;
    fleet.reset_counters();
    EXPECT_EQ(run({"apply"}).code, 0) << runs.back().out;
    EXPECT_EQ(fleet.writes("east") + fleet.writes("west"), 0u) << runs.back().out;
    // the applications' generated credentials are the same on both instances
    const auto apps = [&](const std::string& name) {
        std::map<std::string, std::string> out;
        const Json state = json_of(fleet.sim(name).control("GET", "/__sim/state"));
        for (const auto& a : state["applications"]) {
            out[a["name"].get<std::string>()] =
                a.value("user_key", "") + "/" + a.value("application_id", "");
        }
        return out;
    };
    const auto east = apps("east");
    EXPECT_EQ(east, apps("west"));
    EXPECT_EQ(east.size(), 2u);
    // the prod overlay through kustomize: the basic plan's limits change, nothing else
    if (std::system("command -v kubectl >/dev/null 2>&1") == 0) {
        const fs::path prod = fleet.dir() / "overlays" / "prod";
        fs::create_directories(prod);
        fs::copy_file(corpus / "overlays" / "prod" / "petstore-limits.yaml",
                      prod / "petstore-limits.yaml");
        std::ofstream(prod / "kustomization.yaml")
            << "bases:\n  - ../../products\npatchesStrategicMerge:\n  - petstore-limits.yaml\n";
        const auto piped = [&](const std::string& command) {
            runs.push_back(support::run_shell(
                "kubectl kustomize " + prod.string() + " 2>/dev/null | " + TANDEM_PATH + " " +
                    command + " -f " + (fleet.dir() / "fleet.yaml").string() + " --resources -",
                fleet.env()));
            return runs.back();
        };
        const auto plan = piped("plan --output json");
        EXPECT_EQ(plan.code, 2) << plan.out;
        const Json report = Json::parse(plan.out.substr(plan.out.find('{')));
        for (const auto& instance : report["instances"]) {
            std::set<std::string> ops;
            for (const auto& op : instance["operations"]) {
                ops.insert(op["action"].get<std::string>() + " " + op["type"].get<std::string>() +
                           " " + op["name"].get<std::string>());
            }
            EXPECT_EQ(ops, (std::set<std::string>{"update limit basic/hits/minute",
                                                  "update limit basic/pets_backend.list_pets/day"}))
                << plan.out;
        }
        EXPECT_EQ(piped("apply").code, 0) << runs.back().out;
        EXPECT_EQ(piped("drift --prune").code, 0) << runs.back().out;
        fleet.reset_counters();
        EXPECT_EQ(piped("apply").code, 0) << runs.back().out;
        EXPECT_EQ(fleet.writes("east") + fleet.writes("west"), 0u) << runs.back().out;
    }
    // the custom policy the petstore chain uses, edited by hand in west's registry: drift
    {
        auto& west = fleet.sim("west");
        const Json registry = json_of(west.admin("GET", "/admin/api/registry/policies.json"));
        ASSERT_EQ(registry["policies"].size(), 1u);
        const std::string id = registry["policies"][0]["policy"]["id"].dump();
        ASSERT_EQ(
            west.admin("PUT", "/admin/api/registry/policies/" + id + ".json",
                       R"(schema={"name":"x","summary":"y","version":"0.1","configuration":{}})")
                .status,
            200u);
        const auto drift = run({"drift"});
        EXPECT_EQ(drift.code, 2);
        EXPECT_NE(drift.out.find("changed  custom policy request_audit@0.1  schema"),
                  std::string::npos)
            << drift.out;
        EXPECT_EQ(run({"apply"}).code, 0);
        EXPECT_EQ(run({"drift"}).code, 0) << runs.back().out;
    }
    for (const auto& r : runs) {
        for (const char* secret : {"ISSUER-CANARY", "ADMIN-CANARY-1", "DEV-CANARY-1"}) {
            EXPECT_EQ(r.out.find(secret), std::string::npos) << secret << " in\n" << r.out;
        }
        for (const auto& [name, credentials] : east) {
            const std::string user_key = credentials.substr(0, credentials.find('/'));
            const std::string app_id = credentials.substr(credentials.find('/') + 1);
            for (const auto& key : {user_key, app_id}) {
                EXPECT_TRUE(key.empty() || r.out.find(key) == std::string::npos)
                    << name << "'s credentials were printed";
            }
        }
    }
}

// The corpus under a fault at every write of its first apply (accounts, generated credentials,
// OIDC flows, ActiveDocs, the registry included): every rerun converges to exactly the CRs.
TEST(CorpusE2E, AFaultAtEveryWriteOfTheCorpusThenARerunConverges) {
    SimFleet fleet({"east"}, {"--empty"}, {}, {{"placeholder.yaml", ""}});
    fs::remove(fleet.dir() / "products" / "placeholder.yaml");
    fs::copy(fs::path(TANDEM_EXAMPLES_DIR) / "gitops" / "base", fleet.dir() / "products",
             fs::copy_options::recursive);
    fleet.set_env("PETSTORE_HEADERS_POLICY", R"({"request":[]})");
    fleet.set_env("BANKING_OIDC_ISSUER", "https://banking:s3cret@sso.example.com/auth/realms/b");
    fleet.set_env("ACME_ADMIN_PASSWORD", "admin-password-1");
    fleet.set_env("ACME_DEV_PASSWORD", "dev-password-1");
    const int writes = support::fault_at_every_write(fleet, "east");
    EXPECT_GT(writes, 40);
    // the applications survived every interruption with one set of credentials each
    const Json state = json_of(fleet.sim("east").control("GET", "/__sim/state"));
    std::map<std::string, int> apps;
    for (const auto& a : state["applications"]) {
        ++apps[a["name"].get<std::string>()];
    }
    EXPECT_EQ(apps, (std::map<std::string, int>{{"Acme banking", 1}, {"Acme pets", 1}}));
}

}  // namespace
