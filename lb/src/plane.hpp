#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include "lb/config.hpp"
#include "lb/health_state.hpp"
#include "lb/resolver.hpp"
#include "lb/snapshot.hpp"
#include "metrics.hpp"
#include "tls.hpp"

namespace lb {

// The outcome of one active health check.
struct ProbeResult {
    bool ok = false;
    unsigned status = 0;
    double seconds = 0;
    std::string error;
};

// One address of a cluster (its IP address, or one of its DNS answers) as the main context knows
// it: health and check history, and the check loop's timer and probe connection.
struct EndpointState {
    EndpointState(boost::asio::io_context& ctx,
                  boost::asio::ip::tcp::endpoint a,
                  const HealthCheckConfig& hc);
    // Ends its check loop: the timer and a probe in flight are cancelled.
    void stop();

    boost::asio::ip::tcp::endpoint address;
    std::string label;
    HealthState health;
    boost::asio::steady_timer timer;
    bool active = true;
    std::shared_ptr<boost::beast::tcp_stream> probe;
    bool checked = false;
    ProbeResult last;
    std::chrono::system_clock::time_point last_at{};
    std::uint64_t checks = 0;
    std::uint64_t failures = 0;
};
using EndpointPtr = std::shared_ptr<EndpointState>;

struct ClusterState {
    const ClusterConfig* config = nullptr;
    bool is_ip = false;
    bool resolved = false;  // has an answer (an IP address, or DNS, or the previous generation's)
    std::vector<EndpointPtr> endpoints;
    bool healthy = true;
    AdminState admin = AdminState::kReady;  // set through the admin API; survives reloads
    std::unique_ptr<boost::asio::steady_timer> dns_timer;
    std::string dns_error;
    std::chrono::system_clock::time_point dns_at{};
    std::chrono::seconds dns_ttl{0};
    std::uint64_t dns_failures = 0;
    bool refresh_now = false;  // an answer inherited from other DNS servers: ask the new ones
};

// One configuration generation's view of the clusters: the configuration, every cluster's
// endpoints with their DNS and health-check state, the TLS contexts, the DNS channel and the
// generation's metrics. A reload builds the next plane beside it (inheriting what it knew);
// the workers route on the snapshots it builds.
struct Plane {
    Plane(LbConfig c,
          std::uint64_t generation,
          const std::shared_ptr<MetricsRegistry>& registry,
          unsigned workers);

    // The immutable view a worker routes on, numbered `generation`; records each cluster's
    // health (logged when it changes) and its metrics.
    SnapshotPtr snapshot(std::uint64_t generation);
    // A cluster that is healthy and ready (not in drain or maint): what /healthz asks.
    [[nodiscard]] bool any_healthy() const;
    // Replaced by a reload or shutting down: its checks and DNS refreshes stop.
    void stop();

    LbConfig config;  // never changed: workers and cluster states point into it
    std::uint64_t id;
    unsigned workers;                // how many workers route on it
    std::vector<TlsContextPtr> tls;  // per cluster; nullptr where TLS is off
    TlsContextPtr server_tls;        // the https listener's certificate (a reload renews it)
    // c-ares channel (dns.servers, dns.timeout): the previous generation's when those are the
    // same. A generation whose refresh is still resolving keeps its own alive.
    std::shared_ptr<Resolver> resolver;
    std::vector<ClusterState> clusters;
    Metrics metrics;
    bool retired = false;
    std::chrono::system_clock::time_point loaded_at;
};
using PlanePtr = std::shared_ptr<Plane>;

// The number of workers `c` asks for (threads: 0 means one per core).
unsigned threads_of(const LbConfig& c);

// A plane for `c`: TLS contexts, the DNS channel (`prev`'s when its settings are the same) and
// cluster states; clusters given by IP address have their endpoint already. An error names
// what failed (a certificate file, the DNS channel).
std::expected<PlanePtr, std::string> make_plane(boost::asio::io_context& ctx,
                                                LbConfig c,
                                                std::uint64_t generation,
                                                const std::shared_ptr<MetricsRegistry>& registry,
                                                const Plane* prev);

// A reload keeps a cluster's runtime state (ready, drain, maint) by its name, and what the
// previous plane knew about a cluster of the same name and address: its
// DNS answer (no new lookup before serving; with new DNS servers, a lookup right after) and,
// when the health check is configured the same way, each endpoint's health and check history
// (no endpoint that is down is tried again, none that is up waits for `rise` checks).
void inherit(boost::asio::io_context& ctx, Plane& next, const Plane& prev);

// What a reload changes in the clusters: "added: a; removed: none; changed: b".
std::string describe_changes(const Plane& prev, const Plane& next);

}  // namespace lb
