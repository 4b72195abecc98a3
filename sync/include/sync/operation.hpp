#pragma once

#include <optional>
#include <string>
#include <vector>

#include "config/model.hpp"
#include "sync/state.hpp"

namespace syncer {

enum class Action { kCreate, kUpdate, kDelete, kReplace, kDeploy, kPromote };

enum class Kind {
    kBackend,
    kBackendMetric,
    kBackendMethod,
    kBackendRule,
    kProduct,
    kBackendUsage,
    kMetric,
    kMethod,
    kMappingRule,
    kPlan,
    kLimit,
    kPricingRule,
    kPolicies,
    kProxy,
    kOidc,
    kProxyConfig,
    kAccount,
    kUser,
    kApplication,
    kApplicationKey,
    kActiveDoc,
    kCustomPolicy,
};

const char* to_string(Action action);
const char* to_string(Kind kind);

struct FieldChange {
    std::string field;
    std::string expected;  // "" when absent
    std::string actual;
    friend bool operator==(const FieldChange&, const FieldChange&) = default;
};

// One write against one instance, described by natural keys; the applier turns it into a call.
struct Operation {
    Action action = Action::kCreate;
    Kind kind = Kind::kProduct;
    std::string product;  // owner product system_name (empty for backend-level objects)
    std::string backend;  // owner backend (backend objects), or the used backend (usages)
    std::string name;     // the object's key: system_name, plan, "GET /pets", "minute hits", ...
    std::string plan;     // limits and pricing rules
    std::vector<FieldChange> changes;  // what differs (create: expected values; delete: actual)
    bool unmanaged = false;            // a delete of something not in the desired state

    // Payload for the admin API (ids resolved by the applier at execution time).
    std::vector<std::pair<std::string, std::string>> form;
    std::optional<config::MetricRef> metric;  // -> metric_id
    std::optional<std::int64_t> position;     // mapping rules
    std::optional<ratelimit::Period> period;  // limits
    std::int64_t min = 0;                     // pricing rules (replace: the old rule's key)
    std::optional<std::int64_t> max;
    Id id = 0;  // existing object (update/delete/replace)
    // accounts: the account (admin username) users, applications and keys belong to, and the
    // state events to send after a create or update ("activate", "admin", "suspend", ...)
    std::string account;
    std::vector<std::string> events;
    // limits: the global value this instance's share comes from, its weight and the rule
    std::optional<std::int64_t> global_value;
    std::int64_t weight = 0;
    std::string split_rule;

    [[nodiscard]] std::string summary() const;  // "update limit basic/hits/minute"
};

// True when the operation changes what goes into the product's gateway configuration.
bool affects_proxy_config(const Operation& op);

struct DiffOptions {
    bool prune = false;
    // The fleet mirrors its portal instance (mirror:): the developer accounts, users and
    // applications no CR describes are the mirror's, and prune leaves them alone.
    bool developers_mirrored = false;
};

}  // namespace syncer
