// Phase E of the differ: one developer account, its users, applications and application keys.
#include <algorithm>
#include <map>
#include <set>

#include "owner_diff.hpp"
#include "sync/differ.hpp"

namespace syncer {

std::vector<Operation> Differ::account(const std::string& key,
                                       const config::DesiredState& desired,
                                       const InstanceState& actual,
                                       bool created_in_this_run) const {
    std::vector<Operation> out;
    const config::Account& want = desired.accounts.at(key);
    const auto have_it = actual.model.accounts.find(key);
    const config::Account* have =
        have_it == actual.model.accounts.end() ? nullptr : &have_it->second;
    const auto make = [&](Action a, Kind k, std::string name) {
        Operation o = op(a, k, "", "", std::move(name));
        o.account = key;
        return o;
    };
    if (have == nullptr) {
        // signup express creates the account with its admin user
        Operation o = make(Action::kCreate, Kind::kAccount, key);
        const auto& admin = want.users.at(key);
        field(o, "org_name", want.org_name);
        field(o, "username", key);
        field(o, "email", admin.email);
        o.form.emplace_back("password", admin.password);  // sent, never shown
        out.push_back(std::move(o));
        return out;  // the rest after reading back what signup made
    }
    Operation acc = make(Action::kUpdate, Kind::kAccount, key);
    acc.id = actual.accounts.at(key).id;
    if (want.org_name != have->org_name) {
        field(acc, "org_name", want.org_name, have->org_name);
    }
    for (const auto& [f, mine, theirs] :
         {std::tuple{"monthly_billing_enabled", want.monthly_billing_enabled,
                     have->monthly_billing_enabled},
          std::tuple{"monthly_charging_enabled", want.monthly_charging_enabled,
                     have->monthly_charging_enabled}}) {
        if (mine && mine != theirs) {
            field(acc, f, b(*mine), theirs ? b(*theirs) : "");
        }
    }
    if (!acc.changes.empty()) {
        out.push_back(std::move(acc));
    }
    const AccountIds& ids = actual.accounts.at(key);
    for (const auto& [username, u] : want.users) {
        const auto it = have->users.find(username);
        Operation o = make(it == have->users.end() ? Action::kCreate : Action::kUpdate, Kind::kUser,
                           username);
        if (it == have->users.end()) {
            field(o, "username", username);
            field(o, "email", u.email);
            o.form.emplace_back("password", u.password);
            o.changes.push_back({"role", u.role, ""});
            o.events.push_back("activate");  // users are created pending
            if (u.role == "admin") {
                o.events.push_back("admin");
            }
            if (u.suspended) {
                o.events.push_back("suspend");
            }
            out.push_back(std::move(o));
            continue;
        }
        o.id = ids.users.at(username);
        if (u.email != it->second.email) {
            field(o, "email", u.email, it->second.email);
        }
        if (u.role != it->second.role) {
            o.changes.push_back({"role", u.role, it->second.role});
            o.events.push_back(u.role);
        }
        if (u.suspended != it->second.suspended) {
            o.changes.push_back({"suspended", b(u.suspended), b(it->second.suspended)});
            o.events.push_back(u.suspended ? "suspend" : "unsuspend");
        }
        if (!o.changes.empty()) {
            out.push_back(std::move(o));
        }
    }
    for (const auto& [username, u] : have->users) {
        if (!want.users.contains(username) && options_.prune) {
            Operation o = make(Action::kDelete, Kind::kUser, username);
            o.unmanaged = true;
            o.id = ids.users.at(username);
            out.push_back(std::move(o));
        }
    }
    // applications of this account, matched by product and credentials
    const auto create_app = [&](const config::Application& a) {
        Operation o = make(Action::kCreate, Kind::kApplication, a.name);
        o.product = a.product;
        o.plan = a.plan;
        field(o, "name", a.name);
        field(o, "description", a.description);
        o.changes.push_back({"plan", a.plan, ""});
        if (!a.user_key.empty()) {
            o.form.emplace_back("user_key", a.user_key);
        } else {
            o.form.emplace_back("application_id", a.application_id);
            for (const auto& k : a.application_keys) {
                o.form.emplace_back("application_key[]", k);
            }
        }
        if (a.suspended) {
            o.events.push_back("suspend");
        }
        return o;
    };
    for (const auto& [app_key, a] : desired.applications) {
        if (a.account != key) {
            continue;
        }
        const auto it = actual.model.applications.find(app_key);
        if (it == actual.model.applications.end()) {
            out.push_back(create_app(a));
            continue;
        }
        const config::Application& h = it->second;
        const ApplicationIds& app_ids = actual.applications.at(app_key);
        if (h.account != key) {
            // credentials are unique per tenant: the other account's application must go first
            Operation del = make(Action::kDelete, Kind::kApplication, h.name);
            del.product = h.product;
            del.id = app_ids.id;
            del.form.emplace_back("_account_id", std::to_string(app_ids.account));
            del.changes.push_back({"account", key, h.account});
            out.push_back(std::move(del));
            out.push_back(create_app(a));
            continue;
        }
        Operation o = make(Action::kUpdate, Kind::kApplication, a.name);
        o.product = a.product;
        o.id = app_ids.id;
        if (a.name != h.name) {
            field(o, "name", a.name, h.name);
        }
        if (a.description != h.description) {
            field(o, "description", a.description, h.description);
        }
        if (a.plan != h.plan) {
            o.changes.push_back({"plan", a.plan, h.plan});
            o.plan = a.plan;
            o.events.push_back("change_plan");
        }
        if (a.suspended != h.suspended) {
            o.changes.push_back({"suspended", b(a.suspended), b(h.suspended)});
            o.events.push_back(a.suspended ? "suspend" : "resume");
        }
        if (!o.changes.empty()) {
            out.push_back(std::move(o));
        }
        const auto key_op = [&](Action action, const std::string& k) {
            Operation ko = make(action, Kind::kApplicationKey, a.name);
            ko.product = a.product;
            ko.id = app_ids.id;
            ko.form.emplace_back("key", k);
            ko.unmanaged = action == Action::kDelete;
            return ko;
        };
        const auto has = [](const std::vector<std::string>& keys, const std::string& k) {
            return std::find(keys.begin(), keys.end(), k) != keys.end();
        };
        for (const auto& k : a.application_keys) {
            if (!has(h.application_keys, k)) {
                out.push_back(key_op(Action::kCreate, k));
                out.back().changes.push_back({"key", "<redacted>", ""});
            }
        }
        for (const auto& k : h.application_keys) {
            if (!has(a.application_keys, k) && options_.prune) {
                out.push_back(key_op(Action::kDelete, k));
            }
        }
    }
    for (const auto& [app_key, h] : actual.model.applications) {
        if (h.account != key || desired.applications.contains(app_key)) {
            continue;
        }
        Operation o = make(Action::kDelete, Kind::kApplication, h.name);
        o.product = h.product;
        o.id = actual.applications.at(app_key).id;
        // the applications signup express makes with random keys go; others are unmanaged
        o.unmanaged = !created_in_this_run;
        if (created_in_this_run || options_.prune) {
            out.push_back(std::move(o));
        }
    }
    return out;
}

}  // namespace syncer
