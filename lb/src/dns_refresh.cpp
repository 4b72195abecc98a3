// DNS for the clusters given by hostname: first resolutions, TTL-driven refreshes, answers
// applied to the plane's endpoints.
#include "dns_refresh.hpp"

#include <algorithm>
#include <optional>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "log.hpp"

namespace lb {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
}  // namespace

DnsRefresh::DnsRefresh(asio::io_context& ctx, OnChange on_change)
    : ctx_(ctx), on_change_(std::move(on_change)) {}

std::chrono::milliseconds next_refresh(const Plane& p, const ClusterState& cl, bool ok) {
    if (!ok) {
        return p.config.dns.retry;
    }
    const auto ttl = std::chrono::duration_cast<std::chrono::milliseconds>(cl.dns_ttl);
    return std::clamp(ttl, p.config.dns.min_ttl, p.config.dns.max_ttl);
}

// One resolution as an awaitable: the callback (always posted, so it runs after this coroutine
// is suspended) stores the result and wakes the timer.
asio::awaitable<Resolution> DnsRefresh::resolve(Resolver& resolver, std::string host) {
    struct Wait {
        explicit Wait(asio::io_context& c) : timer(c, asio::steady_timer::time_point::max()) {}
        asio::steady_timer timer;
        std::optional<Resolution> result;
    };
    auto wait = std::make_shared<Wait>(ctx_);
    resolver.resolve(host, [wait](Resolution r) {
        wait->result = std::move(r);
        wait->timer.cancel();
    });
    resolving_.insert(&wait->timer);
    while (!wait->result && !stopped_) {
        co_await wait->timer.async_wait(kNoThrow);
    }
    resolving_.erase(&wait->timer);
    if (!wait->result) {
        co_return Resolution{false, "shutting down", {}, {}};
    }
    co_return std::move(*wait->result);
}

asio::awaitable<void> DnsRefresh::resolve_all(PlanePtr p) {
    std::size_t left = 0;
    asio::steady_timer wake(ctx_, asio::steady_timer::time_point::max());
    for (std::size_t c = 0; c < p->clusters.size(); ++c) {
        if (p->clusters[c].resolved) {
            continue;
        }
        ++left;
        asio::co_spawn(
            ctx_,
            [this, p, c, &left, &wake]() -> asio::awaitable<void> {
                auto r = co_await resolve(*p->resolver, p->clusters[c].config->address.host);
                bool removed = false;
                apply(*p, c, r, removed);
                if (--left == 0) {
                    wake.cancel();
                }
            },
            asio::detached);
    }
    if (left > 0) {
        co_await wake.async_wait(kNoThrow);
    }
}

void DnsRefresh::start(const PlanePtr& p) {
    for (std::size_t c = 0; c < p->clusters.size(); ++c) {
        if (!p->clusters[c].is_ip) {
            asio::co_spawn(ctx_, refresh_loop(p, c), asio::detached);
        }
    }
}

void DnsRefresh::stop() {
    stopped_ = true;
    for (auto* t : resolving_) {
        t->cancel();
    }
}

asio::awaitable<void> DnsRefresh::refresh_loop(PlanePtr p, std::size_t c) {
    auto& cl = p->clusters[c];
    cl.dns_timer = std::make_unique<asio::steady_timer>(ctx_);
    auto delay = next_refresh(*p, cl, cl.dns_error.empty());
    if (cl.resolved && cl.dns_at != std::chrono::system_clock::time_point{}) {
        // Inherited from the previous generation: refresh when that answer is due.
        const auto age = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::system_clock::now() - cl.dns_at);
        delay = std::max(std::chrono::milliseconds(0), delay - age);
    }
    if (cl.refresh_now) {
        delay = std::chrono::milliseconds(0);
    }
    while (!stopped_ && !p->retired) {
        cl.dns_timer->expires_after(delay);
        co_await cl.dns_timer->async_wait(kNoThrow);
        if (stopped_ || p->retired) {
            break;
        }
        auto r = co_await resolve(*p->resolver, cl.config->address.host);
        if (stopped_ || p->retired) {
            break;
        }
        bool removed = false;
        const auto added = apply(*p, c, r, removed);
        if (!added.empty() || removed) {
            on_change_(p, c, added);
        }
        delay = next_refresh(*p, cl, r.ok);
    }
}

std::vector<EndpointPtr> DnsRefresh::apply(Plane& p,
                                           std::size_t c,
                                           const Resolution& r,
                                           bool& removed) {
    auto& cl = p.clusters[c];
    std::vector<EndpointPtr> added;
    p.metrics.dns_result(c, r.ok);
    cl.dns_at = std::chrono::system_clock::now();
    cl.resolved = true;
    if (!r.ok) {
        ++cl.dns_failures;
        cl.dns_error = r.error;
        log_line(LogLevel::kWarn, "cluster " + cl.config->name + ": resolving " +
                                      cl.config->address.host + " failed (" + r.error +
                                      "); keeping the last good answer (" +
                                      std::to_string(cl.endpoints.size()) + " endpoints)");
        return added;
    }
    cl.dns_error.clear();
    cl.dns_ttl = r.ttl;
    std::set<tcp::endpoint> wanted;
    for (const auto& a : r.addresses) {
        wanted.emplace(a, cl.config->address.port);
    }
    std::erase_if(cl.endpoints, [&](const EndpointPtr& ep) {
        if (wanted.contains(ep->address)) {
            return false;
        }
        ep->stop();
        if (ep->probe) {
            ep->probe->close();
        }
        p.metrics.endpoint_removed(c, ep->label);
        log_line(LogLevel::kInfo, "cluster " + cl.config->name + ": endpoint " + ep->label +
                                      " removed (no longer in DNS)");
        removed = true;
        return true;
    });
    for (const auto& w : wanted) {
        const bool known = std::any_of(cl.endpoints.begin(), cl.endpoints.end(),
                                       [&](const EndpointPtr& ep) { return ep->address == w; });
        if (!known) {
            auto ep = std::make_shared<EndpointState>(ctx_, w, p.config.health_check);
            cl.endpoints.push_back(ep);
            p.metrics.endpoint_state(c, ep->label, true);
            log_line(LogLevel::kInfo, "cluster " + cl.config->name + ": endpoint " + ep->label +
                                          " added (DNS, TTL " + std::to_string(r.ttl.count()) +
                                          "s)");
            added.push_back(std::move(ep));
        }
    }
    return added;
}

}  // namespace lb
