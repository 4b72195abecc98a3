#include "config/diagnostic.hpp"

#include <algorithm>

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

}  // namespace config
