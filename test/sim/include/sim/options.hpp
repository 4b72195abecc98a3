#pragma once

#include <chrono>
#include <cstddef>
#include <string>

namespace sim {

struct SimOptions {
    std::string name = "sim";     // instance name, shown by the gateway (X-Sim-Instance)
    std::string token;            // access token with account_management rw
    std::string read_only_token;  // optional: a token whose writes are refused
    std::string wildcard_domain = "example.com";
    // How long a deleted product/backend/account keeps its system_name/username taken.
    std::chrono::seconds purge_delay{10};
    std::size_t max_policy_chain_bytes = 2 * 1024 * 1024;
    bool seed_default_objects = true;  // a new tenant's "API" product, backend and developer
};

}  // namespace sim
