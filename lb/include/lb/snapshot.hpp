#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

#include "lb/admin_state.hpp"

namespace lb {

// What a worker needs to route: every cluster's endpoints and whether the active checks pass.
// Built by the main context, published to each worker as shared_ptr<const Snapshot>, never
// mutated afterwards.
struct Snapshot {
    struct Endpoint {
        boost::asio::ip::tcp::endpoint address;
        bool healthy = true;
    };
    struct Cluster {
        std::vector<Endpoint> endpoints;
        AdminState admin = AdminState::kReady;
    };
    std::uint64_t generation = 0;
    std::vector<Cluster> clusters;  // in config order
};

using SnapshotPtr = std::shared_ptr<const Snapshot>;

}  // namespace lb
