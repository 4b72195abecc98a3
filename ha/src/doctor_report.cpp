// tandem doctor's report in text (terminal), JSON (pipelines) and markdown (PR comments).
#include <map>
#include <sstream>

#include "config/markdown.hpp"
#include "ha/doctor.hpp"

namespace ha {

namespace {

using Json = nlohmann::json;

const char* severity_name(Severity s) {
    switch (s) {
        case Severity::kError:
            return "error";
        case Severity::kWarning:
            return "warning";
        case Severity::kInfo:
            return "info";
    }
    return "error";
}

std::string where(const Finding& f) {
    if (f.source.file.empty()) {
        return {};
    }
    return f.source.file + (f.source.line > 0 ? ":" + std::to_string(f.source.line) : "");
}

std::string plural(std::size_t n, const char* word) {
    return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

std::string summary_line(const DoctorReport& r) {
    return plural(r.count(Severity::kError), "error") + ", " +
           plural(r.count(Severity::kWarning), "warning") + ", " +
           plural(r.count(Severity::kInfo), "note");
}

}  // namespace

std::string format_text(const DoctorReport& r) {
    std::ostringstream out;
    std::map<std::string, std::vector<const Finding*>> by_instance;
    for (const auto& f : r.findings) {
        by_instance[f.instance].push_back(&f);
    }
    std::vector<std::string> order = r.instances;
    order.emplace_back();  // fleet-wide last
    for (const auto& name : order) {
        const bool unchecked = std::any_of(r.unchecked.begin(), r.unchecked.end(),
                                           [&](const auto& u) { return u.first == name; });
        const auto& list = by_instance[name];
        const std::string title = name.empty() ? "across instances" : name;
        if (unchecked) {
            for (const auto& [n, why] : r.unchecked) {
                if (n == name) {
                    out << title << ": NOT CHECKED: " << why << "\n";
                }
            }
            continue;
        }
        if (list.empty()) {
            out << title << ": ok\n";
            continue;
        }
        std::size_t errors = 0;
        std::size_t warnings = 0;
        for (const auto* f : list) {
            errors += f->severity == Severity::kError ? 1 : 0;
            warnings += f->severity == Severity::kWarning ? 1 : 0;
        }
        out << title << ": " << plural(errors, "error") << ", " << plural(warnings, "warning")
            << "\n";
        for (const auto* f : list) {
            out << "  " << severity_name(f->severity)
                << std::string(8 - std::string(severity_name(f->severity)).size(), ' ') << f->rule
                << "  " << f->object << (f->field.empty() ? "" : " " + f->field);
            if (const auto w = where(*f); !w.empty()) {
                out << "  (" << w << ")";
            }
            out << "\n          " << f->message << "\n          fix: " << f->fix << "\n";
        }
    }
    out << "summary: " << summary_line(r) << " on " << plural(r.instances.size(), "instance");
    if (!r.unchecked.empty()) {
        out << " (" << r.unchecked.size() << " not checked)";
    }
    out << "\n";
    return out.str();
}

std::string format_json(const DoctorReport& r, const std::string& generated_at) {
    Json doc;
    doc["schema_version"] = 1;
    doc["tool"] = "tandem";
    doc["tool_version"] = "0.1.0";
    doc["report"] = "doctor";
    doc["generated_at"] = generated_at;
    doc["fleet"] = r.fleet_file;
    doc["complete"] = r.unchecked.empty();
    Json instances = Json::array();
    for (const auto& name : r.instances) {
        Json i{{"name", name}, {"checked", true}};
        for (const auto& [n, why] : r.unchecked) {
            if (n == name) {
                i["checked"] = false;
                i["reason"] = why;
            }
        }
        instances.push_back(i);
    }
    doc["instances"] = instances;
    doc["summary"] = {{"errors", r.count(Severity::kError)},
                      {"warnings", r.count(Severity::kWarning)},
                      {"notes", r.count(Severity::kInfo)}};
    Json findings = Json::array();
    for (const auto& f : r.findings) {
        findings.push_back({{"severity", severity_name(f.severity)},
                            {"rule", f.rule},
                            {"instance", f.instance.empty() ? Json() : Json(f.instance)},
                            {"object", f.object},
                            {"field", f.field},
                            {"file", f.source.file},
                            {"line", f.source.line},
                            {"message", f.message},
                            {"fix", f.fix}});
    }
    doc["findings"] = findings;
    return doc.dump(2) + "\n";
}

std::string format_markdown(const DoctorReport& r) {
    std::ostringstream out;
    out << "### tandem doctor: " << summary_line(r) << "\n\n";
    for (const auto& [name, why] : r.unchecked) {
        out << "- **" << name << "** not checked: " << config::markdown_escape(why) << "\n";
    }
    if (!r.unchecked.empty()) {
        out << "\n";
    }
    if (r.findings.empty()) {
        out << "Every instance follows the HA rules.\n";
        return out.str();
    }
    out << "| severity | instance | rule | object | field | what | fix | where |\n"
        << "|---|---|---|---|---|---|---|---|\n";
    for (const auto& f : r.findings) {
        out << "| " << severity_name(f.severity) << " | "
            << (f.instance.empty() ? "(all)" : f.instance) << " | " << f.rule << " | "
            << config::markdown_escape(f.object) << " | `" << config::markdown_escape(f.field)
            << "` | " << config::markdown_escape(f.message) << " | "
            << config::markdown_escape(f.fix) << " | " << config::markdown_escape(where(f))
            << " |\n";
    }
    return out.str();
}

}  // namespace ha
