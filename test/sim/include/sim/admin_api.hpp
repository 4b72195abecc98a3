#pragma once

#include <functional>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "sim/clock.hpp"
#include "sim/http.hpp"
#include "sim/options.hpp"
#include "sim/params.hpp"
#include "sim/store.hpp"

namespace sim {

class Errors;

// The XML document 3scale POSTs for a webhook event (its object rendered as the admin API does).
std::string webhook_event_xml(const std::string& type,
                              const std::string& action,
                              const Json& object);

// The 3scale Account Management API of one tenant, as porta answers it (see the README,
// threescale-sim, "Admin API"): JSON only, wrapped objects, 403 for auth failures,
// 422 validation errors, quirks included. No sockets: the server hands it a Request.
class AdminApi {
public:
    struct Result {
        Response response;
        std::string route;  // "POST /admin/api/services/{id}/metrics.json", for counters
        bool write = false;
    };

    AdminApi(Store& store, SimClock& clock, const SimOptions& options, std::mt19937_64& rng);

    Result handle(const Request& request);

    // Creates what a new tenant has: the "API" product with its backend, a "Basic" default plan
    // and a developer account with an application (as 3scale's tenant signup does).
    void seed_default_objects();

    // Exposed for the gateway and tests: build a product's APIcast configuration document.
    Json proxy_config_content(Id service_id);

    struct Ctx;
    using Handler = std::function<Response(AdminApi&, Ctx&)>;
    struct Route {
        std::string method;                 // "GET", or "PUT|PATCH"
        std::vector<std::string> segments;  // after /admin/api/, ":n" numeric, ":s" any
        std::string name;
        Handler handler;
    };

private:
    // products, backends, metrics, mapping rules (admin_products.cpp)
    Response list_services(Ctx& c);
    Response create_service(Ctx& c);
    Response show_service(Ctx& c);
    Response update_service(Ctx& c);
    Response delete_service(Ctx& c);
    Response list_backends(Ctx& c);
    Response create_backend(Ctx& c);
    Response show_backend(Ctx& c);
    Response update_backend(Ctx& c);
    Response delete_backend(Ctx& c);
    Response list_usages(Ctx& c);
    Response create_usage(Ctx& c);
    Response show_usage(Ctx& c);
    Response update_usage(Ctx& c);
    Response delete_usage(Ctx& c);
    Response list_metrics(Ctx& c, const std::string& owner_type);
    Response create_metric(Ctx& c, const std::string& owner_type);
    Response show_metric(Ctx& c, const std::string& owner_type);
    Response update_metric(Ctx& c, const std::string& owner_type);
    Response delete_metric(Ctx& c, const std::string& owner_type);
    Response list_methods(Ctx& c, const std::string& owner_type);
    Response create_method(Ctx& c, const std::string& owner_type);
    Response show_method(Ctx& c, const std::string& owner_type);
    Response update_method(Ctx& c, const std::string& owner_type);
    Response delete_method(Ctx& c, const std::string& owner_type);
    Response list_rules(Ctx& c, const std::string& owner_type);
    Response create_rule(Ctx& c, const std::string& owner_type);
    Response show_rule(Ctx& c, const std::string& owner_type);
    Response update_rule(Ctx& c, const std::string& owner_type);
    Response delete_rule(Ctx& c, const std::string& owner_type);
    // plans, limits, pricing rules, proxy, policies, configs (admin_plans.cpp)
    Response list_plans(Ctx& c);
    Response list_all_plans(Ctx& c);
    Response create_plan(Ctx& c);
    Response show_plan(Ctx& c);
    Response update_plan(Ctx& c);
    Response delete_plan(Ctx& c);
    Response default_plan(Ctx& c);
    Response list_plan_limits(Ctx& c);
    Response list_metric_limits(Ctx& c);
    Response create_limit(Ctx& c);
    Response show_limit(Ctx& c);
    Response update_limit(Ctx& c);
    Response delete_limit(Ctx& c);
    Response list_plan_pricing(Ctx& c);
    Response list_metric_pricing(Ctx& c);
    Response create_pricing(Ctx& c);
    Response delete_pricing(Ctx& c);
    Response show_policies(Ctx& c);
    Response update_policies(Ctx& c);
    Response show_proxy(Ctx& c);
    Response update_proxy(Ctx& c);
    // the policy registry (admin_policy_registry.cpp)
    Response list_registry(Ctx& c);
    Response create_registry_policy(Ctx& c);
    Response show_registry_policy(Ctx& c);
    Response update_registry_policy(Ctx& c);
    Response delete_registry_policy(Ctx& c);
    [[nodiscard]] bool registered_policy(const std::string& name, const std::string& version) const;
    // ActiveDocs (admin_active_docs.cpp)
    Response list_active_docs(Ctx& c);
    Response create_active_doc(Ctx& c);
    Response show_active_doc(Ctx& c);
    Response update_active_doc(Ctx& c);
    Response delete_active_doc(Ctx& c);
    // the OIDC flows (admin_oidc.cpp)
    Response show_oidc(Ctx& c);
    Response update_oidc(Ctx& c);
    Response deploy(Ctx& c);
    Response list_configs(Ctx& c);
    Response latest_config(Ctx& c);
    Response show_config(Ctx& c);
    Response promote_config(Ctx& c);
    Response account_configs(Ctx& c);
    // accounts, users, applications, keys, objects (admin_accounts.cpp)
    Response signup(Ctx& c);
    Response list_accounts(Ctx& c);
    Response find_account(Ctx& c);
    Response show_account(Ctx& c);
    Response update_account(Ctx& c);
    Response delete_account(Ctx& c);
    Response list_users(Ctx& c);
    Response show_user(Ctx& c);
    Response create_user(Ctx& c);
    Response update_user(Ctx& c);
    Response delete_user(Ctx& c);
    Response user_event(Ctx& c, const std::string& event);
    Response create_application(Ctx& c);
    Response list_account_applications(Ctx& c);
    Response list_applications(Ctx& c);
    Response find_application(Ctx& c);
    Response show_application(Ctx& c);
    Response update_application(Ctx& c);
    Response delete_application(Ctx& c);
    Response application_state(Ctx& c, const std::string& event);
    Response change_plan(Ctx& c);
    Response list_keys(Ctx& c);
    Response create_key(Ctx& c);
    Response delete_key(Ctx& c);
    Response object_status(Ctx& c);
    Response account_event(Ctx& c, const std::string& event);
    // webhooks (admin_webhooks.cpp)
    Response show_webhooks(Ctx& c);
    Response update_webhooks(Ctx& c);

    std::optional<Json> webhook_subject(const Route& route, const Ctx& c);
    void emit_webhook(const Route& route, const Ctx& c, const Json& before, const Response& r);

    // shared helpers
    Json* service_or_null(Ctx& c, std::size_t index);
    Json* owner_or_null(Ctx& c, const std::string& owner_type);
    Json* plan_or_null(Ctx& c, std::size_t index);
    std::string now_iso() const;
    std::int64_t now_epoch() const;
    std::string random_hex(std::size_t chars);
    Json& create_metric_object(const std::string& owner_type, Id owner_id, Json fields);
    Json& create_service_object(Json fields);
    Json& create_backend_object(Json fields);
    // Validates and stores an application; nullptr with `errors` filled when invalid.
    Json* create_application_object(const Json& account,
                                    const Json& plan,
                                    const Params& p,
                                    Errors& errors);
    // Creates a new staging config when the product's content differs from the latest one.
    void deploy_to_staging(Id service_id);
    bool metric_used_by_latest_config(Id metric_id);
    void insert_rule_at(Json& rule,
                        const std::string& owner_type,
                        Id owner_id,
                        std::optional<std::int64_t> position);

    Store& store_;
    SimClock& clock_;
    const SimOptions& options_;
    std::mt19937_64& rng_;
    std::vector<Route> routes_;
};

}  // namespace sim
