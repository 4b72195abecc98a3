#include "sync/state_reader.hpp"

#include <algorithm>

#include "config/normalize.hpp"
#include "config/yaml_reader.hpp"
#include "parallel.hpp"

namespace syncer {

namespace {

std::string str(const Json& j, const char* key) {
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) {
        return {};
    }
    if (it->is_string()) {
        return it->get<std::string>();
    }
    return it->dump();
}

Id id_of(const Json& j, const char* key = "id") {
    const auto it = j.find(key);
    return it != j.end() && it->is_number_integer() ? it->get<Id>() : 0;
}

// porta renders DECIMAL as strings ("15.45") or numbers depending on the field.
std::string decimal(const Json& j, const char* key) {
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) {
        return "0.0";
    }
    std::string text = it->is_string() ? it->get<std::string>() : it->dump();
    if (it->is_number_float()) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.4f", it->get<double>());
        text = buf;
    }
    return config::normalize_decimal(text).value_or(text);
}

// Backend metric system names come back as "name.<backend_id>".
std::string strip_backend_suffix(const std::string& name, Id backend_id) {
    const std::string suffix = "." + std::to_string(backend_id);
    return name.ends_with(suffix) ? name.substr(0, name.size() - suffix.size()) : name;
}

void read_metrics_into(const std::vector<Json>& items,
                       Id backend_id,
                       std::map<std::string, config::Metric>& metrics,
                       std::map<std::string, config::Metric>& methods,
                       std::map<std::string, Id>& ids,
                       std::map<Id, std::string>& names) {
    for (const Json& m : items) {
        std::string name = str(m, "system_name");
        if (backend_id != 0) {
            name = strip_backend_suffix(name, backend_id);
        }
        config::Metric metric;
        metric.friendly_name = str(m, "friendly_name");
        metric.description = str(m, "description");
        const bool method = m.contains("parent_id") && !m["parent_id"].is_null();
        if (!method) {
            metric.unit = str(m, "unit");
        }
        (method ? methods : metrics)[name] = std::move(metric);
        ids[name] = id_of(m);
        names[id_of(m)] = name;
    }
}

// Rules sorted by position (older porta returns backend rules in id order).
void read_rules_into(std::vector<Json> items,
                     const std::map<Id, std::string>& metric_names,
                     std::vector<config::MappingRule>& rules,
                     std::vector<Id>& ids) {
    std::stable_sort(items.begin(), items.end(), [](const Json& a, const Json& b) {
        return a.value("position", 0) < b.value("position", 0);
    });
    for (const Json& r : items) {
        config::MappingRule rule;
        rule.http_method = str(r, "http_method");
        rule.pattern = str(r, "pattern");
        const auto it = metric_names.find(id_of(r, "metric_id"));
        rule.metric =
            it == metric_names.end() ? "#" + std::to_string(id_of(r, "metric_id")) : it->second;
        rule.delta = r.value("delta", std::int64_t{1});
        rule.last = r.value("last", false);
        rules.push_back(std::move(rule));
        ids.push_back(id_of(r));
    }
}

const std::vector<const char*> kProxyFields = {"endpoint",
                                               "sandbox_endpoint",
                                               "auth_user_key",
                                               "auth_app_id",
                                               "auth_app_key",
                                               "credentials_location",
                                               "hostname_rewrite",
                                               "secret_token",
                                               "error_status_auth_failed",
                                               "error_headers_auth_failed",
                                               "error_auth_failed",
                                               "error_status_auth_missing",
                                               "error_headers_auth_missing",
                                               "error_auth_missing",
                                               "error_status_no_match",
                                               "error_headers_no_match",
                                               "error_no_match",
                                               "error_status_limits_exceeded",
                                               "error_headers_limits_exceeded",
                                               "error_limits_exceeded",
                                               "oidc_issuer_type",
                                               "oidc_issuer_endpoint",
                                               "jwt_claim_with_client_id",
                                               "jwt_claim_with_client_id_type"};

}  // namespace

ApiResult<BackendSnapshot> StateReader::read_backend(const Json& backend) {
    const Id id = id_of(backend);
    BackendSnapshot out;
    out.name = str(backend, "system_name");
    config::Backend& model = out.model;
    BackendIds& ids = out.ids;
    ids.id = id;
    model.name = str(backend, "name");
    model.description = str(backend, "description");
    const std::string endpoint = str(backend, "private_endpoint");
    model.private_endpoint = config::normalize_url(endpoint).value_or(endpoint);
    const std::string base = "/admin/api/backend_apis/" + std::to_string(id);
    auto metrics = client_.list(base + "/metrics.json", "metrics", true);
    if (!metrics) {
        return std::unexpected(metrics.error());
    }
    std::map<Id, std::string> names;
    read_metrics_into(*metrics, id, model.metrics, model.methods, ids.metrics, names);
    auto rules = client_.list(base + "/mapping_rules.json", "mapping_rules", true);
    if (!rules) {
        return std::unexpected(rules.error());
    }
    read_rules_into(std::move(*rules), names, model.mapping_rules, ids.rules);
    return out;
}

ApiResult<StateReader::ConfigVersions> StateReader::read_config_versions() {
    ConfigVersions out;
    for (const char* env : {"sandbox", "production"}) {
        auto configs =
            client_.list(std::string("/admin/api/account/proxy_configs/") + env + ".json",
                         "proxy_configs", true, {{"version", "latest"}});
        if (!configs) {
            return std::unexpected(configs.error());
        }
        for (const Json& cfg : *configs) {
            const Id service = cfg.contains("content") ? id_of(cfg["content"], "id") : 0;
            auto& status = out[service];
            (std::string(env) == "sandbox" ? status.staging : status.production) =
                cfg.value("version", std::int64_t{0});
        }
    }
    return out;
}

ApiResult<ProductSnapshot> StateReader::read_product(
    const Json& service,
    const std::map<std::string, BackendIds>& backends,
    const ConfigVersions* versions) {
    const Id id = id_of(service);
    const std::string base = "/admin/api/services/" + std::to_string(id);
    ProductSnapshot out;
    out.name = str(service, "system_name");
    config::Product& model = out.model;
    ProductIds& ids = out.ids;
    ids.id = id;
    model.name = str(service, "name");
    model.description = str(service, "description");
    model.deployment_option = str(service, "deployment_option");
    model.backend_version = str(service, "backend_version");

    auto metrics = client_.list(base + "/metrics.json", "metrics", false);
    if (!metrics) {
        return std::unexpected(metrics.error());
    }
    std::map<Id, std::string> names;
    read_metrics_into(*metrics, 0, model.metrics, model.methods, ids.metrics, names);
    auto rules = client_.list(base + "/proxy/mapping_rules.json", "mapping_rules", false);
    if (!rules) {
        return std::unexpected(rules.error());
    }
    read_rules_into(std::move(*rules), names, model.mapping_rules, ids.rules);

    // Backend usages: bare array; backend ids -> system names (and their metric ids, for limits).
    auto usages = client_.list(base + "/backend_usages.json", "", true);
    if (!usages) {
        return std::unexpected(usages.error());
    }
    std::map<Id, config::MetricRef> metric_refs;
    for (const auto& [name, mid] : ids.metrics) {
        metric_refs[mid] = {name, ""};
    }
    {
        for (const Json& u : *usages) {
            const Id backend_id = id_of(u, "backend_id");
            std::string backend_name = "#" + std::to_string(backend_id);
            for (const auto& [bname, bids] : backends) {
                if (bids.id == backend_id) {
                    backend_name = bname;
                    for (const auto& [mname, mid] : bids.metrics) {
                        metric_refs[mid] = {mname, bname};
                    }
                }
            }
            config::BackendUsage usage;
            usage.path = str(u, "path");
            model.backend_usages[backend_name] = usage;
            ids.usages[backend_name] = id_of(u);
        }
    }
    const auto ref_of = [&](Id metric_id) {
        const auto it = metric_refs.find(metric_id);
        return it != metric_refs.end() ? it->second
                                       : config::MetricRef{"#" + std::to_string(metric_id), ""};
    };

    auto plans = client_.list(base + "/application_plans.json", "plans", false);
    if (!plans) {
        return std::unexpected(plans.error());
    }
    // Plans are read in parallel (limits and pricing rules: two calls each); the client caps
    // the requests in flight.
    std::vector<const Json*> product_plans;
    for (const Json& p : *plans) {
        if (!p.value("custom", false)) {  // per-application customizations are not the product's
            product_plans.push_back(&p);
        }
    }
    struct PlanRead {
        std::string name;
        Id id = 0;
        bool is_default = false;
        config::Plan plan;
        std::vector<std::pair<LimitKey, Id>> limit_ids;
        std::vector<std::pair<PricingKey, Id>> pricing_ids;
    };
    std::vector<PlanRead> reads(product_plans.size());
    auto plans_done = parallel_for<
        ApiError>(product_plans.size(), 4, [&](std::size_t k) -> std::expected<void, ApiError> {
        const Json& p = *product_plans[k];
        PlanRead& out_plan = reads[k];
        out_plan.name = str(p, "system_name");
        out_plan.id = id_of(p);
        out_plan.is_default = p.value("default", false);
        config::Plan& plan = out_plan.plan;
        plan.name = str(p, "name");
        plan.approval_required = p.value("approval_required", false);
        plan.trial_period_days = p.value("trial_period_days", std::int64_t{0});
        plan.setup_fee = decimal(p, "setup_fee");
        plan.cost_per_month = decimal(p, "cost_per_month");
        plan.published = str(p, "state") == "published";
        const std::string plan_base = "/admin/api/application_plans/" + std::to_string(out_plan.id);
        auto limits = client_.list(plan_base + "/limits.json", "limits", true);
        if (!limits) {
            return std::unexpected(limits.error());
        }
        for (const Json& l : *limits) {
            config::Limit limit;
            limit.metric = ref_of(id_of(l, "metric_id"));
            limit.period =
                ratelimit::parse_period(str(l, "period")).value_or(ratelimit::Period::kEternity);
            limit.value = l.value("value", std::int64_t{0});
            out_plan.limit_ids.push_back({{out_plan.name, limit.metric, limit.period}, id_of(l)});
            plan.limits.push_back(std::move(limit));
        }
        auto pricing = client_.list(plan_base + "/pricing_rules.json", "pricing_rules", false);
        if (!pricing) {
            return std::unexpected(pricing.error());
        }
        for (const Json& r : *pricing) {
            config::PricingRule rule;
            rule.metric = ref_of(id_of(r, "metric_id"));
            rule.min = r.value("min", std::int64_t{1});
            if (r.contains("max") && r["max"].is_number_integer()) {
                rule.max = r["max"].get<std::int64_t>();
            }
            rule.cost_per_unit = decimal(r, "cost_per_unit");
            out_plan.pricing_ids.push_back(
                {{out_plan.name, rule.metric, rule.min, rule.max}, id_of(r)});
            plan.pricing_rules.push_back(std::move(rule));
        }
        return {};
    });
    if (!plans_done) {
        return std::unexpected(plans_done.error());
    }
    for (auto& r : reads) {
        ids.limits.insert(r.limit_ids.begin(), r.limit_ids.end());
        ids.pricing.insert(r.pricing_ids.begin(), r.pricing_ids.end());
        ids.plans[r.name] = r.id;
        if (r.is_default) {
            ids.default_plan = r.name;
        }
        model.plans[r.name] = std::move(r.plan);
    }

    auto proxy = client_.get(base + "/proxy.json");
    if (!proxy) {
        return std::unexpected(proxy.error());
    }
    const Json p = unwrap(*proxy);
    // the proxy carries the policy chain (as /proxy/policies.json shows it)
    Json chain = p.value("policies_config", Json::array());
    if (chain.is_string()) {
        chain = Json::parse(chain.get<std::string>(), nullptr, false);
    }
    if (!chain.is_array()) {
        auto policies = client_.get(base + "/proxy/policies.json");
        if (!policies) {
            return std::unexpected(policies.error());
        }
        chain = policies->value("policies_config", Json::array());
    }
    for (const Json& entry : chain) {
        config::Policy policy;
        policy.name = str(entry, "name");
        policy.version = str(entry, "version");
        policy.enabled = entry.value("enabled", false);  // stored without it: not in the chain
        policy.configuration = entry.value("configuration", Json::object()).dump();
        model.policies.push_back(std::move(policy));
    }
    for (const char* field : kProxyFields) {
        if (!p.contains(field) || p[field].is_null()) {
            continue;
        }
        std::string value = str(p, field);
        if (std::string_view(field).ends_with("endpoint") &&
            std::string(field) != "oidc_issuer_endpoint") {
            value = config::normalize_url(value).value_or(value);
        }
        model.proxy.fields[field] = value;
    }
    if (model.backend_version == "oidc") {
        auto oidc = client_.get(base + "/proxy/oidc_configuration.json");
        if (!oidc) {
            return std::unexpected(oidc.error());
        }
        const Json flows = unwrap(*oidc);
        for (const char* flow : {"standard_flow_enabled", "implicit_flow_enabled",
                                 "service_accounts_enabled", "direct_access_grants_enabled"}) {
            model.oidc_flows[flow] = flows.value(flow, false);
        }
    }
    ProxyConfigStatus& status = out.configs;
    if (versions != nullptr) {
        if (const auto it = versions->find(id); it != versions->end()) {
            status = it->second;
        }
        return out;
    }
    for (const char* env : {"sandbox", "production"}) {
        auto latest = client_.get(base + "/proxy/configs/" + env + "/latest.json");
        if (!latest) {
            if (latest.error().kind != ApiError::Kind::kNotFound) {
                return std::unexpected(latest.error());
            }
            continue;  // none yet
        }
        const Json cfg = unwrap(*latest);
        (std::string(env) == "sandbox" ? status.staging : status.production) =
            cfg.value("version", std::int64_t{0});
    }
    return out;
}

void StateReader::insert(InstanceState& state, BackendSnapshot snapshot) {
    state.model.backends[snapshot.name] = std::move(snapshot.model);
    state.backends[snapshot.name] = std::move(snapshot.ids);
}

void StateReader::insert(InstanceState& state, ProductSnapshot snapshot) {
    state.model.products[snapshot.name] = std::move(snapshot.model);
    state.products[snapshot.name] = std::move(snapshot.ids);
    state.configs[snapshot.name] = snapshot.configs;
}

ApiResult<void> StateReader::read_account(InstanceState& state, const Json& account) {
    return read_account_into(state.products, state, account);
}

ApiResult<void> StateReader::read_account_into(const std::map<std::string, ProductIds>& products,
                                               InstanceState& state,
                                               const Json& account) {
    const Id id = id_of(account);
    const std::string base = "/admin/api/accounts/" + std::to_string(id);
    auto users = client_.list(base + "/users.json", "users", false);
    if (!users) {
        return std::unexpected(users.error());
    }
    config::Account model;
    model.org_name = str(account, "org_name");
    model.monthly_billing_enabled = account.value("monthly_billing_enabled", true);
    model.monthly_charging_enabled = account.value("monthly_charging_enabled", true);
    model.state = str(account, "state");
    AccountIds ids;
    ids.id = id;
    std::string admin;
    for (const Json& u : *users) {
        config::User user;
        user.email = str(u, "email");
        user.role = str(u, "role");
        user.suspended = str(u, "state") == "suspended";
        user.pending = str(u, "state") == "pending";
        const std::string username = str(u, "username");
        if (user.role == "admin" && (admin.empty() || username < admin)) {
            admin = username;
        }
        ids.users[username] = id_of(u);
        model.users[username] = std::move(user);
    }
    const std::string key = admin.empty() ? "#" + std::to_string(id) : admin;
    auto apps = client_.list(base + "/applications.json", "applications", false);
    if (!apps) {
        return std::unexpected(apps.error());
    }
    for (const Json& a : *apps) {
        const Id service = id_of(a, "service_id");
        std::string product;
        std::string plan;
        for (const auto& [name, pids] : products) {
            if (pids.id != service) {
                continue;
            }
            product = name;
            for (const auto& [plan_name, plan_id] : pids.plans) {
                if (plan_id == id_of(a, "plan_id")) {
                    plan = plan_name;
                }
            }
        }
        if (product.empty()) {
            continue;  // a product being deleted
        }
        config::Application app;
        app.account = key;
        app.product = product;
        app.plan = plan.empty() ? "#" + std::to_string(id_of(a, "plan_id")) : plan;
        app.name = str(a, "name");
        app.description = str(a, "description");
        app.suspended = str(a, "state") == "suspended";
        app.pending = str(a, "state") == "pending";
        app.user_key = str(a, "user_key");
        app.application_id = str(a, "application_id");
        ApplicationIds app_ids{id_of(a), id, {}};
        if (!app.application_id.empty()) {
            auto keys = client_.list(
                base + "/applications/" + std::to_string(id_of(a)) + "/keys.json", "keys", false);
            if (!keys) {
                return std::unexpected(keys.error());
            }
            for (const Json& k : *keys) {
                app.application_keys.push_back(str(k, "value"));
            }
            app_ids.keys = app.application_keys;
        }
        const std::string app_key = product + "/" + app.credential();
        state.model.applications[app_key] = std::move(app);
        state.applications[app_key] = std::move(app_ids);
    }
    state.model.accounts[key] = std::move(model);
    state.accounts[key] = std::move(ids);
    return {};
}

ApiResult<void> StateReader::read_accounts(InstanceState& state) {
    auto accounts = client_.list("/admin/api/accounts.json", "accounts", true);
    if (!accounts) {
        return std::unexpected(accounts.error());
    }
    // Accounts are read in parallel (users, applications, keys: two calls and one per keyed
    // application each), each into its own shard; the client caps the requests in flight.
    std::vector<InstanceState> shards(accounts->size());
    auto done = parallel_for<ApiError>(
        accounts->size(), concurrency_, [&](std::size_t i) -> std::expected<void, ApiError> {
            return read_account_into(state.products, shards[i], (*accounts)[i]);
        });
    if (!done) {
        return std::unexpected(done.error());
    }
    for (auto& shard : shards) {
        for (auto& [key, a] : shard.model.accounts) {
            state.model.accounts[key] = std::move(a);
            state.accounts[key] = std::move(shard.accounts[key]);
        }
        for (auto& [key, a] : shard.model.applications) {
            state.model.applications[key] = std::move(a);
            state.applications[key] = std::move(shard.applications[key]);
        }
    }
    return {};
}

ApiResult<InstanceState> StateReader::read_developers() {
    InstanceState state;
    auto services = client_.list("/admin/api/services.json", "services", true);
    if (!services) {
        return std::unexpected(services.error());
    }
    std::vector<ProductIds> products(services->size());
    auto done = parallel_for<ApiError>(
        services->size(), concurrency_, [&](std::size_t i) -> std::expected<void, ApiError> {
            ProductIds& ids = products[i];
            ids.id = id_of((*services)[i]);
            auto plans = client_.list(
                "/admin/api/services/" + std::to_string(ids.id) + "/application_plans.json",
                "plans", false);
            if (!plans) {
                return std::unexpected(plans.error());
            }
            for (const Json& p : *plans) {
                if (!p.value("custom", false)) {
                    ids.plans[str(p, "system_name")] = id_of(p);
                    if (p.value("default", false)) {
                        ids.default_plan = str(p, "system_name");
                    }
                }
            }
            return {};
        });
    if (!done) {
        return std::unexpected(done.error());
    }
    for (std::size_t i = 0; i < services->size(); ++i) {
        state.products[str((*services)[i], "system_name")] = std::move(products[i]);
    }
    if (auto r = read_accounts(state); !r) {
        return std::unexpected(r.error());
    }
    return state;
}

ApiResult<InstanceState> StateReader::read() {
    InstanceState state;
    auto backends = client_.list("/admin/api/backend_apis.json", "backend_apis", true);
    if (!backends) {
        return std::unexpected(backends.error());
    }
    std::vector<BackendSnapshot> backend_snapshots(backends->size());
    auto done = parallel_for<ApiError>(backends->size(), concurrency_,
                                       [&](std::size_t i) -> std::expected<void, ApiError> {
                                           auto b = read_backend((*backends)[i]);
                                           if (!b) {
                                               return std::unexpected(b.error());
                                           }
                                           backend_snapshots[i] = std::move(*b);
                                           return {};
                                       });
    if (!done) {
        return std::unexpected(done.error());
    }
    for (auto& b : backend_snapshots) {
        insert(state, std::move(b));
    }
    auto services = client_.list("/admin/api/services.json", "services", true);
    if (!services) {
        return std::unexpected(services.error());
    }
    auto versions = read_config_versions();
    if (!versions) {
        return std::unexpected(versions.error());
    }
    std::vector<ProductSnapshot> product_snapshots(services->size());
    // more product readers than requests in flight, so the pipe stays full
    done = parallel_for<ApiError>(
        services->size(), concurrency_ * 2, [&](std::size_t i) -> std::expected<void, ApiError> {
            auto p = read_product((*services)[i], state.backends, &*versions);
            if (!p) {
                return std::unexpected(p.error());
            }
            product_snapshots[i] = std::move(*p);
            return {};
        });
    if (!done) {
        return std::unexpected(done.error());
    }
    for (auto& p : product_snapshots) {
        insert(state, std::move(p));
    }
    if (extras_.accounts) {
        if (auto r = read_accounts(state); !r) {
            return std::unexpected(r.error());
        }
    }
    if (extras_.active_docs) {
        if (auto r = read_active_docs(state); !r) {
            return std::unexpected(r.error());
        }
    }
    if (extras_.custom_policies) {
        if (auto r = read_custom_policies(state); !r) {
            return std::unexpected(r.error());
        }
    }
    return state;
}

ApiResult<void> StateReader::read_custom_policies(InstanceState& state) {
    auto policies = client_.list("/admin/api/registry/policies.json", "policies", false);
    if (!policies) {
        return std::unexpected(policies.error());
    }
    for (const Json& p : *policies) {
        config::CustomPolicy policy;
        policy.name = str(p, "name");
        policy.version = str(p, "version");
        const Json schema = p.value("schema", Json::object());
        policy.schema = schema.is_string() ? config::canonical_document(schema.get<std::string>())
                                                 .value_or(schema.get<std::string>())
                                           : schema.dump();
        const std::string key = policy.name + "@" + policy.version;
        state.custom_policies[key] = id_of(p);
        state.model.custom_policies[key] = std::move(policy);
    }
    return {};
}

ApiResult<void> StateReader::read_active_docs(InstanceState& state) {
    auto docs = client_.list("/admin/api/active_docs.json", "api_docs", false);
    if (!docs) {
        return std::unexpected(docs.error());
    }
    for (const Json& d : *docs) {
        config::ActiveDoc doc;
        doc.name = str(d, "name");
        doc.description = str(d, "description");
        doc.published = d.value("published", false);
        doc.skip_swagger_validations = d.value("skip_swagger_validations", false);
        const Id service = d.contains("service_id") && d["service_id"].is_number_integer()
                               ? d["service_id"].get<Id>()
                               : 0;
        for (const auto& [name, ids] : state.products) {
            if (service != 0 && ids.id == service) {
                doc.product = name;
            }
        }
        const std::string body = str(d, "body");
        doc.body = config::canonical_document(body).value_or(body);  // as stored, if unreadable
        const std::string system_name = str(d, "system_name");
        state.active_docs[system_name] = id_of(d);
        state.model.active_docs[system_name] = std::move(doc);
    }
    return {};
}

}  // namespace syncer
