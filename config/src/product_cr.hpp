#pragma once

#include <map>
#include <string>

#include "config/fleet.hpp"
#include "config/yaml_reader.hpp"
#include "references.hpp"

namespace config {

// A Product CR into fleet.desired.products (its metadata.name noted in `pending` for the
// Applications that reference it). `seen` holds where each system name was defined first: a
// second definition is an error.
void read_product(YamlReader& r,
                  const YamlNode& doc,
                  Fleet& fleet,
                  std::map<std::string, Source>& seen,
                  Pending& pending);

// A Backend CR into fleet.desired.backends.
void read_backend(YamlReader& r,
                  const YamlNode& doc,
                  Fleet& fleet,
                  std::map<std::string, Source>& seen);

}  // namespace config
