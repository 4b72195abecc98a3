// Developer accounts (signup express) and their users, and the asynchronous-deletion status
// endpoint.
#include <algorithm>
#include <regex>

#include "admin_support.hpp"

namespace sim {

namespace {

Json render_account(const Json& a) {
    return public_fields(a);
}

Json render_user(const Json& u) {
    return public_fields(u);
}

Json* user_by(Store& store, const char* field, const std::string& value) {
    auto found = store.users.where([&](const Json& u) {
        const Json* account = store.accounts.find(id_field(u, "account_id"));
        return u.value(field, "") == value && account != nullptr && !is_soft_deleted(*account);
    });
    return found.empty() ? nullptr : found.front();
}

}  // namespace

// ---------------------------------------------------------------------------------- accounts

Response AdminApi::signup(Ctx& c) {
    const Params p(c.params, "");
    Errors errors;
    const std::string org_name = read_string(p, "org_name", errors).value_or("");
    const std::string username = read_string(p, "username", errors).value_or("");
    const std::string email = read_string(p, "email", errors).value_or("");
    const std::string password = read_string(p, "password", errors).value_or("");
    static const std::regex kUsername(R"(^[\w\-.@+]{1,40}$)");
    static const std::regex kEmail(R"(^[^@\s]+@[^@\s]+\.[^@\s]+$)");
    if (org_name.empty()) {
        errors.add("org_name", "can't be blank");
    }
    if (username.empty()) {
        errors.add("username", "can't be blank");
    } else if (!std::regex_match(username, kUsername)) {
        errors.add("username", "is invalid");
    } else if (!store_.users
                    .where([&](const Json& u) { return u.value("username", "") == username; })
                    .empty()) {
        // A deleted account keeps its users until the background job purges it.
        errors.add("username", "has already been taken");
    }
    if (email.empty()) {
        errors.add("email", "can't be blank");
    } else if (!std::regex_match(email, kEmail)) {
        errors.add("email", "should look like an email address");
    } else if (!store_.users.where([&](const Json& u) { return u.value("email", "") == email; })
                    .empty()) {
        errors.add("email", "has already been taken");
    }
    if (password.empty()) {
        errors.add("password", "can't be blank");
    } else if (password.size() < 6) {
        errors.add("password", "is too short (minimum is 6 characters)");
    }
    const Json* explicit_plan = nullptr;
    if (auto plan_id = read_int(p, "application_plan_id", errors)) {
        explicit_plan = store_.plans.find(*plan_id);
        if (explicit_plan == nullptr ||
            store_.visible_service(id_field(*explicit_plan, "_service_id")) == nullptr) {
            return not_found();  // plan errors surface as RecordNotFound
        }
    }
    if (!errors.empty()) {
        return unprocessable(errors);
    }
    const Id account_id = store_.allocate_id();
    Json& account = store_.accounts.insert({{"id", account_id},
                                            {"state", "approved"},
                                            {"org_name", org_name},
                                            {"credit_card_stored", false},
                                            {"monthly_billing_enabled", true},
                                            {"monthly_charging_enabled", true},
                                            {"annotations", Json::object()},
                                            {"created_at", now_iso()},
                                            {"updated_at", now_iso()}});
    store_.users.insert({{"id", store_.allocate_id()},
                         {"account_id", account_id},
                         {"state", "active"},
                         {"role", "admin"},
                         {"username", username},
                         {"email", email},
                         {"created_at", now_iso()},
                         {"updated_at", now_iso()}});
    // Signup express also subscribes the account to every product and creates an application
    // with generated keys on each product's default application plan.
    const Json signup_app = {{"name", "API signup"}, {"description", "API signup"}};
    std::vector<const Json*> app_plans;
    if (explicit_plan != nullptr) {
        app_plans.push_back(explicit_plan);
    }
    for (const auto& [sid, s] : store_.services.items()) {
        if (is_soft_deleted(s) ||
            (explicit_plan != nullptr && id_field(*explicit_plan, "_service_id") == sid)) {
            continue;
        }
        for (const Json* plan : std::as_const(store_.plans).where([&](const Json& pl) {
                 return id_field(pl, "_service_id") == sid && pl.value("default", false);
             })) {
            app_plans.push_back(plan);
        }
    }
    for (const Json* plan : app_plans) {
        Errors ignored;
        create_application_object(account, *plan, Params(signup_app, ""), ignored);
    }
    return created("account", render_account(account),
                   c.base + "/admin/api/accounts/" + std::to_string(account_id) + ".json");
}

Response AdminApi::list_accounts(Ctx& c) {
    const Params p(c.params, "");
    Errors ignored;
    const auto state = read_string(p, "state", ignored);
    std::vector<Json> items;
    for (const auto& [id, a] : store_.accounts.items()) {
        if (!is_soft_deleted(a) && (!state || state->empty() || a.value("state", "") == *state)) {
            items.push_back({{"account", render_account(a)}});
        }
    }
    return paginate(c.params, std::move(items), "accounts");
}

Response AdminApi::find_account(Ctx& c) {
    const Params p(c.params, "");
    Errors errors;
    const Json* user = nullptr;
    if (auto v = read_string(p, "username", errors); v && !v->empty()) {
        user = user_by(store_, "username", *v);  // username beats email
    } else if (auto e = read_string(p, "email", errors); e && !e->empty()) {
        user = user_by(store_, "email", *e);
    } else if (auto u = read_int(p, "user_id", errors)) {
        user = store_.users.find(*u);
    }
    if (user == nullptr) {
        return not_found();
    }
    const Json* account = store_.visible_account(id_field(*user, "account_id"));
    return account == nullptr ? not_found() : ok("account", render_account(*account));
}

Response AdminApi::show_account(Ctx& c) {
    const Json* a = store_.visible_account(c.ids[0]);
    return a == nullptr ? not_found() : ok("account", render_account(*a));
}

Response AdminApi::update_account(Ctx& c) {
    Json* a = store_.visible_account(c.ids[0]);
    if (a == nullptr) {
        return not_found();
    }
    const Params p(c.params, "account");
    Errors errors;
    Json fields = Json::object();
    if (auto v = read_string(p, "org_name", errors)) {
        if (v->empty()) {
            errors.add("org_name", "can't be blank");
        }
        fields["org_name"] = *v;
    }
    for (const char* key : {"monthly_billing_enabled", "monthly_charging_enabled"}) {
        if (auto v = read_bool(p, key, errors)) {
            fields[key] = *v;
        }
    }
    if (!errors.empty()) {
        return unprocessable(errors);
    }
    for (auto& [key, value] : fields.items()) {
        (*a)[key] = value;
    }
    (*a)["updated_at"] = now_iso();
    return ok("account", render_account(*a));
}

Response AdminApi::delete_account(Ctx& c) {
    Json* a = store_.visible_account(c.ids[0]);
    if (a == nullptr) {
        return not_found();
    }
    // Accounts are destroyed by a background job, like products and backends.
    (*a)["state"] = "scheduled_for_deletion";
    (*a)["_purge_at"] = now_epoch() + options_.purge_delay.count();
    store_.has_soft_deleted = true;
    return deleted();
}

// approve / reject / make_pending: the account's state machine (pending -> approved |
// rejected; approved or rejected -> pending).
Response AdminApi::account_event(Ctx& c, const std::string& event) {
    Json* a = store_.visible_account(c.ids[0]);
    if (a == nullptr) {
        return not_found();
    }
    const std::string from = a->value("state", "");
    const std::string to =
        event == "approve" ? "approved" : (event == "reject" ? "rejected" : "pending");
    const bool allowed = from == to || (event == "approve" && from == "pending") ||
                         (event == "reject" && from == "pending") ||
                         (event == "make_pending" && (from == "approved" || from == "rejected"));
    if (!allowed) {
        return Response::json(422, Json{{"error",
                                         {{"from", from},
                                          {"event", event},
                                          {"error", "cannot transition via \"" + event + "\""}}}});
    }
    (*a)["state"] = to;
    (*a)["updated_at"] = now_iso();
    return ok("account", render_account(*a));
}

Response AdminApi::list_users(Ctx& c) {
    if (store_.visible_account(c.ids[0]) == nullptr) {
        return not_found();
    }
    Json items = Json::array();
    for (const Json* u : std::as_const(store_.users).where([&](const Json& u) {
             return id_field(u, "account_id") == c.ids[0];
         })) {
        items.push_back({{"user", render_user(*u)}});
    }
    return Response::json(200, Json{{"users", items}});
}

Response AdminApi::show_user(Ctx& c) {
    const Json* u =
        store_.visible_account(c.ids[0]) != nullptr ? store_.users.find(c.ids[1]) : nullptr;
    if (u == nullptr || id_field(*u, "account_id") != c.ids[0]) {
        return not_found();
    }
    return ok("user", render_user(*u));
}

namespace {

Json* user_of_account(Store& store, Id account_id, Id user_id) {
    if (store.visible_account(account_id) == nullptr) {
        return nullptr;
    }
    Json* u = store.users.find(user_id);
    return u == nullptr || id_field(*u, "account_id") != account_id ? nullptr : u;
}

// username and email: format and tenant-wide uniqueness (as signup checks them).
void check_identity(
    Store& store, const Params& p, const Json* self, Errors& errors, Json& out, bool creating) {
    static const std::regex kUsername(R"(^[\w\-.@+]{1,40}$)");
    static const std::regex kEmail(R"(^[^@\s]+@[^@\s]+\.[^@\s]+$)");
    for (const char* field : {"username", "email"}) {
        auto v = read_string(p, field, errors);
        if (!v) {
            if (creating) {
                errors.add(field, "can't be blank");
            }
            continue;
        }
        const bool valid = std::string(field) == "username" ? std::regex_match(*v, kUsername)
                                                            : std::regex_match(*v, kEmail);
        if (v->empty()) {
            errors.add(field, "can't be blank");
        } else if (!valid) {
            errors.add(field, "is invalid");
        } else if (!store.users
                        .where(
                            [&](const Json& u) { return &u != self && u.value(field, "") == *v; })
                        .empty()) {
            errors.add(field, "has already been taken");
        }
        out[field] = *v;
    }
}

}  // namespace

// Users are created "pending" with the member role; activate, admin/member, suspend/unsuspend
// move them (porta's user state machine).
Response AdminApi::create_user(Ctx& c) {
    if (store_.visible_account(c.ids[0]) == nullptr) {
        return not_found();
    }
    const Params p(c.params, "user");
    Errors errors;
    Json fields = Json::object();
    check_identity(store_, p, nullptr, errors, fields, true);
    const std::string password = read_string(p, "password", errors).value_or("");
    if (password.empty()) {
        errors.add("password", "can't be blank");
    } else if (password.size() < 6) {
        errors.add("password", "is too short (minimum is 6 characters)");
    }
    if (!errors.empty()) {
        return unprocessable(errors);
    }
    Json user = {
        {"id", store_.allocate_id()}, {"account_id", c.ids[0]},         {"state", "pending"},
        {"role", "member"},           {"username", fields["username"]}, {"email", fields["email"]},
        {"created_at", now_iso()},    {"updated_at", now_iso()}};
    const Json& stored = store_.users.insert(std::move(user));
    return created("user", render_user(stored), member_location(c, id_field(stored, "id")));
}

Response AdminApi::update_user(Ctx& c) {
    Json* u = user_of_account(store_, c.ids[0], c.ids[1]);
    if (u == nullptr) {
        return not_found();
    }
    const Params p(c.params, "user");
    Errors errors;
    Json fields = Json::object();
    check_identity(store_, p, u, errors, fields, false);
    if (!errors.empty()) {
        return unprocessable(errors);
    }
    for (auto& [key, value] : fields.items()) {
        (*u)[key] = value;
    }
    (*u)["updated_at"] = now_iso();
    return ok("user", render_user(*u));
}

Response AdminApi::delete_user(Ctx& c) {
    Json* u = user_of_account(store_, c.ids[0], c.ids[1]);
    if (u == nullptr) {
        return not_found();
    }
    const auto admins = store_.users.where([&](const Json& x) {
        return id_field(x, "account_id") == c.ids[0] && x.value("role", "") == "admin";
    });
    if (u->value("role", "") == "admin" && admins.size() <= 1) {
        return refused_delete("The last admin of an account cannot be deleted");
    }
    store_.users.erase(c.ids[1]);
    return deleted();
}

Response AdminApi::user_event(Ctx& c, const std::string& event) {
    Json* u = user_of_account(store_, c.ids[0], c.ids[1]);
    if (u == nullptr) {
        return not_found();
    }
    const std::string state = u->value("state", "");
    if (event == "admin" || event == "member") {
        if (event == "member" && u->value("role", "") == "admin") {
            const auto admins = store_.users.where([&](const Json& x) {
                return id_field(x, "account_id") == c.ids[0] && x.value("role", "") == "admin";
            });
            if (admins.size() <= 1) {
                return Response::json(422,
                                      Json{{"errors", {{"role", {"an account needs an admin"}}}}});
            }
        }
        (*u)["role"] = event;
    } else if (event == "activate" && state == "pending") {
        (*u)["state"] = "active";
    } else if (event == "suspend" && state == "active") {
        (*u)["state"] = "suspended";
    } else if (event == "unsuspend" && state == "suspended") {
        (*u)["state"] = "active";
    } else if (!((event == "activate" && state == "active") ||
                 (event == "suspend" && state == "suspended") ||
                 (event == "unsuspend" && state == "active"))) {
        return Response::json(422, Json{{"error",
                                         {{"from", state},
                                          {"event", event},
                                          {"error", "cannot transition via \"" + event + "\""}}}});
    }
    (*u)["updated_at"] = now_iso();
    return ok("user", render_user(*u));
}

// ------------------------------------------------------------------------------ objects

Response AdminApi::object_status(Ctx& c) {
    const Params p(c.params, "");
    Errors errors;
    const auto type = read_string(p, "object_type", errors);
    const auto id = read_int(p, "object_id", errors);
    if (!type) {
        return required_missing("object_type");
    }
    if (!id) {
        return required_missing("object_id");
    }
    // 200 while the object still exists (even soft-deleted), 404 once purged.
    const Json* object = nullptr;
    if (*type == "service") {
        object = store_.services.find(*id);
    } else if (*type == "backend_api") {
        object = store_.backend_apis.find(*id);
    } else if (*type == "account") {
        object = store_.accounts.find(*id);
    } else if (*type == "proxy") {
        object = store_.proxies.find(*id);
    } else {
        return Response::json(
            400, Json{{"error", "object_type has to be service, account, proxy or backend_api"}});
    }
    if (object == nullptr) {
        return not_found();
    }
    return ok(*type, public_fields(*object));
}

}  // namespace sim
