// The differ is pure: desired + actual models in, operations out.
#include "sync/differ.hpp"

#include <gtest/gtest.h>

namespace syncer {
namespace {

config::Limit limit(config::MetricRef metric, ratelimit::Period period, std::int64_t value) {
    config::Limit l;
    l.metric = std::move(metric);
    l.period = period;
    l.value = value;
    return l;
}

config::Product base_product() {
    config::Product p;
    p.name = "Pets";
    p.description = "";
    p.metrics["hits"] = {"Hits", "hit", "Number of API hits", {}};
    p.policies.push_back({"apicast", "builtin", true, "{}"});
    config::Plan plan;
    plan.name = "Basic";
    plan.published = true;
    plan.limits.push_back(limit({"hits", ""}, ratelimit::Period::kMinute, 100));
    p.plans["basic"] = plan;
    p.backend_usages["be"] = {"/", {}};
    return p;
}

// An "actual" state equal to the desired one, as the reader would produce it.
InstanceState state_of(const config::Product& p, const std::string& name = "pets") {
    InstanceState s;
    config::Product actual = p;
    actual.deployment_option = p.deployment_option.value_or("hosted");
    actual.backend_version = p.backend_version.value_or("1");
    for (auto& [plan_name, plan] : actual.plans) {
        plan.approval_required = plan.approval_required.value_or(false);
        plan.trial_period_days = plan.trial_period_days.value_or(0);
        plan.setup_fee = plan.setup_fee.value_or("0.0");
        plan.cost_per_month = plan.cost_per_month.value_or("0.0");
    }
    s.model.products[name] = actual;
    ProductIds ids;
    ids.id = 10;
    Id next = 100;
    for (const auto& [m, _] : p.metrics) {
        ids.metrics[m] = next++;
    }
    for (std::size_t i = 0; i < p.mapping_rules.size(); ++i) {
        ids.rules.push_back(next++);
    }
    for (const auto& [plan_name, plan] : p.plans) {
        ids.plans[plan_name] = next++;
        for (const auto& l : plan.limits) {
            ids.limits[{plan_name, l.metric, l.period}] = next++;
        }
    }
    for (const auto& [b, _] : p.backend_usages) {
        ids.usages[b] = next++;
    }
    s.products[name] = ids;
    s.configs[name] = {7, 7};
    config::Backend be;
    be.name = "be";
    be.private_endpoint = "https://be.example.com:443";
    be.metrics["hits"] = {"Hits", "hit", "Number of API hits", {}};
    s.model.backends["be"] = be;
    s.backends["be"] = BackendIds{50, {{"hits", 51}}, {}};
    return s;
}

config::DesiredState desired_of(const config::Product& p) {
    config::DesiredState d;
    d.products["pets"] = p;
    config::Backend be;
    be.name = "be";
    be.private_endpoint = "https://be.example.com:443";
    be.metrics["hits"] = {"Hits", "hit", "Number of API hits", {}};
    d.backends["be"] = be;
    return d;
}

std::vector<std::string> summaries(const std::vector<Operation>& ops) {
    std::vector<std::string> out;
    for (const auto& o : ops) {
        out.push_back(o.summary());
    }
    return out;
}

TEST(Differ, IdenticalStatesNeedNothing) {
    const auto p = base_product();
    EXPECT_TRUE(Differ({}).diff(desired_of(p), state_of(p)).empty());
    EXPECT_TRUE(Differ({true}).diff(desired_of(p), state_of(p)).empty());
}

TEST(Differ, ALimitValueIsUpdatedInPlaceWithoutADeploy) {
    const auto actual = base_product();
    auto desired = actual;
    desired.plans["basic"].limits[0].value = 50;
    const auto state = state_of(actual);
    const auto ops = Differ({}).diff(desired_of(desired), state);
    ASSERT_EQ(ops.size(), 1u) << ::testing::PrintToString(summaries(ops));
    EXPECT_EQ(ops[0].action, Action::kUpdate);
    EXPECT_EQ(ops[0].kind, Kind::kLimit);
    EXPECT_EQ(ops[0].id, state.products.at("pets").limits.begin()->second);  // same object
    EXPECT_EQ(ops[0].changes, (std::vector<FieldChange>{{"value", "50", "100"}}));
    EXPECT_EQ(ops[0].form, (std::vector<std::pair<std::string, std::string>>{{"value", "50"}}));
}

// The CR owns its product: a limit it does not list goes, with or without --prune.
TEST(Differ, NewLimitsArePostedAndExtraOnesDeletedAsTheCrOwnsThem) {
    auto actual = base_product();
    actual.plans["basic"].limits.push_back(limit({"hits", ""}, ratelimit::Period::kDay, 5));
    auto desired = base_product();
    desired.plans["basic"].limits.push_back(limit({"hits", "be"}, ratelimit::Period::kHour, 7));
    for (const bool prune : {false, true}) {
        const auto ops = Differ({prune}).diff(desired_of(desired), state_of(actual));
        ASSERT_EQ(ops.size(), 2u);
        EXPECT_EQ(ops[0].summary(), "create limit pets: basic/be.hits/hour");
        EXPECT_EQ(ops[0].metric, (config::MetricRef{"hits", "be"}));
        EXPECT_EQ(ops[1].summary(), "delete limit pets: basic/hits/day");
        EXPECT_FALSE(ops[1].unmanaged);
    }
}

TEST(Differ, MappingRuleChangesDeployAndPromote) {
    auto actual = base_product();
    actual.mapping_rules = {{"GET", "/a", "hits", 1, false, {}},
                            {"GET", "/b", "hits", 1, false, {}}};
    auto desired = actual;
    desired.mapping_rules[1].delta = 3;
    const auto ops = Differ({}).diff(desired_of(desired), state_of(actual));
    EXPECT_EQ(summaries(ops),
              (std::vector<std::string>{"update mapping rule pets: GET /b",
                                        "deploy proxy config of pets to staging",
                                        "promote proxy config of pets to production"}));
    EXPECT_EQ(ops[0].changes, (std::vector<FieldChange>{{"delta", "3", "1"}}));
}

TEST(Differ, RuleOrderFollowsTheDesiredListLikeActsAsList) {
    auto actual = base_product();
    actual.mapping_rules = {{"GET", "/a", "hits", 1, false, {}},
                            {"GET", "/b", "hits", 1, false, {}},
                            {"GET", "/c", "hits", 1, false, {}}};
    auto desired = actual;
    desired.mapping_rules = {actual.mapping_rules[2],
                             actual.mapping_rules[0],
                             {"POST", "/new", "hits", 1, false, {}},
                             actual.mapping_rules[1]};
    const auto state = state_of(actual);
    const auto ops = Differ({}).diff(desired_of(desired), state);
    // /c moves to 1 (a, b shift down), then the new rule is inserted at 3; b ends at 4.
    ASSERT_GE(ops.size(), 2u);
    EXPECT_EQ(ops[0].summary(), "update mapping rule pets: GET /c");
    EXPECT_EQ(ops[0].position, 1);
    EXPECT_EQ(ops[0].id, state.products.at("pets").rules[2]);
    EXPECT_EQ(ops[1].summary(), "create mapping rule pets: POST /new");
    EXPECT_EQ(ops[1].position, 3);
    EXPECT_EQ(ops[2].action, Action::kDeploy);  // nothing else moved
}

TEST(Differ, ANewProductStartsFromWhat3scaleCreates) {
    const auto desired = base_product();
    InstanceState empty = state_of(base_product());
    empty.model.products.clear();
    empty.products.clear();
    empty.configs.clear();
    const auto ops = Differ({}).diff(desired_of(desired), empty);
    const auto s = summaries(ops);
    EXPECT_EQ(s.front(), "create product pets");
    // 3scale's own GET / rule is removed even without --prune, and is not "unmanaged"
    const auto del = std::find(s.begin(), s.end(), "delete mapping rule pets: GET /");
    ASSERT_NE(del, s.end());
    EXPECT_FALSE(ops[static_cast<std::size_t>(del - s.begin())].unmanaged);
    EXPECT_EQ(s.back(), "promote proxy config of pets to production");
    // hits already exists on a new product: no create for it
    EXPECT_EQ(std::count(s.begin(), s.end(), "create metric pets: hits"), 0);
}

TEST(Differ, PlanPublishedIsAlwaysManagedOtherFieldsOnlyWhenSet) {
    auto actual = base_product();
    auto desired = actual;
    desired.plans["basic"].published = false;
    desired.plans["basic"].cost_per_month = "9.5";
    const auto ops = Differ({}).diff(desired_of(desired), state_of(actual));
    ASSERT_EQ(ops.size(), 1u);
    EXPECT_EQ(ops[0].kind, Kind::kPlan);
    EXPECT_EQ(ops[0].form, (std::vector<std::pair<std::string, std::string>>{
                               {"cost_per_month", "9.5"}, {"state_event", "hide"}}));
}

TEST(Differ, PoliciesAreReplacedAsAWholeChain) {
    auto actual = base_product();
    auto desired = actual;
    desired.policies.insert(desired.policies.begin(), {"cors", "builtin", true, R"({"a":1})"});
    const auto ops = Differ({}).diff(desired_of(desired), state_of(actual));
    ASSERT_EQ(ops.size(), 3u);
    EXPECT_EQ(ops[0].kind, Kind::kPolicies);
    ASSERT_EQ(ops[0].form.size(), 1u);
    EXPECT_EQ(ops[0].form[0].second,
              R"([{"name":"cors","version":"builtin","enabled":true,"configuration":{"a":1}},)"
              R"({"name":"apicast","version":"builtin","enabled":true,"configuration":{}}])");
}

TEST(Differ, ProxyOnlySendsTheChangedFieldsThatAreManaged) {
    auto actual = base_product();
    actual.proxy.fields = {{"endpoint", "https://a.example.com:443"}, {"secret_token", "random"}};
    auto desired = base_product();
    desired.proxy.fields = {{"endpoint", "https://b.example.com:443"}};
    const auto ops = Differ({}).diff(desired_of(desired), state_of(actual));
    ASSERT_FALSE(ops.empty());
    EXPECT_EQ(ops[0].kind, Kind::kProxy);
    EXPECT_EQ(ops[0].form, (std::vector<std::pair<std::string, std::string>>{
                               {"endpoint", "https://b.example.com:443"}}));
}

TEST(Differ, ABackendUsagePathChangeIsAPutNeverADelete) {
    auto actual = base_product();
    auto desired = actual;
    desired.backend_usages["be"].path = "/v2";
    const auto ops = Differ({true}).diff(desired_of(desired), state_of(actual));
    ASSERT_FALSE(ops.empty());
    EXPECT_EQ(ops[0].action, Action::kUpdate);
    EXPECT_EQ(ops[0].kind, Kind::kBackendUsage);
    EXPECT_EQ(std::count_if(ops.begin(), ops.end(),
                            [](const Operation& o) { return o.action == Action::kDelete; }),
              0);
}

TEST(Differ, PricingChangesAreReplacesThatRememberTheOldRule) {
    auto actual = base_product();
    actual.plans["basic"].pricing_rules.push_back({{"hits", ""}, 1, 100, "0.5", {}});
    auto desired = actual;
    desired.plans["basic"].pricing_rules[0].cost_per_unit = "0.75";
    auto state = state_of(actual);
    state.products["pets"].pricing[{"basic", {"hits", ""}, 1, 100}] = 777;
    const auto ops = Differ({}).diff(desired_of(desired), state);
    ASSERT_EQ(ops.size(), 1u);
    EXPECT_EQ(ops[0].action, Action::kReplace);
    EXPECT_EQ(ops[0].id, 777);
    const auto old_cost =
        std::find_if(ops[0].changes.begin(), ops[0].changes.end(),
                     [](const auto& c) { return c.field == "old_cost_per_unit"; });
    ASSERT_NE(old_cost, ops[0].changes.end());
    EXPECT_EQ(old_cost->actual, "0.5");
    // a new range overlapping an old one replaces it too (porta refuses overlaps)
    desired.plans["basic"].pricing_rules[0] = {{"hits", ""}, 1, 50, "0.5", {}};
    const auto range = Differ({}).diff(desired_of(desired), state);
    ASSERT_EQ(range.size(), 1u);
    EXPECT_EQ(range[0].action, Action::kReplace);
}

TEST(Differ, UnpromotedConfigsArePromotedAndReported) {
    const auto p = base_product();
    auto state = state_of(p);
    state.configs["pets"] = {8, 7};
    const auto ops = Differ({}).diff(desired_of(p), state);
    ASSERT_EQ(ops.size(), 2u);
    EXPECT_EQ(ops[1].action, Action::kPromote);
    EXPECT_EQ(ops[1].changes, (std::vector<FieldChange>{{"production_version", "v8", "v7"}}));
}

// Children the CR does not list are deleted always, metrics only after the promote; whole
// products no CR describes only with --prune, last.
TEST(Differ, ChildDeletesMetricsAfterThePromoteAndUnmanagedProductsOnlyWithPrune) {
    auto actual = base_product();
    actual.metrics["old"] = {"Old", "hit", "", {}};
    actual.mapping_rules = {{"GET", "/old", "old", 1, false, {}}};
    auto state = state_of(actual);
    state.model.products["legacy"] = base_product();
    state.products["legacy"] = ProductIds{99, {}, {}, {}, {}, {}, {}};
    const auto desired = base_product();
    const auto ops = Differ({true}).diff(desired_of(desired), state);
    const auto s = summaries(ops);
    const auto pos = [&](const std::string& x) {
        return std::find(s.begin(), s.end(), x) - s.begin();
    };
    ASSERT_LT(pos("delete mapping rule pets: GET /old"), static_cast<long>(s.size()));
    EXPECT_LT(pos("delete mapping rule pets: GET /old"),
              pos("deploy proxy config of pets to staging"));
    EXPECT_LT(pos("promote proxy config of pets to production"), pos("delete metric pets: old"));
    EXPECT_EQ(s.back(), "delete product legacy");
    // without --prune the same, except the product no CR describes
    auto safe = summaries(Differ({}).diff(desired_of(desired), state));
    auto expected = s;
    expected.pop_back();
    EXPECT_EQ(safe, expected);
}

// Creates and updates go backends -> backend metrics/methods -> backend mapping rules -> products
// -> backend usages -> metrics/methods -> mapping rules -> plans -> limits -> pricing rules ->
// policies -> proxy -> deploy -> promote.
TEST(Differ, OperationsFollowTheDependencyOrder) {
    auto desired = base_product();
    desired.methods["list"] = {"List", "", "", {}};
    desired.mapping_rules = {{"GET", "/list", "list", 1, false, {}}};
    desired.plans["basic"].pricing_rules.push_back({{"hits", ""}, 1, 10, "1.0", {}});
    desired.policies.insert(desired.policies.begin(), {"cors", "builtin", true, "{}"});
    desired.proxy.fields["endpoint"] = "https://x.example.com:443";
    auto d = desired_of(desired);
    d.backends["be"].methods["read"] = {"Read", "", "", {}};
    d.backends["be"].mapping_rules = {{"GET", "/r", "read", 1, false, {}}};
    InstanceState empty;
    const auto ops = Differ({}).diff(d, empty);
    std::vector<Kind> kinds;
    for (const auto& op : ops) {
        if (op.action != Action::kDelete && (kinds.empty() || kinds.back() != op.kind)) {
            kinds.push_back(op.kind);
        }
    }
    EXPECT_EQ(kinds,
              (std::vector<Kind>{Kind::kBackend, Kind::kBackendMethod, Kind::kBackendRule,
                                 Kind::kProduct, Kind::kBackendUsage, Kind::kMethod,
                                 Kind::kMappingRule, Kind::kPlan, Kind::kLimit, Kind::kPricingRule,
                                 Kind::kPolicies, Kind::kProxy, Kind::kProxyConfig}));
    EXPECT_EQ(ops.back().action, Action::kPromote);
}

}  // namespace
}  // namespace syncer

namespace syncer {
namespace {

struct AccountFixture {
    config::DesiredState desired;
    InstanceState actual;

    AccountFixture() {
        config::Product p;
        p.plans["basic"] = {};
        p.plans["gold"] = {};
        desired.products["pets"] = p;
        config::Account acme;
        acme.org_name = "Acme";
        acme.users["boss"] = {"boss@acme.test", "admin", false, "pw-boss", {}};
        acme.users["dev"] = {"dev@acme.test", "member", false, "pw-dev", {}};
        desired.accounts["boss"] = acme;
        config::Application app;
        app.account = "boss";
        app.product = "pets";
        app.plan = "basic";
        app.name = "Acme app";
        app.description = "d";
        app.user_key = "secret-key-1";
        desired.applications["pets/secret-key-1"] = app;
        // the instance has the same, with ids
        actual.model = desired;
        actual.products["pets"].plans = {{"basic", 5}, {"gold", 6}};
        actual.accounts["boss"] = AccountIds{100, {{"boss", 101}, {"dev", 102}}};
        actual.applications["pets/secret-key-1"] = ApplicationIds{200, 100, {}};
    }
};

std::string all_text(const std::vector<Operation>& ops) {
    std::string out;
    for (const auto& o : ops) {
        out += o.summary() + "|";
        for (const auto& c : o.changes) {
            out += c.field + "=" + c.expected + "/" + c.actual + ";";
        }
    }
    return out;
}

TEST(AccountDiffer, InSyncMeansNothing) {
    AccountFixture f;
    EXPECT_TRUE(Differ({}).account("boss", f.desired, f.actual).empty());
    EXPECT_TRUE(Differ({}).diff(f.desired, f.actual).empty());
}

// A missing account is a signup; the plan also shows what apply does after it: the other users,
// the applications, and the removal of what signup makes on a product's default plan.
TEST(AccountDiffer, AMissingAccountIsASignupWithItsAdminThenItsUsersAndApplications) {
    AccountFixture f;
    f.actual.model.accounts.clear();
    f.actual.accounts.clear();
    f.actual.model.applications.clear();
    f.actual.applications.clear();
    f.actual.products["pets"].default_plan = "gold";
    const auto ops = Differ({}).account("boss", f.desired, f.actual);
    EXPECT_EQ(summaries(ops),
              (std::vector<std::string>{"create developer account boss", "create user boss: dev",
                                        "create application boss: pets Acme app",
                                        "delete application boss: pets API signup"}));
    // the password is sent but never part of what is shown
    EXPECT_NE(std::find(ops[0].form.begin(), ops[0].form.end(),
                        std::pair<std::string, std::string>{"password", "pw-boss"}),
              ops[0].form.end());
    EXPECT_EQ(all_text(ops).find("pw-boss"), std::string::npos);
}

// What the mirror copies: a pending user or application is left pending (and accepted once the
// source accepts it); an account's state follows through approve / reject / make_pending.
TEST(AccountDiffer, PendingAndAccountStatesFollowTheDesiredState) {
    AccountFixture f;
    f.actual.model.accounts["boss"].users.erase("dev");
    f.desired.accounts["boss"].users["dev"].pending = true;
    auto ops = Differ({}).account("boss", f.desired, f.actual);
    ASSERT_EQ(ops.size(), 1u);
    EXPECT_TRUE(ops[0].events.empty()) << "created pending, not activated";
    f.actual.model.accounts["boss"].users["dev"] = f.desired.accounts["boss"].users["dev"];
    f.desired.accounts["boss"].users["dev"].pending = false;
    f.actual.model.applications["pets/secret-key-1"].pending = true;
    f.actual.model.accounts["boss"].state = "rejected";
    f.desired.accounts["boss"].state = "approved";
    ops = Differ({}).account("boss", f.desired, f.actual);
    ASSERT_EQ(ops.size(), 3u);
    EXPECT_EQ(ops[0].events, (std::vector<std::string>{"make_pending", "approve"}));
    EXPECT_EQ(ops[1].events, (std::vector<std::string>{"activate"}));
    EXPECT_EQ(ops[2].events, (std::vector<std::string>{"accept"}));
    // a CR says nothing of the account's state: left as it is
    f.desired.accounts["boss"].state.reset();
    f.actual.model.applications["pets/secret-key-1"].pending = false;
    f.actual.model.accounts["boss"].users["dev"].pending = false;
    EXPECT_TRUE(Differ({}).account("boss", f.desired, f.actual).empty());
}

// With a mirror, the developer objects no CR describes are the mirror's: prune spares them.
TEST(AccountDiffer, PruneSparesWhatTheMirrorOwns) {
    AccountFixture f;
    f.actual.model.accounts["boss"].users["portal-user"] = {"p@acme.test", "member", false, "", {}};
    f.actual.accounts["boss"].users["portal-user"] = 103;
    auto portal_app = f.desired.applications["pets/secret-key-1"];
    portal_app.name = "Portal app";
    portal_app.user_key = "portal-key";
    f.actual.model.applications["pets/portal-key"] = portal_app;
    f.actual.applications["pets/portal-key"] = ApplicationIds{201, 100, {}};
    f.actual.model.accounts["stranger"] = f.actual.model.accounts["boss"];
    f.actual.accounts["stranger"] = AccountIds{300, {}};
    EXPECT_EQ(Differ(DiffOptions{true, false}).diff(f.desired, f.actual).size(), 3u);
    EXPECT_TRUE(Differ(DiffOptions{true, true}).diff(f.desired, f.actual).empty());
}

TEST(AccountDiffer, UsersGetStateEventsAndRoleChanges) {
    AccountFixture f;
    f.actual.model.accounts["boss"].users.erase("dev");
    f.desired.accounts["boss"].users["dev"].suspended = true;
    auto ops = Differ({}).account("boss", f.desired, f.actual);
    ASSERT_EQ(ops.size(), 1u);
    EXPECT_EQ(ops[0].summary(), "create user boss: dev");
    EXPECT_EQ(ops[0].events, (std::vector<std::string>{"activate", "suspend"}));
    f = AccountFixture{};
    f.desired.accounts["boss"].users["dev"].role = "admin";
    ops = Differ({}).account("boss", f.desired, f.actual);
    ASSERT_EQ(ops.size(), 1u);
    EXPECT_EQ(ops[0].events, (std::vector<std::string>{"admin"}));
    EXPECT_EQ(ops[0].id, 102);
}

TEST(AccountDiffer, ApplicationPlanSuspendAndCredentialsNeverShown) {
    AccountFixture f;
    f.desired.applications["pets/secret-key-1"].plan = "gold";
    f.desired.applications["pets/secret-key-1"].suspended = true;
    const auto ops = Differ({}).account("boss", f.desired, f.actual);
    ASSERT_EQ(ops.size(), 1u);
    EXPECT_EQ(ops[0].summary(), "update application boss: pets Acme app");
    EXPECT_EQ(ops[0].events, (std::vector<std::string>{"change_plan", "suspend"}));
    EXPECT_EQ(ops[0].plan, "gold");
    EXPECT_EQ(all_text(ops).find("secret-key-1"), std::string::npos);
}

TEST(AccountDiffer, SignupAppsGoOnlyForANewAccountOthersAreUnmanaged) {
    AccountFixture f;
    config::Application random = f.desired.applications["pets/secret-key-1"];
    random.name = "API signup";
    random.user_key = "random-generated";
    f.actual.model.applications["pets/random-generated"] = random;
    f.actual.applications["pets/random-generated"] = ApplicationIds{300, 100, {}};
    EXPECT_TRUE(Differ({}).account("boss", f.desired, f.actual).empty());
    const auto fresh =
        Differ({}).account("boss", f.desired, f.actual, /*created_in_this_run=*/true);
    ASSERT_EQ(fresh.size(), 1u);
    EXPECT_EQ(fresh[0].summary(), "delete application boss: pets API signup");
    EXPECT_FALSE(fresh[0].unmanaged);
    const auto pruned = Differ({true}).account("boss", f.desired, f.actual);
    ASSERT_EQ(pruned.size(), 1u);
    EXPECT_TRUE(pruned[0].unmanaged);
}

// Two writers that each decided credentials for the same CR both created it: the CR owns its
// account, product and name, so the copy goes (without --prune); another name stays unmanaged.
TEST(AccountDiffer, ACopyOfACrApplicationUnderOtherCredentialsIsDeleted) {
    AccountFixture f;
    config::Application copy = f.desired.applications["pets/secret-key-1"];
    copy.user_key = "other-writers-key";
    f.actual.model.applications["pets/other-writers-key"] = copy;
    f.actual.applications["pets/other-writers-key"] = ApplicationIds{300, 100, {}};
    config::Application other = copy;
    other.name = "Acme's own";
    other.user_key = "developer-key";
    f.actual.model.applications["pets/developer-key"] = other;
    f.actual.applications["pets/developer-key"] = ApplicationIds{301, 100, {}};
    const auto ops = Differ({}).account("boss", f.desired, f.actual);
    ASSERT_EQ(ops.size(), 1u) << all_text(ops);
    EXPECT_EQ(ops[0].summary(), "delete application boss: pets Acme app");
    EXPECT_EQ(ops[0].id, 300);
    EXPECT_FALSE(ops[0].unmanaged);
    EXPECT_EQ(all_text(ops).find("other-writers-key"), std::string::npos);
}

TEST(AccountDiffer, CredentialsHeldByAnotherAccountAreMoved) {
    AccountFixture f;
    f.actual.model.applications["pets/secret-key-1"].account = "someone";
    f.actual.applications["pets/secret-key-1"].account = 999;
    const auto ops = Differ({}).account("boss", f.desired, f.actual);
    ASSERT_EQ(ops.size(), 2u);
    EXPECT_EQ(ops[0].action, Action::kDelete);
    EXPECT_EQ(ops[1].action, Action::kCreate);
}

TEST(AccountDiffer, MissingApplicationKeysAreAdded) {
    AccountFixture f;
    auto& app = f.desired.applications["pets/secret-key-1"];
    app.user_key.clear();
    app.application_id = "app-id";
    app.application_keys = {"k-one-1", "k-two-2"};
    f.desired.applications = {{"pets/app-id", app}};
    auto have = app;
    have.application_keys = {"k-one-1", "k-old-0"};
    f.actual.model.applications = {{"pets/app-id", have}};
    f.actual.applications = {{"pets/app-id", ApplicationIds{200, 100, have.application_keys}}};
    auto ops = Differ({}).account("boss", f.desired, f.actual);
    ASSERT_EQ(ops.size(), 1u);
    EXPECT_EQ(ops[0].summary(), "create application key boss: pets Acme app");
    ops = Differ({true}).account("boss", f.desired, f.actual);
    ASSERT_EQ(ops.size(), 2u);
    EXPECT_EQ(ops[1].action, Action::kDelete);
    EXPECT_EQ(all_text(ops).find("k-two-2"), std::string::npos);
}

}  // namespace
}  // namespace syncer
