// tandem doctor: 3scale's HA rules (the 3scale and OpenShift HA guides, the operator's code) over
// each instance's APIManager CR and Secrets, and across instances. The rules are in their
// families' files: instance_rules, database_rules, spec_path_rule, fleet_rules.
#include "ha/doctor.hpp"

#include <algorithm>
#include <tuple>

#include "instance_check.hpp"

namespace ha {

std::size_t DoctorReport::count(Severity s) const {
    return static_cast<std::size_t>(std::count_if(
        findings.begin(), findings.end(), [&](const Finding& f) { return f.severity == s; }));
}

int DoctorReport::exit_code() const {
    if (!unchecked.empty()) {
        return 1;
    }
    return count(Severity::kError) > 0 ? 2 : 0;
}

DoctorReport doctor(const config::Fleet& fleet) {
    DoctorReport report;
    report.fleet_file = fleet.file.string();
    std::vector<Checked> checked;
    for (const auto& instance : fleet.instances) {
        report.instances.push_back(instance.name);
        if (!instance.ha.apimanager) {
            report.unchecked.emplace_back(
                instance.name,
                "no apimanager: in the fleet file (the APIManager CR and Secrets to check)");
            continue;
        }
        checked.push_back({&instance, &*instance.ha.apimanager});
        InstanceCheck check(fleet, instance, *instance.ha.apimanager, report.findings);
        check_instance(check);
    }
    check_fleet(fleet, checked, report.findings);
    std::stable_sort(report.findings.begin(), report.findings.end(),
                     [](const Finding& a, const Finding& b) {
                         return std::tie(a.instance, a.severity, a.rule, a.object, a.field) <
                                std::tie(b.instance, b.severity, b.rule, b.object, b.field);
                     });
    return report;
}

}  // namespace ha
