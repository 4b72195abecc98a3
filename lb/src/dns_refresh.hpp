#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "plane.hpp"

namespace lb {

// The clusters given by hostname: their first resolution, then one refresh loop each, due when
// the answer's TTL (clamped to dns.minTtl/maxTtl) runs out, or dns.retry after a failure (the
// last good answer stays). An answer adds and removes endpoints on the plane; a change during a
// refresh is reported through `on_change` with the endpoints added (the caller starts their
// checks and publishes a new snapshot).
class DnsRefresh {
public:
    using OnChange = std::function<void(
        const PlanePtr& plane, std::size_t cluster, const std::vector<EndpointPtr>& added)>;

    DnsRefresh(boost::asio::io_context& ctx, OnChange on_change);

    // Resolves every cluster of `p` without an answer yet, all at once; returns when each has
    // one (or its failure). Nothing is reported: the plane is not serving yet.
    boost::asio::awaitable<void> resolve_all(PlanePtr p);
    // Starts the refresh loop of every cluster of `p` given by hostname.
    void start(const PlanePtr& p);
    // Shutdown: no loop goes on, and resolutions in flight return at once.
    void stop();

private:
    boost::asio::awaitable<Resolution> resolve(Resolver& resolver, std::string host);
    boost::asio::awaitable<void> refresh_loop(PlanePtr p, std::size_t c);
    // Applies an answer to cluster `c`; the endpoints added, and whether any was removed.
    std::vector<EndpointPtr> apply(Plane& p, std::size_t c, const Resolution& r, bool& removed);

    boost::asio::io_context& ctx_;
    OnChange on_change_;
    std::set<boost::asio::steady_timer*> resolving_;  // resolutions in flight, woken by stop()
    bool stopped_ = false;
};

// When cluster `cl` of `p` is to be resolved again after an answer (`ok`) or a failure.
std::chrono::milliseconds next_refresh(const Plane& p, const ClusterState& cl, bool ok);

}  // namespace lb
