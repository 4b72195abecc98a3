#include "support/sim_fleet.hpp"

#include <csignal>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <unistd.h>

#include "support/child_process.hpp"

namespace support {

namespace fs = std::filesystem;
using Json = nlohmann::json;

const char* const kAcmeAccount = R"(apiVersion: capabilities.3scale.net/v1beta1
kind: DeveloperAccount
metadata:
  name: acme
spec:
  orgName: Acme Inc.
---
apiVersion: capabilities.3scale.net/v1beta1
kind: DeveloperUser
metadata:
  name: acme-admin
spec:
  username: acme-admin
  email: admin@acme.example
  role: admin
  passwordCredentialsRef: {name: acme-admin-password}
  developerAccountRef: {name: acme}
---
apiVersion: v1
kind: Secret
metadata: {name: acme-admin-password}
stringData: {password: ADMIN-PASSWORD-CANARY}
)";

const std::string kEchoTwoPlans = std::string(kEchoProduct) + R"(    premium:
      name: Premium
      published: true
)";

const std::string kAcmeKeylessApp = std::string(kAcmeAccount) + R"(---
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
)";

const char* const kEchoProduct = R"(apiVersion: capabilities.3scale.net/v1beta1
kind: Backend
metadata:
  name: echo-backend
spec:
  name: Echo backend
  systemName: echo_backend
  privateBaseURL: https://echo.internal.example.com
---
apiVersion: capabilities.3scale.net/v1beta1
kind: Product
metadata:
  name: echo
spec:
  name: Echo
  systemName: echo
  deployment:
    apicastSelfManaged:
      productionPublicBaseURL: https://echo.api.test
      authentication:
        userkey:
          credentials: query
  backendUsages:
    echo_backend:
      path: /
  mappingRules:
    - httpMethod: GET
      pattern: /
      metricMethodRef: hits
      increment: 1
  applicationPlans:
    basic:
      name: Basic
      published: true
      limits:
        - period: minute
          value: 100          # global: split across the instances
          metricMethodRef:
            systemName: hits
)";

CommandRun run_tandem(const std::vector<std::string>& args,
                      const std::map<std::string, std::string>& env,
                      std::chrono::seconds timeout) {
    std::vector<std::string> argv = {TANDEM_PATH};
    argv.insert(argv.end(), args.begin(), args.end());
    ChildProcess p(argv, env, /*merge_stderr=*/true);
    CommandRun r;
    r.out = p.read_all(timeout);
    r.code = p.wait(std::chrono::seconds(30)).value_or(-1);
    return r;
}

CommandRun run_shell(const std::string& command, const std::map<std::string, std::string>& env) {
    ChildProcess p({"/bin/sh", "-c", command}, env, /*merge_stderr=*/true);
    CommandRun r;
    r.out = p.read_all(std::chrono::seconds(180));
    r.code = p.wait(std::chrono::seconds(30)).value_or(-1);
    return r;
}

std::string slurp(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void edit(const fs::path& file, const std::string& from, const std::string& to) {
    std::string text = slurp(file);
    const auto pos = text.find(from);
    ASSERT_NE(pos, std::string::npos) << "'" << from << "' not in " << file;
    text.replace(pos, from.size(), to);
    std::ofstream(file) << text;
}

void append(const fs::path& file, const std::string& text) {
    std::ofstream(file, std::ios::app) << text;
}

Json json_of(const HttpReply& r) {
    return Json::parse(r.body, nullptr, false);
}

SimFleet::SimFleet(std::vector<std::string> names,
                   std::vector<std::string> sim_args,
                   std::map<std::string, std::vector<std::string>> per_instance_args,
                   std::map<std::string, std::string> resources,
                   std::map<std::string, int> weights) {
    dir_ = fs::temp_directory_path() /
           ("tandem-e2e-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "products");
    if (resources.empty()) {
        for (const auto& e : fs::directory_iterator(fs::path(TANDEM_EXAMPLES_DIR) / "products")) {
            fs::copy_file(e.path(), dir_ / "products" / e.path().filename());
        }
    }
    for (const auto& [file, text] : resources) {
        fs::create_directories((dir_ / "products" / file).parent_path());
        std::ofstream(dir_ / "products" / file) << text;
    }
    std::string yaml = "apiVersion: tandem/v1\nkind: Fleet\ninstances:\n";
    for (const auto& name : names) {
        const std::string token = "tok-" + name + "-4a61b3";
        auto args = sim_args;
        args.insert(args.end(), {"--name", name});
        for (const auto& a : per_instance_args[name]) {
            args.push_back(a);
        }
        sims_.emplace(name, std::make_unique<SimProcess>(args, std::map<std::string, std::string>{
                                                                   {"TANDEM_SIM_TOKEN", token}}));
        args_[name] = args;
        std::string var = "TANDEM_" + name + "_TOKEN";
        for (auto& ch : var) {
            ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
        }
        env_[var] = token;
        yaml += "  - name: " + name +
                "\n    adminUrl: http://127.0.0.1:" + std::to_string(sims_[name]->admin_port()) +
                "\n    token: {env: " + var + "}\n    timeout: 5s\n";
        if (weights.contains(name)) {
            yaml += "    weight: " + std::to_string(weights[name]) + "\n";
        }
    }
    yaml += "resources:\n  - products/\n";
    std::ofstream(dir_ / "fleet.yaml") << yaml;
}

void SimFleet::kill(const std::string& name) {
    auto& p = sims_.at(name)->process();
    p.signal(SIGKILL);
    p.wait(std::chrono::seconds(5));
}

void SimFleet::restart(const std::string& name) {
    const auto admin = sims_.at(name)->admin_port();
    const auto gateway = sims_.at(name)->gateway_port();
    sims_.erase(name);
    auto args = args_.at(name);
    args.insert(args.end(),
                {"--admin-port", std::to_string(admin), "--gateway-port", std::to_string(gateway)});
    sims_.emplace(name, std::make_unique<SimProcess>(
                            args, std::map<std::string, std::string>{
                                      {"TANDEM_SIM_TOKEN", "tok-" + name + "-4a61b3"}}));
}

SimFleet::~SimFleet() {
    fs::remove_all(dir_);
}

CommandRun SimFleet::tandem(std::vector<std::string> args) {
    args.insert(args.begin() + 1, {"-f", (dir_ / "fleet.yaml").string()});
    return run_tandem(args, env_);
}

Json SimFleet::counters(const std::string& name) {
    return json_of(sim(name).control("GET", "/__sim/counters"));
}

void SimFleet::reset_counters() {
    for (auto& [name, s] : sims_) {
        s->control("POST", "/__sim/counters/reset");
    }
}

std::uint64_t SimFleet::writes(const std::string& name) {
    return counters(name)["admin"]["writes"].get<std::uint64_t>();
}

int fault_at_every_write(SimFleet& fleet, const std::string& instance) {
    edit(fleet.dir() / "fleet.yaml", "    timeout: 5s\n",
         "    timeout: 5s\n    retries: {attempts: 2, baseDelay: 1ms, maxDelay: 5ms}\n");
    auto& sim = fleet.sim(instance);
    const std::string start = sim.control("GET", "/__sim/state").body;
    fleet.reset_counters();
    const auto clean_apply = fleet.tandem({"apply"});
    EXPECT_EQ(clean_apply.code, 0) << clean_apply.out;
    const auto writes = static_cast<int>(fleet.writes(instance));
    EXPECT_GT(writes, 20);
    for (int n = 1; n <= writes; ++n) {
        for (const bool down : {true, false}) {
            SCOPED_TRACE("write " + std::to_string(n) + (down ? ", then down" : ""));
            EXPECT_EQ(sim.control("PUT", "/__sim/state", start).status, 200u);
            sim.control("PUT", "/__sim/faults",
                        R"({"admin":{"ambiguous_write":)" + std::to_string(n) +
                            R"(,"down_after":)" + (down ? "true" : "false") + "}}");
            const auto first = fleet.tandem({"apply"});
            sim.control("PUT", "/__sim/faults", "{}");
            const auto drift = fleet.tandem({"drift", "--prune"});
            if (down) {
                // it could not verify (perhaps the last write did converge it): never a false 0
                EXPECT_EQ(first.code, 1) << first.out;
            } else {
                EXPECT_EQ(first.code, 0) << first.out;
                EXPECT_EQ(drift.code, 0) << drift.out;
            }
            const auto rerun = fleet.tandem({"apply"});
            EXPECT_EQ(rerun.code, 0) << rerun.out;
            const auto clean = fleet.tandem({"drift", "--prune"});
            EXPECT_EQ(clean.code, 0) << clean.out;
            EXPECT_EQ(duplicated_rules(sim), 0);
            if (::testing::Test::HasFailure()) {
                return writes;
            }
        }
    }
    return writes;
}

int duplicated_rules(SimProcess& sim) {
    const Json state = json_of(sim.control("GET", "/__sim/state"));
    std::map<std::string, int> seen;
    int dups = 0;
    for (const auto& r : state["mapping_rules"]) {
        const std::string key = r["_owner_type"].get<std::string>() + r["_owner_id"].dump() +
                                r["http_method"].get<std::string>() +
                                r["pattern"].get<std::string>();
        dups += seen[key]++ > 0 ? 1 : 0;
    }
    return dups;
}

}  // namespace support
