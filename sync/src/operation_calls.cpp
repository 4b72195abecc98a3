// The applier's writes: each operation as admin API calls, the ids it needs resolved at the
// time, and after a write whose outcome is unknown a re-read (locate) instead of a blind retry.
#include <algorithm>
#include <set>

#include "sync/applier.hpp"

namespace syncer {

namespace {

std::string s(Id id) {
    return std::to_string(id);
}

Form with(Form form, const std::string& key, const std::string& value) {
    form.emplace_back(key, value);
    return form;
}

bool taken_error(const ApiError& e) {
    return e.kind == ApiError::Kind::kValidation &&
           e.message.find("has already been taken") != std::string::npos;
}

}  // namespace

std::string Applier::owner_path(const Operation& op) {
    const std::lock_guard lock(mutex_);
    if (!op.product.empty() && op.kind != Kind::kBackend) {
        return "/admin/api/services/" + s(state_.products[op.product].id);
    }
    return "/admin/api/backend_apis/" + s(state_.backends[op.backend].id);
}

ApiResult<Id> Applier::metric_id(const Operation& op, const config::MetricRef& ref) {
    const std::lock_guard lock(mutex_);
    const bool backend_rule = op.kind == Kind::kBackendRule;
    const std::map<std::string, Id>* ids = nullptr;
    if (!ref.backend.empty() || backend_rule) {
        ids = &state_.backends[ref.backend.empty() ? op.backend : ref.backend].metrics;
    } else {
        ids = &state_.products[op.product].metrics;
    }
    const auto it = ids->find(ref.system_name);
    if (it == ids->end()) {
        return std::unexpected(
            ApiError{ApiError::Kind::kNotFound, 0, "", "",
                     "metric or method '" + ref.to_string() + "' does not exist on the instance"});
    }
    return it->second;
}

// After an ambiguous create: is the object there now? Found by its natural key.
std::optional<Id> Applier::locate(const Operation& op) {
    const auto find_in = [&](const std::string& path, const std::string& key, bool paginated,
                             const std::function<bool(const Json&)>& pred) -> std::optional<Id> {
        auto items = client_.list(path, key, paginated);
        if (!items) {
            return std::nullopt;
        }
        for (const Json& j : *items) {
            if (pred(j)) {
                return j.value("id", Id{0});
            }
        }
        return std::nullopt;
    };
    const auto by_system_name = [&](const std::string& name) {
        return [name](const Json& j) {
            const std::string sys = j.value("system_name", "");
            return sys == name || sys.starts_with(name + ".");
        };
    };
    switch (op.kind) {
        case Kind::kBackend:
            return find_in("/admin/api/backend_apis.json", "backend_apis", true,
                           by_system_name(op.name));
        case Kind::kProduct:
            return find_in("/admin/api/services.json", "services", true, by_system_name(op.name));
        case Kind::kBackendMetric:
        case Kind::kBackendMethod:
        case Kind::kMetric:
        case Kind::kMethod:
            return find_in(owner_path(op) + "/metrics.json", "metrics",
                           op.kind == Kind::kBackendMetric || op.kind == Kind::kBackendMethod,
                           [&](const Json& j) {
                               const std::string sys = j.value("system_name", "");
                               return sys == op.name || sys.starts_with(op.name + ".");
                           });
        case Kind::kMappingRule:
        case Kind::kBackendRule: {
            std::set<Id> known;
            {
                const std::lock_guard lock(mutex_);
                const auto& rules = op.kind == Kind::kMappingRule
                                        ? state_.products[op.product].rules
                                        : state_.backends[op.backend].rules;
                known.insert(rules.begin(), rules.end());
            }
            std::string method;
            std::string pattern;
            for (const auto& [k, v] : op.form) {
                method = k == "http_method" ? v : method;
                pattern = k == "pattern" ? v : pattern;
            }
            const bool backend = op.kind == Kind::kBackendRule;
            return find_in(
                owner_path(op) + (backend ? "/mapping_rules.json" : "/proxy/mapping_rules.json"),
                "mapping_rules", backend, [&](const Json& j) {
                    return !known.contains(j.value("id", Id{0})) &&
                           j.value("http_method", "") == method &&
                           j.value("pattern", "") == pattern;
                });
        }
        case Kind::kBackendUsage: {
            Id backend = 0;
            {
                const std::lock_guard lock(mutex_);
                backend = state_.backends[op.backend].id;
            }
            return find_in(owner_path(op) + "/backend_usages.json", "", true,
                           [&](const Json& j) { return j.value("backend_id", Id{0}) == backend; });
        }
        case Kind::kPlan:
            return find_in(owner_path(op) + "/application_plans.json", "plans", false,
                           by_system_name(op.name));
        case Kind::kLimit:
        case Kind::kPricingRule: {
            auto metric = metric_id(op, *op.metric);
            Id plan = 0;
            {
                const std::lock_guard lock(mutex_);
                plan = state_.products[op.product].plans[op.plan];
            }
            if (!metric) {
                return std::nullopt;
            }
            const std::string base =
                "/admin/api/application_plans/" + s(plan) + "/metrics/" + s(*metric);
            if (op.kind == Kind::kLimit) {
                const std::string period(ratelimit::to_string(*op.period));
                return find_in(base + "/limits.json", "limits", false,
                               [&](const Json& j) { return j.value("period", "") == period; });
            }
            return find_in(base + "/pricing_rules.json", "pricing_rules", false,
                           [&](const Json& j) {
                               return j.value("min", std::int64_t{0}) == op.min &&
                                      (j.contains("max") && j["max"].is_number_integer()
                                           ? std::optional(j["max"].get<std::int64_t>())
                                           : std::nullopt) == op.max;
                           });
        }
        case Kind::kActiveDoc:
            return find_in("/admin/api/active_docs.json", "api_docs", false,
                           [&](const Json& j) { return j.value("system_name", "") == op.name; });
        case Kind::kCustomPolicy:
            return find_in("/admin/api/registry/policies.json", "policies", false,
                           [&](const Json& j) {
                               return j.value("name", "") + "@" + j.value("version", "") == op.name;
                           });
        case Kind::kAccount: {
            auto found = client_.get("/admin/api/accounts/find.json", {{"username", op.account}});
            if (found) {
                return unwrap(*found).value("id", Id{0});
            }
            return std::nullopt;
        }
        case Kind::kUser: {
            Id account = 0;
            {
                const std::lock_guard lock(mutex_);
                account = state_.accounts[op.account].id;
            }
            return find_in("/admin/api/accounts/" + s(account) + "/users.json", "users", false,
                           [&](const Json& j) { return j.value("username", "") == op.name; });
        }
        case Kind::kApplication: {
            for (const auto& [k, v] : op.form) {
                if (k == "user_key" || k == "application_id") {
                    auto found = client_.get("/admin/api/applications/find.json",
                                             {{k == "user_key" ? "user_key" : "app_id", v}});
                    if (found) {
                        return unwrap(*found).value("id", Id{0});
                    }
                }
            }
            return std::nullopt;
        }
        default:
            return std::nullopt;
    }
}

ApiResult<Id> Applier::create(const Operation& op, const std::string& path, const Form& form) {
    constexpr int kAttempts = 4;
    ApiError last;
    for (int attempt = 0; attempt < kAttempts; ++attempt) {
        auto created = client_.create(path, form);
        if (created) {
            return created->value("id", Id{0});
        }
        last = created.error();
        if (last.kind != ApiError::Kind::kAmbiguous && !taken_error(last)) {
            return std::unexpected(last);
        }
        // Unknown outcome (or "already taken" after an earlier unknown outcome): look before
        // trying again.
        if (auto found = locate(op)) {
            return *found;
        }
        if (taken_error(last)) {
            last.message +=
                " (a deleted object keeps its system name until 3scale's background "
                "job purges it; rerun later)";
            return std::unexpected(last);
        }
    }
    return std::unexpected(last);
}

ApiResult<void> Applier::remove(const std::string& path) {
    constexpr int kAttempts = 4;
    ApiError last;
    for (int attempt = 0; attempt < kAttempts; ++attempt) {
        auto r = client_.remove(path);
        if (r || r.error().kind == ApiError::Kind::kNotFound) {
            return {};  // gone either way
        }
        last = r.error();
        if (last.kind != ApiError::Kind::kAmbiguous) {
            return std::unexpected(last);
        }
        auto still = client_.get(path);
        if (!still && still.error().kind == ApiError::Kind::kNotFound) {
            return {};
        }
    }
    return std::unexpected(last);
}

ApiResult<void> Applier::update_or_remove(const Operation& op,
                                          const std::string& path,
                                          const Form& form,
                                          const std::string& method) {
    if (op.action == Action::kDelete) {
        return remove(path);
    }
    auto r = client_.update(path, form, method);
    return r ? ApiResult<void>{} : ApiResult<void>{std::unexpect, r.error()};
}

ApiResult<void> Applier::execute(const Operation& op) {
    const auto fail = [](ApiError e) -> ApiResult<void> { return std::unexpected(std::move(e)); };
    switch (op.kind) {
        case Kind::kBackend:
        case Kind::kProduct: {
            const bool product = op.kind == Kind::kProduct;
            const std::string collection =
                product ? "/admin/api/services" : "/admin/api/backend_apis";
            if (op.action == Action::kCreate) {
                auto id = create(op, collection + ".json", op.form);
                if (!id) {
                    return fail(id.error());
                }
                const std::lock_guard lock(mutex_);
                (product ? state_.products[op.name].id : state_.backends[op.name].id) = *id;
                return {};
            }
            return update_or_remove(op, collection + "/" + s(op.id) + ".json", op.form);
        }
        case Kind::kBackendMetric:
        case Kind::kBackendMethod:
        case Kind::kMetric:
        case Kind::kMethod: {
            const bool method = op.kind == Kind::kBackendMethod || op.kind == Kind::kMethod;
            const bool backend = op.kind == Kind::kBackendMetric || op.kind == Kind::kBackendMethod;
            std::map<std::string, Id>* ids = nullptr;
            Id hits = 0;
            {
                const std::lock_guard lock(mutex_);
                ids = backend ? &state_.backends[op.backend].metrics
                              : &state_.products[op.product].metrics;
                hits = ids->contains("hits") ? ids->at("hits") : 0;
            }
            const std::string base =
                owner_path(op) + "/metrics" + (method ? "/" + s(hits) + "/methods" : std::string());
            if (op.action == Action::kCreate) {
                auto id = create(op, base + ".json", op.form);
                if (!id) {
                    return fail(id.error());
                }
                const std::lock_guard lock(mutex_);
                (*ids)[op.name] = *id;
                return {};
            }
            Id id = op.id;
            if (id == 0) {
                const std::lock_guard lock(mutex_);
                id = ids->contains(op.name) ? ids->at(op.name) : 0;
            }
            return update_or_remove(op, base + "/" + s(id) + ".json", op.form);
        }
        case Kind::kMappingRule:
        case Kind::kBackendRule: {
            const bool backend = op.kind == Kind::kBackendRule;
            const std::string base =
                owner_path(op) + (backend ? "/mapping_rules" : "/proxy/mapping_rules");
            Form form = op.form;
            if (op.metric) {
                auto metric = metric_id(op, *op.metric);
                if (!metric) {
                    return fail(metric.error());
                }
                form.emplace_back("metric_id", s(*metric));
            }
            if (op.action == Action::kCreate) {
                auto id = create(op, base + ".json", form);
                if (!id) {
                    return fail(id.error());
                }
                const std::lock_guard lock(mutex_);
                (backend ? state_.backends[op.backend].rules : state_.products[op.product].rules)
                    .push_back(*id);
                return {};
            }
            return update_or_remove(op, base + "/" + s(op.id) + ".json", form,
                                    backend ? "PUT" : "PATCH");
        }
        case Kind::kBackendUsage: {
            const std::string base = owner_path(op) + "/backend_usages";
            if (op.action == Action::kCreate) {
                Id backend = 0;
                {
                    const std::lock_guard lock(mutex_);
                    backend = state_.backends[op.backend].id;
                }
                auto id = create(op, base + ".json", with(op.form, "backend_api_id", s(backend)));
                if (!id) {
                    return fail(id.error());
                }
                const std::lock_guard lock(mutex_);
                state_.products[op.product].usages[op.backend] = *id;
                return {};
            }
            return update_or_remove(op, base + "/" + s(op.id) + ".json", op.form);
        }
        case Kind::kPlan: {
            const std::string base = owner_path(op) + "/application_plans";
            if (op.action == Action::kCreate) {
                auto id = create(op, base + ".json", op.form);
                if (!id) {
                    return fail(id.error());
                }
                const std::lock_guard lock(mutex_);
                state_.products[op.product].plans[op.name] = *id;
                return {};
            }
            return update_or_remove(op, base + "/" + s(op.id) + ".json", op.form);
        }
        case Kind::kLimit:
        case Kind::kPricingRule: {
            Id plan = 0;
            {
                const std::lock_guard lock(mutex_);
                plan = state_.products[op.product].plans[op.plan];
            }
            auto metric = metric_id(op, *op.metric);
            if (!metric) {
                return fail(metric.error());
            }
            const bool limit = op.kind == Kind::kLimit;
            const std::string base = "/admin/api/application_plans/" + s(plan) + "/metrics/" +
                                     s(*metric) + (limit ? "/limits" : "/pricing_rules");
            if (op.action == Action::kDelete) {
                return remove(base + "/" + s(op.id) + ".json");
            }
            if (op.action == Action::kUpdate) {
                auto r = client_.update(base + "/" + s(op.id) + ".json", op.form);
                return r ? ApiResult<void>{} : fail(r.error());
            }
            if (op.action == Action::kReplace) {
                // porta has no update for pricing rules and refuses overlapping ranges: delete the
                // old rule, create the new one right after, and put the old one back if that fails.
                if (auto r = remove(base + "/" + s(op.id) + ".json"); !r) {
                    return r;
                }
                auto id = create(op, base + ".json", op.form);
                if (!id) {
                    Form old;
                    for (const auto& c : op.changes) {
                        if (c.field.starts_with("old_")) {
                            old.emplace_back(c.field.substr(4), c.actual);
                        }
                    }
                    (void)client_.create(base + ".json", old);
                    return fail(id.error());
                }
                return {};
            }
            auto id = create(op, base + ".json", op.form);
            return id ? ApiResult<void>{} : fail(id.error());
        }
        case Kind::kPolicies: {
            auto r = client_.update(owner_path(op) + "/proxy/policies.json", op.form);
            return r ? ApiResult<void>{} : fail(r.error());
        }
        case Kind::kProxy: {
            auto r = client_.update(owner_path(op) + "/proxy.json", op.form, "PATCH");
            return r ? ApiResult<void>{} : fail(r.error());
        }
        case Kind::kActiveDoc: {
            Form form = op.form;
            const bool rebind =
                std::any_of(op.changes.begin(), op.changes.end(),
                            [](const FieldChange& c) { return c.field == "product"; });
            if (!op.product.empty() && (op.action == Action::kCreate || rebind)) {
                const std::lock_guard lock(mutex_);
                form.emplace_back("service_id", s(state_.products[op.product].id));
            } else if (rebind) {
                form.emplace_back("service_id", "");  // no longer bound to a product
            }
            if (op.action == Action::kCreate) {
                auto id = create(op, "/admin/api/active_docs.json", form);
                return id ? ApiResult<void>{} : fail(id.error());
            }
            return update_or_remove(op, "/admin/api/active_docs/" + s(op.id) + ".json", form);
        }
        case Kind::kCustomPolicy: {
            if (op.action == Action::kCreate) {
                auto id = create(op, "/admin/api/registry/policies.json", op.form);
                return id ? ApiResult<void>{} : fail(id.error());
            }
            return update_or_remove(op, "/admin/api/registry/policies/" + s(op.id) + ".json",
                                    op.form);
        }
        case Kind::kOidc: {
            auto r =
                client_.update(owner_path(op) + "/proxy/oidc_configuration.json", op.form, "PATCH");
            return r ? ApiResult<void>{} : fail(r.error());
        }
        case Kind::kAccount:
        case Kind::kUser:
        case Kind::kApplication:
        case Kind::kApplicationKey:
            return execute_account_op(op);
        case Kind::kProxyConfig: {
            const std::string base = owner_path(op) + "/proxy";
            if (op.action == Action::kDeploy) {
                // deploy only creates a version when the content changed: safe to repeat
                for (int attempt = 0;; ++attempt) {
                    auto r = client_.create(base + "/deploy.json", {});
                    if (r || r.error().kind != ApiError::Kind::kAmbiguous || attempt >= 3) {
                        return r ? ApiResult<void>{} : fail(r.error());
                    }
                }
            }
            for (int attempt = 0;; ++attempt) {
                auto staging = client_.get(base + "/configs/sandbox/latest.json");
                if (!staging) {
                    if (staging.error().kind == ApiError::Kind::kNotFound) {
                        return {};  // nothing deployed (a product without backends)
                    }
                    return fail(staging.error());
                }
                const auto version = unwrap(*staging).value("version", std::int64_t{0});
                auto production = client_.get(base + "/configs/production/latest.json");
                if (production &&
                    unwrap(*production).value("version", std::int64_t{0}) == version) {
                    return {};  // already promoted
                }
                if (!production && production.error().kind != ApiError::Kind::kNotFound) {
                    return fail(production.error());
                }
                auto r = client_.create(base + "/configs/sandbox/" + s(version) + "/promote.json",
                                        {{"to", "production"}});
                if (r) {
                    return {};
                }
                if (r.error().kind != ApiError::Kind::kAmbiguous &&
                    r.error().kind != ApiError::Kind::kValidation) {
                    return fail(r.error());
                }
                if (attempt >= 3) {
                    return fail(r.error());
                }
                // unknown outcome or "version taken": the loop re-reads both versions
            }
        }
    }
    return fail(ApiError{ApiError::Kind::kProtocol, 0, "", "", "unknown operation"});
}

ApiResult<void> Applier::execute_account_op(const Operation& op) {
    const auto fail = [](ApiError e) -> ApiResult<void> { return std::unexpected(std::move(e)); };
    Id account = 0;
    {
        const std::lock_guard lock(mutex_);
        account = state_.accounts[op.account].id;
    }
    const std::string base = "/admin/api/accounts/" + s(account);
    const auto send_events = [&](const std::string& path, const Operation& o) -> ApiResult<void> {
        for (const auto& event : o.events) {
            Form form;
            if (event == "change_plan") {
                const std::lock_guard lock(mutex_);
                form.emplace_back("plan_id", s(state_.products[o.product].plans[o.plan]));
            }
            if (auto r = client_.update(path + "/" + event + ".json", form); !r) {
                return fail(r.error());
            }
        }
        return {};
    };
    switch (op.kind) {
        case Kind::kAccount: {
            if (op.action == Action::kCreate) {
                auto id = create(op, "/admin/api/signup.json", op.form);
                if (!id) {
                    return fail(id.error());
                }
                const std::lock_guard lock(mutex_);
                state_.accounts[op.account].id = *id;
                return {};
            }
            if (op.action == Action::kDelete) {
                return remove("/admin/api/accounts/" + s(op.id) + ".json");
            }
            if (!op.form.empty()) {
                if (auto r = client_.update(base + ".json", op.form); !r) {
                    return fail(r.error());
                }
            }
            return send_events(base, op);
        }
        case Kind::kUser: {
            Id user = op.id;
            if (op.action == Action::kCreate) {
                auto id = create(op, base + "/users.json", op.form);
                if (!id) {
                    return fail(id.error());
                }
                user = *id;
                const std::lock_guard lock(mutex_);
                state_.accounts[op.account].users[op.name] = user;
            } else if (op.action == Action::kDelete) {
                return remove(base + "/users/" + s(op.id) + ".json");
            } else if (!op.form.empty()) {
                if (auto r = client_.update(base + "/users/" + s(user) + ".json", op.form); !r) {
                    return fail(r.error());
                }
            }
            return send_events(base + "/users/" + s(user), op);
        }
        case Kind::kApplication: {
            if (op.action == Action::kDelete) {
                Id owner = account;
                for (const auto& [k, v] : op.form) {
                    if (k == "_account_id") {
                        owner = std::stoll(v);
                    }
                }
                return remove("/admin/api/accounts/" + s(owner) + "/applications/" + s(op.id) +
                              ".json");
            }
            Id app = op.id;
            if (op.action == Action::kCreate) {
                Form form = op.form;
                {
                    const std::lock_guard lock(mutex_);
                    form.emplace_back("plan_id", s(state_.products[op.product].plans[op.plan]));
                }
                auto id = create(op, base + "/applications.json", form);
                if (!id) {
                    return fail(id.error());
                }
                app = *id;
            } else if (!op.form.empty()) {
                if (auto r = client_.update(base + "/applications/" + s(app) + ".json", op.form);
                    !r) {
                    return fail(r.error());
                }
            }
            return send_events(base + "/applications/" + s(app), op);
        }
        case Kind::kApplicationKey: {
            const std::string keys = base + "/applications/" + s(op.id) + "/keys";
            const std::string key = op.form.empty() ? "" : op.form.front().second;
            if (op.action == Action::kDelete) {
                return remove(keys + "/" + form_encode({{"k", key}}).substr(2) + ".json");
            }
            auto r = client_.create(keys + ".json", op.form);
            if (!r && (r.error().kind == ApiError::Kind::kAmbiguous ||
                       r.error().message.find("has already been taken") != std::string::npos)) {
                auto listed = client_.list(keys + ".json", "keys", false);
                if (listed && std::any_of(listed->begin(), listed->end(), [&](const Json& k) {
                        return k.value("value", "") == key;
                    })) {
                    return {};
                }
            }
            return r ? ApiResult<void>{} : fail(r.error());
        }
        default:
            break;
    }
    return fail(ApiError{ApiError::Kind::kProtocol, 0, "", "", "unknown operation"});
}

}  // namespace syncer
