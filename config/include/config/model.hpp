#pragma once

// The desired (and, read back from an instance, the actual) configuration of 3scale products and
// backends, keyed by system_name. Plain values: no ids, no timestamps, no instance-specific noise.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/diagnostic.hpp"
#include "ratelimit/period.hpp"
#include "ratelimit/split.hpp"

namespace config {

struct Metric {
    std::string friendly_name;
    std::string unit;  // empty for methods
    std::string description;
    Source source;
    friend bool operator==(const Metric& a, const Metric& b) {
        return a.friendly_name == b.friendly_name && a.unit == b.unit &&
               a.description == b.description;
    }
};

struct MappingRule {
    std::string http_method;
    std::string pattern;
    std::string metric;  // system_name of the owner's metric or method
    std::int64_t delta = 1;
    bool last = false;
    Source source;
    friend bool operator==(const MappingRule& a, const MappingRule& b) {
        return a.http_method == b.http_method && a.pattern == b.pattern && a.metric == b.metric &&
               a.delta == b.delta && a.last == b.last;
    }
    Source ref_source{};  // metricMethodRef (where a reference error points)
};

// A metric or method reference from a plan: the product's own, or a used backend's.
struct MetricRef {
    std::string system_name;
    std::string backend;  // empty: the product's
    friend auto operator<=>(const MetricRef&, const MetricRef&) = default;
    [[nodiscard]] std::string to_string() const {
        return backend.empty() ? system_name : backend + "." + system_name;
    }
};

struct Limit {
    MetricRef metric;
    ratelimit::Period period = ratelimit::Period::kMinute;
    std::int64_t value = 0;
    Source source;
    // Set on per-instance desired states: how `value` was derived from the global one.
    std::optional<std::int64_t> global_value;
    std::int64_t weight = 0;
    std::string split_rule;
    Source ref_source{};  // metricMethodRef
};

struct PricingRule {
    MetricRef metric;
    std::int64_t min = 1;
    std::optional<std::int64_t> max;  // nullopt: no upper bound
    std::string cost_per_unit;        // normalized decimal ("0.5", "15.45")
    Source source;
    Source ref_source{};  // metricMethodRef
};

struct Plan {
    std::string name;
    std::optional<bool> approval_required;  // unset: not managed (3scale keeps its value)
    std::optional<std::int64_t> trial_period_days;
    std::optional<std::string> setup_fee;  // normalized decimals
    std::optional<std::string> cost_per_month;
    bool published = false;  // always managed (absent = hidden), as the operator does
    std::vector<Limit> limits;
    std::vector<PricingRule> pricing_rules;
    Source source;
};

struct Policy {
    std::string name;
    std::string version;
    bool enabled = true;
    std::string configuration;  // canonical JSON (sorted keys)
    // from a Secret (configurationRef): it may hold credentials, so it is never shown
    bool secret_configuration = false;
    friend bool operator==(const Policy& a, const Policy& b) {
        return a.name == b.name && a.version == b.version && a.enabled == b.enabled &&
               a.configuration == b.configuration;
    }
};

struct BackendUsage {
    std::string path;
    Source source;
};

// Proxy settings: only what the CR sets is managed; unset fields are left as 3scale has them.
struct ProxySettings {
    std::map<std::string, std::string> fields;  // admin API field name -> value
};

struct Product {
    std::string name;
    std::string description;
    std::optional<std::string> deployment_option;  // "hosted" | "self_managed"
    std::optional<std::string> backend_version;    // "1" | "2" | "oidc"
    std::map<std::string, Metric> metrics;
    std::map<std::string, Metric> methods;               // children of hits
    std::vector<MappingRule> mapping_rules;              // order = priority (position = index + 1)
    std::map<std::string, BackendUsage> backend_usages;  // by backend system_name
    std::map<std::string, Plan> plans;
    std::vector<Policy> policies;  // the whole chain, apicast included
    ProxySettings proxy;
    // OIDC authentication flows (admin API names: standard_flow_enabled, ...): only the ones the
    // CR sets are managed
    std::map<std::string, bool> oidc_flows;
    std::optional<ratelimit::SplitPolicy>
        split_policy;  // annotation tandem.3scale.net/split-policy
    Source source;
};

struct Backend {
    std::string name;
    std::string description;
    std::string private_endpoint;  // normalized, explicit port
    std::map<std::string, Metric> metrics;
    std::map<std::string, Metric> methods;
    std::vector<MappingRule> mapping_rules;
    Source source;
};

// Developer accounts have no natural key in 3scale: an account is identified on every instance
// by its admin user's username. Passwords and keys are secrets: never printed.
struct User {
    std::string email;
    std::string role = "member";  // admin | member
    bool suspended = false;
    std::string password;
    Source source;
    bool pending = false;  // not activated yet (as read; a desired user is activated unless set)
};

struct Account {
    std::string org_name;
    std::optional<bool> monthly_billing_enabled;
    std::optional<bool> monthly_charging_enabled;
    // approved | pending | rejected; unset: left as it is (a CR does not say)
    std::optional<std::string> state;
    std::map<std::string, User> users;  // by username, the admin(s) included
    Source source;
};

// An application with the same credentials on every instance, so a request authenticates
// wherever the balancer sends it. An Application CR is identified by account, product and name;
// its credentials come from its Secret (authSecretRef or an ApplicationAuth), or — with
// decide_credentials — tandem decides them once for the fleet (sync/credentials).
struct Application {
    std::string account;  // the account's admin username
    std::string product;  // system_name
    std::string plan;     // plan system_name
    std::string name;
    std::string description;
    bool suspended = false;
    bool pending = false;                       // awaiting approval (a plan that requires it)
    std::string user_key;                       // backend_version 1
    std::string application_id;                 // 2 / oidc
    std::vector<std::string> application_keys;  // 2 / oidc
    // No Secret gives (all of) the credentials: adopted from the instances that have the
    // application, else generated, identically everywhere; application_keys then lists the keys
    // an ApplicationAuth requires on top.
    bool decide_credentials = false;
    std::string credentials_origin;  // once decided: "adopted from east" | "generated"
    Source source;
    [[nodiscard]] const std::string& credential() const {
        return user_key.empty() ? application_id : user_key;
    }
    // The key of DesiredState::applications: "product/credential", or, while tandem has not
    // decided the credentials, "product/?account/name" (a user_key has no '?'; an application_id
    // of exactly that text would collide: 3scale generates hex ones).
    [[nodiscard]] std::string key() const {
        return credential().empty() ? product + "/?" + account + "/" + name
                                    : product + "/" + credential();
    }
};

// An OpenAPI document on the developer portal (the operator's ActiveDoc CR), keyed by system_name.
struct ActiveDoc {
    std::string name;
    std::string description;
    std::string product;  // system_name of the product it documents ("" = none)
    bool published = false;
    bool skip_swagger_validations = false;
    // The document as canonical JSON (YAML converted, keys sorted): compared semantically. Empty
    // while `url` is still to be fetched (sync does that before the first write).
    std::string body;
    std::string url;  // http(s) source, fetched with a timeout
    Source source;
};

// A custom APIcast policy in the tenant's policy registry (the operator's CustomPolicyDefinition),
// keyed by "name@version": a product's chain may use it only where the registry has it.
struct CustomPolicy {
    std::string name;
    std::string version;
    std::string schema;  // canonical JSON
    Source source;
};

struct DesiredState {
    std::map<std::string, Product> products;  // by system_name
    std::map<std::string, Backend> backends;
    std::map<std::string, Account> accounts;              // by admin username
    std::map<std::string, Application> applications;      // by "product/credential"
    std::map<std::string, ActiveDoc> active_docs;         // by system_name
    std::map<std::string, CustomPolicy> custom_policies;  // by "name@version"
};

}  // namespace config
