#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include "io.hpp"
#include "lb/config.hpp"
#include "lb/endpoint_selector.hpp"
#include "lb/snapshot.hpp"
#include "metrics.hpp"

namespace lb {

// A connection to a cluster endpoint, plain or TLS, with its read buffer.
struct Upstream {
    Upstream(const Executor& executor, boost::asio::ssl::context* tls_context) : socket(executor) {
        if (tls_context != nullptr) {
            tls.emplace(socket, *tls_context);
        }
    }
    Socket socket;
    std::optional<boost::asio::ssl::stream<Socket&>> tls;  // over `socket` when TLS is on
    boost::beast::flat_buffer buffer{256 * 1024};
    Clock::time_point idle_since{};
    bool reused = false;
    // The PROXY protocol header it began with (clusters[].proxyProtocol): it speaks for that
    // client connection only, so only that one reuses it. Empty otherwise.
    std::string owner;
};
using UpstreamPtr = std::unique_ptr<Upstream>;

// One worker's idle keep-alive connections to the cluster endpoints (no locking: one thread).
// Bounded per endpoint by pool.maxIdlePerEndpoint; a connection idle longer than
// pool.idleTimeout is never reused. Endpoints that are unhealthy, ejected or gone keep none.
class UpstreamPool {
public:
    using Choice = EndpointSelector::Choice;

    UpstreamPool(const PoolConfig& config, WorkerMetrics& metrics)
        : config_(config), metrics_(metrics) {}

    // A new snapshot: idle connections of endpoints still there and healthy are kept.
    void apply(const Snapshot& snapshot);
    // An idle connection to the chosen endpoint opened for `owner` (Upstream::owner), the most
    // recently used first, or nullptr. With `probe`, one non-blocking peek makes sure the
    // upstream has not closed it.
    UpstreamPtr take(const Choice& choice,
                     Clock::time_point now,
                     bool probe,
                     std::string_view owner = {});
    // Keeps a connection whose response was read whole (otherwise it is closed); when the
    // endpoint has pool.maxIdlePerEndpoint already, the least recently used one goes.
    void give_back(const Choice& choice, UpstreamPtr upstream, Clock::time_point now);
    // Closes the endpoint's idle connections (it was ejected).
    void drop(const Choice& choice);
    // Closes the connections idle longer than pool.idleTimeout.
    void prune(Clock::time_point now);
    // Closes every idle connection and keeps none from now on (drain, hand-over).
    void close();

private:
    struct Endpoint {
        boost::asio::ip::tcp::endpoint address;
        bool healthy = true;
        std::vector<UpstreamPtr> idle;
    };
    Endpoint* find(std::size_t cluster, const boost::asio::ip::tcp::endpoint& address);
    void forget(std::size_t cluster, Endpoint& e);

    const PoolConfig& config_;
    WorkerMetrics& metrics_;
    std::vector<std::vector<Endpoint>> clusters_;
    bool closed_ = false;
};

}  // namespace lb
