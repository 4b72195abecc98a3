#pragma once

#include <filesystem>
#include <map>
#include <string>

#include "config/fleet.hpp"
#include "config/yaml_reader.hpp"
#include "references.hpp"

namespace config {

// An ActiveDoc CR (capabilities.3scale.net/v1beta1) into fleet.desired.active_docs: the OpenAPI
// document from a Secret (resolved once every document is read), a file (file:PATH, relative to
// `base`) or an http(s) URL (fetched by sync, with a timeout, before the first write).
void read_active_doc(YamlReader& r,
                     const YamlNode& doc,
                     const std::filesystem::path& base,
                     Fleet& fleet,
                     std::map<std::string, Source>& seen,
                     Pending& pending);

// The documents that live in Secrets, and the products the ActiveDocs name.
void resolve_active_docs(Fleet& fleet, const Pending& pending, Diagnostics& out);

}  // namespace config
