#pragma once

#include <filesystem>
#include <vector>

#include "config/fleet.hpp"
#include "config/yaml_reader.hpp"

namespace config {

// instances: every instance with its token (unless options say tokens are not needed) and HA
// inputs; `base` is the fleet file's directory. Problems in APIManager files go to `diags`.
void read_instances(YamlReader& r,
                    const YamlNode& root,
                    const std::filesystem::path& base,
                    Fleet& fleet,
                    const LoadOptions& options,
                    Diagnostics& diags);

// ha: what the instances share (version, domain, tenant, mode, mirrored secret values).
void read_ha(YamlReader& r, const YamlNode& root, const std::filesystem::path& base, Fleet& fleet);

// split: the fleet's split policy and per-product ones.
void read_split(YamlReader& r, const YamlNode& root, Fleet& fleet);

}  // namespace config
