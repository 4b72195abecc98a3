// The mirror's desired state, from the CRs and a complete read of the portal instance.
#include "mirror/mirrored_state.hpp"

#include <algorithm>

namespace mirror {

namespace {

using syncer::Kind;
using syncer::Operation;

bool cr_application_named(const config::DesiredState& crs,
                          const std::string& account,
                          const std::string& product,
                          const std::string& name) {
    return std::any_of(crs.applications.begin(), crs.applications.end(), [&](const auto& kv) {
        const auto& a = kv.second;
        return a.account == account && a.product == product && a.name == name;
    });
}

std::string describe(const config::Application& a) {
    return "application " + a.product + "/" + a.name + " of " + a.account;
}

}  // namespace

MirroredState mirrored_state(const config::DesiredState& crs,
                             const syncer::InstanceState& source,
                             const std::function<std::string()>& password) {
    MirroredState out;
    out.desired.accounts = crs.accounts;
    out.desired.applications = crs.applications;
    for (const auto& [key, account] : source.model.accounts) {
        if (key.starts_with("#")) {
            out.skipped.push_back(
                {"account " + account.org_name + " (id " + key.substr(1) + " on the source)",
                 "has no admin user: accounts are matched across instances by their admin's "
                 "username"});
            continue;
        }
        config::Account& want = out.desired.accounts[key];
        const bool by_cr = crs.accounts.contains(key);
        if (!by_cr) {
            want.org_name = account.org_name;
            want.monthly_billing_enabled = account.monthly_billing_enabled;
            want.monthly_charging_enabled = account.monthly_charging_enabled;
            want.state = account.state;
        }
        for (const auto& [username, user] : account.users) {
            if (by_cr && want.users.contains(username)) {
                continue;  // the CR's
            }
            config::User copy = user;
            copy.password = password();
            copy.source = {};
            want.users[username] = std::move(copy);
        }
    }
    for (const auto& [key, app] : source.model.applications) {
        if (crs.applications.contains(key) ||
            cr_application_named(crs, app.account, app.product, app.name)) {
            continue;  // a CR describes it
        }
        if (app.account.starts_with("#")) {
            continue;  // its account is skipped (said once, above)
        }
        if (app.plan.starts_with("#")) {
            out.skipped.push_back({describe(app),
                                   "is on a plan with no system name (a plan customized for "
                                   "this application): customize it on each instance"});
            continue;
        }
        if (app.credential().empty()) {
            out.skipped.push_back({describe(app), "has no credentials to match it by"});
            continue;
        }
        config::Application copy = app;
        copy.decide_credentials = true;  // its keys are the whole set: extra keys go
        copy.credentials_origin.clear();
        copy.source = {};
        out.desired.applications[key] = std::move(copy);
    }
    return out;
}

MirroredState fit_to(const MirroredState& state, const syncer::InstanceState& target) {
    MirroredState out = state;
    std::erase_if(out.desired.applications, [&](const auto& kv) {
        const config::Application& a = kv.second;
        if (a.credential().empty()) {
            return false;  // a CR's, credentials still to be decided: not the mirror's
        }
        const auto product = target.products.find(a.product);
        if (product == target.products.end()) {
            out.skipped.push_back({describe(a), "its product is not on this instance"});
            return true;
        }
        if (!product->second.plans.contains(a.plan)) {
            out.skipped.push_back({describe(a), "its plan '" + a.plan +
                                                    "' is not on this instance (plans are "
                                                    "matched by system name)"});
            return true;
        }
        return false;
    });
    return out;
}

bool described_by_crs(const Operation& op, const config::DesiredState& crs) {
    switch (op.kind) {
        case Kind::kAccount:
            return crs.accounts.contains(op.account);
        case Kind::kUser: {
            const auto it = crs.accounts.find(op.account);
            return it != crs.accounts.end() && it->second.users.contains(op.name);
        }
        case Kind::kApplication:
        case Kind::kApplicationKey:
            return cr_application_named(crs, op.account, op.product, op.name);
        default:
            return true;  // not a developer object: never the mirror's
    }
}

bool mirror_may(const Operation& op, const config::DesiredState& crs, bool deletes) {
    if (described_by_crs(op, crs)) {
        return false;
    }
    const bool copy =
        std::any_of(op.changes.begin(), op.changes.end(),
                    [](const syncer::FieldChange& c) { return c.field == "copy of"; });
    return deletes || op.action != syncer::Action::kDelete || !copy;
}

std::vector<Operation> stray_accounts(const config::DesiredState& desired,
                                      const syncer::InstanceState& target) {
    std::vector<Operation> out;
    for (const auto& [key, account] : target.model.accounts) {
        if (desired.accounts.contains(key)) {
            continue;
        }
        Operation o;
        o.action = syncer::Action::kDelete;
        o.kind = Kind::kAccount;
        o.name = key;
        o.account = key;
        o.unmanaged = true;
        o.id = target.accounts.at(key).id;
        o.changes.push_back({"org_name", "", account.org_name});
        out.push_back(std::move(o));
    }
    return out;
}

}  // namespace mirror
