#pragma once

#include <filesystem>
#include <string>

#include "config/yaml_reader.hpp"
#include "references.hpp"

namespace config {

// metadata.name of a resource ("is required" when missing): how other resources reference it.
std::string metadata_name(YamlReader& r, const YamlNode& doc);

// A v1 Secret: stringData, base64 data, and values named by annotations
// (tandem.3scale.net/env.KEY: VARIABLE, tandem.3scale.net/file.KEY: PATH relative to `base`).
void read_secret(YamlReader& r,
                 const YamlNode& doc,
                 const std::filesystem::path& base,
                 Pending& pending);

// A DeveloperAccount, DeveloperUser, Application or ApplicationAuth CR (`kind`), kept until every
// document is read: they reference each other, Products and Secrets by name.
void read_account_kinds(YamlReader& r,
                        const YamlNode& doc,
                        const std::string& kind,
                        Pending& pending);

}  // namespace config
