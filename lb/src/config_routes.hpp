#pragma once

#include "config/yaml_reader.hpp"
#include "lb/config.hpp"

namespace lb {

// routes: [{name, hosts, policy, clusters}] after the clusters are read: every named cluster must
// exist, a catch-all ("*") must come last, and a host no earlier route takes.
void read_routes(config::YamlReader& r, const config::YamlNode& root, LbConfig& out);

// clusters[].protocol against the routes: the clusters one route reaches (all of them without
// routes) speak one protocol; h2 is not combined with proxyProtocol.
void check_protocols(config::YamlReader& r, const config::YamlNode& root, const LbConfig& out);

}  // namespace lb
