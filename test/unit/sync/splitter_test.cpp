#include "sync/splitter.hpp"

#include <gtest/gtest.h>

namespace syncer {
namespace {

config::Fleet fleet_of(std::vector<std::int64_t> weights,
                       std::int64_t hits_per_minute,
                       std::int64_t method_per_minute = -1) {
    config::Fleet f;
    const char* names[] = {"east", "west", "north", "south"};
    for (std::size_t i = 0; i < weights.size(); ++i) {
        config::Instance inst;
        inst.name = names[i];
        inst.weight = weights[i];
        f.instances.push_back(inst);
    }
    config::Product p;
    p.name = "Pets";
    p.metrics["hits"] = {"Hits", "hit", "", {}};
    p.methods["list"] = {"List", "", "", {}};
    config::Plan plan;
    plan.limits.push_back(
        {{"hits", ""}, ratelimit::Period::kMinute, hits_per_minute, {"pets.yaml", 12}, {}, 0, {}});
    if (method_per_minute >= 0) {
        plan.limits.push_back({{"list", ""},
                               ratelimit::Period::kMinute,
                               method_per_minute,
                               {"pets.yaml", 16},
                               {},
                               0,
                               {}});
    }
    p.plans["basic"] = plan;
    f.desired.products["pets"] = p;
    return f;
}

std::int64_t value_on(const FleetSplit& s, std::size_t instance, std::size_t limit = 0) {
    return s.desired[instance].products.at("pets").plans.at("basic").limits[limit].value;
}

TEST(Splitter, EachInstanceGetsItsShareWithTheExplanation) {
    const auto s = split_fleet(fleet_of({1, 1, 1}, 100));
    ASSERT_EQ(s.instances, (std::vector<std::string>{"east", "west", "north"}));
    EXPECT_EQ(value_on(s, 0), 34);
    EXPECT_EQ(value_on(s, 1), 33);
    EXPECT_EQ(value_on(s, 2), 33);
    const auto& l = s.desired[1].products.at("pets").plans.at("basic").limits[0];
    EXPECT_EQ(l.global_value, 100);
    EXPECT_EQ(l.weight, 1);
    EXPECT_EQ(l.split_rule, "hamilton 100*1/3 = 33.33 -> 33");
    ASSERT_EQ(s.rows.size(), 1u);
    EXPECT_EQ(s.rows[0].values, (std::vector<std::int64_t>{34, 33, 33}));
    EXPECT_TRUE(s.problems.empty());
}

TEST(Splitter, WeightsAndWithout) {
    EXPECT_EQ(value_on(split_fleet(fleet_of({2, 1}, 100)), 0), 67);
    EXPECT_EQ(value_on(split_fleet(fleet_of({2, 1}, 100)), 1), 33);
    const auto without = split_fleet(fleet_of({1, 1, 1}, 100), {"west"});
    ASSERT_EQ(without.instances, (std::vector<std::string>{"east", "north"}));
    EXPECT_EQ(value_on(without, 0), 50);
    EXPECT_EQ(value_on(without, 1), 50);
}

TEST(Splitter, APositiveLimitSplitToZeroIsAnErrorAtItsLine) {
    const auto s = split_fleet(fleet_of({1, 1, 1}, 2));
    ASSERT_EQ(s.problems.size(), 1u);
    const std::string text = s.problems[0].to_string();
    EXPECT_NE(text.find("pets.yaml:12: error: spec.applicationPlans.basic.limits[0].value"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("1/1/0: 0 disables it on north"), std::string::npos) << text;
    EXPECT_NE(text.find("min1, coarsen or none"), std::string::npos);
    // 0 stays 0 and is no error
    EXPECT_TRUE(split_fleet(fleet_of({1, 1, 1}, 0)).problems.empty());
}

TEST(Splitter, PolicyPrecedenceFleetProductThenAnnotationThenDefault) {
    auto f = fleet_of({1, 1, 1}, 2);
    f.desired.products.at("pets").split_policy = ratelimit::SplitPolicy::kNone;  // annotation
    auto s = split_fleet(f);
    EXPECT_TRUE(s.problems.empty());
    EXPECT_EQ(value_on(s, 2), 2);  // none: everyone enforces the global value
    f.product_split_policies["pets"] = ratelimit::SplitPolicy::kMin1;  // the fleet wins
    s = split_fleet(f);
    EXPECT_EQ(value_on(s, 0), 1);
    EXPECT_EQ(value_on(s, 2), 1);
    f.product_split_policies.clear();
    f.desired.products.at("pets").split_policy.reset();
    f.split_policy = ratelimit::SplitPolicy::kMin1;  // the fleet default
    EXPECT_TRUE(split_fleet(f).problems.empty());
}

TEST(Splitter, CoarsenAddsTheBudgetOnACoarserPeriod) {
    auto f = fleet_of({1, 1, 1}, 1);
    f.split_policy = ratelimit::SplitPolicy::kCoarsen;
    const auto s = split_fleet(f);
    EXPECT_TRUE(s.problems.empty());
    const auto& limits = s.desired[0].products.at("pets").plans.at("basic").limits;
    ASSERT_EQ(limits.size(), 2u);
    EXPECT_EQ(limits[0].value, 1);
    EXPECT_EQ(limits[1].period, ratelimit::Period::kHour);
    EXPECT_EQ(limits[1].value, 20);
    ASSERT_EQ(s.rows.size(), 2u);
    EXPECT_TRUE(s.rows[1].added_by_coarsen);
    EXPECT_EQ(s.rows[1].global, 60);
}

TEST(Splitter, MethodAboveItsParentOnAnInstanceIsExplained) {
    // Globally list 10 <= hits 11, but over weights 1:3:3 largest remainder gives hits 1/5/5 and
    // list 2/4/4: on east the method's share exceeds its parent's.
    const auto s = split_fleet(fleet_of({1, 3, 3}, 11, 10));
    ASSERT_EQ(s.problems.size(), 1u);
    EXPECT_EQ(s.problems[0].severity, config::Diagnostic::Severity::kNotice);
    EXPECT_NE(s.problems[0].message.find("on east the split gives 'list' 2/minute, above its "
                                         "parent hits' 1"),
              std::string::npos)
        << s.problems[0].message;
    // equal weights never do that
    EXPECT_TRUE(split_fleet(fleet_of({1, 1, 1}, 11, 10)).problems.empty());
    // nor does a method limit above its parent's globally (nothing to keep)
    EXPECT_TRUE(split_fleet(fleet_of({1, 3, 3}, 10, 11)).problems.empty());
}

}  // namespace
}  // namespace syncer
