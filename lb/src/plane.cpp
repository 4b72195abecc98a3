// A configuration generation's cluster and endpoint state, the snapshots the workers route on,
// and what a reload carries over from the previous generation.
#include "plane.hpp"

#include <algorithm>
#include <thread>

#include "endpoint_label.hpp"
#include "log.hpp"

namespace lb {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

std::vector<std::string> cluster_names(const LbConfig& c) {
    std::vector<std::string> out;
    for (const auto& cl : c.clusters) {
        out.push_back(cl.name);
    }
    return out;
}

}  // namespace

EndpointState::EndpointState(asio::io_context& ctx, tcp::endpoint a, const HealthCheckConfig& hc)
    : address(a), label(endpoint_label(a)), health(hc.rise, hc.fall, Health::kUp), timer(ctx) {}

void EndpointState::stop() {
    active = false;
    timer.cancel();
    if (probe) {
        error_code ignored;
        probe->socket().cancel(ignored);
    }
}

Plane::Plane(LbConfig c,
             std::uint64_t generation,
             const std::shared_ptr<MetricsRegistry>& registry,
             unsigned worker_count)
    : config(std::move(c)),
      id(generation),
      workers(worker_count),
      metrics(registry, cluster_names(config), worker_count),
      loaded_at(std::chrono::system_clock::now()) {}

unsigned threads_of(const LbConfig& c) {
    return c.threads != 0 ? c.threads : std::max(1u, std::thread::hardware_concurrency());
}

std::expected<PlanePtr, std::string> make_plane(asio::io_context& ctx,
                                                LbConfig c,
                                                std::uint64_t generation,
                                                const std::shared_ptr<MetricsRegistry>& registry,
                                                const Plane* prev) {
    const auto workers = threads_of(c);
    auto p = std::make_shared<Plane>(std::move(c), generation, registry, workers);
    auto tls = make_tls_contexts(p->config);
    if (!tls) {
        return std::unexpected(tls.error());
    }
    p->tls = std::move(*tls);
    auto server_tls = make_server_tls_context(p->config.https);
    if (!server_tls) {
        return std::unexpected(server_tls.error());
    }
    p->server_tls = std::move(*server_tls);
    for (const auto& cc : p->config.clusters) {
        ClusterState cl;
        cl.config = &cc;
        error_code ec;
        const auto ip = asio::ip::make_address(cc.address.host, ec);
        cl.is_ip = !ec;
        if (cl.is_ip) {
            cl.endpoints.push_back(std::make_shared<EndpointState>(
                ctx, tcp::endpoint(ip, cc.address.port), p->config.health_check));
            cl.resolved = true;
        }
        p->clusters.push_back(std::move(cl));
    }
    const auto& dns = p->config.dns;
    if (prev != nullptr && prev->resolver && prev->config.dns.servers == dns.servers &&
        prev->config.dns.timeout == dns.timeout) {
        p->resolver = prev->resolver;
    } else {
        p->resolver = std::make_shared<Resolver>(ctx, dns);
        const bool needs_dns = std::any_of(p->clusters.begin(), p->clusters.end(),
                                           [](const ClusterState& cl) { return !cl.is_ip; });
        if (needs_dns && !p->resolver->init_error().empty()) {
            return std::unexpected("DNS: " + p->resolver->init_error());
        }
    }
    return p;
}

void inherit(asio::io_context& ctx, Plane& next, const Plane& prev) {
    for (auto& cl : next.clusters) {
        // The runtime state an operator set follows the cluster's name, whatever else changed.
        for (const auto& o : prev.clusters) {
            if (o.config->name == cl.config->name) {
                cl.admin = o.admin;
            }
        }
        const auto it =
            std::find_if(prev.clusters.begin(), prev.clusters.end(), [&](const ClusterState& o) {
                return o.config->name == cl.config->name && o.config->address == cl.config->address;
            });
        if (it == prev.clusters.end()) {
            continue;
        }
        const bool same_check = next.config.health_check == prev.config.health_check &&
                                it->config->tls == cl.config->tls;
        cl.healthy = it->healthy;  // (logged as a change only when it changes)
        if (!cl.is_ip) {
            cl.dns_error = it->dns_error;
            cl.dns_at = it->dns_at;
            cl.dns_ttl = it->dns_ttl;
            cl.dns_failures = it->dns_failures;
            cl.resolved = it->resolved;
            cl.refresh_now = next.resolver != prev.resolver;  // (served meanwhile)
            cl.endpoints.clear();
            for (const auto& old : it->endpoints) {
                cl.endpoints.push_back(
                    std::make_shared<EndpointState>(ctx, old->address, next.config.health_check));
            }
        }
        if (!same_check) {
            continue;
        }
        for (auto& ep : cl.endpoints) {
            for (const auto& old : it->endpoints) {
                if (old->address == ep->address) {
                    ep->health = old->health;
                    ep->checked = old->checked;
                    ep->last = old->last;
                    ep->last_at = old->last_at;
                    ep->checks = old->checks;
                    ep->failures = old->failures;
                }
            }
        }
    }
}

SnapshotPtr Plane::snapshot(std::uint64_t generation) {
    auto s = std::make_shared<Snapshot>();
    s->generation = generation;
    for (std::size_t c = 0; c < clusters.size(); ++c) {
        auto& cl = clusters[c];
        Snapshot::Cluster out;
        bool any = false;
        for (const auto& ep : cl.endpoints) {
            out.endpoints.push_back({ep->address, ep->health.up()});
            any = any || ep->health.up();
        }
        if (any != cl.healthy) {
            log_line(any ? LogLevel::kInfo : LogLevel::kWarn,
                     "cluster " + cl.config->name +
                         (any ? " is healthy again" : " is DOWN: no endpoint passes its checks"));
        }
        cl.healthy = any;
        metrics.cluster_state(c, any, cl.endpoints.size(), cl.admin);
        out.admin = cl.admin;
        s->clusters.push_back(std::move(out));
    }
    return s;
}

bool Plane::any_healthy() const {
    return std::any_of(clusters.begin(), clusters.end(), [](const ClusterState& c) {
        return c.healthy && c.admin == AdminState::kReady;
    });
}

void Plane::stop() {
    retired = true;
    for (auto& cl : clusters) {
        if (cl.dns_timer) {
            cl.dns_timer->cancel();
        }
        for (auto& ep : cl.endpoints) {
            ep->stop();
        }
    }
}

std::string describe_changes(const Plane& prev, const Plane& next) {
    std::vector<std::string> added, removed, changed;
    for (const auto& c : next.config.clusters) {
        const auto it = std::find_if(prev.config.clusters.begin(), prev.config.clusters.end(),
                                     [&](const ClusterConfig& o) { return o.name == c.name; });
        if (it == prev.config.clusters.end()) {
            added.push_back(c.name);
        } else if (!(it->address == c.address) || it->weight != c.weight ||
                   it->backup != c.backup || !(it->tls == c.tls)) {
            changed.push_back(c.name);
        }
    }
    for (const auto& c : prev.config.clusters) {
        if (std::none_of(next.config.clusters.begin(), next.config.clusters.end(),
                         [&](const ClusterConfig& o) { return o.name == c.name; })) {
            removed.push_back(c.name);
        }
    }
    const auto list = [](const char* what, const std::vector<std::string>& names) {
        std::string out = std::string(what) + ": ";
        if (names.empty()) {
            return out + "none";
        }
        for (std::size_t i = 0; i < names.size(); ++i) {
            out += (i ? ", " : "") + names[i];
        }
        return out;
    };
    return list("added", added) + "; " + list("removed", removed) + "; " + list("changed", changed);
}

}  // namespace lb
