// prometheus-cpp stays in this file.
#include "metrics.hpp"

#include <map>
#include <set>
#include <sstream>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

namespace lb {

namespace pm = prometheus;

void WorkerMetrics::request(std::size_t cluster,
                            unsigned status,
                            double seconds,
                            Protocol protocol) {
    const auto p = static_cast<std::size_t>(protocol);
    protocol_requests_[p]->Increment();
    levels_->requests[p].add(1);
    auto& c = at(cluster);
    const unsigned cls = status >= 100 && status < 600 ? status / 100 - 1 : 5;
    c.status[cls]->Increment();
    c.latency->Observe(seconds);
}

void WorkerMetrics::retry(std::size_t cluster, RetryReason reason) {
    at(cluster).retries[static_cast<std::size_t>(reason)]->Increment();
}

void WorkerMetrics::upstream_connect(std::size_t cluster, bool ok) {
    auto& c = at(cluster);
    (ok ? c.connects_ok : c.connects_failed)->Increment();
}

void WorkerMetrics::client_connections(int delta) {
    levels_->connections.add(delta);
    if (delta > 0) {
        accepted_->Increment(delta);
    }
}

void WorkerMetrics::client_connection_moved_in() {
    levels_->connections.add(1);
}

void WorkerMetrics::in_flight(std::size_t cluster, int delta) {
    levels_->in_flight[std::min(cluster, clusters_.size() - 1)].add(delta);
}

void WorkerMetrics::pool_idle(std::size_t cluster, int delta) {
    levels_->pool_idle[std::min(cluster, clusters_.size() - 1)].add(delta);
}

void WorkerMetrics::ejected(std::size_t cluster) {
    at(cluster).ejections->Increment();
}

void WorkerMetrics::outlier_ejected(std::size_t cluster) {
    at(cluster).outlier_ejections->Increment();
    levels_->outlier_ejections[std::min(cluster, clusters_.size() - 1)].add(1);
}

void WorkerMetrics::retry_refused(std::size_t cluster) {
    at(cluster).retries_refused->Increment();
    levels_->retries_refused[std::min(cluster, clusters_.size() - 1)].add(1);
}

void WorkerMetrics::access_log(bool written) {
    (written ? log_lines_ : log_dropped_)->Increment();
}

void WorkerMetrics::proxy_header_refused() {
    proxy_refused_->Increment();
}

void WorkerMetrics::h2_connection(int delta) {
    levels_->h2_connections.add(delta);
}

void WorkerMetrics::h2_stream(int delta) {
    levels_->h2_streams.add(delta);
}

void WorkerMetrics::h2_connection_error() {
    h2_errors_->Increment();
}

void WorkerMetrics::h2_upstream_connection(std::size_t cluster, int delta) {
    levels_->h2_upstreams[std::min(cluster, clusters_.size() - 1)].add(delta);
}

void WorkerMetrics::h2_ping_timeout() {
    h2_ping_timeouts_->Increment();
}

void WorkerMetrics::spliced(std::uint64_t bytes) {
    spliced_->Increment(static_cast<double>(bytes));
}

class MetricsRegistry {
public:
    std::shared_ptr<pm::Registry> registry = std::make_shared<pm::Registry>();
    std::vector<const Metrics*> live;  // generations still running
    std::set<pm::Gauge*> levels;       // gauges set from worker levels at scrape time
    pm::Family<pm::Counter>& requests = pm::BuildCounter()
                                            .Name("tandem_lb_requests_total")
                                            .Help("Requests answered, by cluster and status class")
                                            .Register(*registry);
    pm::Family<pm::Histogram>& latency =
        pm::BuildHistogram()
            .Name("tandem_lb_request_duration_seconds")
            .Help("Time from the request header to the end of the response, by cluster")
            .Register(*registry);
    pm::Family<pm::Counter>& retries = pm::BuildCounter()
                                           .Name("tandem_lb_retries_total")
                                           .Help(
                                               "Requests retried on another cluster, by the "
                                               "cluster that failed and the reason")
                                           .Register(*registry);
    pm::Family<pm::Counter>& connects = pm::BuildCounter()
                                            .Name("tandem_lb_upstream_connects_total")
                                            .Help("New upstream connections, by result")
                                            .Register(*registry);
    pm::Family<pm::Gauge>& in_flight = pm::BuildGauge()
                                           .Name("tandem_lb_upstream_requests_in_flight")
                                           .Help("Requests sent to a cluster and not finished")
                                           .Register(*registry);
    pm::Family<pm::Gauge>& pool_idle = pm::BuildGauge()
                                           .Name("tandem_lb_pool_idle_connections")
                                           .Help("Idle keep-alive upstream connections")
                                           .Register(*registry);
    pm::Family<pm::Gauge>& h2_upstreams = pm::BuildGauge()
                                              .Name("tandem_lb_h2_upstream_connections")
                                              .Help("HTTP/2 connections open to h2 clusters")
                                              .Register(*registry);
    pm::Family<pm::Counter>& ejections =
        pm::BuildCounter()
            .Name("tandem_lb_passive_ejections_total")
            .Help("Endpoints a worker stopped picking after a connect failure or per-try timeout")
            .Register(*registry);
    pm::Family<pm::Counter>& outlier_ejections =
        pm::BuildCounter()
            .Name("tandem_lb_outlier_ejections_total")
            .Help("Endpoints a worker ejected after consecutive gateway errors (outlierDetection)")
            .Register(*registry);
    pm::Family<pm::Counter>& retries_refused =
        pm::BuildCounter()
            .Name("tandem_lb_retries_refused_total")
            .Help("Retries the retry budget refused (retry.budget), by the cluster that failed")
            .Register(*registry);
    pm::Family<pm::Gauge>& connections = pm::BuildGauge()
                                             .Name("tandem_lb_client_connections")
                                             .Help("Open client connections")
                                             .Register(*registry);
    pm::Family<pm::Counter>& accepted = pm::BuildCounter()
                                            .Name("tandem_lb_client_connections_total")
                                            .Help("Client connections accepted")
                                            .Register(*registry);
    pm::Family<pm::Counter>& checks = pm::BuildCounter()
                                          .Name("tandem_lb_health_checks_total")
                                          .Help("Active health checks, by endpoint and result")
                                          .Register(*registry);
    pm::Family<pm::Histogram>& check_latency = pm::BuildHistogram()
                                                   .Name("tandem_lb_health_check_duration_seconds")
                                                   .Help("Active health check latency")
                                                   .Register(*registry);
    pm::Family<pm::Gauge>& endpoint_up = pm::BuildGauge()
                                             .Name("tandem_lb_endpoint_up")
                                             .Help("1 while the endpoint passes its checks")
                                             .Register(*registry);
    pm::Family<pm::Counter>& transitions = pm::BuildCounter()
                                               .Name("tandem_lb_endpoint_transitions_total")
                                               .Help("Endpoint health state changes")
                                               .Register(*registry);
    pm::Family<pm::Gauge>& cluster_up = pm::BuildGauge()
                                            .Name("tandem_lb_cluster_healthy")
                                            .Help("1 while at least one endpoint is up")
                                            .Register(*registry);
    pm::Family<pm::Gauge>& cluster_admin = pm::BuildGauge()
                                               .Name("tandem_lb_cluster_admin_state")
                                               .Help(
                                                   "1 for the cluster's runtime state (ready, "
                                                   "drain or maint: PUT /clusters/NAME/state)")
                                               .Register(*registry);
    pm::Family<pm::Gauge>& cluster_endpoints = pm::BuildGauge()
                                                   .Name("tandem_lb_cluster_endpoints")
                                                   .Help("Endpoints (resolved addresses)")
                                                   .Register(*registry);
    pm::Family<pm::Counter>& dns = pm::BuildCounter()
                                       .Name("tandem_lb_dns_resolutions_total")
                                       .Help("DNS resolutions of cluster hostnames, by result")
                                       .Register(*registry);
    pm::Family<pm::Counter>& reloads = pm::BuildCounter()
                                           .Name("tandem_lb_config_reloads_total")
                                           .Help("Configuration reloads (SIGHUP), by result")
                                           .Register(*registry);
    pm::Family<pm::Counter>& log_lines = pm::BuildCounter()
                                             .Name("tandem_lb_access_log_lines_total")
                                             .Help("Access log lines buffered for writing")
                                             .Register(*registry);
    pm::Family<pm::Counter>& log_dropped =
        pm::BuildCounter()
            .Name("tandem_lb_access_log_dropped_total")
            .Help("Access log lines dropped: the worker's buffer was full (the disk is slow)")
            .Register(*registry);
    pm::Family<pm::Counter>& proxy_refused =
        pm::BuildCounter()
            .Name("tandem_lb_proxy_protocol_refused_total")
            .Help("Connections from a trusted source closed: no valid PROXY header in time")
            .Register(*registry);
    pm::Family<pm::Counter>& protocol_requests =
        pm::BuildCounter()
            .Name("tandem_lb_client_requests_total")
            .Help("Requests (HTTP/2: streams) answered, by the protocol the client spoke")
            .Register(*registry);
    pm::Family<pm::Gauge>& h2_connections = pm::BuildGauge()
                                                .Name("tandem_lb_h2_connections")
                                                .Help("Open HTTP/2 client connections")
                                                .Register(*registry);
    pm::Family<pm::Gauge>& h2_streams = pm::BuildGauge()
                                            .Name("tandem_lb_h2_streams")
                                            .Help("Open HTTP/2 streams (requests under way)")
                                            .Register(*registry);
    pm::Family<pm::Counter>& h2_errors =
        pm::BuildCounter()
            .Name("tandem_lb_h2_connection_errors_total")
            .Help("HTTP/2 connections ended by a GOAWAY for a protocol error or a flood")
            .Register(*registry);
    pm::Family<pm::Counter>& h2_ping_timeouts =
        pm::BuildCounter()
            .Name("tandem_lb_h2_ping_timeouts_total")
            .Help("HTTP/2 connections closed: a PING went unanswered (http2.pingTimeout)")
            .Register(*registry);
    pm::Family<pm::Counter>& spliced =
        pm::BuildCounter()
            .Name("tandem_lb_spliced_bytes_total")
            .Help("Body bytes moved with splice(2), socket to pipe to socket (splice:)")
            .Register(*registry);
    pm::Counter& log_write_errors = pm::BuildCounter()
                                        .Name("tandem_lb_access_log_write_errors_total")
                                        .Help("Failed writes to the access log file")
                                        .Register(*registry)
                                        .Add({});
};

void count_access_log_write_error(MetricsRegistry& registry) {
    registry.log_write_errors.Increment();
}

std::shared_ptr<MetricsRegistry> make_metrics_registry() {
    auto r = std::make_shared<MetricsRegistry>();
    r->reloads.Add({{"result", "ok"}});
    r->reloads.Add({{"result", "failed"}});
    return r;
}

namespace {

const pm::Histogram::BucketBoundaries& latency_buckets() {
    static const pm::Histogram::BucketBoundaries b{
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
    return b;
}

}  // namespace

Metrics::Metrics(std::shared_ptr<MetricsRegistry> registry,
                 const std::vector<std::string>& clusters,
                 unsigned workers)
    : registry_(std::move(registry)), clusters_(clusters), workers_(workers) {
    auto& r = *registry_;
    static const char* kClasses[] = {"1xx", "2xx", "3xx", "4xx", "5xx", "other"};
    static const char* kReasons[] = {"connect", "reset", "per_try_timeout", "stale_connection"};
    std::vector<std::string> names = clusters;
    names.emplace_back("none");
    for (unsigned w = 0; w < workers; ++w) {
        const std::string worker = std::to_string(w);
        auto& wm = workers_[w];
        wm.levels_ = std::make_unique<WorkerMetrics::Levels>(names.size());
        wm.connections_ = &r.connections.Add({{"worker", worker}});
        r.levels.insert(wm.connections_);
        wm.accepted_ = &r.accepted.Add({{"worker", worker}});
        wm.log_lines_ = &r.log_lines.Add({{"worker", worker}});
        wm.log_dropped_ = &r.log_dropped.Add({{"worker", worker}});
        wm.proxy_refused_ = &r.proxy_refused.Add({{"worker", worker}});
        wm.protocol_requests_[0] =
            &r.protocol_requests.Add({{"protocol", "http/1.1"}, {"worker", worker}});
        wm.protocol_requests_[1] =
            &r.protocol_requests.Add({{"protocol", "h2"}, {"worker", worker}});
        wm.h2_connections_ = &r.h2_connections.Add({{"worker", worker}});
        wm.h2_streams_ = &r.h2_streams.Add({{"worker", worker}});
        r.levels.insert(wm.h2_connections_);
        r.levels.insert(wm.h2_streams_);
        wm.h2_errors_ = &r.h2_errors.Add({{"worker", worker}});
        wm.h2_ping_timeouts_ = &r.h2_ping_timeouts.Add({{"worker", worker}});
        wm.spliced_ = &r.spliced.Add({{"worker", worker}});
        for (const auto& name : names) {
            WorkerMetrics::PerCluster pc;
            for (std::size_t i = 0; i < 6; ++i) {
                pc.status[i] = &r.requests.Add(
                    {{"cluster", name}, {"code_class", kClasses[i]}, {"worker", worker}});
            }
            pc.latency = &r.latency.Add({{"cluster", name}, {"worker", worker}}, latency_buckets());
            for (std::size_t i = 0; i < 4; ++i) {
                pc.retries[i] = &r.retries.Add(
                    {{"cluster", name}, {"reason", kReasons[i]}, {"worker", worker}});
            }
            pc.connects_ok =
                &r.connects.Add({{"cluster", name}, {"result", "ok"}, {"worker", worker}});
            pc.connects_failed =
                &r.connects.Add({{"cluster", name}, {"result", "failed"}, {"worker", worker}});
            pc.in_flight = &r.in_flight.Add({{"cluster", name}, {"worker", worker}});
            pc.pool_idle = &r.pool_idle.Add({{"cluster", name}, {"worker", worker}});
            r.levels.insert(pc.in_flight);
            r.levels.insert(pc.pool_idle);
            pc.h2_upstreams = &r.h2_upstreams.Add({{"cluster", name}, {"worker", worker}});
            r.levels.insert(pc.h2_upstreams);
            pc.ejections = &r.ejections.Add({{"cluster", name}, {"worker", worker}});
            pc.outlier_ejections =
                &r.outlier_ejections.Add({{"cluster", name}, {"worker", worker}});
            pc.retries_refused = &r.retries_refused.Add({{"cluster", name}, {"worker", worker}});
            wm.clusters_.push_back(pc);
        }
    }
    for (const auto& name : clusters) {
        r.cluster_up.Add({{"cluster", name}});
        r.cluster_endpoints.Add({{"cluster", name}});
        r.dns.Add({{"cluster", name}, {"result", "ok"}});
        r.dns.Add({{"cluster", name}, {"result", "failed"}});
    }
    r.live.push_back(this);
}

Metrics::~Metrics() {
    std::erase(registry_->live, this);
}

void Metrics::health_check(std::size_t cluster,
                           const std::string& endpoint,
                           bool passed,
                           double seconds) {
    const auto& name = clusters_[cluster];
    registry_->checks
        .Add({{"cluster", name}, {"endpoint", endpoint}, {"result", passed ? "passed" : "failed"}})
        .Increment();
    registry_->check_latency.Add({{"cluster", name}}, latency_buckets()).Observe(seconds);
}

void Metrics::endpoint_state(std::size_t cluster, const std::string& endpoint, bool up) {
    registry_->endpoint_up.Add({{"cluster", clusters_[cluster]}, {"endpoint", endpoint}})
        .Set(up ? 1 : 0);
}

void Metrics::endpoint_transition(std::size_t cluster, const std::string& endpoint, bool up) {
    registry_->transitions
        .Add({{"cluster", clusters_[cluster]}, {"endpoint", endpoint}, {"to", up ? "up" : "down"}})
        .Increment();
}

void Metrics::endpoint_removed(std::size_t cluster, const std::string& endpoint) {
    const auto& name = clusters_[cluster];
    auto& up = registry_->endpoint_up.Add({{"cluster", name}, {"endpoint", endpoint}});
    registry_->endpoint_up.Remove(&up);
}

void Metrics::cluster_state(std::size_t cluster,
                            bool healthy,
                            std::size_t endpoints,
                            AdminState admin) {
    const auto& name = clusters_[cluster];
    registry_->cluster_up.Add({{"cluster", name}}).Set(healthy ? 1 : 0);
    registry_->cluster_endpoints.Add({{"cluster", name}}).Set(static_cast<double>(endpoints));
    for (const auto s : {AdminState::kReady, AdminState::kDrain, AdminState::kMaint}) {
        registry_->cluster_admin
            .Add({{"cluster", name}, {"state", std::string(admin_state_name(s))}})
            .Set(s == admin ? 1 : 0);
    }
}

void Metrics::cluster_removed(std::size_t cluster, const std::vector<std::string>& endpoints) {
    const auto& name = clusters_[cluster];
    auto& r = *registry_;
    for (const auto& e : endpoints) {
        r.endpoint_up.Remove(&r.endpoint_up.Add({{"cluster", name}, {"endpoint", e}}));
    }
    r.cluster_up.Remove(&r.cluster_up.Add({{"cluster", name}}));
    for (const auto s : {AdminState::kReady, AdminState::kDrain, AdminState::kMaint}) {
        r.cluster_admin.Remove(
            &r.cluster_admin.Add({{"cluster", name}, {"state", std::string(admin_state_name(s))}}));
    }
    r.cluster_endpoints.Remove(&r.cluster_endpoints.Add({{"cluster", name}}));
}

void Metrics::reload(bool ok) {
    registry_->reloads.Add({{"result", ok ? "ok" : "failed"}}).Increment();
}

void Metrics::dns_result(std::size_t cluster, bool ok) {
    registry_->dns.Add({{"cluster", clusters_[cluster]}, {"result", ok ? "ok" : "failed"}})
        .Increment();
}

std::int64_t Metrics::sum(LevelArray member, std::size_t cluster) const {
    std::int64_t total = 0;
    for (const auto& w : workers_) {
        total += ((*w.levels_).*member)[cluster].get();
    }
    return total;
}

std::int64_t Metrics::in_flight(std::size_t cluster) const {
    return sum(&WorkerMetrics::Levels::in_flight, cluster);
}

std::int64_t Metrics::pool_idle(std::size_t cluster) const {
    return sum(&WorkerMetrics::Levels::pool_idle, cluster);
}

std::int64_t Metrics::h2_upstreams(std::size_t cluster) const {
    return sum(&WorkerMetrics::Levels::h2_upstreams, cluster);
}

std::int64_t Metrics::outlier_ejections(std::size_t cluster) const {
    return sum(&WorkerMetrics::Levels::outlier_ejections, cluster);
}

std::int64_t Metrics::retries_refused(std::size_t cluster) const {
    return sum(&WorkerMetrics::Levels::retries_refused, cluster);
}

std::int64_t Metrics::client_connections() const {
    std::int64_t sum = 0;
    for (const auto& w : workers_) {
        sum += w.levels_->connections.get();
    }
    return sum;
}

std::int64_t Metrics::h2_connections() const {
    std::int64_t sum = 0;
    for (const auto& w : workers_) {
        sum += w.levels_->h2_connections.get();
    }
    return sum;
}

std::int64_t Metrics::h2_streams() const {
    std::int64_t sum = 0;
    for (const auto& w : workers_) {
        sum += w.levels_->h2_streams.get();
    }
    return sum;
}

std::int64_t Metrics::requests(Protocol protocol) const {
    std::int64_t sum = 0;
    for (const auto& w : workers_) {
        sum += w.levels_->requests[static_cast<std::size_t>(protocol)].get();
    }
    return sum;
}

std::string Metrics::serialize() const {
    // Levels of the same series (a cluster kept across a reload, a worker index) add up over
    // the generations still running; series nobody reports any more read 0.
    std::map<pm::Gauge*, std::int64_t> sums;
    for (auto* g : registry_->levels) {
        sums[g] = 0;
    }
    for (const Metrics* m : registry_->live) {
        for (const auto& w : m->workers_) {
            sums[w.connections_] += w.levels_->connections.get();
            sums[w.h2_connections_] += w.levels_->h2_connections.get();
            sums[w.h2_streams_] += w.levels_->h2_streams.get();
            for (std::size_t c = 0; c < w.clusters_.size(); ++c) {
                sums[w.clusters_[c].in_flight] += w.levels_->in_flight[c].get();
                sums[w.clusters_[c].pool_idle] += w.levels_->pool_idle[c].get();
                sums[w.clusters_[c].h2_upstreams] += w.levels_->h2_upstreams[c].get();
            }
        }
    }
    for (const auto& [gauge, value] : sums) {
        gauge->Set(static_cast<double>(value));
    }
    std::ostringstream out;
    pm::TextSerializer().Serialize(out, registry_->registry->Collect());
    return out.str();
}

}  // namespace lb
