#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/fleet.hpp"
#include "ha/components.hpp"
#include "ha/doctor.hpp"

namespace ha {

using Json = nlohmann::json;

// "/apicast/productionSpec" -> "spec.apicast.productionSpec"
inline std::string dotted(const std::string& pointer) {
    std::string out = "spec";
    for (const char ch : pointer) {
        out += ch == '/' ? '.' : ch;
    }
    return out;
}

inline const Json* at(const Json& root, const std::string& pointer) {
    const Json::json_pointer p(pointer);
    if (!root.contains(p)) {
        return nullptr;
    }
    return &root.at(p);
}

inline bool truthy(const Json* j) {
    return j != nullptr && j->is_boolean() && j->get<bool>();
}

inline std::string value_or(const Json* j, const std::string& fallback) {
    return j != nullptr && j->is_string() ? j->get<std::string>() : fallback;
}

// What every per-instance rule works on: the fleet, the instance, its APIManager CR and Secrets,
// the 3scale version its fields are read for, and where findings go.
struct InstanceCheck {
    InstanceCheck(const config::Fleet& fleet,
                  const config::Instance& instance,
                  const config::ApiManagerDoc& am,
                  std::vector<Finding>& out);

    void add(Severity s,
             std::string rule,
             std::string object,
             std::string field,
             std::string message,
             std::string fix,
             config::Source source);
    // Where a field of spec (a JSON pointer below /spec) was written.
    [[nodiscard]] config::Source where(const std::string& pointer) const;
    [[nodiscard]] bool zync_enabled() const;
    [[nodiscard]] bool present_in(const Component& c) const;
    [[nodiscard]] int wanted_replicas() const { return std::max(2, instance.ha.zones); }

    const config::Fleet& fleet;
    const config::Instance& instance;
    const config::ApiManagerDoc& am;
    std::vector<Finding>& out;
    std::string version;  // 3scale version: the CR's annotation, else ha.version
    int minor = 15;       // its minor number (2.15 -> 15)
    std::string object;   // "APIManager NAME"
};

// The rule families over one instance, each in its own file.
// instance_rules.cpp: every per-instance rule in order (the families below included); the
// wildcard domain, replicas, anti-affinity and PDBs.
void check_instance(InstanceCheck& check);
// database_rules.cpp: external databases as the operator of this version decides, the
// database connection Secrets (keys, URL forms, Redis Sentinel), and the tenant the seed Secret
// names.
void check_external_databases(InstanceCheck& check);
void check_database_secrets(InstanceCheck& check);
void check_tenant(InstanceCheck& check);
// spec_path_rule.cpp: fields the operator of this version does not know.
void check_spec_fields(InstanceCheck& check);

// fleet_rules.cpp: across the checked instances (wildcard domains, mirrored Secrets, independent
// databases).
struct Checked {
    const config::Instance* instance;
    const config::ApiManagerDoc* am;
};
void check_fleet(const config::Fleet& fleet,
                 const std::vector<Checked>& checked,
                 std::vector<Finding>& out);

}  // namespace ha
