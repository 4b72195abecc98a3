#pragma once

#include <string>
#include <vector>

#include "config/fleet.hpp"

namespace ha {

enum class Severity { kError, kWarning, kInfo };

// One thing wrong (or worth knowing) about an instance's high availability, or about how the
// instances of a fleet agree. Never carries a secret value.
struct Finding {
    Severity severity = Severity::kError;
    std::string rule;      // replicas, pdb, anti-affinity, external-databases, wildcard-domain, ...
    std::string instance;  // empty: about the fleet as a whole
    std::string object;    // "APIManager apimanager", "Secret system-seed"
    std::string field;     // "spec.apicast.productionSpec.replicas", "ADMIN_PASSWORD"
    std::string message;   // what is wrong
    std::string fix;       // what to do
    config::Source source;
};

struct DoctorReport {
    std::string fleet_file;
    std::vector<std::string> instances;  // every instance of the fleet, in order
    // Instances that could not be checked (no `apimanager:` in the fleet file), and why.
    std::vector<std::pair<std::string, std::string>> unchecked;
    std::vector<Finding> findings;  // sorted: instance, severity, rule, field

    [[nodiscard]] std::size_t count(Severity s) const;
    // 0 clean (warnings allowed), 2 findings at error level, 1 could not check an instance.
    [[nodiscard]] int exit_code() const;
};

// The HA rules of 3scale's guides (replicas, PDBs, anti-affinity, external databases, mirrored
// and independent secrets, Redis URL forms) applied to every instance's APIManager CR and
// Secrets, and across the instances. Pure: no I/O, no clock.
DoctorReport doctor(const config::Fleet& fleet);

std::string format_text(const DoctorReport& report);
std::string format_json(const DoctorReport& report, const std::string& generated_at);
std::string format_markdown(const DoctorReport& report);

}  // namespace ha
