#pragma once

#include <chrono>
#include <expected>
#include <string>

#include "lb/config.hpp"

namespace lb {

// `tandem-lb --healthcheck`: GET /healthz on the running balancer's admin listener (as `config`
// names it; 0.0.0.0 and :: mean the loopback), everything within `timeout`. Nothing when it
// answers 200; otherwise what it said or why it could not be asked ("503 no healthy cluster",
// "cannot connect to 127.0.0.1:9901: Connection refused"). For docker HEALTHCHECK, keepalived's
// track script and systemd: no curl needed on the host or in the image.
std::expected<void, std::string> check_health(
    const LbConfig& config, std::chrono::milliseconds timeout = std::chrono::seconds(2));

}  // namespace lb
