// An operation's names and summary, and which operations touch a product's gateway
// configuration.
#include "sync/operation.hpp"

namespace syncer {

const char* to_string(Action action) {
    switch (action) {
        case Action::kCreate:
            return "create";
        case Action::kUpdate:
            return "update";
        case Action::kDelete:
            return "delete";
        case Action::kReplace:
            return "replace";
        case Action::kDeploy:
            return "deploy";
        case Action::kPromote:
            return "promote";
    }
    return "?";
}

const char* to_string(Kind kind) {
    switch (kind) {
        case Kind::kBackend:
            return "backend";
        case Kind::kBackendMetric:
            return "backend metric";
        case Kind::kBackendMethod:
            return "backend method";
        case Kind::kBackendRule:
            return "backend mapping rule";
        case Kind::kProduct:
            return "product";
        case Kind::kBackendUsage:
            return "backend usage";
        case Kind::kMetric:
            return "metric";
        case Kind::kMethod:
            return "method";
        case Kind::kMappingRule:
            return "mapping rule";
        case Kind::kPlan:
            return "application plan";
        case Kind::kLimit:
            return "limit";
        case Kind::kPricingRule:
            return "pricing rule";
        case Kind::kPolicies:
            return "policy chain";
        case Kind::kProxy:
            return "proxy settings";
        case Kind::kOidc:
            return "OIDC configuration";
        case Kind::kActiveDoc:
            return "ActiveDoc";
        case Kind::kCustomPolicy:
            return "custom policy";
        case Kind::kProxyConfig:
            return "proxy config";
        case Kind::kAccount:
            return "developer account";
        case Kind::kUser:
            return "user";
        case Kind::kApplication:
            return "application";
        case Kind::kApplicationKey:
            return "application key";
    }
    return "?";
}

std::string Operation::summary() const {
    std::string owner = product.empty() ? backend : product;
    std::string out = std::string(to_string(action)) + " " + to_string(kind) + " ";
    if (kind == Kind::kProduct || kind == Kind::kBackend || kind == Kind::kAccount ||
        kind == Kind::kActiveDoc || kind == Kind::kCustomPolicy) {
        return out + name;
    }
    if (kind == Kind::kUser || kind == Kind::kApplication || kind == Kind::kApplicationKey) {
        return out + account + ": " + (product.empty() ? "" : product + " ") + name;
    }
    if (kind == Kind::kProxyConfig) {
        return out + "of " + product +
               (action == Action::kPromote ? " to production" : " to staging");
    }
    return out + owner + ": " + name;
}

bool affects_proxy_config(const Operation& op) {
    switch (op.kind) {
        case Kind::kPlan:
        case Kind::kLimit:
        case Kind::kPricingRule:
        case Kind::kProxyConfig:
        case Kind::kAccount:
        case Kind::kUser:
        case Kind::kApplication:
        case Kind::kApplicationKey:
            return false;
        default:
            return true;
    }
}

}  // namespace syncer
