// The mirror's pure core: what the other instances should hold given the CRs and the portal
// instance, what is skipped and why, and which operations are the CRs' business.
#include "mirror/mirrored_state.hpp"

#include <gtest/gtest.h>

namespace {

using mirror::described_by_crs;
using mirror::fit_to;
using mirror::mirrored_state;
using mirror::stray_accounts;
using syncer::InstanceState;

config::Application app(const std::string& account,
                        const std::string& name,
                        const std::string& user_key,
                        const std::string& plan = "basic") {
    config::Application a;
    a.account = account;
    a.product = "shop";
    a.plan = plan;
    a.name = name;
    a.user_key = user_key;
    return a;
}

config::Account account(const std::string& org, const std::string& admin) {
    config::Account a;
    a.org_name = org;
    a.state = "approved";
    a.users[admin] = {admin + "@dev.test", "admin", false, "", {}};
    return a;
}

// The portal instance: dev (with a pending member) and acme, each with an application, plus
// an account without an admin and an application on a customized plan.
InstanceState source() {
    InstanceState s;
    s.model.accounts["dev"] = account("Dev Co", "dev");
    config::User mate{"mate@dev.test", "member", false, "", {}};
    mate.pending = true;
    s.model.accounts["dev"].users["mate"] = mate;
    s.model.accounts["acme-admin"] = account("Renamed on the portal", "acme-admin");
    s.model.accounts["acme-admin"].users["acme-dev"] = {"d@acme.test", "member", false, "", {}};
    s.model.accounts["#77"] = account("Orphan", "x");
    s.model.applications["shop/k1"] = app("dev", "Mine", "k1");
    s.model.applications["shop/k2"] = app("acme-admin", "Portal app", "k2");
    s.model.applications["shop/k3"] = app("acme-admin", "Acme app", "k3");  // the CR's name
    s.model.applications["shop/k4"] = app("dev", "Custom", "k4", "#991");
    return s;
}

config::DesiredState crs() {
    config::DesiredState d;
    d.accounts["acme-admin"] = account("Acme Inc.", "acme-admin");
    d.applications["shop/cr-key"] = app("acme-admin", "Acme app", "cr-key");
    return d;
}

TEST(MirroredState, TheSourcesObjectsJoinTheCrsAndCrsWin) {
    int made = 0;
    const auto m = mirrored_state(crs(), source(), [&] { return "pw" + std::to_string(++made); });
    ASSERT_TRUE(m.desired.accounts.contains("dev"));
    EXPECT_EQ(m.desired.accounts.at("dev").org_name, "Dev Co");
    EXPECT_EQ(m.desired.accounts.at("dev").state, "approved");
    EXPECT_TRUE(m.desired.accounts.at("dev").users.at("mate").pending);
    EXPECT_FALSE(m.desired.accounts.at("dev").users.at("mate").password.empty());
    EXPECT_NE(m.desired.accounts.at("dev").users.at("mate").password,
              m.desired.accounts.at("dev").users.at("dev").password);
    // the CR's account keeps the CR's name; the portal's extra user joins it
    EXPECT_EQ(m.desired.accounts.at("acme-admin").org_name, "Acme Inc.");
    EXPECT_TRUE(m.desired.accounts.at("acme-admin").users.contains("acme-dev"));
    EXPECT_TRUE(m.desired.accounts.at("acme-admin").users.at("acme-admin").password.empty());
    // applications: the portal's, the CR's; not the one a CR names, not the customized one
    EXPECT_TRUE(m.desired.applications.contains("shop/k1"));
    EXPECT_TRUE(m.desired.applications.at("shop/k1").decide_credentials);  // exact key set
    EXPECT_TRUE(m.desired.applications.contains("shop/k2"));
    EXPECT_TRUE(m.desired.applications.contains("shop/cr-key"));
    EXPECT_FALSE(m.desired.applications.contains("shop/k3"));
    EXPECT_FALSE(m.desired.applications.contains("shop/k4"));
    EXPECT_FALSE(m.desired.accounts.contains("#77"));
    ASSERT_EQ(m.skipped.size(), 2u);
    EXPECT_NE(m.skipped[0].why.find("no admin user"), std::string::npos);
    EXPECT_NE(m.skipped[1].why.find("customized"), std::string::npos);
}

TEST(MirroredState, AnInstanceWithoutTheProductOrPlanSkipsTheApplicationOnly) {
    const auto m = mirrored_state(crs(), source(), [] { return "pw"; });
    InstanceState target;
    target.products["shop"].plans["gold"] = 5;  // no "basic"
    const auto fitted = fit_to(m, target);
    EXPECT_FALSE(fitted.desired.applications.contains("shop/k1"));
    EXPECT_TRUE(fitted.desired.accounts.contains("dev"));
    EXPECT_NE(fitted.skipped.back().why.find("plan 'basic' is not on this instance"),
              std::string::npos);
    target.products.clear();
    EXPECT_NE(fit_to(m, target).skipped.back().why.find("product is not on this instance"),
              std::string::npos);
}

TEST(MirroredState, OperationsOnWhatACrDescribesAreTheCrs) {
    const auto d = crs();
    syncer::Operation op;
    op.kind = syncer::Kind::kAccount;
    op.account = "acme-admin";
    EXPECT_TRUE(described_by_crs(op, d));
    op.account = "dev";
    EXPECT_FALSE(described_by_crs(op, d));
    op.kind = syncer::Kind::kUser;
    op.account = "acme-admin";
    op.name = "acme-admin";
    EXPECT_TRUE(described_by_crs(op, d));
    op.name = "acme-dev";
    EXPECT_FALSE(described_by_crs(op, d));
    op.kind = syncer::Kind::kApplicationKey;
    op.product = "shop";
    op.name = "Acme app";
    EXPECT_TRUE(described_by_crs(op, d));
    op.name = "Portal app";
    EXPECT_FALSE(described_by_crs(op, d));
    op.kind = syncer::Kind::kProduct;
    EXPECT_TRUE(described_by_crs(op, d)) << "never the mirror's";
}

TEST(MirroredState, WithoutDeletesASecondApplicationOfTheSameNameIsKept) {
    syncer::Operation copy;
    copy.action = syncer::Action::kDelete;
    copy.kind = syncer::Kind::kApplication;
    copy.account = "dev";
    copy.product = "shop";
    copy.name = "Mine";
    copy.changes.push_back({"copy of", "Mine", ""});
    EXPECT_FALSE(mirror::mirror_may(copy, crs(), /*deletes=*/false));
    EXPECT_TRUE(mirror::mirror_may(copy, crs(), /*deletes=*/true));
    copy.changes = {{"application_id", "<redacted>", "<redacted>"}};  // a replacement: needed
    EXPECT_TRUE(mirror::mirror_may(copy, crs(), /*deletes=*/false));
    copy.account = "acme-admin";
    copy.name = "Acme app";
    EXPECT_FALSE(mirror::mirror_may(copy, crs(), /*deletes=*/true)) << "the CR's";
}

TEST(MirroredState, StrayAccountsAreThoseNeitherCrsNorSourceHave) {
    const auto m = mirrored_state(crs(), source(), [] { return "pw"; });
    InstanceState target;
    target.model.accounts["dev"] = account("Dev Co", "dev");
    target.model.accounts["local"] = account("Local", "local");
    target.accounts["dev"].id = 1;
    target.accounts["local"].id = 2;
    const auto strays = stray_accounts(m.desired, target);
    ASSERT_EQ(strays.size(), 1u);
    EXPECT_EQ(strays[0].account, "local");
    EXPECT_EQ(strays[0].id, 2);
    EXPECT_EQ(strays[0].action, syncer::Action::kDelete);
}

}  // namespace
