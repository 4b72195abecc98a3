// A product's OIDC configuration: which OAuth 2.0 flows its OpenID provider's clients get
// (GET/PATCH /admin/api/services/{id}/proxy/oidc_configuration.json).
#include "admin_support.hpp"

namespace sim {

namespace {

constexpr const char* kFlows[] = {"standard_flow_enabled", "implicit_flow_enabled",
                                  "service_accounts_enabled", "direct_access_grants_enabled"};

// Stored with the proxy; a new one has the standard flow only (the simulator's choice).
Json& flows_of(Json& proxy) {
    if (!proxy.contains("_oidc_configuration")) {
        proxy["_oidc_configuration"] = {{"id", proxy.value("id", Id{0})},
                                        {"standard_flow_enabled", true},
                                        {"implicit_flow_enabled", false},
                                        {"service_accounts_enabled", false},
                                        {"direct_access_grants_enabled", false}};
    }
    return proxy["_oidc_configuration"];
}

}  // namespace

Response AdminApi::show_oidc(Ctx& c) {
    Json* proxy = service_or_null(c, 0) != nullptr ? store_.proxy_of(c.ids[0]) : nullptr;
    return proxy == nullptr ? not_found() : ok("oidc_configuration", flows_of(*proxy));
}

Response AdminApi::update_oidc(Ctx& c) {
    Json* proxy = service_or_null(c, 0) != nullptr ? store_.proxy_of(c.ids[0]) : nullptr;
    if (proxy == nullptr) {
        return not_found();
    }
    const Params p(c.params, "oidc_configuration");
    Errors errors;
    Json changes = Json::object();
    for (const char* flow : kFlows) {
        if (auto v = read_bool(p, flow, errors)) {
            changes[flow] = *v;
        }
    }
    if (!errors.empty()) {
        return unprocessable(errors);
    }
    Json& flows = flows_of(*proxy);
    for (auto& [key, value] : changes.items()) {
        flows[key] = value;
    }
    return ok("oidc_configuration", flows);
}

}  // namespace sim
