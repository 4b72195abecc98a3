#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lb/admin_state.hpp"

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
}  // namespace prometheus

namespace lb {

enum class RetryReason { kConnect, kReset, kPerTryTimeout, kStaleConnection };
// What a client spoke: HTTP/1.x, or HTTP/2 (h2 by ALPN, h2c).
enum class Protocol { kHttp1, kH2 };

// One worker's instruments, resolved once at startup: the request path only touches its own
// counters (labelled worker="N"), so no two threads share a cache line or a histogram mutex.
class WorkerMetrics {
public:
    static constexpr std::size_t kNoCluster = static_cast<std::size_t>(-1);

    // A finished request: `cluster` that answered (kNoCluster for local answers such as 400,
    // 408, 413, 431 and 503 with nothing healthy), its status and total latency.
    void request(std::size_t cluster,
                 unsigned status,
                 double seconds,
                 Protocol protocol = Protocol::kHttp1);
    void retry(std::size_t cluster, RetryReason reason);
    void upstream_connect(std::size_t cluster, bool ok);
    void client_connections(int delta);
    // A connection handed over by the previous generation: open here, not accepted again.
    void client_connection_moved_in();
    void in_flight(std::size_t cluster, int delta);
    void pool_idle(std::size_t cluster, int delta);
    void ejected(std::size_t cluster);
    // Outlier detection ejected an endpoint of `cluster` (OutlierConfig).
    void outlier_ejected(std::size_t cluster);
    // A retry the budget refused (RetryBudgetConfig).
    void retry_refused(std::size_t cluster);
    // An access log line written to the worker's buffer, or dropped (the buffer was full).
    void access_log(bool written);
    // A connection from a trusted source closed: no valid PROXY protocol header in time.
    void proxy_header_refused();
    // HTTP/2: connections open (of client_connections), streams open, and connections ended
    // for a protocol error or a flood (GOAWAY sent).
    void h2_connection(int delta);
    void h2_stream(int delta);
    void h2_connection_error();
    // An HTTP/2 connection closed: its PING went unanswered (http2.pingTimeout).
    void h2_ping_timeout();
    // HTTP/2 connections open to an h2 cluster (clusters[].protocol: h2).
    void h2_upstream_connection(std::size_t cluster, int delta);
    // Body bytes moved with splice(2) (config.splice), never copied through user space.
    void spliced(std::uint64_t bytes);

private:
    friend class Metrics;
    // Levels change twice per request: plain per-worker atomics with one writer (a load and a
    // store, no read-modify-write), copied into the gauges when /metrics is scraped.
    struct Level {
        std::atomic<std::int64_t> value{0};
        void add(int delta) {
            value.store(value.load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
        }
        [[nodiscard]] std::int64_t get() const { return value.load(std::memory_order_relaxed); }
    };
    struct Levels {
        explicit Levels(std::size_t clusters)
            : in_flight(std::make_unique<Level[]>(clusters)),
              pool_idle(std::make_unique<Level[]>(clusters)),
              outlier_ejections(std::make_unique<Level[]>(clusters)),
              retries_refused(std::make_unique<Level[]>(clusters)),
              h2_upstreams(std::make_unique<Level[]>(clusters)) {}
        std::unique_ptr<Level[]> in_flight;
        std::unique_ptr<Level[]> pool_idle;
        std::unique_ptr<Level[]> outlier_ejections;  // (totals, for /status)
        std::unique_ptr<Level[]> retries_refused;
        std::unique_ptr<Level[]> h2_upstreams;
        Level connections;
        Level h2_connections;
        Level h2_streams;
        Level requests[2];  // by Protocol (totals, for /status)
    };
    struct PerCluster {
        prometheus::Counter* status[6]{};  // 1xx..5xx and "other"
        prometheus::Histogram* latency = nullptr;
        prometheus::Counter* retries[4]{};
        prometheus::Counter* connects_ok = nullptr;
        prometheus::Counter* connects_failed = nullptr;
        prometheus::Gauge* in_flight = nullptr;
        prometheus::Gauge* pool_idle = nullptr;
        prometheus::Gauge* h2_upstreams = nullptr;
        prometheus::Counter* ejections = nullptr;
        prometheus::Counter* outlier_ejections = nullptr;
        prometheus::Counter* retries_refused = nullptr;
    };
    // A cluster's instruments; kNoCluster (and anything out of range) is "none", the last.
    PerCluster& at(std::size_t cluster) {
        return clusters_[std::min(cluster, clusters_.size() - 1)];
    }
    std::vector<PerCluster> clusters_;  // the last one is "none"
    std::unique_ptr<Levels> levels_;    // indexed like clusters_
    prometheus::Gauge* connections_ = nullptr;
    prometheus::Counter* accepted_ = nullptr;
    prometheus::Counter* log_lines_ = nullptr;
    prometheus::Counter* log_dropped_ = nullptr;
    prometheus::Counter* proxy_refused_ = nullptr;
    prometheus::Counter* protocol_requests_[2]{};
    prometheus::Gauge* h2_connections_ = nullptr;
    prometheus::Gauge* h2_streams_ = nullptr;
    prometheus::Counter* h2_errors_ = nullptr;
    prometheus::Counter* h2_ping_timeouts_ = nullptr;
    prometheus::Counter* spliced_ = nullptr;
};

// The process-wide registry: every series, whichever configuration generation made it. A reload
// asks for the same labels again and gets the same series, so counters carry on.
class MetricsRegistry;
std::shared_ptr<MetricsRegistry> make_metrics_registry();
// A write to the access log file failed (any thread).
void count_access_log_write_error(MetricsRegistry& registry);

// One configuration generation's instruments (its clusters, its workers), in the shared
// registry; /metrics serializes the registry with the levels of every live generation.
class Metrics {
public:
    Metrics(std::shared_ptr<MetricsRegistry> registry,
            const std::vector<std::string>& clusters,
            unsigned workers);
    ~Metrics();
    Metrics(const Metrics&) = delete;
    Metrics& operator=(const Metrics&) = delete;

    WorkerMetrics& worker(unsigned index) { return workers_[index]; }

    // Control plane (main context only).
    void health_check(std::size_t cluster,
                      const std::string& endpoint,
                      bool passed,
                      double seconds);
    void endpoint_state(std::size_t cluster, const std::string& endpoint, bool up);
    void endpoint_transition(std::size_t cluster, const std::string& endpoint, bool up);
    void endpoint_removed(std::size_t cluster, const std::string& endpoint);
    void cluster_state(std::size_t cluster, bool healthy, std::size_t endpoints, AdminState admin);
    // The cluster left the configuration: its state series go (its counters stay).
    void cluster_removed(std::size_t cluster, const std::vector<std::string>& endpoints);
    void dns_result(std::size_t cluster, bool ok);
    void reload(bool ok);

    // Sums over the workers (relaxed reads of atomics), for /status.
    [[nodiscard]] std::int64_t in_flight(std::size_t cluster) const;
    [[nodiscard]] std::int64_t pool_idle(std::size_t cluster) const;
    [[nodiscard]] std::int64_t h2_upstreams(std::size_t cluster) const;
    [[nodiscard]] std::int64_t outlier_ejections(std::size_t cluster) const;
    [[nodiscard]] std::int64_t retries_refused(std::size_t cluster) const;
    [[nodiscard]] std::int64_t client_connections() const;
    [[nodiscard]] std::int64_t h2_connections() const;
    [[nodiscard]] std::int64_t h2_streams() const;
    [[nodiscard]] std::int64_t requests(Protocol protocol) const;
    // The whole registry; levels summed over every live generation.
    [[nodiscard]] std::string serialize() const;

private:
    friend class MetricsRegistry;
    using LevelArray = std::unique_ptr<WorkerMetrics::Level[]> WorkerMetrics::Levels::*;
    // A per-cluster level summed over the workers.
    [[nodiscard]] std::int64_t sum(LevelArray member, std::size_t cluster) const;
    std::shared_ptr<MetricsRegistry> registry_;
    std::vector<std::string> clusters_;
    std::vector<WorkerMetrics> workers_;
};

}  // namespace lb
