#pragma once

#include <filesystem>

#include "config/yaml_reader.hpp"
#include "lb/config.hpp"

namespace lb {

// The sections of tandem-lb's file for the balancer at the edge (accessLog, requestId) into
// `out`; every problem at its file:line. `base`: the configuration file's directory (relative
// paths are from there).
void read_edge(config::YamlReader& r,
               const config::YamlNode& root,
               const std::filesystem::path& base,
               LbConfig& out);

}  // namespace lb
