#pragma once

#include <chrono>
#include <expected>
#include <string>

#include "config/fleet.hpp"
#include "serve/membership.hpp"
#include "sync/http_client.hpp"

namespace serve {

// One tandem-lb replica's admin API, as tandem serve uses it: GET /status (each cluster's
// health and runtime state) and PUT /clusters/NAME/state. Every call within `timeout`; the token
// only ever in the Authorization header.
class BalancerClient {
public:
    BalancerClient(const config::BalancerRef& ref,
                   syncer::HttpClient& http,
                   std::chrono::milliseconds timeout);

    // Unreachable (reachable = false) when it does not answer 200 with its clusters.
    BalancerView status(std::string* error = nullptr);
    // "ready", "drain" or "maint"; the error says what the balancer answered.
    std::expected<void, std::string> set_state(const std::string& cluster,
                                               const std::string& state);
    [[nodiscard]] const std::string& url() const { return ref_.url; }

private:
    const config::BalancerRef& ref_;
    syncer::HttpClient& http_;
    std::chrono::milliseconds timeout_;
};

}  // namespace serve
