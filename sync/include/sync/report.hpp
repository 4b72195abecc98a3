#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sync/admin_client.hpp"
#include "sync/applier.hpp"
#include "sync/operation.hpp"
#include "sync/splitter.hpp"

namespace syncer {

struct InstanceReport {
    std::string name;
    std::string admin_url;
    bool reachable = true;
    std::string error;  // empty when the instance was read
    std::vector<Operation> operations;
    std::optional<ApplyResult> applied;
    std::vector<std::string> notes;  // what this run leaves alone, and why
};

inline constexpr int kReportSchemaVersion = 1;

// Drift kinds: what the desired state has that the instance lacks (missing), a field that
// differs (changed), what the instance has beyond the desired state (unmanaged), a staging
// config that production does not serve yet (unpromoted).
struct DriftEntry {
    std::string instance;
    std::string kind;
    std::string object_type;
    std::string product;
    std::string backend;
    std::string name;
    std::string field;
    std::string expected;
    std::string actual;
    // split_mismatch: the global value, this instance's weight and how its share was computed
    std::optional<std::int64_t> global_value;
    std::int64_t weight = 0;
    std::string rule;
};

std::vector<DriftEntry> drift_entries(const std::vector<InstanceReport>& reports);

std::string plan_text(const std::vector<InstanceReport>& reports);
std::string plan_json(const std::vector<InstanceReport>& reports, const std::string& fleet_file);
std::string plan_markdown(const std::vector<InstanceReport>& reports);
std::string drift_text(const std::vector<InstanceReport>& reports);
std::string drift_json(const std::vector<InstanceReport>& reports, const std::string& fleet_file);
std::string drift_markdown(const std::vector<InstanceReport>& reports);
std::string apply_summary(const std::vector<InstanceReport>& reports);
// `tandem split`: each instance's share of every global limit, and the problems.
std::string split_text(const FleetSplit& split);
std::string split_json(const FleetSplit& split);

// Values that must not be shown: the proxy's shared secret, credentials inside URLs.
std::string redact(const std::string& field, const std::string& value);

}  // namespace syncer
