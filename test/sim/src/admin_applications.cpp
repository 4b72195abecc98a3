// Applications and their keys: create (with the credentials given or generated), list, find,
// update, state events, plan changes and application keys.
#include <algorithm>
#include <regex>

#include "admin_support.hpp"

namespace sim {

namespace {

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

}  // namespace

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

}  // namespace sim
