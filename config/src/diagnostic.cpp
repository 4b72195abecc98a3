#include "config/diagnostic.hpp"

#include <algorithm>
#include <ostream>

namespace config {

std::string Diagnostic::to_string() const {
    std::string out = source.file;
    if (source.line > 0) {
        out += ":" + std::to_string(source.line);
    }
    out += severity == Severity::kNotice ? ": notice: " : ": error: ";
    if (!path.empty()) {
        out += path + ": ";
    }
    return out + message;
}

bool has_errors(const Diagnostics& diagnostics) {
    return std::any_of(diagnostics.begin(), diagnostics.end(), [](const Diagnostic& d) {
        return d.severity == Diagnostic::Severity::kError;
    });
}

std::size_t print(std::ostream& out, const Diagnostics& diagnostics) {
    std::size_t errors = 0;
    for (const auto& d : diagnostics) {
        out << d.to_string() << "\n";
        errors += d.severity == Diagnostic::Severity::kError ? 1 : 0;
    }
    return errors;
}

std::string errors_in_one_line(const Diagnostics& diagnostics) {
    std::string out;
    for (const auto& d : diagnostics) {
        if (d.severity == Diagnostic::Severity::kError) {
            out += (out.empty() ? "" : "; ") + d.to_string();
        }
    }
    return out;
}

}  // namespace config
