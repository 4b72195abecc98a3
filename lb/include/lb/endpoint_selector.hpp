#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

#include "lb/config.hpp"
#include "lb/picker.hpp"
#include "lb/snapshot.hpp"

namespace lb {

// Which endpoint a request goes to: the picker chooses the cluster (weighted round robin,
// backup tier) among those with an eligible endpoint, then the cluster's endpoints take turns.
// An endpoint is eligible when the active checks pass and no passive ejection (a connect
// failure, a per-try timeout) holds it; when ejections leave nothing eligible, the active checks'
// view alone decides, so an ejection never turns into a 503 by itself. Pure: the caller passes
// the snapshot and the time in.
class EndpointSelector {
public:
    using Clock = std::chrono::steady_clock;
    struct Choice {
        std::size_t cluster;
        boost::asio::ip::tcp::endpoint address;
    };

    // `members`: every cluster's weight and backup flag; `routes`: each route's policy and
    // clusters (none: one route, round robin over every cluster).
    explicit EndpointSelector(std::vector<Picker::Member> members,
                              const std::vector<RouteConfig>& routes = {});

    // A new snapshot: endpoints keep their ejection by address, unless a check passed since (an
    // endpoint unhealthy before and healthy now is trusted again); the round robin goes on.
    void apply(const Snapshot& snapshot);
    // The next choice, or nullopt when no endpoint passes its checks. `exclude` (the cluster
    // that just failed) is skipped when another cluster can take the request.
    // `route` (an index of the routes given, or 0) decides among which clusters and how:
    // round robin, or the first eligible in the route's order (primary).
    std::optional<Choice> choose(std::size_t route,
                                 std::optional<std::size_t> exclude,
                                 Clock::time_point now);
    std::optional<Choice> choose(std::optional<std::size_t> exclude, Clock::time_point now) {
        return choose(0, exclude, now);
    }
    // Ejects the chosen endpoint until now + `duration`; true when it was not ejected already
    // (a new ejection, as counted by tandem_lb_ejections_total). Nothing when it is gone.
    bool eject(const Choice& choice, Clock::time_point now, Clock::duration duration);
    // Outlier detection (OutlierConfig): what the chosen endpoint answered — a gateway error
    // (a 502, 503 or 504 from it, a failed connect, a per-try timeout) or not. The
    // `consecutive_errors`-th error in a row ejects it for base_ejection x its ejections so far
    // (at most max_ejection), unless max_ejection_percent of its cluster is ejected already
    // (one endpoint always may be); each base_ejection it then answers well takes one ejection
    // off its count. True when this ejected it. Nothing when the rule is off (0) or it is gone.
    bool report(const Choice& choice,
                bool gateway_error,
                Clock::time_point now,
                const OutlierConfig& config);

private:
    struct Endpoint {
        boost::asio::ip::tcp::endpoint address;
        bool healthy = true;
        Clock::time_point ejected_until{};
        std::uint32_t errors = 0;     // gateway errors in a row
        std::uint32_t ejections = 0;  // outlier ejections not yet forgiven
        Clock::time_point forgive_from{};
    };
    Endpoint* find(const Choice& choice);
    struct Cluster {
        std::vector<Endpoint> endpoints;
        std::size_t next = 0;    // round robin over the endpoints
        bool in_service = true;  // AdminState::kReady
    };

    struct Route {
        RoutePolicy policy = RoutePolicy::kRoundRobin;
        std::vector<std::size_t> clusters;  // member -> cluster index, in the route's order
        Picker picker;                      // over the members (round robin)
        std::vector<bool> eligible;         // scratch per member
    };
    // The cluster `route` takes among the eligible ones (eligible_ filled), or nullopt.
    std::optional<std::size_t> pick_cluster(Route& route, std::optional<std::size_t> exclude);

    std::vector<Route> routes_;
    std::vector<Cluster> clusters_;
    std::vector<bool> eligible_;  // scratch for choose(), no allocation per request
};

}  // namespace lb
