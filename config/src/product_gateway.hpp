#pragma once

#include <vector>

#include "config/model.hpp"
#include "config/yaml_reader.hpp"
#include "references.hpp"

namespace config {

// spec.deployment: apicastHosted or apicastSelfManaged, their public base URLs and the
// authentication (userkey, appKeyAppID, oidc). Values that live in Secrets (issuerEndpointRef)
// go to `refs`, without the product's system name (the caller sets it).
void read_deployment(YamlReader& r,
                     const YamlNode& spec,
                     Product& product,
                     std::vector<ProductSecretRef>& refs);

// spec.policies: the chain (apicast added at the end when absent, as porta does);
// configurationRef Secrets go to `refs`.
void read_policies(YamlReader& r,
                   const YamlNode& spec,
                   Product& product,
                   std::vector<ProductSecretRef>& refs);

}  // namespace config
