#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "config/ha.hpp"
#include "config/yaml_reader.hpp"

namespace config {

// The APIManager CR and v1 Secrets of an instance, from the file or directory `node` names
// (relative to `base`, the fleet file's directory); problems in those files go to `diags`,
// problems with the reference itself to `fleet_reader` (at `where`).
std::optional<ApiManagerDoc> read_apimanager(YamlReader& fleet_reader,
                                             const YamlNode& node,
                                             const std::string& where,
                                             const std::filesystem::path& base,
                                             Diagnostics& diags);

}  // namespace config
