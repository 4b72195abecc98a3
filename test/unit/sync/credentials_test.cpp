// Credentials tandem decides for applications whose CR has no key Secret, and how the differ
// converges an instance to them.
#include "sync/credentials.hpp"

#include <gtest/gtest.h>

#include "sync/differ.hpp"

namespace syncer {
namespace {

config::Application decided_app(const std::string& name) {
    config::Application a;
    a.account = "boss";
    a.product = "pets";
    a.plan = "basic";
    a.name = name;
    a.description = "d";
    a.decide_credentials = true;
    return a;
}

config::DesiredState desired_with(const config::Application& app, const std::string& version) {
    config::DesiredState d;
    config::Product p;
    p.backend_version = version;
    p.plans["basic"] = {};
    d.products["pets"] = p;
    config::Account acme;
    acme.users["boss"] = {"boss@acme.test", "admin", false, "pw", {}};
    d.accounts["boss"] = acme;
    d.applications[app.key()] = app;
    return d;
}

// An instance holding `app` with these credentials under id `id`.
void hold(InstanceState& s, config::Application app, Id id) {
    app.decide_credentials = false;
    s.model.accounts["boss"].users["boss"] = {"boss@acme.test", "admin", false, "", {}};
    s.accounts["boss"] = AccountIds{100, {{"boss", 101}}};
    s.products["pets"].plans = {{"basic", 5}};
    s.model.applications[app.key()] = app;
    s.applications[app.key()] = ApplicationIds{id, 100, app.application_keys};
}

RandomHex counting_random(int& calls) {
    return [&calls](std::size_t digits) -> std::optional<std::string> {
        ++calls;
        return std::string(digits, static_cast<char>('a' + calls - 1));
    };
}

TEST(Credentials, GeneratedInThreeScalesFormatsWhenNoInstanceHasTheApplication) {
    int calls = 0;
    const auto v1 = desired_with(decided_app("App"), "1");
    InstanceState east;
    InstanceState west;
    auto d = decide_credentials(v1, {{"east", &east}, {"west", &west}}, counting_random(calls));
    ASSERT_EQ(d.decided.size(), 1u);
    const auto& app = d.decided.begin()->second.app;
    EXPECT_EQ(app.user_key, std::string(32, 'a'));
    EXPECT_EQ(d.decided.begin()->second.adopted_from, "");
    const auto v2 = desired_with(decided_app("App"), "2");
    d = decide_credentials(v2, {{"east", &east}}, counting_random(calls));
    const auto& app2 = d.decided.begin()->second.app;
    EXPECT_EQ(app2.application_id.size(), 8u);
    ASSERT_EQ(app2.application_keys.size(), 1u);
    EXPECT_EQ(app2.application_keys[0].size(), 32u);
    // with the system's CSPRNG: hex digits, and two draws differ
    const auto random = system_random_hex();
    const auto a = random(32).value_or("");
    EXPECT_EQ(a.size(), 32u);
    EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
    EXPECT_NE(a, random(32).value_or(""));
}

TEST(Credentials, AdoptedFromTheFirstInstanceInFleetOrderThatHasIt) {
    const auto desired = desired_with(decided_app("App"), "1");
    InstanceState east;
    InstanceState west;
    InstanceState north;
    auto on_west = decided_app("App");
    on_west.user_key = "west-key";
    hold(west, on_west, 300);
    auto older = on_west;  // a second one on north: the oldest (lowest id) counts there
    older.user_key = "north-old";
    hold(north, older, 10);
    auto newer = on_west;
    newer.user_key = "north-new";
    hold(north, newer, 20);
    int calls = 0;
    auto d = decide_credentials(desired, {{"east", &east}, {"west", &west}, {"north", &north}},
                                counting_random(calls));
    EXPECT_EQ(calls, 0);  // never regenerated once an instance has it
    EXPECT_EQ(d.decided.begin()->second.app.user_key, "west-key");
    EXPECT_EQ(d.decided.begin()->second.adopted_from, "west");
    d = decide_credentials(desired, {{"north", &north}, {"west", &west}}, counting_random(calls));
    EXPECT_EQ(d.decided.begin()->second.app.user_key, "north-old");
    // the rewritten desired state keys it by its credentials and says where they come from
    auto rewritten = desired;
    apply_decisions(rewritten, d);
    ASSERT_TRUE(rewritten.applications.contains("pets/north-old"));
    EXPECT_EQ(rewritten.applications.at("pets/north-old").credentials_origin, "adopted from north");
}

TEST(Credentials, NothingIsGeneratedWhileAnInstanceCannotBeRead) {
    const auto desired = desired_with(decided_app("App"), "1");
    InstanceState east;
    int calls = 0;
    auto d =
        decide_credentials(desired, {{"east", &east}, {"west", nullptr}}, counting_random(calls));
    EXPECT_TRUE(d.decided.empty());
    ASSERT_EQ(d.undecided.size(), 1u);
    EXPECT_NE(d.undecided.begin()->second.find("west could not be read"), std::string::npos);
    EXPECT_EQ(calls, 0);
    auto rewritten = desired;
    apply_decisions(rewritten, d);
    EXPECT_TRUE(rewritten.applications.empty());
    // but one that is held by a readable instance is adopted
    auto held = decided_app("App");
    held.user_key = "east-key";
    hold(east, held, 5);
    d = decide_credentials(desired, {{"east", &east}, {"west", nullptr}}, counting_random(calls));
    EXPECT_EQ(d.decided.begin()->second.app.user_key, "east-key");
}

TEST(Credentials, AnApplicationAuthKeyIsAddedToTheAdoptedOnes) {
    auto want = decided_app("App");
    want.application_keys = {"required-key"};
    const auto desired = desired_with(want, "2");
    InstanceState east;
    auto held = decided_app("App");
    held.application_id = "abcd1234";
    held.application_keys = {"k1"};
    hold(east, held, 5);
    int calls = 0;
    const auto d = decide_credentials(desired, {{"east", &east}}, counting_random(calls));
    EXPECT_EQ(d.decided.begin()->second.app.application_id, "abcd1234");
    EXPECT_EQ(d.decided.begin()->second.app.application_keys,
              (std::vector<std::string>{"k1", "required-key"}));
}

// An instance whose application of that name has other credentials converges to the fleet's: a
// user_key in place, an application_id by replacing the application; its extra keys go.
TEST(Credentials, TheDifferConvergesAnApplicationOfTheSameNameToTheDecidedCredentials) {
    auto fleet_app = decided_app("App");
    fleet_app.user_key = "fleet-key";
    const auto desired = desired_with(fleet_app, "1");
    InstanceState west;
    auto other = decided_app("App");
    other.user_key = "west-own-key";
    hold(west, other, 300);
    auto ops = Differ({}).account("boss", desired, west);
    ASSERT_EQ(ops.size(), 1u);
    EXPECT_EQ(ops[0].summary(), "update application boss: pets App");
    EXPECT_EQ(ops[0].id, 300);
    EXPECT_EQ(ops[0].changes[0].field, "credentials");
    EXPECT_EQ(ops[0].changes[0].expected, "<redacted>");
    const auto sent = std::find(ops[0].form.begin(), ops[0].form.end(),
                                std::pair<std::string, std::string>{"user_key", "fleet-key"});
    EXPECT_NE(sent, ops[0].form.end());

    auto v2_app = decided_app("App");
    v2_app.application_id = "fleet-id";
    v2_app.application_keys = {"fleet-k"};
    const auto desired2 = desired_with(v2_app, "2");
    InstanceState east;
    auto own = decided_app("App");
    own.application_id = "own-id";
    own.application_keys = {"own-k"};
    hold(east, own, 400);
    ops = Differ({}).account("boss", desired2, east);
    ASSERT_EQ(ops.size(), 2u);
    EXPECT_EQ(ops[0].action, Action::kCreate);
    EXPECT_EQ(ops[1].action, Action::kDelete);  // after its replacement exists
    EXPECT_EQ(ops[1].id, 400);

    // the same credentials, an extra key: removed without --prune (the set is the fleet's)
    InstanceState same;
    auto extra = v2_app;
    extra.application_keys = {"fleet-k", "stray"};
    hold(same, extra, 500);
    ops = Differ({}).account("boss", desired2, same);
    ASSERT_EQ(ops.size(), 1u);
    EXPECT_EQ(ops[0].summary(), "delete application key boss: pets App");
    EXPECT_FALSE(ops[0].unmanaged);
    for (const auto& o : ops) {
        for (const auto& c : o.changes) {
            EXPECT_EQ((c.expected + c.actual).find("stray"), std::string::npos);
        }
    }
}

}  // namespace
}  // namespace syncer
