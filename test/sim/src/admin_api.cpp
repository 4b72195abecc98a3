#include "sim/admin_api.hpp"

#include <chrono>

#include "admin_support.hpp"

namespace sim {

namespace {

bool constant_time_equal(std::string_view a, std::string_view b) {
    if (a.size() != b.size() || a.empty()) {
        return false;
    }
    unsigned char diff = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        diff = static_cast<unsigned char>(
            diff | (static_cast<unsigned char>(a[i]) ^ static_cast<unsigned char>(b[i])));
    }
    return diff == 0;
}

std::vector<std::string> split_path(std::string_view path) {
    std::vector<std::string> parts;
    while (!path.empty()) {
        const auto slash = path.find('/');
        parts.emplace_back(path.substr(0, slash));
        if (slash == std::string_view::npos) {
            break;
        }
        path = path.substr(slash + 1);
    }
    return parts;
}

// Access tokens sent in the query string or the body, or HTTP Basic with the token as user or
// password. Bearer is not accepted (porta has no Bearer support in the admin API).
std::vector<std::string> presented_tokens(const Request& request, const Json& params) {
    std::vector<std::string> tokens;
    for (const char* key : {"access_token", "provider_key"}) {
        const auto it = params.find(key);
        if (it != params.end() && it->is_string()) {
            tokens.push_back(it->get<std::string>());
        }
    }
    const std::string_view auth = request.header("authorization");
    if (auth.size() > 6 && (auth.substr(0, 6) == "Basic " || auth.substr(0, 6) == "basic ")) {
        const std::string decoded = base64_decode(auth.substr(6));
        const auto colon = decoded.find(':');
        if (colon != std::string::npos) {
            tokens.push_back(decoded.substr(0, colon));
            tokens.push_back(decoded.substr(colon + 1));
        }
    }
    return tokens;
}

}  // namespace

AdminApi::AdminApi(Store& store, SimClock& clock, const SimOptions& options, std::mt19937_64& rng)
    : store_(store), clock_(clock), options_(options), rng_(rng) {
    const auto add = [this](std::string method, std::string pattern, Handler handler) {
        Route r;
        r.method = std::move(method);
        r.segments = split_path(pattern);
        std::string name = pattern;
        for (std::size_t pos = 0; (pos = name.find(":n", pos)) != std::string::npos;) {
            name.replace(pos, 2, "{id}");
        }
        for (std::size_t pos = 0; (pos = name.find(":s", pos)) != std::string::npos;) {
            name.replace(pos, 2, "{name}");
        }
        r.name = r.method + " /admin/api/" + name + ".json";
        r.handler = std::move(handler);
        routes_.push_back(std::move(r));
    };
    const std::string svc = "service";
    const std::string be = "backend_api";
    using A = AdminApi;
    // products
    add("GET", "services", &A::list_services);
    add("POST", "services", &A::create_service);
    add("GET", "services/:n", &A::show_service);
    add("PUT|PATCH", "services/:n", &A::update_service);
    add("DELETE", "services/:n", &A::delete_service);
    // backends
    add("GET", "backend_apis", &A::list_backends);
    add("POST", "backend_apis", &A::create_backend);
    add("GET", "backend_apis/:n", &A::show_backend);
    add("PUT|PATCH", "backend_apis/:n", &A::update_backend);
    add("DELETE", "backend_apis/:n", &A::delete_backend);
    // backend usages
    add("GET", "services/:n/backend_usages", &A::list_usages);
    add("POST", "services/:n/backend_usages", &A::create_usage);
    add("GET", "services/:n/backend_usages/:n", &A::show_usage);
    add("PUT|PATCH", "services/:n/backend_usages/:n", &A::update_usage);
    add("DELETE", "services/:n/backend_usages/:n", &A::delete_usage);
    // metrics, methods, mapping rules: product and backend flavours
    for (const auto& [prefix, owner] : {std::pair{std::string("services/:n"), svc},
                                        std::pair{std::string("backend_apis/:n"), be}}) {
        const std::string o = owner;
        add("GET", prefix + "/metrics", [o](A& a, Ctx& c) { return a.list_metrics(c, o); });
        add("POST", prefix + "/metrics", [o](A& a, Ctx& c) { return a.create_metric(c, o); });
        add("GET", prefix + "/metrics/:n", [o](A& a, Ctx& c) { return a.show_metric(c, o); });
        add("PUT|PATCH", prefix + "/metrics/:n",
            [o](A& a, Ctx& c) { return a.update_metric(c, o); });
        add("DELETE", prefix + "/metrics/:n", [o](A& a, Ctx& c) { return a.delete_metric(c, o); });
        add("GET", prefix + "/metrics/:n/methods",
            [o](A& a, Ctx& c) { return a.list_methods(c, o); });
        add("POST", prefix + "/metrics/:n/methods",
            [o](A& a, Ctx& c) { return a.create_method(c, o); });
        add("GET", prefix + "/metrics/:n/methods/:n",
            [o](A& a, Ctx& c) { return a.show_method(c, o); });
        add("PUT|PATCH", prefix + "/metrics/:n/methods/:n",
            [o](A& a, Ctx& c) { return a.update_method(c, o); });
        add("DELETE", prefix + "/metrics/:n/methods/:n",
            [o](A& a, Ctx& c) { return a.delete_method(c, o); });
        const std::string rules =
            owner == svc ? prefix + "/proxy/mapping_rules" : prefix + "/mapping_rules";
        add("GET", rules, [o](A& a, Ctx& c) { return a.list_rules(c, o); });
        add("POST", rules, [o](A& a, Ctx& c) { return a.create_rule(c, o); });
        add("GET", rules + "/:n", [o](A& a, Ctx& c) { return a.show_rule(c, o); });
        add("PUT|PATCH", rules + "/:n", [o](A& a, Ctx& c) { return a.update_rule(c, o); });
        add("DELETE", rules + "/:n", [o](A& a, Ctx& c) { return a.delete_rule(c, o); });
    }
    // application plans, limits, pricing rules
    add("GET", "application_plans", &A::list_all_plans);
    add("GET", "services/:n/application_plans", &A::list_plans);
    add("POST", "services/:n/application_plans", &A::create_plan);
    add("GET", "services/:n/application_plans/:n", &A::show_plan);
    add("PUT|PATCH", "services/:n/application_plans/:n", &A::update_plan);
    add("DELETE", "services/:n/application_plans/:n", &A::delete_plan);
    add("PUT", "services/:n/application_plans/:n/default", &A::default_plan);
    add("GET", "application_plans/:n/limits", &A::list_plan_limits);
    add("GET", "application_plans/:n/metrics/:n/limits", &A::list_metric_limits);
    add("POST", "application_plans/:n/metrics/:n/limits", &A::create_limit);
    add("GET", "application_plans/:n/metrics/:n/limits/:n", &A::show_limit);
    add("PUT|PATCH", "application_plans/:n/metrics/:n/limits/:n", &A::update_limit);
    add("DELETE", "application_plans/:n/metrics/:n/limits/:n", &A::delete_limit);
    add("GET", "application_plans/:n/pricing_rules", &A::list_plan_pricing);
    add("GET", "application_plans/:n/metrics/:n/pricing_rules", &A::list_metric_pricing);
    add("POST", "application_plans/:n/metrics/:n/pricing_rules", &A::create_pricing);
    add("DELETE", "application_plans/:n/metrics/:n/pricing_rules/:n", &A::delete_pricing);
    // proxy, policies, deploy, configs
    add("GET", "services/:n/proxy", &A::show_proxy);
    add("PUT|PATCH", "services/:n/proxy", &A::update_proxy);
    add("GET", "registry/policies", &A::list_registry);
    add("POST", "registry/policies", &A::create_registry_policy);
    add("GET", "registry/policies/:n", &A::show_registry_policy);
    add("PUT|PATCH", "registry/policies/:n", &A::update_registry_policy);
    add("DELETE", "registry/policies/:n", &A::delete_registry_policy);
    add("GET", "active_docs", &A::list_active_docs);
    add("POST", "active_docs", &A::create_active_doc);
    add("GET", "active_docs/:n", &A::show_active_doc);
    add("PUT|PATCH", "active_docs/:n", &A::update_active_doc);
    add("DELETE", "active_docs/:n", &A::delete_active_doc);
    add("GET", "services/:n/proxy/oidc_configuration", &A::show_oidc);
    add("PUT|PATCH", "services/:n/proxy/oidc_configuration", &A::update_oidc);
    add("GET", "services/:n/proxy/policies", &A::show_policies);
    add("PUT", "services/:n/proxy/policies", &A::update_policies);
    add("POST", "services/:n/proxy/deploy", &A::deploy);
    add("GET", "services/:n/proxy/configs/:s", &A::list_configs);
    add("GET", "services/:n/proxy/configs/:s/latest", &A::latest_config);
    add("GET", "services/:n/proxy/configs/:s/:n", &A::show_config);
    add("POST", "services/:n/proxy/configs/:s/:n/promote", &A::promote_config);
    add("GET", "account/proxy_configs/:s", &A::account_configs);
    // accounts, users, applications
    add("POST", "signup", &A::signup);
    add("GET", "accounts", &A::list_accounts);
    add("GET", "accounts/find", &A::find_account);
    add("GET", "accounts/:n", &A::show_account);
    add("PUT|PATCH", "accounts/:n", &A::update_account);
    add("DELETE", "accounts/:n", &A::delete_account);
    add("GET", "accounts/:n/users", &A::list_users);
    add("GET", "accounts/:n/users/:n", &A::show_user);
    add("POST", "accounts/:n/users", &A::create_user);
    add("PUT|PATCH", "accounts/:n/users/:n", &A::update_user);
    add("DELETE", "accounts/:n/users/:n", &A::delete_user);
    for (const char* event : {"activate", "admin", "member", "suspend", "unsuspend"}) {
        const std::string e = event;
        add("PUT", "accounts/:n/users/:n/" + e, [e](A& a, Ctx& c) { return a.user_event(c, e); });
    }
    add("GET", "accounts/:n/applications", &A::list_account_applications);
    add("POST", "accounts/:n/applications", &A::create_application);
    add("GET", "accounts/:n/applications/:n", &A::show_application);
    add("PUT|PATCH", "accounts/:n/applications/:n", &A::update_application);
    add("DELETE", "accounts/:n/applications/:n", &A::delete_application);
    add("PUT", "accounts/:n/applications/:n/suspend",
        [](A& a, Ctx& c) { return a.application_state(c, "suspend"); });
    add("PUT", "accounts/:n/applications/:n/resume",
        [](A& a, Ctx& c) { return a.application_state(c, "resume"); });
    add("PUT", "accounts/:n/applications/:n/accept",
        [](A& a, Ctx& c) { return a.application_state(c, "accept"); });
    add("PUT", "accounts/:n/applications/:n/change_plan", &A::change_plan);
    add("GET", "accounts/:n/applications/:n/keys", &A::list_keys);
    add("POST", "accounts/:n/applications/:n/keys", &A::create_key);
    add("DELETE", "accounts/:n/applications/:n/keys/:s", &A::delete_key);
    add("GET", "applications", &A::list_applications);
    add("GET", "applications/find", &A::find_application);
    add("GET", "objects/status", &A::object_status);
    for (const char* event : {"approve", "reject", "make_pending"}) {
        const std::string e = event;
        add("PUT", "accounts/:n/" + e, [e](A& a, Ctx& c) { return a.account_event(c, e); });
    }
    add("GET", "webhooks", &A::show_webhooks);
    add("PUT", "webhooks", &A::update_webhooks);
}

AdminApi::Result AdminApi::handle(const Request& request) {
    Result result;
    result.write = request.method != "GET" && request.method != "HEAD";
    result.route = request.method + " (unknown route)";
    store_.purge(now_epoch());

    std::string_view path = request.path();
    constexpr std::string_view kPrefix = "/admin/api/";
    if (!path.starts_with(kPrefix)) {
        result.response = not_found();
        return result;
    }
    path.remove_prefix(kPrefix.size());
    auto segments = split_path(path);
    std::string& last = segments.back();
    if (last.ends_with(".json")) {
        last.resize(last.size() - 5);
    } else {
        // porta defaults the admin API to XML; the simulator only speaks JSON.
        result.response = Response::text(406, "threescale-sim only serves .json paths");
        return result;
    }

    const Route* route = nullptr;
    std::vector<Id> ids;
    std::vector<std::string> strings;
    bool path_matched = false;
    for (const Route& r : routes_) {
        if (r.segments.size() != segments.size()) {
            continue;
        }
        bool match = true;
        std::vector<Id> cand_ids;
        std::vector<std::string> cand_strings;
        for (std::size_t i = 0; i < segments.size() && match; ++i) {
            const std::string& want = r.segments[i];
            if (want == ":n") {
                const auto id = parse_id(segments[i]);
                match = id.has_value();
                if (match) {
                    cand_ids.push_back(*id);
                }
            } else if (want == ":s") {
                auto decoded = url_decode(segments[i]);
                match = decoded.has_value() && !decoded->empty();
                if (match) {
                    cand_strings.push_back(*decoded);
                }
            } else {
                match = want == segments[i];
            }
        }
        if (!match) {
            continue;
        }
        path_matched = true;
        const bool method_ok =
            r.method == request.method ||
            (r.method == "PUT|PATCH" && (request.method == "PUT" || request.method == "PATCH"));
        if (method_ok) {
            route = &r;
            ids = std::move(cand_ids);
            strings = std::move(cand_strings);
            break;
        }
    }
    if (route == nullptr) {
        result.response = path_matched ? Response::text(405, "Method Not Allowed") : not_found();
        return result;
    }
    result.route = route->name;

    auto params = parse_request_params(request);
    if (!params) {
        result.response = Response::text(400, "Bad Request: " + params.error());
        return result;
    }

    // Authentication: 403, never 401.
    bool rw = false;
    bool ro = false;
    for (const auto& token : presented_tokens(request, *params)) {
        rw = rw || constant_time_equal(token, options_.token);
        ro = ro || constant_time_equal(token, options_.read_only_token);
    }
    if (!rw && !ro) {
        result.response = Response::json(403, Json{{"error", "Access denied"}});
        return result;
    }
    if (!rw && result.write) {
        result.response = Response::json(
            403, Json{{"error", "Your access token does not have the correct permissions"}});
        return result;
    }

    std::string host(request.header("host"));
    Ctx ctx{request, std::move(*params), std::move(ids), std::move(strings),
            "http://" + (host.empty() ? std::string("localhost") : host)};
    const auto before = result.write ? webhook_subject(*route, ctx) : std::nullopt;
    result.response = route->handler(*this, ctx);
    if (before) {
        emit_webhook(*route, ctx, *before, result.response);
    }
    return result;
}

std::string AdminApi::now_iso() const {
    return format_iso8601(clock_.now());
}

std::int64_t AdminApi::now_epoch() const {
    return clock_.now().time_since_epoch().count();
}

std::string AdminApi::random_hex(std::size_t chars) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(chars);
    for (std::size_t i = 0; i < chars; ++i) {
        out.push_back(kHex[rng_() % 16]);
    }
    return out;
}

Json* AdminApi::service_or_null(Ctx& c, std::size_t index) {
    return index < c.ids.size() ? store_.visible_service(c.ids[index]) : nullptr;
}

Json* AdminApi::owner_or_null(Ctx& c, const std::string& owner_type) {
    if (c.ids.empty()) {
        return nullptr;
    }
    return owner_type == "service" ? store_.visible_service(c.ids[0])
                                   : store_.visible_backend(c.ids[0]);
}

Json* AdminApi::plan_or_null(Ctx& c, std::size_t index) {
    if (index >= c.ids.size()) {
        return nullptr;
    }
    Json* plan = store_.plans.find(c.ids[index]);
    if (plan == nullptr || store_.visible_service(id_field(*plan, "_service_id")) == nullptr) {
        return nullptr;
    }
    return plan;
}

Json& AdminApi::create_metric_object(const std::string& owner_type, Id owner_id, Json fields) {
    fields["id"] = store_.allocate_id();
    fields["_owner_type"] = owner_type;
    fields["_owner_id"] = owner_id;
    fields["created_at"] = now_iso();
    fields["updated_at"] = now_iso();
    return store_.metrics.insert(std::move(fields));
}

void AdminApi::insert_rule_at(Json& rule,
                              const std::string& owner_type,
                              Id owner_id,
                              std::optional<std::int64_t> position) {
    // acts_as_list: new rules go to the bottom; an explicit position shifts the others down.
    auto rules = store_.rules_of(owner_type, owner_id);
    std::erase_if(rules, [&](const Json* r) { return id_field(*r, "id") == id_field(rule, "id"); });
    std::int64_t pos = static_cast<std::int64_t>(rules.size()) + 1;
    if (position && *position >= 1 && *position <= pos) {
        pos = *position;
    }
    std::int64_t next = 1;
    for (Json* r : rules) {
        if (next == pos) {
            ++next;
        }
        (*r)["position"] = next++;
    }
    rule["position"] = pos;
}

Json& AdminApi::create_service_object(Json fields) {
    const Id id = store_.allocate_id();
    const std::string system_name = fields["system_name"];
    Json service = {
        {"id", id},
        {"name", ""},
        {"state", "incomplete"},
        {"system_name", system_name},
        {"backend_version", "1"},
        {"deployment_option", "hosted"},
        {"support_email", "admin@" + options_.wildcard_domain},
        {"description", nullptr},
        {"intentions_required", false},
        {"buyers_manage_apps", true},
        {"buyers_manage_keys", true},
        {"referrer_filters_required", false},
        {"custom_keys_enabled", true},
        {"buyer_key_regenerate_enabled", true},
        {"mandatory_app_key", true},
        {"buyer_can_select_plan", false},
        {"buyer_plan_change_permission", "request"},
        {"annotations", Json::object()},
        {"created_at", now_iso()},
        {"updated_at", now_iso()},
    };
    for (auto& [key, value] : fields.items()) {
        service[key] = value;
    }
    Json& stored = store_.services.insert(std::move(service));

    // What porta creates with every product: Hits, a proxy with a random secret token and
    // generated endpoints, and the mapping rule GET / -> hits.
    Json& hits = create_metric_object("service", id,
                                      {{"name", "hits"},
                                       {"system_name", "hits"},
                                       {"friendly_name", "Hits"},
                                       {"unit", "hit"},
                                       {"description", "Number of API hits"}});
    const std::string prod = "https://" + system_name + "-3scale-apicast-production." +
                             options_.wildcard_domain + ":443";
    const std::string stage =
        "https://" + system_name + "-3scale-apicast-staging." + options_.wildcard_domain + ":443";
    Json proxy = {
        {"id", store_.allocate_id()},
        {"service_id", id},
        {"endpoint", prod},
        {"sandbox_endpoint", stage},
        {"api_backend", nullptr},
        {"credentials_location", "query"},
        {"auth_app_key", "app_key"},
        {"auth_app_id", "app_id"},
        {"auth_user_key", "user_key"},
        {"error_auth_failed", "Authentication failed"},
        {"error_auth_missing", "Authentication parameters missing"},
        {"error_status_auth_failed", 403},
        {"error_headers_auth_failed", "text/plain; charset=us-ascii"},
        {"error_status_auth_missing", 403},
        {"error_headers_auth_missing", "text/plain; charset=us-ascii"},
        {"error_no_match", "No Mapping Rule matched"},
        {"error_status_no_match", 404},
        {"error_headers_no_match", "text/plain; charset=us-ascii"},
        {"error_limits_exceeded", "Usage limit exceeded"},
        {"error_status_limits_exceeded", 429},
        {"error_headers_limits_exceeded", "text/plain; charset=us-ascii"},
        {"secret_token", "Shared_secret_sent_from_proxy_to_API_backend_" + random_hex(16)},
        {"hostname_rewrite", ""},
        {"oauth_login_url", nullptr},
        {"api_test_path", "/"},
        {"api_test_success", nullptr},
        {"policies_config", Json::array({{{"name", "apicast"},
                                          {"version", "builtin"},
                                          {"configuration", Json::object()},
                                          {"enabled", true}}})},
        {"deployment_option", stored["deployment_option"]},
        {"lock_version", 0},
        {"deployed_at", nullptr},
        {"created_at", now_iso()},
        {"updated_at", now_iso()},
    };
    store_.proxies.insert(std::move(proxy));
    Json rule = {{"id", store_.allocate_id()},
                 {"_owner_type", "service"},
                 {"_owner_id", id},
                 {"metric_id", hits["id"]},
                 {"pattern", "/"},
                 {"http_method", "GET"},
                 {"delta", 1},
                 {"last", false},
                 {"redirect_url", nullptr},
                 {"created_at", now_iso()},
                 {"updated_at", now_iso()}};
    insert_rule_at(rule, "service", id, std::nullopt);
    store_.mapping_rules.insert(std::move(rule));
    return stored;
}

Json& AdminApi::create_backend_object(Json fields) {
    const Id id = store_.allocate_id();
    Json backend = {{"id", id},
                    {"name", ""},
                    {"system_name", ""},
                    {"description", nullptr},
                    {"private_endpoint", ""},
                    {"annotations", Json::object()},
                    {"account_id", store_.tenant_id},
                    {"created_at", now_iso()},
                    {"updated_at", now_iso()}};
    for (auto& [key, value] : fields.items()) {
        backend[key] = value;
    }
    Json& stored = store_.backend_apis.insert(std::move(backend));
    create_metric_object("backend_api", id,
                         {{"system_name", "hits"},
                          {"friendly_name", "Hits"},
                          {"unit", "hit"},
                          {"description", "Number of API hits"}});
    return stored;
}

void AdminApi::seed_default_objects() {
    Json& service =
        create_service_object({{"name", "API"}, {"system_name", "api"}, {"description", "API"}});
    const Id svc = service["id"];
    Json& backend =
        create_backend_object({{"name", "API Backend"},
                               {"system_name", "api_backend"},
                               {"description", "API Backend"},
                               {"private_endpoint", "https://echo-api.3scale.net:443"}});
    store_.backend_usages.insert({{"id", store_.allocate_id()},
                                  {"path", "/"},
                                  {"service_id", svc},
                                  {"backend_id", backend["id"]}});
    Json plan = {{"id", store_.allocate_id()}, {"_service_id", svc},     {"name", "Basic"},
                 {"system_name", "basic"},     {"state", "published"},   {"setup_fee", 0.0},
                 {"cost_per_month", 0.0},      {"trial_period_days", 0}, {"cancellation_period", 0},
                 {"approval_required", false}, {"default", true},        {"custom", false},
                 {"created_at", now_iso()},    {"updated_at", now_iso()}};
    const Id plan_id = plan["id"];
    store_.plans.insert(std::move(plan));
    const Id account_id = store_.allocate_id();
    store_.accounts.insert({{"id", account_id},
                            {"state", "approved"},
                            {"org_name", "Developer"},
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
                         {"username", "john"},
                         {"email", "john@example.net"},
                         {"created_at", now_iso()},
                         {"updated_at", now_iso()}});
    store_.applications.insert({{"id", store_.allocate_id()},
                                {"state", "live"},
                                {"enabled", true},
                                {"service_id", svc},
                                {"plan_id", plan_id},
                                {"account_id", account_id},
                                {"name", "Developer's App"},
                                {"description", "Default application"},
                                {"user_key", random_hex(32)},
                                {"provider_verification_key", random_hex(32)},
                                {"_keys", Json::array()},
                                {"created_at", now_iso()},
                                {"updated_at", now_iso()}});
    deploy_to_staging(svc);
}

}  // namespace sim
