#include "upstream_pool.hpp"

#include <cerrno>

#include <sys/socket.h>

namespace lb {

void UpstreamPool::forget(std::size_t cluster, Endpoint& e) {
    if (!e.idle.empty()) {
        metrics_.pool_idle(cluster, -static_cast<int>(e.idle.size()));
        e.idle.clear();
    }
}

void UpstreamPool::apply(const Snapshot& snapshot) {
    std::vector<std::vector<Endpoint>> next(snapshot.clusters.size());
    for (std::size_t c = 0; c < snapshot.clusters.size(); ++c) {
        for (const auto& e : snapshot.clusters[c].endpoints) {
            // (maint: no traffic at all, its idle connections go too)
            Endpoint local{
                e.address, e.healthy && snapshot.clusters[c].admin != AdminState::kMaint, {}};
            if (c < clusters_.size()) {
                for (auto& o : clusters_[c]) {
                    if (o.address == e.address) {
                        local.idle = std::move(o.idle);
                        break;
                    }
                }
            }
            if (!local.healthy) {
                forget(c, local);  // don't reuse connections to it
            }
            next[c].push_back(std::move(local));
        }
    }
    // Endpoints that left the DNS answer: drop their idle connections.
    for (std::size_t c = 0; c < clusters_.size(); ++c) {
        for (auto& o : clusters_[c]) {
            forget(c, o);
        }
    }
    clusters_ = std::move(next);
}

UpstreamPool::Endpoint* UpstreamPool::find(std::size_t cluster,
                                           const boost::asio::ip::tcp::endpoint& address) {
    if (cluster >= clusters_.size()) {
        return nullptr;
    }
    for (auto& e : clusters_[cluster]) {
        if (e.address == address) {
            return &e;
        }
    }
    return nullptr;
}

UpstreamPtr UpstreamPool::take(const Choice& choice,
                               Clock::time_point now,
                               bool probe,
                               std::string_view owner) {
    auto* e = find(choice.cluster, choice.address);
    if (e == nullptr) {
        return nullptr;
    }
    for (std::size_t i = e->idle.size(); i-- > 0;) {
        if (e->idle[i]->owner != owner && now - e->idle[i]->idle_since <= config_.idle_timeout) {
            continue;  // another client's (PROXY protocol)
        }
        UpstreamPtr up = std::move(e->idle[i]);
        e->idle.erase(e->idle.begin() + static_cast<std::ptrdiff_t>(i));
        metrics_.pool_idle(choice.cluster, -1);
        if (now - up->idle_since > config_.idle_timeout) {
            continue;  // too old to trust: closed
        }
        if (!probe) {
            up->reused = true;
            return up;
        }
        // A connection the upstream closed while idle reads as EOF (or data it should not
        // have sent): never reuse it. One non-blocking peek; no handler, no timer.
        char byte = 0;
        const ssize_t r = ::recv(up->socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            up->reused = true;
            return up;
        }
    }
    return nullptr;
}

void UpstreamPool::give_back(const Choice& choice, UpstreamPtr upstream, Clock::time_point now) {
    auto* e = find(choice.cluster, choice.address);
    if (e == nullptr || !e->healthy || closed_ || config_.max_idle_per_endpoint == 0) {
        return;  // closes it
    }
    if (e->idle.size() >= config_.max_idle_per_endpoint) {
        e->idle.erase(e->idle.begin());  // the least recently used
        metrics_.pool_idle(choice.cluster, -1);
    }
    upstream->idle_since = now;
    e->idle.push_back(std::move(upstream));
    metrics_.pool_idle(choice.cluster, 1);
}

void UpstreamPool::drop(const Choice& choice) {
    if (auto* e = find(choice.cluster, choice.address); e != nullptr) {
        forget(choice.cluster, *e);
    }
}

void UpstreamPool::prune(Clock::time_point now) {
    for (std::size_t c = 0; c < clusters_.size(); ++c) {
        for (auto& e : clusters_[c]) {
            const auto before = e.idle.size();
            std::erase_if(e.idle, [&](const UpstreamPtr& up) {
                return now - up->idle_since > config_.idle_timeout;
            });
            if (before != e.idle.size()) {
                metrics_.pool_idle(c, -static_cast<int>(before - e.idle.size()));
            }
        }
    }
}

void UpstreamPool::close() {
    closed_ = true;
    for (std::size_t c = 0; c < clusters_.size(); ++c) {
        for (auto& e : clusters_[c]) {
            forget(c, e);
        }
    }
}

}  // namespace lb
