#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "config/yaml_reader.hpp"
#include "lb/config.hpp"

namespace lb {

// `proxyProtocol: {accept: v1 | v2 | any, from: [CIDR, ...]}` of a listener (`map`: the root for
// `listen`, the https section).
void read_proxy_accept(config::YamlReader& r,
                       const config::YamlNode& map,
                       const std::string& path,
                       ProxyAcceptConfig& out);
// `proxyProtocol: v1 | v2` of a cluster.
void read_proxy_send(config::YamlReader& r,
                     const config::YamlNode& map,
                     const std::string& path,
                     std::optional<ProxyVersion>& out);

// retry.budget: {percent, minConcurrency} (`retry`: the retry section).
void read_retry_budget(config::YamlReader& r,
                       const config::YamlNode& retry,
                       RetryBudgetConfig& out);

// https.alpn: a list of "h2" and "http/1.1", each at most once, the preferred first.
void read_alpn(config::YamlReader& r, const config::YamlNode& https, std::vector<std::string>& out);

// The sections of tandem-lb's file for the balancer at the edge (accessLog, requestId,
// proxyProtocol, outlierDetection, retry.budget, h2c, http2) into
// `out`; every problem at its file:line. `base`: the configuration file's directory (relative
// paths are from there).
void read_edge(config::YamlReader& r,
               const config::YamlNode& root,
               const std::filesystem::path& base,
               LbConfig& out);

}  // namespace lb
