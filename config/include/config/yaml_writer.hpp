#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/diagnostic.hpp"

namespace config {

// One YAML document from a JSON value (block style; strings quoted whenever YAML would read
// them as something else, so "2.15", "true" and "0600" stay strings).
std::string to_yaml(const nlohmann::json& doc);

// The v1 Secrets of a YAML file (stringData or base64 data): name -> key -> value. nullopt
// with diagnostics when the file is unreadable or malformed.
std::optional<std::map<std::string, std::map<std::string, std::string>>> load_secrets_file(
    const std::filesystem::path& file, Diagnostics& diagnostics);

}  // namespace config
