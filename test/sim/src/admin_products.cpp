// Products (services), backends, backend usages, metrics/methods and mapping rules.
#include <algorithm>
#include <regex>

#include "admin_support.hpp"

namespace sim {

namespace {

constexpr std::array<const char*, 7> kHttpMethods = {"GET",   "POST", "PUT",    "DELETE",
                                                     "PATCH", "HEAD", "OPTIONS"};

Json links(const std::string& base, std::initializer_list<std::pair<const char*, std::string>> l) {
    Json out = Json::array();
    for (const auto& [rel, path] : l) {
        out.push_back({{"rel", rel}, {"href", base + path}});
    }
    return out;
}

Json render_service(const Json& s, const std::string& base) {
    Json out = public_fields(s);
    const std::string id = std::to_string(id_field(s, "id"));
    out["links"] =
        links(base, {{"metrics", "/admin/api/services/" + id + "/metrics"},
                     {"self", "/admin/api/services/" + id},
                     {"service_plans", "/admin/api/services/" + id + "/service_plans"},
                     {"application_plans", "/admin/api/services/" + id + "/application_plans"},
                     {"features", "/admin/api/services/" + id + "/features"}});
    return out;
}

Json render_backend(const Json& b, const std::string& base) {
    Json out = public_fields(b);
    const std::string id = std::to_string(id_field(b, "id"));
    out["links"] =
        links(base, {{"metrics", "/admin/api/backend_apis/" + id + "/metrics"},
                     {"mapping_rules", "/admin/api/backend_apis/" + id + "/mapping_rules"},
                     {"self", "/admin/api/backend_apis/" + id}});
    return out;
}

// Backend metric system_names are shown with a ".<backend_id>" suffix; product metrics have
// "name" too. Methods have no unit.
Json render_metric(const Json& m, const std::string& base) {
    Json out = public_fields(m);
    const bool backend = m.value("_owner_type", "") == "backend_api";
    const std::string owner = std::to_string(id_field(m, "_owner_id"));
    if (backend) {
        out["system_name"] = m.value("system_name", "") + "." + owner;
        out.erase("name");
    }
    if (m.contains("parent_id")) {
        out.erase("unit");
    }
    const std::string prefix = backend ? "/admin/api/backend_apis/" : "/admin/api/services/";
    out["links"] =
        links(base, {{backend ? "backend_api" : "service", prefix + owner},
                     {"self", prefix + owner + "/metrics/" + std::to_string(id_field(m, "id"))}});
    return out;
}

Json render_rule(const Json& r) {
    Json out = public_fields(r);
    if (r.value("_owner_type", "") == "backend_api") {
        out.erase("redirect_url");
    }
    return out;
}

std::string normalize_usage_path(const std::string& path) {
    std::string p = path.empty() ? "/" : path;
    if (p.front() != '/') {
        p.insert(p.begin(), '/');
    }
    while (p.size() > 1 && p.back() == '/') {
        p.pop_back();
    }
    return p;
}

bool valid_usage_path(const std::string& p) {
    static const std::regex kPath(R"(^/[\w\-~%!$&'()*+,;=:@./]*$)");
    return p.size() <= 255 && std::regex_match(p, kPath) && p.find("//") == std::string::npos;
}

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    return s;
}

bool valid_pattern(const std::string& pattern) {
    if (pattern.empty() || pattern.front() != '/' || pattern.size() > 255) {
        return false;
    }
    int depth = 0;
    for (const char ch : pattern) {
        if (ch == '{') {
            ++depth;
        } else if (ch == '}') {
            --depth;
        } else if (ch == ' ' || ch == '\t' || ch == '\n') {
            return false;
        }
        if (depth < 0 || depth > 1) {
            return false;
        }
    }
    return depth == 0;
}

}  // namespace

// ---------------------------------------------------------------------------------- products

Response AdminApi::list_services(Ctx& c) {
    std::vector<Json> items;
    for (const auto& [id, s] : store_.services.items()) {
        if (!is_soft_deleted(s)) {
            items.push_back({{"service", render_service(s, c.base)}});
        }
    }
    return paginate(c.params, std::move(items), "services");
}

namespace {

constexpr std::initializer_list<const char*> kServiceAttrs = {"name",
                                                              "system_name",
                                                              "description",
                                                              "deployment_option",
                                                              "backend_version",
                                                              "support_email",
                                                              "intentions_required",
                                                              "buyers_manage_apps",
                                                              "referrer_filters_required",
                                                              "buyer_can_select_plan",
                                                              "buyer_plan_change_permission",
                                                              "buyers_manage_keys",
                                                              "buyer_key_regenerate_enabled",
                                                              "mandatory_app_key",
                                                              "custom_keys_enabled",
                                                              "state_event",
                                                              "txt_support",
                                                              "terms",
                                                              "annotations",
                                                              "notification_settings"};

// Validates and collects the updatable service attributes into `out`.
void read_service_attrs(const Params& p, Errors& errors, Json& out) {
    for (const char* name : {"name", "description", "support_email", "txt_support", "terms"}) {
        if (auto v = read_string(p, name, errors)) {
            out[name] = *v;
        }
    }
    if (auto v = read_string(p, "deployment_option", errors)) {
        if (*v == "hosted" || *v == "self_managed" || *v == "service_mesh_istio" ||
            v->starts_with("plugin_")) {
            out["deployment_option"] = *v;
        } else {
            errors.add("deployment_option", "is not included in the list");
        }
    }
    if (auto v = read_string(p, "backend_version", errors)) {
        if (*v == "1" || *v == "2" || *v == "oidc") {
            out["backend_version"] = *v;
        } else {
            errors.add("backend_version", "is not included in the list");
        }
    }
    for (const char* name :
         {"intentions_required", "buyers_manage_apps", "referrer_filters_required",
          "buyer_can_select_plan", "buyers_manage_keys", "buyer_key_regenerate_enabled",
          "mandatory_app_key", "custom_keys_enabled"}) {
        if (auto v = read_bool(p, name, errors)) {
            out[name] = *v;
        }
    }
    if (auto v = read_string(p, "buyer_plan_change_permission", errors)) {
        if (*v == "request" || *v == "direct" || *v == "credit_card" ||
            *v == "request_credit_card" || *v == "none") {
            out["buyer_plan_change_permission"] = *v;
        } else {
            errors.add("buyer_plan_change_permission", "is not included in the list");
        }
    }
    if (auto v = read_object(p, "annotations", errors)) {
        out["annotations"] = *v;
    }
    if (auto v = read_string(p, "state_event", errors)) {
        if (*v == "publish") {
            out["state"] = "published";
        } else if (*v == "hide") {
            out["state"] = "hidden";
        } else {
            errors.add("state_event", "is invalid");
        }
    }
}

}  // namespace

Response AdminApi::create_service(Ctx& c) {
    const Params p(c.params, "service");
    if (p.wrapper_has_wrong_type()) {
        return Response::json(422, Json{{"error", "Wrong type for parameter: service"}});
    }
    if (!has_any(p, kServiceAttrs)) {
        return required_missing("service");
    }
    Errors errors;
    Json fields = Json::object();
    read_service_attrs(p, errors, fields);
    const std::string name = fields.value("name", "");
    if (name.empty()) {
        errors.add("name", "can't be blank");
    }
    std::string system_name = read_string(p, "system_name", errors).value_or("");
    if (system_name.empty()) {
        system_name = parameterize_underscore(name);
    }
    if (!valid_system_name(system_name)) {
        errors.add("system_name",
                   "invalid. Only ASCII letters, numbers, dashes and underscores are allowed.");
    } else if (!store_.services
                    .where([&](const Json& s) { return s.value("system_name", "") == system_name; })
                    .empty()) {
        // Soft-deleted products keep their system_name until the background job purges them.
        errors.add("system_name", "has already been taken");
    }
    if (!errors.empty()) {
        return unprocessable(errors);
    }
    fields["system_name"] = system_name;
    Json& s = create_service_object(std::move(fields));
    const std::string id = std::to_string(id_field(s, "id"));
    return created("service", render_service(s, c.base), c.base + "/admin/api/services/" + id);
}

Response AdminApi::show_service(Ctx& c) {
    Json* s = service_or_null(c, 0);
    return s == nullptr ? not_found() : ok("service", render_service(*s, c.base));
}

Response AdminApi::update_service(Ctx& c) {
    Json* s = service_or_null(c, 0);
    if (s == nullptr) {
        return not_found();
    }
    const Params p(c.params, "service");
    if (p.wrapper_has_wrong_type()) {
        return Response::json(422, Json{{"error", "Wrong type for parameter: service"}});
    }
    Errors errors;
    Json fields = Json::object();
    read_service_attrs(p, errors, fields);
    if (fields.contains("name") && fields["name"].get<std::string>().empty()) {
        errors.add("name", "can't be blank");
    }
    if (!errors.empty()) {
        return unprocessable(errors);
    }
    for (auto& [key, value] : fields.items()) {
        (*s)[key] = value;
    }
    if (fields.contains("deployment_option")) {
        if (Json* proxy = store_.proxy_of(id_field(*s, "id"))) {
            (*proxy)["deployment_option"] = fields["deployment_option"];
        }
    }
    (*s)["updated_at"] = now_iso();
    return ok("service", render_service(*s, c.base));
}

Response AdminApi::delete_service(Ctx& c) {
    Json* s = service_or_null(c, 0);
    if (s == nullptr) {
        return not_found();
    }
    const auto visible = store_.services.where([](const Json& x) { return !is_soft_deleted(x); });
    if (visible.size() <= 1) {
        // The last product cannot be deleted: porta's state machine refuses the transition.
        return Response::json(422, Json{{"error",
                                         {{"from", (*s)["state"]},
                                          {"event", "mark_as_deleted"},
                                          {"error", "cannot transition via \"mark_as_deleted\""},
                                          {"object", {{"service", render_service(*s, c.base)}}}}}});
    }
    (*s)["state"] = "deleted";
    (*s)["_purge_at"] = now_epoch() + options_.purge_delay.count();
    store_.has_soft_deleted = true;
    return deleted();
}

// ---------------------------------------------------------------------------------- backends

Response AdminApi::list_backends(Ctx& c) {
    std::vector<Json> items;
    for (const auto& [id, b] : store_.backend_apis.items()) {
        if (!is_soft_deleted(b)) {
            items.push_back({{"backend_api", render_backend(b, c.base)}});
        }
    }
    return paginate(c.params, std::move(items), "backend_apis");
}

namespace {

void read_backend_attrs(const Params& p, Errors& errors, Json& out) {
    for (const char* name : {"name", "description"}) {
        if (auto v = read_string(p, name, errors)) {
            out[name] = *v;
        }
    }
    if (auto v = read_string(p, "private_endpoint", errors)) {
        auto normalized = normalize_endpoint(*v);
        if (v->empty()) {
            errors.add("private_endpoint", "can't be blank");
        } else if (!normalized) {
            errors.add("private_endpoint", "Invalid URL format: " + *v);
        } else if (is_localhost(host_of_endpoint(*normalized))) {
            errors.add("private_endpoint", "cannot be localhost or a loopback address");
        } else {
            out["private_endpoint"] = *normalized;
        }
    }
    if (auto v = read_object(p, "annotations", errors)) {
        out["annotations"] = *v;
    }
}

}  // namespace

Response AdminApi::create_backend(Ctx& c) {
    const Params p(c.params, "backend_api");
    if (p.wrapper_has_wrong_type()) {
        return Response::json(422, Json{{"error", "Wrong type for parameter: backend_api"}});
    }
    if (!has_any(p, {"name", "system_name", "description", "private_endpoint", "annotations"})) {
        return required_missing("backend_api");
    }
    Errors errors;
    Json fields = Json::object();
    read_backend_attrs(p, errors, fields);
    const std::string name = fields.value("name", "");
    if (name.empty()) {
        errors.add("name", "can't be blank");
    }
    if (!fields.contains("private_endpoint") && !p.has("private_endpoint")) {
        errors.add("private_endpoint", "can't be blank");
    }
    std::string system_name = read_string(p, "system_name", errors).value_or("");
    if (system_name.empty()) {
        system_name = parameterize_underscore(name);
    }
    if (!valid_system_name(system_name)) {
        errors.add("system_name",
                   "invalid. Only ASCII letters, numbers, dashes and underscores are allowed.");
    } else if (!store_.backend_apis
                    .where([&](const Json& b) { return b.value("system_name", "") == system_name; })
                    .empty()) {
        errors.add("system_name", "has already been taken");
    }
    if (!errors.empty()) {
        return unprocessable(errors);
    }
    fields["system_name"] = system_name;
    Json& b = create_backend_object(std::move(fields));
    return created("backend_api", render_backend(b, c.base),
                   c.base + "/admin/api/backend_apis/" + std::to_string(id_field(b, "id")));
}

Response AdminApi::show_backend(Ctx& c) {
    Json* b = owner_or_null(c, "backend_api");
    return b == nullptr ? not_found() : ok("backend_api", render_backend(*b, c.base));
}

Response AdminApi::update_backend(Ctx& c) {
    Json* b = owner_or_null(c, "backend_api");
    if (b == nullptr) {
        return not_found();
    }
    const Params p(c.params, "backend_api");
    Errors errors;
    Json fields = Json::object();
    read_backend_attrs(p, errors, fields);  // system_name is ignored on update
    if (fields.contains("name") && fields["name"].get<std::string>().empty()) {
        errors.add("name", "can't be blank");
    }
    if (!errors.empty()) {
        return unprocessable(errors);
    }
    for (auto& [key, value] : fields.items()) {
        (*b)[key] = value;
    }
    (*b)["updated_at"] = now_iso();
    return ok("backend_api", render_backend(*b, c.base));
}

Response AdminApi::delete_backend(Ctx& c) {
    Json* b = owner_or_null(c, "backend_api");
    if (b == nullptr) {
        return not_found();
    }
    const Id id = id_field(*b, "id");
    for (const Json* usage : std::as_const(store_.backend_usages).where([&](const Json& u) {
             return id_field(u, "backend_id") == id;
         })) {
        if (store_.visible_service(id_field(*usage, "service_id")) != nullptr) {
            return refused_delete("cannot be deleted because it is used by at least one Product");
        }
    }
    (*b)["_purge_at"] = now_epoch() + options_.purge_delay.count();
    store_.has_soft_deleted = true;
    return deleted();
}

// ----------------------------------------------------------------------------- backend usages

Response AdminApi::list_usages(Ctx& c) {
    if (service_or_null(c, 0) == nullptr) {
        return not_found();
    }
    std::vector<Json> items;
    for (const Json* u : store_.usages_of_service(c.ids[0])) {
        items.push_back({{"backend_usage", public_fields(*u)}});
    }
    return paginate(c.params, std::move(items), "backend_usages", /*bare=*/true);
}

Response AdminApi::create_usage(Ctx& c) {
    if (service_or_null(c, 0) == nullptr) {
        return not_found();
    }
    const Params p(c.params, "backend_usage");
    Errors errors;
    const auto backend_id = read_int(p, "backend_api_id", errors);
    if (!errors.empty()) {
        return unprocessable(errors);
    }
    if (!backend_id) {
        return required_missing("backend_api_id");
    }
    if (store_.visible_backend(*backend_id) == nullptr) {
        return not_found();
    }
    const std::string path = normalize_usage_path(read_string(p, "path", errors).value_or("/"));
    if (!valid_usage_path(path)) {
        errors.add("path", "is invalid");
    }
    for (const Json* u : store_.usages_of_service(c.ids[0])) {
        if (lower(u->value("path", "")) == lower(path)) {
            errors.add("path", "has already been taken");
        }
        if (id_field(*u, "backend_id") == *backend_id) {
            errors.add("backend_api_id", "has already been taken");
        }
    }
    if (!errors.empty()) {
        return unprocessable(errors);
    }
    Json usage = {{"id", store_.allocate_id()},
                  {"path", path},
                  {"service_id", c.ids[0]},
                  {"backend_id", *backend_id}};
    const Json& stored = store_.backend_usages.insert(std::move(usage));
    return created("backend_usage", public_fields(stored),
                   c.base + "/admin/api/services/" + std::to_string(c.ids[0]) + "/backend_usages/" +
                       std::to_string(id_field(stored, "id")));
}

Response AdminApi::show_usage(Ctx& c) {
    Json* u = service_or_null(c, 0) != nullptr ? store_.backend_usages.find(c.ids[1]) : nullptr;
    if (u == nullptr || id_field(*u, "service_id") != c.ids[0]) {
        return not_found();
    }
    return ok("backend_usage", public_fields(*u));
}

Response AdminApi::update_usage(Ctx& c) {
    Json* u = service_or_null(c, 0) != nullptr ? store_.backend_usages.find(c.ids[1]) : nullptr;
    if (u == nullptr || id_field(*u, "service_id") != c.ids[0]) {
        return not_found();
    }
    const Params p(c.params, "backend_usage");
    Errors errors;
    if (auto v = read_string(p, "path", errors)) {
        const std::string path = normalize_usage_path(*v);
        if (!valid_usage_path(path)) {
            errors.add("path", "is invalid");
        }
        for (const Json* other : store_.usages_of_service(c.ids[0])) {
            if (other != u && lower(other->value("path", "")) == lower(path)) {
                errors.add("path", "has already been taken");
            }
        }
        if (errors.empty()) {
            (*u)["path"] = path;
        }
    }
    if (!errors.empty()) {
        return unprocessable(errors);
    }
    return ok("backend_usage", public_fields(*u));
}

Response AdminApi::delete_usage(Ctx& c) {
    Json* u = service_or_null(c, 0) != nullptr ? store_.backend_usages.find(c.ids[1]) : nullptr;
    if (u == nullptr || id_field(*u, "service_id") != c.ids[0]) {
        return not_found();
    }
    // BackendApiConfig before_destroy: every limit on that backend's metrics in this product's
    // plans goes with the usage (pricing rules stay).
    const Id backend_id = id_field(*u, "backend_id");
    std::vector<Id> metric_ids;
    for (const Json* m : store_.metrics_of("backend_api", backend_id)) {
        metric_ids.push_back(id_field(*m, "id"));
    }
    std::vector<Id> doomed;
    for (const Json* l : std::as_const(store_.limits).where([&](const Json& l) {
             const Json* plan = store_.plans.find(id_field(l, "plan_id"));
             return plan != nullptr && id_field(*plan, "_service_id") == c.ids[0] &&
                    std::find(metric_ids.begin(), metric_ids.end(), id_field(l, "metric_id")) !=
                        metric_ids.end();
         })) {
        doomed.push_back(id_field(*l, "id"));
    }
    for (const Id id : doomed) {
        store_.limits.erase(id);
    }
    store_.backend_usages.erase(c.ids[1]);
    return deleted();
}

// --------------------------------------------------------------------------- metrics, methods

Response AdminApi::list_metrics(Ctx& c, const std::string& owner_type) {
    if (owner_or_null(c, owner_type) == nullptr) {
        return not_found();
    }
    std::vector<Json> items;
    for (const Json* m : store_.metrics_of(owner_type, c.ids[0])) {
        // Metrics and methods come back together, flat; methods carry parent_id.
        const bool method = m->contains("parent_id");
        items.push_back({{method ? "method" : "metric", render_metric(*m, c.base)}});
    }
    if (owner_type == "service") {  // not paginated for products
        return Response::json(200, Json{{"metrics", items}});
    }
    return paginate(c.params, std::move(items), "metrics");
}

namespace {

std::optional<std::string> unique_metric_errors(Store& store,
                                                const std::string& owner_type,
                                                Id owner_id,
                                                const Json* self,
                                                const std::string& field,
                                                const std::string& value) {
    for (const Json* m : store.metrics_of(owner_type, owner_id)) {
        if (m != self && m->value(field, "") == value) {
            return "has already been taken";
        }
    }
    return std::nullopt;
}

}  // namespace

Response AdminApi::create_metric(Ctx& c, const std::string& owner_type) {
    if (owner_or_null(c, owner_type) == nullptr) {
        return not_found();
    }
    const Params p(c.params, "metric");
    if (!has_any(p, {"friendly_name", "system_name", "unit", "description", "name"})) {
        return required_missing("metric");
    }
    Errors errors;
    const std::string friendly = read_string(p, "friendly_name", errors).value_or("");
    const std::string unit = read_string(p, "unit", errors).value_or("");
    const std::string description = read_string(p, "description", errors).value_or("");
    std::string system_name = read_string(p, "system_name", errors).value_or("");
    if (system_name.empty()) {
        system_name = read_string(p, "name", errors).value_or("");
    }
    if (system_name.empty()) {
        system_name = parameterize_underscore(friendly);
    }
    if (friendly.empty()) {
        errors.add("friendly_name", "can't be blank");
    } else if (auto e = unique_metric_errors(store_, owner_type, c.ids[0], nullptr, "friendly_name",
                                             friendly)) {
        errors.add("friendly_name", *e);
    }
    if (unit.empty()) {
        errors.add("unit", "can't be blank");
    }
    if (!valid_system_name(system_name)) {
        errors.add("system_name",
                   "invalid. Only ASCII letters, numbers, dashes and underscores are allowed.");
    } else if (auto e = unique_metric_errors(store_, owner_type, c.ids[0], nullptr, "system_name",
                                             system_name)) {
        errors.add("system_name", *e);
    }
    if (!errors.empty()) {
        return unprocessable(errors);
    }
    Json fields = {{"system_name", system_name},
                   {"friendly_name", friendly},
                   {"unit", unit},
                   {"description", description}};
    if (owner_type == "service") {
        fields["name"] = system_name;
    }
    Json& m = create_metric_object(owner_type, c.ids[0], std::move(fields));
    return created("metric", render_metric(m, c.base), member_location(c, id_field(m, "id")));
}

namespace {

Json* metric_of_owner(Store& store,
                      const std::string& owner_type,
                      Id owner_id,
                      Id metric_id,
                      bool want_method,
                      std::optional<Id> parent_id = std::nullopt) {
    Json* m = store.metrics.find(metric_id);
    if (m == nullptr || m->value("_owner_type", "") != owner_type ||
        id_field(*m, "_owner_id") != owner_id || m->contains("parent_id") != want_method) {
        return nullptr;
    }
    if (parent_id && id_field(*m, "parent_id") != *parent_id) {
        return nullptr;
    }
    return m;
}

}  // namespace

Response AdminApi::show_metric(Ctx& c, const std::string& owner_type) {
    Json* m = owner_or_null(c, owner_type) != nullptr
                  ? metric_of_owner(store_, owner_type, c.ids[0], c.ids[1], false)
                  : nullptr;
    return m == nullptr ? not_found() : ok("metric", render_metric(*m, c.base));
}

Response AdminApi::update_metric(Ctx& c, const std::string& owner_type) {
    Json* m = owner_or_null(c, owner_type) != nullptr
                  ? metric_of_owner(store_, owner_type, c.ids[0], c.ids[1], false)
                  : nullptr;
    if (m == nullptr) {
        return not_found();
    }
    const Params p(c.params, "metric");
    Errors errors;
    Json fields = Json::object();
    if (auto v = read_string(p, "friendly_name", errors)) {
        if (v->empty()) {
            errors.add("friendly_name", "can't be blank");
        } else if (auto e =
                       unique_metric_errors(store_, owner_type, c.ids[0], m, "friendly_name", *v)) {
            errors.add("friendly_name", *e);
        }
        fields["friendly_name"] = *v;
    }
    if (auto v = read_string(p, "unit", errors)) {
        if (v->empty()) {
            errors.add("unit", "can't be blank");
        }
        fields["unit"] = *v;
    }
    if (auto v = read_string(p, "description", errors)) {
        fields["description"] = *v;
    }
    if (!errors.empty()) {
        return unprocessable(errors);
    }
    for (auto& [key, value] : fields.items()) {
        (*m)[key] = value;
    }
    (*m)["updated_at"] = now_iso();
    return ok("metric", render_metric(*m, c.base));
}

bool AdminApi::metric_used_by_latest_config(Id metric_id) {
    for (const auto& [sid, s] : store_.services.items()) {
        for (const char* env : {"sandbox", "production"}) {
            const Json* cfg = store_.latest_config(sid, env);
            if (cfg == nullptr) {
                continue;
            }
            for (const Json& rule : cfg->at("content").at("proxy").at("proxy_rules")) {
                if (id_field(rule, "metric_id") == metric_id) {
                    return true;
                }
            }
        }
    }
    return false;
}

Response AdminApi::delete_metric(Ctx& c, const std::string& owner_type) {
    Json* m = owner_or_null(c, owner_type) != nullptr
                  ? metric_of_owner(store_, owner_type, c.ids[0], c.ids[1], false)
                  : nullptr;
    if (m == nullptr) {
        return not_found();
    }
    if (m->value("system_name", "") == "hits") {
        return refused_delete("The Hits metric cannot be deleted");
    }
    if (metric_used_by_latest_config(c.ids[1])) {
        return refused_delete("is used by the latest gateway configuration and cannot be deleted");
    }
    store_.destroy_metric(c.ids[1]);
    return deleted();
}

Response AdminApi::list_methods(Ctx& c, const std::string& owner_type) {
    Json* parent = owner_or_null(c, owner_type) != nullptr
                       ? metric_of_owner(store_, owner_type, c.ids[0], c.ids[1], false)
                       : nullptr;
    if (parent == nullptr) {
        return not_found();
    }
    std::vector<Json> items;
    for (const Json* m : store_.metrics_of(owner_type, c.ids[0])) {
        if (id_field(*m, "parent_id") == c.ids[1]) {
            items.push_back({{"method", render_metric(*m, c.base)}});
        }
    }
    if (owner_type == "service") {
        return Response::json(200, Json{{"methods", items}});
    }
    return paginate(c.params, std::move(items), "methods");
}

Response AdminApi::create_method(Ctx& c, const std::string& owner_type) {
    Json* parent = owner_or_null(c, owner_type) != nullptr
                       ? metric_of_owner(store_, owner_type, c.ids[0], c.ids[1], false)
                       : nullptr;
    if (parent == nullptr) {
        return not_found();
    }
    const Params p(c.params, "method");
    if (!has_any(p, {"friendly_name", "system_name", "description", "name", "unit"})) {
        return required_missing("method");
    }
    Errors errors;
    if (parent->value("system_name", "") != "hits") {
        errors.add("parent_id", "You can only create methods under 'hits'");
        return unprocessable(errors);
    }
    const std::string friendly = read_string(p, "friendly_name", errors).value_or("");
    const std::string description = read_string(p, "description", errors).value_or("");
    std::string system_name = read_string(p, "system_name", errors).value_or("");
    if (system_name.empty()) {
        system_name = parameterize_underscore(friendly);
    }
    if (friendly.empty()) {
        errors.add("friendly_name", "can't be blank");
    } else if (auto e = unique_metric_errors(store_, owner_type, c.ids[0], nullptr, "friendly_name",
                                             friendly)) {
        errors.add("friendly_name", *e);
    }
    if (!valid_system_name(system_name)) {
        errors.add("system_name",
                   "invalid. Only ASCII letters, numbers, dashes and underscores are allowed.");
    } else if (auto e = unique_metric_errors(store_, owner_type, c.ids[0], nullptr, "system_name",
                                             system_name)) {
        errors.add("system_name", *e);
    }
    if (!errors.empty()) {
        return unprocessable(errors);
    }
    // unit is ignored for methods: they inherit the parent's.
    Json fields = {{"system_name", system_name},
                   {"friendly_name", friendly},
                   {"description", description},
                   {"parent_id", c.ids[1]},
                   {"unit", parent->value("unit", "hit")}};
    if (owner_type == "service") {
        fields["name"] = system_name;
    }
    Json& m = create_metric_object(owner_type, c.ids[0], std::move(fields));
    return created("method", render_metric(m, c.base), member_location(c, id_field(m, "id")));
}

Response AdminApi::show_method(Ctx& c, const std::string& owner_type) {
    Json* m = owner_or_null(c, owner_type) != nullptr
                  ? metric_of_owner(store_, owner_type, c.ids[0], c.ids[2], true, c.ids[1])
                  : nullptr;
    return m == nullptr ? not_found() : ok("method", render_metric(*m, c.base));
}

Response AdminApi::update_method(Ctx& c, const std::string& owner_type) {
    Json* m = owner_or_null(c, owner_type) != nullptr
                  ? metric_of_owner(store_, owner_type, c.ids[0], c.ids[2], true, c.ids[1])
                  : nullptr;
    if (m == nullptr) {
        return not_found();
    }
    const Params p(c.params, "method");
    Errors errors;
    Json fields = Json::object();
    if (auto v = read_string(p, "friendly_name", errors)) {
        if (v->empty()) {
            errors.add("friendly_name", "can't be blank");
        } else if (auto e =
                       unique_metric_errors(store_, owner_type, c.ids[0], m, "friendly_name", *v)) {
            errors.add("friendly_name", *e);
        }
        fields["friendly_name"] = *v;
    }
    if (auto v = read_string(p, "description", errors)) {
        fields["description"] = *v;
    }
    if (!errors.empty()) {
        return unprocessable(errors);
    }
    for (auto& [key, value] : fields.items()) {
        (*m)[key] = value;
    }
    (*m)["updated_at"] = now_iso();
    return ok("method", render_metric(*m, c.base));
}

Response AdminApi::delete_method(Ctx& c, const std::string& owner_type) {
    Json* m = owner_or_null(c, owner_type) != nullptr
                  ? metric_of_owner(store_, owner_type, c.ids[0], c.ids[2], true, c.ids[1])
                  : nullptr;
    if (m == nullptr) {
        return not_found();
    }
    if (metric_used_by_latest_config(c.ids[2])) {
        return refused_delete("is used by the latest gateway configuration and cannot be deleted");
    }
    store_.destroy_metric(c.ids[2]);
    return deleted();
}

// ----------------------------------------------------------------------------- mapping rules

Response AdminApi::list_rules(Ctx& c, const std::string& owner_type) {
    if (owner_or_null(c, owner_type) == nullptr) {
        return not_found();
    }
    std::vector<Json> items;
    for (const Json* r : store_.rules_of(owner_type, c.ids[0])) {
        items.push_back({{"mapping_rule", render_rule(*r)}});
    }
    if (owner_type == "service") {  // product rules are not paginated
        return Response::json(200, Json{{"mapping_rules", items}});
    }
    return paginate(c.params, std::move(items), "mapping_rules");
}

namespace {

// Reads and validates mapping-rule attributes; `creating` makes the required ones required.
Json read_rule_attrs(Store& store,
                     const std::string& owner_type,
                     Id owner_id,
                     const Params& p,
                     bool creating,
                     Errors& errors) {
    Json out = Json::object();
    if (auto v = read_string(p, "http_method", errors)) {
        std::string upper = *v;
        std::transform(upper.begin(), upper.end(), upper.begin(),
                       [](unsigned char ch) { return static_cast<char>(std::toupper(ch)); });
        if (std::find(kHttpMethods.begin(), kHttpMethods.end(), upper) == kHttpMethods.end()) {
            errors.add("http_method", "is not included in the list");
        } else {
            out["http_method"] = upper;
        }
    } else if (creating) {
        errors.add("http_method", "can't be blank");
    }
    if (auto v = read_string(p, "pattern", errors)) {
        if (!valid_pattern(*v)) {
            errors.add("pattern", "is invalid");
        } else {
            out["pattern"] = *v;
        }
    } else if (creating) {
        errors.add("pattern", "can't be blank");
    }
    if (auto v = read_int(p, "delta", errors)) {
        if (*v <= 0) {
            errors.add("delta", "must be greater than 0");
        } else {
            out["delta"] = *v;
        }
    } else if (creating && !p.has("delta")) {
        errors.add("delta", "can't be blank");
    }
    if (auto v = read_int(p, "metric_id", errors)) {
        const Json* m = store.metrics.find(*v);
        if (m == nullptr || m->value("_owner_type", "") != owner_type ||
            id_field(*m, "_owner_id") != owner_id) {
            errors.add("metric_id", "must belong to the same owner as the mapping rule");
        } else {
            out["metric_id"] = *v;
        }
    } else if (creating && !p.has("metric_id")) {
        errors.add("metric_id", "can't be blank");
    }
    if (auto v = read_bool(p, "last", errors)) {
        out["last"] = *v;
    }
    if (owner_type == "service") {
        if (auto v = read_string(p, "redirect_url", errors)) {
            out["redirect_url"] = v->empty() ? Json(nullptr) : Json(*v);
        }
    }
    if (auto v = read_int(p, "position", errors)) {
        if (*v < 1) {
            errors.add("position", "must be greater than 0");
        } else {
            out["position"] = *v;
        }
    }
    return out;
}

}  // namespace

Response AdminApi::create_rule(Ctx& c, const std::string& owner_type) {
    if (owner_or_null(c, owner_type) == nullptr) {
        return not_found();
    }
    const Params p(c.params, "mapping_rule");
    if (!has_any(p, {"http_method", "pattern", "delta", "metric_id", "position", "last"})) {
        return required_missing("mapping_rule");
    }
    Errors errors;
    Json fields = read_rule_attrs(store_, owner_type, c.ids[0], p, true, errors);
    if (!errors.empty()) {
        return unprocessable(errors);
    }
    std::optional<std::int64_t> position;
    if (fields.contains("position")) {
        position = fields["position"].get<std::int64_t>();
        fields.erase("position");
    }
    Json rule = {{"id", store_.allocate_id()}, {"_owner_type", owner_type},
                 {"_owner_id", c.ids[0]},      {"last", false},
                 {"created_at", now_iso()},    {"updated_at", now_iso()}};
    if (owner_type == "service") {
        rule["redirect_url"] = nullptr;
    }
    for (auto& [key, value] : fields.items()) {
        rule[key] = value;
    }
    insert_rule_at(rule, owner_type, c.ids[0], position);
    const Json& stored = store_.mapping_rules.insert(std::move(rule));
    return created("mapping_rule", render_rule(stored), member_location(c, id_field(stored, "id")));
}

namespace {

Json* rule_of_owner(Store& store, const std::string& owner_type, Id owner_id, Id rule_id) {
    Json* r = store.mapping_rules.find(rule_id);
    if (r == nullptr || r->value("_owner_type", "") != owner_type ||
        id_field(*r, "_owner_id") != owner_id) {
        return nullptr;
    }
    return r;
}

}  // namespace

Response AdminApi::show_rule(Ctx& c, const std::string& owner_type) {
    Json* r = owner_or_null(c, owner_type) != nullptr
                  ? rule_of_owner(store_, owner_type, c.ids[0], c.ids[1])
                  : nullptr;
    return r == nullptr ? not_found() : ok("mapping_rule", render_rule(*r));
}

Response AdminApi::update_rule(Ctx& c, const std::string& owner_type) {
    Json* r = owner_or_null(c, owner_type) != nullptr
                  ? rule_of_owner(store_, owner_type, c.ids[0], c.ids[1])
                  : nullptr;
    if (r == nullptr) {
        return not_found();
    }
    const Params p(c.params, "mapping_rule");
    Errors errors;
    Json fields = read_rule_attrs(store_, owner_type, c.ids[0], p, false, errors);
    if (!errors.empty()) {
        return unprocessable(errors);
    }
    if (fields.contains("position")) {
        insert_rule_at(*r, owner_type, c.ids[0], fields["position"].get<std::int64_t>());
        fields.erase("position");
    }
    for (auto& [key, value] : fields.items()) {
        (*r)[key] = value;
    }
    (*r)["updated_at"] = now_iso();
    return ok("mapping_rule", render_rule(*r));
}

Response AdminApi::delete_rule(Ctx& c, const std::string& owner_type) {
    Json* r = owner_or_null(c, owner_type) != nullptr
                  ? rule_of_owner(store_, owner_type, c.ids[0], c.ids[1])
                  : nullptr;
    if (r == nullptr) {
        return not_found();
    }
    store_.mapping_rules.erase(c.ids[1]);
    // acts_as_list closes the gap.
    std::int64_t next = 1;
    for (Json* other : store_.rules_of(owner_type, c.ids[0])) {
        (*other)["position"] = next++;
    }
    return deleted();
}

}  // namespace sim
