#pragma once

#include <cstddef>
#include <iosfwd>
#include <string>
#include <vector>

namespace config {

// Where something was written: a file and a 1-based line (0 when unknown).
struct Source {
    std::string file;
    int line = 0;
    friend bool operator==(const Source&, const Source&) = default;
};

// One problem found while loading or validating, with where it is and what to do.
struct Diagnostic {
    enum class Severity { kError, kNotice };
    Severity severity = Severity::kError;
    Source source;
    std::string path;  // field path, e.g. "spec.applicationPlans.basic.limits[0].period"
    std::string message;

    // "products/pets.yaml:12: spec.mappingRules[2].httpMethod: TRACE is refused by 3scale ..."
    [[nodiscard]] std::string to_string() const;
};

using Diagnostics = std::vector<Diagnostic>;

bool has_errors(const Diagnostics& diagnostics);

// Every diagnostic on its own line, as to_string() writes it; returns how many are errors.
std::size_t print(std::ostream& out, const Diagnostics& diagnostics);
// The errors on one line, "; "-separated (a log line); empty when there is none.
std::string errors_in_one_line(const Diagnostics& diagnostics);

}  // namespace config
