#pragma once

#include <cstddef>
#include <functional>
#include <random>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

#include "plane.hpp"

namespace lb {

// Active health checks on the main context: one probe loop per endpoint (connect, TLS where
// the cluster has it, one request, the response status), jittered, faster while the endpoint
// is down. Each result goes into the endpoint's HealthState (rise/fall) and the metrics; a
// transition UP or DOWN is reported through `on_transition` (the caller publishes a new
// snapshot), as Envoy's checker reports through its host-status callback.
class HealthChecker {
public:
    using OnTransition = std::function<void(Plane& plane)>;

    HealthChecker(boost::asio::io_context& ctx, OnTransition on_transition);

    // Starts checking `ep` of cluster `c` (when the plane's checks are enabled) until the
    // endpoint or the plane is stopped, or stop().
    void start(const PlanePtr& p, std::size_t c, const EndpointPtr& ep);
    // No check is started or recorded any more (shutdown); the plane stops the loops.
    void stop() { stopped_ = true; }

private:
    boost::asio::awaitable<void> check_loop(PlanePtr p, std::size_t c, EndpointPtr ep);
    boost::asio::awaitable<ProbeResult> probe(PlanePtr p, std::size_t c, EndpointPtr ep);
    void record(Plane& p, std::size_t c, EndpointState& ep, const ProbeResult& result);
    std::chrono::milliseconds jittered(const HealthCheckConfig& hc, std::chrono::milliseconds base);

    boost::asio::io_context& ctx_;
    OnTransition on_transition_;
    std::mt19937 rng_;
    bool stopped_ = false;
};

}  // namespace lb
