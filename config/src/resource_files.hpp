#pragma once

#include <filesystem>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "config/fleet.hpp"
#include "config/yaml_reader.hpp"

namespace config {

// One place resource documents come from: a file, or standard input ("-").
struct ResourceInput {
    std::filesystem::path path;  // "-": standard input
    [[nodiscard]] bool is_stdin() const { return path == "-"; }
    [[nodiscard]] std::string name() const { return is_stdin() ? "<stdin>" : path.string(); }
    // Where relative paths inside it (Secret file annotations) start from.
    [[nodiscard]] std::filesystem::path base() const {
        return is_stdin() ? std::filesystem::path(".") : path.parent_path();
    }
};

// The fleet's `resources:` (or options.resources, relative to the working directory, which
// replace them): files, directories read recursively (*.yaml, *.yml; hidden directories such as
// .git and .github skipped) in a stable order, and "-" for standard input, at most once. A
// kustomization file is not a resource: it is skipped with a notice when it only lists files of
// the directory tandem reads anyway, and is an error, with what to run instead, when kustomize
// would change the resources (patches, name prefixes, generated Secrets, ...) or bring in files
// from elsewhere.
std::vector<ResourceInput> resource_inputs(YamlReader& r,
                                           const YamlNode& root,
                                           const std::filesystem::path& base,
                                           const LoadOptions& options,
                                           Diagnostics& diags);

// Every document of one input; nothing (with a diagnostic) when it cannot be read or parsed.
std::optional<std::vector<YamlNode>> read_resource(const ResourceInput& input,
                                                   std::istream& standard_input,
                                                   Diagnostics& diags);

}  // namespace config
