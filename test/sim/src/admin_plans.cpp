// Application plans, limits, pricing rules, proxy settings, policy chains, deploy and proxy
// configs (staging "sandbox" and "production").
#include <algorithm>
#include <regex>

#include "admin_support.hpp"
#include "ratelimit/period.hpp"

namespace sim {

namespace {

Json render_plan(const Json& plan, const std::string& base) {
    Json out = public_fields(plan);
    const std::string svc = std::to_string(id_field(plan, "_service_id"));
    out["links"] =
        Json::array({{{"rel", "service"}, {"href", base + "/admin/api/services/" + svc}},
                     {{"rel", "self"},
                      {"href", base + "/admin/api/services/" + svc + "/application_plans/" +
                                   std::to_string(id_field(plan, "id"))}}});
    return out;
}

Json render_limit(const Json& limit, const std::string& base) {
    Json out = public_fields(limit);
    const std::string plan = std::to_string(id_field(limit, "plan_id"));
    const std::string metric = std::to_string(id_field(limit, "metric_id"));
    out["links"] =
        Json::array({{{"rel", "self"},
                      {"href", base + "/admin/api/application_plans/" + plan + "/metrics/" +
                                   metric + "/limits/" + std::to_string(id_field(limit, "id"))}},
                     {{"rel", "plan"}, {"href", base + "/admin/api/application_plans/" + plan}},
                     {{"rel", "metric"}, {"href", base + "/admin/api/metrics/" + metric}}});
    return out;
}

Json render_pricing(const Json& rule) {
    Json out = public_fields(rule);
    // cost_per_unit is DECIMAL(20,4): Rails renders BigDecimal as a string.
    out["cost_per_unit"] = format_decimal(rule.value("cost_per_unit", 0.0));
    return out;
}

Json render_config(const Json& cfg) {
    return {{"id", cfg["id"]},
            {"version", cfg["version"]},
            {"environment", cfg["environment"]},
            {"content", cfg["content"]}};
}

std::optional<std::string> environment_of(const std::string& name) {
    if (name == "sandbox" || name == "staging") {
        return std::string("sandbox");
    }
    if (name == "production") {
        return name;
    }
    return std::nullopt;
}

constexpr std::initializer_list<const char*> kPlanAttrs = {
    "name",           "system_name", "approval_required",
    "cost_per_month", "setup_fee",   "trial_period_days",
    "state_event",    "description", "cancellation_period"};

void read_plan_attrs(const Params& p, Errors& errors, Json& out) {
    for (const char* name : {"name", "description"}) {
        if (auto v = read_string(p, name, errors)) {
            out[name] = *v;
        }
    }
    if (auto v = read_bool(p, "approval_required", errors)) {
        out["approval_required"] = *v;
    }
    for (const char* name : {"cost_per_month", "setup_fee"}) {
        if (auto v = read_decimal(p, name, errors)) {
            if (*v < 0) {
                errors.add(name, "must be greater than or equal to 0");
            } else {
                out[name] = *v;
            }
        }
    }
    for (const char* name : {"trial_period_days", "cancellation_period"}) {
        if (auto v = read_int(p, name, errors)) {
            if (*v < 0) {
                errors.add(name, "must be greater than or equal to 0");
            } else {
                out[name] = *v;
            }
        }
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

// "/a/{id}/b?x={v}&y=1" -> parameters ["id"], querystring {"x":"{v}","y":"1"}.
void split_pattern(const std::string& pattern, Json& parameters, Json& querystring) {
    static const std::regex kVar(R"(\{([^}]+)\})");
    parameters = Json::array();
    querystring = Json::object();
    const auto q = pattern.find('?');
    const std::string path = pattern.substr(0, q);
    for (auto it = std::sregex_iterator(path.begin(), path.end(), kVar);
         it != std::sregex_iterator(); ++it) {
        parameters.push_back((*it)[1].str());
    }
    if (q != std::string::npos) {
        std::string qs = pattern.substr(q + 1);
        while (!qs.empty()) {
            const auto amp = qs.find('&');
            const std::string pair = qs.substr(0, amp);
            qs = amp == std::string::npos ? "" : qs.substr(amp + 1);
            const auto eq = pair.find('=');
            if (!pair.empty()) {
                querystring[pair.substr(0, eq)] =
                    eq == std::string::npos ? "" : pair.substr(eq + 1);
            }
        }
    }
}

}  // namespace

// --------------------------------------------------------------------------- config content

Json AdminApi::proxy_config_content(Id service_id) {
    const Json* s = store_.services.find(service_id);
    const Json* proxy = store_.proxy_of(service_id);
    if (s == nullptr || proxy == nullptr) {
        return nullptr;
    }
    Json rules = Json::array();
    const auto add_rule = [&](const Json& r, const std::string& prefix, const std::string& suffix,
                              const char* owner_type, Id owner_id) {
        const Json* metric = store_.metrics.find(id_field(r, "metric_id"));
        std::string pattern = r.value("pattern", "/");
        if (!prefix.empty() && prefix != "/") {
            pattern = prefix + (pattern == "/" ? "" : pattern);
            if (pattern.empty()) {
                pattern = "/";
            }
        }
        Json parameters;
        Json querystring;
        split_pattern(pattern, parameters, querystring);
        rules.push_back({{"id", r["id"]},
                         {"http_method", r["http_method"]},
                         {"pattern", pattern},
                         {"metric_id", r["metric_id"]},
                         {"metric_system_name",
                          (metric != nullptr ? metric->value("system_name", "") : "") + suffix},
                         {"delta", r["delta"]},
                         {"position", r["position"]},
                         {"last", r.value("last", false)},
                         {"parameters", parameters},
                         {"querystring_parameters", querystring},
                         {"owner_id", owner_id},
                         {"owner_type", owner_type}});
    };
    for (const Json* r : store_.rules_of("service", service_id)) {
        add_rule(*r, "", "", "Proxy", id_field(*proxy, "id"));
    }
    Json usages = Json::array();
    auto service_usages = store_.usages_of_service(service_id);
    std::sort(service_usages.begin(), service_usages.end(),
              [](const Json* a, const Json* b) { return id_field(*a, "id") < id_field(*b, "id"); });
    for (const Json* u : service_usages) {
        const Id be = id_field(*u, "backend_id");
        const Json* backend = store_.backend_apis.find(be);
        if (backend == nullptr) {
            continue;
        }
        usages.push_back({{"backend_id", be},
                          {"backend_system_name", backend->value("system_name", "")},
                          {"path", u->value("path", "/")},
                          {"private_endpoint", backend->value("private_endpoint", "")}});
        for (const Json* r : store_.rules_of("backend_api", be)) {
            add_rule(*r, u->value("path", "/"), "." + std::to_string(be), "BackendApi", be);
        }
    }
    Json chain = Json::array();
    for (const Json& policy : proxy->value("policies_config", Json::array())) {
        if (policy.value("enabled", false)) {
            chain.push_back({{"name", policy["name"]},
                             {"version", policy["version"]},
                             {"configuration", policy.value("configuration", Json::object())}});
        }
    }
    Json proxy_doc = {{"id", (*proxy)["id"]}, {"service_id", service_id}};
    for (const char* key : {"endpoint",
                            "sandbox_endpoint",
                            "credentials_location",
                            "auth_app_key",
                            "auth_app_id",
                            "auth_user_key",
                            "error_auth_failed",
                            "error_auth_missing",
                            "error_status_auth_failed",
                            "error_headers_auth_failed",
                            "error_status_auth_missing",
                            "error_headers_auth_missing",
                            "error_no_match",
                            "error_status_no_match",
                            "error_headers_no_match",
                            "error_limits_exceeded",
                            "error_status_limits_exceeded",
                            "error_headers_limits_exceeded",
                            "secret_token",
                            "hostname_rewrite",
                            "api_test_path",
                            "oidc_issuer_endpoint",
                            "oidc_issuer_type",
                            "jwt_claim_with_client_id",
                            "jwt_claim_with_client_id_type"}) {
        if (proxy->contains(key)) {
            proxy_doc[key] = (*proxy)[key];
        }
    }
    Json hosts = Json::array();
    for (const char* key : {"endpoint", "sandbox_endpoint"}) {
        const std::string host = host_of_endpoint(proxy->value(key, ""));
        if (!host.empty()) {
            hosts.push_back(host);
        }
    }
    proxy_doc["hosts"] = hosts;
    proxy_doc["policy_chain"] = chain;
    proxy_doc["proxy_rules"] = rules;
    return {{"id", service_id},
            {"account_id", store_.tenant_id},
            {"name", (*s)["name"]},
            {"system_name", (*s)["system_name"]},
            {"backend_version", (*s)["backend_version"]},
            {"deployment_option", (*s)["deployment_option"]},
            {"backend_usages", usages},
            {"proxy", proxy_doc}};
}

void AdminApi::deploy_to_staging(Id service_id) {
    // Without a backend usage porta cannot build a config: deploy silently does nothing.
    if (store_.usages_of_service(service_id).empty()) {
        return;
    }
    Json content = proxy_config_content(service_id);
    const Json* latest = store_.latest_config(service_id, "sandbox");
    if (latest != nullptr && latest->at("content") == content) {
        return;  // a new version only when the content differs
    }
    const std::int64_t version = latest == nullptr ? 1 : latest->value("version", 0) + 1;
    store_.proxy_configs.insert({{"id", store_.allocate_id()},
                                 {"_service_id", service_id},
                                 {"environment", "sandbox"},
                                 {"version", version},
                                 {"content", std::move(content)},
                                 {"created_at", now_iso()}});
    if (Json* proxy = store_.proxy_of(service_id)) {
        (*proxy)["deployed_at"] = now_iso();
    }
}

// ------------------------------------------------------------------------ application plans

Response AdminApi::list_plans(Ctx& c) {
    if (service_or_null(c, 0) == nullptr) {
        return not_found();
    }
    Json items = Json::array();
    for (const Json* plan : std::as_const(store_.plans).by_key(std::to_string(c.ids[0]))) {
        items.push_back({{"application_plan", render_plan(*plan, c.base)}});
    }
    return Response::json(200, Json{{"plans", items}});
}

Response AdminApi::list_all_plans(Ctx& c) {
    Json items = Json::array();
    for (const auto& [id, plan] : store_.plans.items()) {
        if (store_.visible_service(id_field(plan, "_service_id")) != nullptr) {
            items.push_back({{"application_plan", render_plan(plan, c.base)}});
        }
    }
    return Response::json(200, Json{{"plans", items}});
}

Response AdminApi::create_plan(Ctx& c) {
    if (service_or_null(c, 0) == nullptr) {
        return not_found();
    }
    const Params p(c.params, "application_plan");
    if (p.wrapper_has_wrong_type()) {
        return Response::json(422, Json{{"error", "Wrong type for parameter: application_plan"}});
    }
    if (!has_any(p, kPlanAttrs)) {
        return required_missing("application_plan");
    }
    Errors errors;
    Json fields = Json::object();
    read_plan_attrs(p, errors, fields);
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
    } else if (const auto siblings = store_.plans.by_key(std::to_string(c.ids[0]));
               std::any_of(siblings.begin(), siblings.end(), [&](const Json* pl) {
                   return pl->value("system_name", "") == system_name;
               })) {
        errors.add("system_name", "has already been taken");
    }
    if (!errors.empty()) {
        return unprocessable(errors);
    }
    Json plan = {
        {"id", store_.allocate_id()}, {"_service_id", c.ids[0]}, {"name", name},
        {"system_name", system_name}, {"state", "hidden"},       {"setup_fee", 0.0},
        {"cost_per_month", 0.0},      {"trial_period_days", 0},  {"cancellation_period", 0},
        {"approval_required", false}, {"default", false},        {"custom", false},
        {"description", nullptr},     {"created_at", now_iso()}, {"updated_at", now_iso()}};
    for (auto& [key, value] : fields.items()) {
        plan[key] = value;
    }
    const Json& stored = store_.plans.insert(std::move(plan));
    return created("application_plan", render_plan(stored, c.base),
                   member_location(c, id_field(stored, "id")));
}

namespace {

Json* plan_of_service(Store& store, Id service_id, Id plan_id) {
    Json* plan = store.plans.find(plan_id);
    if (plan == nullptr || id_field(*plan, "_service_id") != service_id) {
        return nullptr;
    }
    return plan;
}

}  // namespace

Response AdminApi::show_plan(Ctx& c) {
    Json* plan =
        service_or_null(c, 0) != nullptr ? plan_of_service(store_, c.ids[0], c.ids[1]) : nullptr;
    return plan == nullptr ? not_found() : ok("application_plan", render_plan(*plan, c.base));
}

Response AdminApi::update_plan(Ctx& c) {
    Json* plan =
        service_or_null(c, 0) != nullptr ? plan_of_service(store_, c.ids[0], c.ids[1]) : nullptr;
    if (plan == nullptr) {
        return not_found();
    }
    const Params p(c.params, "application_plan");
    Errors errors;
    Json fields = Json::object();
    read_plan_attrs(p, errors, fields);
    if (fields.contains("name") && fields["name"].get<std::string>().empty()) {
        errors.add("name", "can't be blank");
    }
    if (!errors.empty()) {
        return unprocessable(errors);
    }
    for (auto& [key, value] : fields.items()) {
        (*plan)[key] = value;
    }
    (*plan)["updated_at"] = now_iso();
    return ok("application_plan", render_plan(*plan, c.base));
}

Response AdminApi::delete_plan(Ctx& c) {
    Json* plan =
        service_or_null(c, 0) != nullptr ? plan_of_service(store_, c.ids[0], c.ids[1]) : nullptr;
    if (plan == nullptr) {
        return not_found();
    }
    if (!store_.applications
             .where([&](const Json& a) { return id_field(a, "plan_id") == c.ids[1]; })
             .empty()) {
        return refused_delete(
            "This application plan cannot be deleted because it has "
            "applications (contracts)");
    }
    store_.destroy_plan(c.ids[1]);
    return deleted();
}

Response AdminApi::default_plan(Ctx& c) {
    Json* plan =
        service_or_null(c, 0) != nullptr ? plan_of_service(store_, c.ids[0], c.ids[1]) : nullptr;
    if (plan == nullptr) {
        return not_found();
    }
    for (Json* other : store_.plans.by_key(std::to_string(c.ids[0]))) {
        (*other)["default"] = false;
    }
    (*plan)["default"] = true;
    (*plan)["updated_at"] = now_iso();
    return ok("application_plan", render_plan(*plan, c.base));
}

// -------------------------------------------------------------------------------- limits

namespace {

// The metric must be one of the plan's product metrics or of a backend the product uses.
Json* plan_metric(Store& store, const Json& plan, Id metric_id) {
    for (Json* m : store.all_metrics_of_service(id_field(plan, "_service_id"))) {
        if (id_field(*m, "id") == metric_id) {
            return m;
        }
    }
    return nullptr;
}

}  // namespace

Response AdminApi::list_plan_limits(Ctx& c) {
    if (plan_or_null(c, 0) == nullptr) {
        return not_found();
    }
    std::vector<Json> items;
    for (const Json* l : std::as_const(store_.limits).by_key(std::to_string(c.ids[0]))) {
        items.push_back({{"limit", render_limit(*l, c.base)}});
    }
    // paginated (the spec says max 50; porta uses the shared 1..500 range)
    return paginate(c.params, std::move(items), "limits");
}

Response AdminApi::list_metric_limits(Ctx& c) {
    Json* plan = plan_or_null(c, 0);
    if (plan == nullptr || plan_metric(store_, *plan, c.ids[1]) == nullptr) {
        return not_found();
    }
    Json items = Json::array();
    for (const Json* l : std::as_const(store_.limits).by_key(std::to_string(c.ids[0]))) {
        if (id_field(*l, "metric_id") != c.ids[1]) {
            continue;
        }
        items.push_back({{"limit", render_limit(*l, c.base)}});
    }
    return Response::json(200, Json{{"limits", items}});
}

namespace {

// period and value; a blank or negative value is stored as 0 (porta's before_save).
void read_limit_attrs(const Params& p, Errors& errors, Json& out) {
    if (auto v = read_string(p, "period", errors)) {
        if (!ratelimit::parse_period(*v)) {
            errors.add("period", "is not included in the list");
        } else {
            out["period"] = *v;
        }
    }
    if (const Json* raw = p.get("value"); raw != nullptr) {
        if (raw->is_null() || (raw->is_string() && raw->get<std::string>().empty())) {
            out["value"] = 0;
        } else if (auto v = read_int(p, "value", errors)) {
            out["value"] = std::max<std::int64_t>(*v, 0);
        }
    }
}

bool period_taken(Store& store, Id plan, Id metric, const std::string& period, Id self) {
    for (const Json* l : std::as_const(store.limits).by_key(std::to_string(plan))) {
        if (id_field(*l, "metric_id") == metric && l->value("period", "") == period &&
            id_field(*l, "id") != self) {
            return true;
        }
    }
    return false;
}

}  // namespace

Response AdminApi::create_limit(Ctx& c) {
    Json* plan = plan_or_null(c, 0);
    if (plan == nullptr || plan_metric(store_, *plan, c.ids[1]) == nullptr) {
        return not_found();
    }
    const Params p(c.params, "usage_limit");
    if (!has_any(p, {"period", "value"})) {
        return required_missing("usage_limit");
    }
    Errors errors;
    Json fields = Json::object();
    read_limit_attrs(p, errors, fields);
    if (!fields.contains("period") && !p.has("period")) {
        errors.add("period", "can't be blank");
    }
    if (fields.contains("period") &&
        period_taken(store_, c.ids[0], c.ids[1], fields["period"], 0)) {
        errors.add("period", "has already been taken");
    }
    if (!errors.empty()) {
        return unprocessable(errors);
    }
    Json limit = {{"id", store_.allocate_id()},
                  {"period", fields["period"]},
                  {"value", fields.value("value", std::int64_t{0})},
                  {"metric_id", c.ids[1]},
                  {"plan_id", c.ids[0]},
                  {"created_at", now_iso()},
                  {"updated_at", now_iso()}};
    const Json& stored = store_.limits.insert(std::move(limit));
    return created("limit", render_limit(stored, c.base),
                   member_location(c, id_field(stored, "id")));
}

namespace {

Json* limit_of(Store& store, Id plan, Id metric, Id id) {
    Json* l = store.limits.find(id);
    if (l == nullptr || id_field(*l, "plan_id") != plan || id_field(*l, "metric_id") != metric) {
        return nullptr;
    }
    return l;
}

}  // namespace

Response AdminApi::show_limit(Ctx& c) {
    Json* l =
        plan_or_null(c, 0) != nullptr ? limit_of(store_, c.ids[0], c.ids[1], c.ids[2]) : nullptr;
    return l == nullptr ? not_found() : ok("limit", render_limit(*l, c.base));
}

Response AdminApi::update_limit(Ctx& c) {
    Json* l =
        plan_or_null(c, 0) != nullptr ? limit_of(store_, c.ids[0], c.ids[1], c.ids[2]) : nullptr;
    if (l == nullptr) {
        return not_found();
    }
    const Params p(c.params, "usage_limit");
    Errors errors;
    Json fields = Json::object();
    read_limit_attrs(p, errors, fields);
    if (fields.contains("period") &&
        period_taken(store_, c.ids[0], c.ids[1], fields["period"], c.ids[2])) {
        errors.add("period", "has already been taken");
    }
    if (!errors.empty()) {
        return unprocessable(errors);
    }
    for (auto& [key, value] : fields.items()) {
        (*l)[key] = value;
    }
    (*l)["updated_at"] = now_iso();
    return ok("limit", render_limit(*l, c.base));
}

Response AdminApi::delete_limit(Ctx& c) {
    Json* l =
        plan_or_null(c, 0) != nullptr ? limit_of(store_, c.ids[0], c.ids[1], c.ids[2]) : nullptr;
    if (l == nullptr) {
        return not_found();
    }
    store_.limits.erase(c.ids[2]);
    return deleted();
}

// ------------------------------------------------------------------------------ pricing rules

Response AdminApi::list_plan_pricing(Ctx& c) {
    if (plan_or_null(c, 0) == nullptr) {
        return not_found();
    }
    Json items = Json::array();
    for (const Json* r : std::as_const(store_.pricing_rules).by_key(std::to_string(c.ids[0]))) {
        items.push_back({{"pricing_rule", render_pricing(*r)}});
    }
    return Response::json(200, Json{{"pricing_rules", items}});
}

Response AdminApi::list_metric_pricing(Ctx& c) {
    Json* plan = plan_or_null(c, 0);
    if (plan == nullptr || plan_metric(store_, *plan, c.ids[1]) == nullptr) {
        return not_found();
    }
    Json items = Json::array();
    for (const Json* r : std::as_const(store_.pricing_rules).by_key(std::to_string(c.ids[0]))) {
        if (id_field(*r, "metric_id") != c.ids[1]) {
            continue;
        }
        items.push_back({{"pricing_rule", render_pricing(*r)}});
    }
    return Response::json(200, Json{{"pricing_rules", items}});
}

Response AdminApi::create_pricing(Ctx& c) {
    Json* plan = plan_or_null(c, 0);
    if (plan == nullptr || plan_metric(store_, *plan, c.ids[1]) == nullptr) {
        return not_found();
    }
    const Params p(c.params, "pricing_rule");
    if (!has_any(p, {"min", "max", "cost_per_unit"})) {
        return required_missing("pricing_rule");
    }
    Errors errors;
    const std::int64_t min = read_int(p, "min", errors).value_or(1);
    std::optional<std::int64_t> max;
    if (const Json* raw = p.get("max"); raw != nullptr && !raw->is_null() &&
                                        !(raw->is_string() && raw->get<std::string>().empty())) {
        max = read_int(p, "max", errors);
    }
    const double cost = read_decimal(p, "cost_per_unit", errors).value_or(0.0);
    if (min < 1) {
        errors.add("min", "must be greater than or equal to 1");
    }
    if (max && *max < min) {
        errors.add("max", "must be greater than min");
    }
    if (cost < 0) {
        errors.add("cost_per_unit", "must be greater than or equal to 0");
    }
    const double scaled = cost * 10000.0;
    if (std::abs(scaled - std::round(scaled)) > 1e-6) {
        errors.add("cost_per_unit", "has more than 4 decimal places");
    }
    if (errors.empty()) {
        const std::int64_t hi = max.value_or(INT64_MAX);
        for (const Json* r : std::as_const(store_.pricing_rules).by_key(std::to_string(c.ids[0]))) {
            if (id_field(*r, "metric_id") != c.ids[1]) {
                continue;
            }
            const std::int64_t other_lo = r->value("min", std::int64_t{1});
            const std::int64_t other_hi =
                r->at("max").is_null() ? INT64_MAX : r->at("max").get<std::int64_t>();
            if (min <= other_hi && other_lo <= hi) {
                errors.add("base", "Pricing rules of the same metric cannot overlap");
                break;
            }
        }
    }
    if (!errors.empty()) {
        return unprocessable(errors);
    }
    Json rule = {{"id", store_.allocate_id()},
                 {"metric_id", c.ids[1]},
                 {"plan_id", c.ids[0]},
                 {"min", min},
                 {"max", max ? Json(*max) : Json(nullptr)},
                 {"cost_per_unit", cost},
                 {"created_at", now_iso()},
                 {"updated_at", now_iso()}};
    const Json& stored = store_.pricing_rules.insert(std::move(rule));
    return created("pricing_rule", render_pricing(stored),
                   member_location(c, id_field(stored, "id")));
}

Response AdminApi::delete_pricing(Ctx& c) {
    Json* r = plan_or_null(c, 0) != nullptr ? store_.pricing_rules.find(c.ids[2]) : nullptr;
    if (r == nullptr || id_field(*r, "plan_id") != c.ids[0] ||
        id_field(*r, "metric_id") != c.ids[1]) {
        return not_found();
    }
    store_.pricing_rules.erase(c.ids[2]);
    return deleted();
}

// ----------------------------------------------------------------------------------- proxy

Response AdminApi::show_proxy(Ctx& c) {
    if (service_or_null(c, 0) == nullptr) {
        return not_found();
    }
    Json* proxy = store_.proxy_of(c.ids[0]);
    return proxy == nullptr ? not_found() : ok("proxy", public_fields(*proxy));
}

Response AdminApi::update_proxy(Ctx& c) {
    Json* proxy = service_or_null(c, 0) != nullptr ? store_.proxy_of(c.ids[0]) : nullptr;
    if (proxy == nullptr) {
        return not_found();
    }
    const Params p(c.params, "proxy");
    Errors errors;
    Json fields = Json::object();
    for (const char* key : {"endpoint", "sandbox_endpoint"}) {
        if (auto v = read_string(p, key, errors)) {
            auto normalized = normalize_endpoint(*v);
            if (!normalized) {
                errors.add(key, "is invalid");
            } else {
                fields[key] = *normalized;
            }
        }
    }
    if (auto v = read_string(p, "credentials_location", errors)) {
        if (*v == "headers" || *v == "query" || *v == "authorization") {
            fields["credentials_location"] = *v;
        } else {
            errors.add("credentials_location", "is not included in the list");
        }
    }
    for (const char* key :
         {"auth_app_key", "auth_app_id", "auth_user_key", "error_auth_failed", "error_auth_missing",
          "error_headers_auth_failed", "error_headers_auth_missing", "error_no_match",
          "error_headers_no_match", "error_limits_exceeded", "error_headers_limits_exceeded",
          "secret_token", "hostname_rewrite", "api_test_path", "oauth_login_url",
          "oidc_issuer_endpoint", "jwt_claim_with_client_id", "api_backend"}) {
        if (auto v = read_string(p, key, errors)) {
            fields[key] = *v;
        }
    }
    for (const char* key : {"error_status_auth_failed", "error_status_auth_missing",
                            "error_status_no_match", "error_status_limits_exceeded"}) {
        if (auto v = read_int(p, key, errors)) {
            if (*v < 200 || *v > 599) {
                errors.add(key, "must be between 200 and 599");
            } else {
                fields[key] = *v;
            }
        }
    }
    if (auto v = read_string(p, "oidc_issuer_type", errors)) {
        if (*v == "keycloak" || *v == "rest") {
            fields["oidc_issuer_type"] = *v;
        } else {
            errors.add("oidc_issuer_type", "is not included in the list");
        }
    }
    if (auto v = read_string(p, "jwt_claim_with_client_id_type", errors)) {
        if (*v == "plain" || *v == "liquid") {
            fields["jwt_claim_with_client_id_type"] = *v;
        } else {
            errors.add("jwt_claim_with_client_id_type", "is not included in the list");
        }
    }
    for (const char* key : {"auth_user_key", "auth_app_id", "auth_app_key"}) {
        if (fields.contains(key) && fields[key].get<std::string>().empty()) {
            errors.add(key, "can't be blank");
        }
    }
    if (!errors.empty()) {
        return unprocessable(errors);
    }
    for (auto& [key, value] : fields.items()) {
        (*proxy)[key] = value;
    }
    (*proxy)["lock_version"] = proxy->value("lock_version", 0) + 1;
    (*proxy)["updated_at"] = now_iso();
    // A successful proxy update deploys to staging at once (ProxyDeploymentService).
    deploy_to_staging(c.ids[0]);
    return ok("proxy", public_fields(*proxy));
}

Response AdminApi::show_policies(Ctx& c) {
    Json* proxy = service_or_null(c, 0) != nullptr ? store_.proxy_of(c.ids[0]) : nullptr;
    if (proxy == nullptr) {
        return not_found();
    }
    return Response::json(200, Json{{"policies_config", (*proxy)["policies_config"]}});
}

Response AdminApi::update_policies(Ctx& c) {
    Json* proxy = service_or_null(c, 0) != nullptr ? store_.proxy_of(c.ids[0]) : nullptr;
    if (proxy == nullptr) {
        return not_found();
    }
    const Params p(c.params, "proxy");
    const Json* raw = p.get("policies_config");
    if (raw == nullptr) {
        return required_missing("policies_config");
    }
    Errors errors;
    Json chain = *raw;
    if (chain.is_string()) {
        const auto& text = raw->get_ref<const std::string&>();
        if (text.size() > options_.max_policy_chain_bytes) {
            errors.add("policies_config", "is too long (maximum is 2 MB)");
            return unprocessable(errors);
        }
        chain = parse_json(text);
    }
    if (!chain.is_array()) {
        errors.add("policies_config", "must be a JSON array of policies");
        return unprocessable(errors);
    }
    if (chain.dump().size() > options_.max_policy_chain_bytes) {
        errors.add("policies_config", "is too long (maximum is 2 MB)");
        return unprocessable(errors);
    }
    bool has_apicast = false;
    std::size_t index = 0;
    for (const Json& policy : chain) {
        const std::string where = "policy " + std::to_string(index++) + ": ";
        if (!policy.is_object()) {
            errors.add("policies_config", where + "must be an object");
            continue;
        }
        const auto name = policy.find("name");
        const auto version = policy.find("version");
        if (name == policy.end() || !name->is_string() || name->get<std::string>().empty()) {
            errors.add("policies_config", where + "name can't be blank");
        }
        if (version == policy.end() || !version->is_string() ||
            version->get<std::string>().empty()) {
            errors.add("policies_config", where + "version can't be blank");
        } else if (version->get<std::string>() != "builtin" &&
                   !(name != policy.end() && name->is_string() &&
                     registered_policy(name->get<std::string>(), version->get<std::string>()))) {
            // custom policies must be in the tenant's policy registry
            errors.add("policies_config", where + "policy " + name->dump() + " version " +
                                              version->dump() +
                                              " is not in the tenant's policy registry");
        }
        if (policy.contains("configuration") && !policy["configuration"].is_object()) {
            errors.add("policies_config", where + "configuration must be an object");
        }
        if (policy.contains("enabled") && !policy["enabled"].is_boolean()) {
            errors.add("policies_config", where + "enabled must be a boolean");
        }
        if (name != policy.end() && name->is_string() && *name == "apicast") {
            has_apicast = true;
        }
    }
    if (!errors.empty()) {
        return unprocessable(errors);
    }
    Json stored = Json::array();
    for (const Json& policy : chain) {
        Json entry = {{"name", policy["name"]},
                      {"version", policy["version"]},
                      {"configuration", policy.value("configuration", Json::object())}};
        // Stored without "enabled" when it was not sent (and then not in the gateway chain).
        if (policy.contains("enabled")) {
            entry["enabled"] = policy["enabled"];
        }
        stored.push_back(std::move(entry));
    }
    if (!has_apicast) {
        stored.push_back({{"name", "apicast"},
                          {"version", "builtin"},
                          {"configuration", Json::object()},
                          {"enabled", true}});
    }
    (*proxy)["policies_config"] = stored;
    (*proxy)["updated_at"] = now_iso();
    deploy_to_staging(c.ids[0]);
    return Response::json(200, Json{{"policies_config", stored}});
}

Response AdminApi::deploy(Ctx& c) {
    Json* proxy = service_or_null(c, 0) != nullptr ? store_.proxy_of(c.ids[0]) : nullptr;
    if (proxy == nullptr) {
        return not_found();
    }
    deploy_to_staging(c.ids[0]);
    return created("proxy", public_fields(*proxy),
                   c.base + "/admin/api/services/" + std::to_string(c.ids[0]) + "/proxy.json");
}

Response AdminApi::list_configs(Ctx& c) {
    if (service_or_null(c, 0) == nullptr) {
        return not_found();
    }
    const auto env = environment_of(c.strings.at(0));
    if (!env) {
        return Response::json(400, Json{{"error", "invalid environment"}});
    }
    auto configs = store_.proxy_configs.by_key(std::to_string(c.ids[0]));
    std::erase_if(configs, [&](const Json* cfg) { return cfg->value("environment", "") != *env; });
    std::sort(configs.begin(), configs.end(), [](const Json* a, const Json* b) {
        return a->value("version", 0) < b->value("version", 0);
    });
    Json items = Json::array();
    for (const Json* cfg : configs) {
        items.push_back({{"proxy_config", render_config(*cfg)}});
    }
    return Response::json(200, Json{{"proxy_configs", items}});
}

Response AdminApi::latest_config(Ctx& c) {
    if (service_or_null(c, 0) == nullptr) {
        return not_found();
    }
    const auto env = environment_of(c.strings.at(0));
    if (!env) {
        return Response::json(400, Json{{"error", "invalid environment"}});
    }
    const Json* cfg = store_.latest_config(c.ids[0], *env);
    return cfg == nullptr ? not_found() : ok("proxy_config", render_config(*cfg));
}

namespace {

Json* config_version(Store& store, Id service_id, const std::string& env, Id version) {
    for (Json* cfg : store.proxy_configs.by_key(std::to_string(service_id))) {
        if (cfg->value("environment", "") == env && id_field(*cfg, "version") == version) {
            return cfg;
        }
    }
    return nullptr;
}

}  // namespace

Response AdminApi::show_config(Ctx& c) {
    if (service_or_null(c, 0) == nullptr) {
        return not_found();
    }
    const auto env = environment_of(c.strings.at(0));
    if (!env) {
        return Response::json(400, Json{{"error", "invalid environment"}});
    }
    const Json* cfg = config_version(store_, c.ids[0], *env, c.ids[1]);
    return cfg == nullptr ? not_found() : ok("proxy_config", render_config(*cfg));
}

Response AdminApi::promote_config(Ctx& c) {
    if (service_or_null(c, 0) == nullptr) {
        return not_found();
    }
    const auto env = environment_of(c.strings.at(0));
    if (!env) {
        return Response::json(400, Json{{"error", "invalid environment"}});
    }
    const Params p(c.params, "");
    Errors errors;
    const auto to_raw = read_string(p, "to", errors);
    if (!to_raw || to_raw->empty()) {
        return required_missing("to");
    }
    const auto to = environment_of(*to_raw);
    if (!to || *to == *env) {
        errors.add("environment", "can't promote to the same or an unknown environment");
        return unprocessable(errors);
    }
    const Json* source = config_version(store_, c.ids[0], *env, c.ids[1]);
    if (source == nullptr) {
        return not_found();
    }
    // The copy keeps the version number: promoting the same version twice is a 422.
    if (config_version(store_, c.ids[0], *to, c.ids[1]) != nullptr) {
        errors.add("version", "has already been taken");
        return unprocessable(errors);
    }
    Json copy = {{"id", store_.allocate_id()},
                 {"_service_id", c.ids[0]},
                 {"environment", *to},
                 {"version", (*source)["version"]},
                 {"content", (*source)["content"]},
                 {"created_at", now_iso()}};
    const Json& stored = store_.proxy_configs.insert(std::move(copy));
    return created("proxy_config", render_config(stored),
                   c.base + "/admin/api/services/" + std::to_string(c.ids[0]) + "/proxy/configs/" +
                       *to + "/" + std::to_string(c.ids[1]) + ".json");
}

// Every product's configs of one environment (paginated); version=latest keeps the newest per
// product, host= only the products whose endpoints have that host.
Response AdminApi::account_configs(Ctx& c) {
    const auto env = environment_of(c.strings.at(0));
    if (!env) {
        return Response::json(400, Json{{"error", "invalid environment"}});
    }
    const Params p(c.params, "");
    Errors ignored;
    const bool latest = read_string(p, "version", ignored).value_or("") == "latest";
    const std::string host = read_string(p, "host", ignored).value_or("");
    std::vector<const Json*> configs;
    for (const auto& [id, cfg] : store_.proxy_configs.items()) {
        const Id sid = id_field(cfg, "_service_id");
        if (cfg.value("environment", "") != *env || store_.visible_service(sid) == nullptr) {
            continue;
        }
        if (latest && store_.latest_config(sid, *env) != &cfg) {
            continue;
        }
        if (!host.empty()) {
            const Json& hosts = cfg["content"]["proxy"]["hosts"];
            if (std::find(hosts.begin(), hosts.end(), Json(host)) == hosts.end()) {
                continue;
            }
        }
        configs.push_back(&cfg);
    }
    std::vector<Json> items;
    for (const Json* cfg : configs) {
        items.push_back({{"proxy_config", render_config(*cfg)}});
    }
    return paginate(c.params, std::move(items), "proxy_configs");
}

}  // namespace sim
