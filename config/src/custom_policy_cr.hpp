#pragma once

#include <map>
#include <string>

#include "config/fleet.hpp"
#include "config/yaml_reader.hpp"

namespace config {

// A CustomPolicyDefinition CR (capabilities.3scale.net/v1beta1: name, version, schema) into
// fleet.desired.custom_policies. The schema is an APIcast policy manifest: a mapping with name,
// version, summary and configuration, its version the CR's.
void read_custom_policy(YamlReader& r,
                        const YamlNode& doc,
                        Fleet& fleet,
                        std::map<std::string, Source>& seen);

// Products whose chain uses a policy that is neither builtin nor described by a
// CustomPolicyDefinition: a notice (it must already be in every instance's registry).
void check_custom_policies(Fleet& fleet, Diagnostics& out);

}  // namespace config
