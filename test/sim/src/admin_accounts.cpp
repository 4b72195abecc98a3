// Developer accounts (signup express), their users, applications and application keys, and the
// asynchronous-deletion status endpoint.
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

bool printable(const std::string& s, std::size_t min, std::size_t max) {
    if (s.size() < min || s.size() > max) {
        return false;
    }
    return std::all_of(s.begin(), s.end(), [](char ch) { return ch >= 0x21 && ch <= 0x7e; });
}

bool valid_user_key(const std::string& s) {
    static const std::regex kUserKey(R"(^[\w\-.+=]+$)");
    return !s.empty() && s.size() <= 256 && std::regex_match(s, kUserKey);
}

}  // namespace

Json* AdminApi::create_application_object(const Json& account,
                                          const Json& plan,
                                          const Params& p,
                                          Errors& errors) {
    const Id service_id = id_field(plan, "_service_id");
    const Json* service = store_.services.find(service_id);
    const std::string backend_version = service->value("backend_version", "1");
    const std::string name = read_string(p, "name", errors).value_or("");
    const std::string description = read_string(p, "description", errors).value_or("");
    if (name.empty()) {
        errors.add("name", "can't be blank");
    }
    Json app = {{"id", store_.allocate_id()},
                {"state", plan.value("approval_required", false) ? "pending" : "live"},
                {"service_id", service_id},
                {"plan_id", plan["id"]},
                {"account_id", account["id"]},
                {"name", name},
                {"description", description},
                {"redirect_url", nullptr},
                {"first_traffic_at", nullptr},
                {"first_daily_traffic_at", nullptr},
                {"_keys", Json::array()},
                {"created_at", now_iso()},
                {"updated_at", now_iso()}};
    if (auto v = read_string(p, "redirect_url", errors)) {
        app["redirect_url"] = *v;
    }
    const auto taken = [&](const char* field, const std::string& value) {
        return !store_.applications
                    .where([&](const Json& a) { return a.value(field, "") == value; })
                    .empty();
    };
    if (backend_version == "1") {
        std::string user_key = read_string(p, "user_key", errors).value_or("");
        if (user_key.empty()) {
            user_key = random_hex(32);
        } else if (!valid_user_key(user_key)) {
            errors.add("user_key", "is invalid");
        } else if (taken("user_key", user_key)) {
            errors.add("user_key", "has already been taken");  // unique across the tenant
        }
        app["user_key"] = user_key;
        app["provider_verification_key"] = random_hex(32);
    } else {
        std::string app_id = read_string(p, "application_id", errors).value_or("");
        if (app_id.empty()) {
            app_id = random_hex(8);
        } else if (!printable(app_id, 4, 255)) {
            errors.add("application_id", "is invalid");
        } else if (taken("application_id", app_id)) {
            errors.add("application_id", "has already been taken");
        }
        app["application_id"] = app_id;
        Json keys = Json::array();
        if (const Json* raw = p.get("application_key"); raw != nullptr) {
            const Json list = raw->is_array() ? *raw : Json::array({*raw});
            for (const Json& k : list) {
                if (!k.is_string() || !printable(k.get<std::string>(), 5, 255)) {
                    errors.add("application_key", "is invalid");
                } else if (std::find(keys.begin(), keys.end(), k) == keys.end()) {
                    keys.push_back(k);
                }
            }
            if (keys.size() > 5) {
                errors.add("application_key", "too many keys (maximum is 5)");
            }
        }
        if (keys.empty() && service->value("mandatory_app_key", true)) {
            keys.push_back(random_hex(32));  // porta creates the first key itself
        }
        app["_keys"] = keys;
    }
    if (!errors.empty()) {
        return nullptr;
    }
    app["enabled"] = app["state"] == "live";
    return &store_.applications.insert(std::move(app));
}

namespace {

Json render_application(Store& store, const Json& app) {
    Json out = public_fields(app);
    const Json* service = store.services.find(id_field(app, "service_id"));
    const Json* plan = store.plans.find(id_field(app, "plan_id"));
    const Json* account = store.accounts.find(id_field(app, "account_id"));
    out["service_name"] = service != nullptr ? (*service)["name"] : Json(nullptr);
    out["plan_name"] = plan != nullptr ? (*plan)["name"] : Json(nullptr);
    out["org_name"] = account != nullptr ? (*account)["org_name"] : Json(nullptr);
    out["enabled"] = app.value("state", "") == "live";
    return out;
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

// ------------------------------------------------------------------------------ applications

Response AdminApi::create_application(Ctx& c) {
    const Json* account = store_.visible_account(c.ids[0]);
    if (account == nullptr) {
        return not_found();
    }
    const Params p(c.params, "application");
    Errors errors;
    const auto plan_id = read_int(p, "plan_id", errors);
    if (!errors.empty()) {
        return unprocessable(errors);
    }
    if (!plan_id) {
        return required_missing("plan_id");
    }
    const Json* plan = store_.plans.find(*plan_id);
    if (plan == nullptr || store_.visible_service(id_field(*plan, "_service_id")) == nullptr) {
        return not_found();
    }
    Json* app = create_application_object(*account, *plan, p, errors);
    if (app == nullptr) {
        return unprocessable(errors);
    }
    return created("application", render_application(store_, *app),
                   member_location(c, id_field(*app, "id")));
}

Response AdminApi::list_account_applications(Ctx& c) {
    if (store_.visible_account(c.ids[0]) == nullptr) {
        return not_found();
    }
    Json items = Json::array();
    for (const Json* a : std::as_const(store_.applications).where([&](const Json& a) {
             return id_field(a, "account_id") == c.ids[0] &&
                    store_.visible_service(id_field(a, "service_id")) != nullptr;
         })) {
        items.push_back({{"application", render_application(store_, *a)}});
    }
    return Response::json(200, Json{{"applications", items}});
}

Response AdminApi::list_applications(Ctx& c) {
    const Params p(c.params, "");
    Errors ignored;
    const auto service_id = read_int(p, "service_id", ignored);
    const auto plan_id = read_int(p, "plan_id", ignored);
    std::vector<Json> items;
    for (const auto& [id, a] : store_.applications.items()) {
        if (store_.visible_service(id_field(a, "service_id")) == nullptr ||
            store_.visible_account(id_field(a, "account_id")) == nullptr) {
            continue;
        }
        if ((service_id && id_field(a, "service_id") != *service_id) ||
            (plan_id && id_field(a, "plan_id") != *plan_id)) {
            continue;
        }
        items.push_back({{"application", render_application(store_, a)}});
    }
    return paginate(c.params, std::move(items), "applications");
}

Response AdminApi::find_application(Ctx& c) {
    const Params p(c.params, "");
    Errors errors;
    const auto service_id = read_int(p, "service_id", errors);
    std::function<bool(const Json&)> pred;
    if (auto id = read_int(p, "application_id", errors)) {
        pred = [id](const Json& a) { return id_field(a, "id") == *id; };
    } else if (auto key = read_string(p, "user_key", errors)) {
        pred = [key](const Json& a) { return a.value("user_key", "") == *key; };
    } else if (auto app_id = read_string(p, "app_id", errors)) {
        pred = [app_id](const Json& a) { return a.value("application_id", "") == *app_id; };
    } else {
        return not_found();
    }
    for (const auto& [id, a] : store_.applications.items()) {
        if (pred(a) && (!service_id || id_field(a, "service_id") == *service_id) &&
            store_.visible_service(id_field(a, "service_id")) != nullptr &&
            store_.visible_account(id_field(a, "account_id")) != nullptr) {
            return ok("application", render_application(store_, a));
        }
    }
    return not_found();
}

namespace {

Json* app_of_account(Store& store, Id account_id, Id app_id) {
    if (store.visible_account(account_id) == nullptr) {
        return nullptr;
    }
    Json* a = store.applications.find(app_id);
    if (a == nullptr || id_field(*a, "account_id") != account_id ||
        store.visible_service(id_field(*a, "service_id")) == nullptr) {
        return nullptr;
    }
    return a;
}

}  // namespace

Response AdminApi::show_application(Ctx& c) {
    Json* a = app_of_account(store_, c.ids[0], c.ids[1]);
    return a == nullptr ? not_found() : ok("application", render_application(store_, *a));
}

Response AdminApi::update_application(Ctx& c) {
    Json* a = app_of_account(store_, c.ids[0], c.ids[1]);
    if (a == nullptr) {
        return not_found();
    }
    const Params p(c.params, "application");
    Errors errors;
    Json fields = Json::object();
    if (auto v = read_string(p, "name", errors)) {
        if (v->empty()) {
            errors.add("name", "can't be blank");
        }
        fields["name"] = *v;
    }
    for (const char* key : {"description", "redirect_url"}) {
        if (auto v = read_string(p, key, errors)) {
            fields[key] = *v;
        }
    }
    if (a->contains("user_key")) {
        if (auto v = read_string(p, "user_key", errors); v && *v != a->value("user_key", "")) {
            if (!valid_user_key(*v)) {
                errors.add("user_key", "is invalid");
            } else if (!store_.applications
                            .where([&](const Json& o) { return o.value("user_key", "") == *v; })
                            .empty()) {
                errors.add("user_key", "has already been taken");
            }
            fields["user_key"] = *v;
        }
    }
    // application_id is read-only after create: silently ignored.
    if (!errors.empty()) {
        return unprocessable(errors);
    }
    for (auto& [key, value] : fields.items()) {
        (*a)[key] = value;
    }
    (*a)["updated_at"] = now_iso();
    return ok("application", render_application(store_, *a));
}

Response AdminApi::delete_application(Ctx& c) {
    Json* a = app_of_account(store_, c.ids[0], c.ids[1]);
    if (a == nullptr) {
        return not_found();
    }
    store_.applications.erase(c.ids[1]);
    return deleted();
}

Response AdminApi::application_state(Ctx& c, const std::string& event) {
    Json* a = app_of_account(store_, c.ids[0], c.ids[1]);
    if (a == nullptr) {
        return not_found();
    }
    const std::string from = a->value("state", "");
    std::string to;
    if (event == "suspend" && from == "live") {
        to = "suspended";
    } else if (event == "resume" && from == "suspended") {
        to = "live";
    } else if (event == "accept" && from == "pending") {
        to = "live";
    } else if ((event == "suspend" && from == "suspended") ||
               (event == "resume" && from == "live")) {
        to = from;  // already there
    }
    if (to.empty()) {
        return Response::json(
            422, Json{{"error",
                       {{"from", from},
                        {"event", event},
                        {"error", "cannot transition via \"" + event + "\""},
                        {"object", {{"application", render_application(store_, *a)}}}}}});
    }
    (*a)["state"] = to;
    (*a)["updated_at"] = now_iso();
    return ok("application", render_application(store_, *a));
}

Response AdminApi::change_plan(Ctx& c) {
    Json* a = app_of_account(store_, c.ids[0], c.ids[1]);
    if (a == nullptr) {
        return not_found();
    }
    const Params p(c.params, "");
    Errors errors;
    const auto plan_id = read_int(p, "plan_id", errors);
    if (!errors.empty()) {
        return unprocessable(errors);
    }
    if (!plan_id) {
        return required_missing("plan_id");
    }
    const Json* plan = store_.plans.find(*plan_id);
    if (plan == nullptr) {
        return not_found();
    }
    if (id_field(*plan, "_service_id") != id_field(*a, "service_id")) {
        errors.add("plan", "must belong to the same product as the application");
        return unprocessable(errors);
    }
    (*a)["plan_id"] = *plan_id;
    (*a)["updated_at"] = now_iso();
    return ok("application", render_application(store_, *a));
}

Response AdminApi::list_keys(Ctx& c) {
    Json* a = app_of_account(store_, c.ids[0], c.ids[1]);
    if (a == nullptr) {
        return not_found();
    }
    Json keys = Json::array();
    for (const Json& k : a->value("_keys", Json::array())) {
        keys.push_back({{"key", {{"value", k}}}});
    }
    return Response::json(200, Json{{"keys", keys}});
}

Response AdminApi::create_key(Ctx& c) {
    Json* a = app_of_account(store_, c.ids[0], c.ids[1]);
    if (a == nullptr) {
        return not_found();
    }
    const Params p(c.params, "");
    Errors errors;
    const auto key = read_string(p, "key", errors);
    if (!key) {
        return required_missing("key");
    }
    Json& keys = (*a)["_keys"];
    if (!printable(*key, 5, 255)) {
        errors.add("value", "is invalid");
    } else if (std::find(keys.begin(), keys.end(), Json(*key)) != keys.end()) {
        errors.add("value", "has already been taken");
    } else if (keys.size() >= 5) {
        errors.add("base", "Limit reached: an application can have at most 5 keys");
    }
    if (!errors.empty()) {
        return unprocessable(errors);
    }
    keys.push_back(*key);
    (*a)["updated_at"] = now_iso();
    return created("application", render_application(store_, *a),
                   member_location(c, id_field(*a, "id")));
}

Response AdminApi::delete_key(Ctx& c) {
    Json* a = app_of_account(store_, c.ids[0], c.ids[1]);
    if (a == nullptr) {
        return not_found();
    }
    Json& keys = (*a)["_keys"];
    const auto it = std::find(keys.begin(), keys.end(), Json(c.strings.at(0)));
    if (it == keys.end()) {
        return not_found();
    }
    keys.erase(it);
    return deleted();
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
