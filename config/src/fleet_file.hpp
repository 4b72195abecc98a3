#pragma once

#include <filesystem>
#include <optional>
#include <string>
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

// `caBundle` of `node` (relative to `base`), which must be a readable file; nullopt when absent.
std::optional<std::string> read_ca_bundle(YamlReader& r,
                                          const YamlNode& node,
                                          const std::string& where,
                                          const std::filesystem::path& base);

// serve: tandem serve's listener, pace, mode, balancers and re-split timings; the balancers'
// tokens only when `secrets` (tandem serve itself).
void read_serve(YamlReader& r,
                const YamlNode& root,
                const std::filesystem::path& base,
                bool secrets,
                Fleet& fleet);

// mirror: the portal instance and how its self-service objects reach the others; the webhook
// token only when `secrets`. Checked after the instances are read.
void read_mirror(YamlReader& r,
                 const YamlNode& root,
                 const std::filesystem::path& base,
                 bool secrets,
                 Fleet& fleet);

}  // namespace config
