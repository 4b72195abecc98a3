#pragma once

#include <functional>
#include <memory>
#include <vector>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/intrusive/list.hpp>

#include "buffers.hpp"
#include "byte_relay.hpp"
#include "deadlines.hpp"
#include "io.hpp"
#include "lb/config.hpp"
#include "lb/endpoint_selector.hpp"
#include "lb/headers.hpp"
#include "metrics.hpp"
#include "request_log.hpp"
#include "tls.hpp"
#include "upstream_pool.hpp"

namespace lb {

class H2Upstreams;

// The state of a worker its sessions and exchanges react to.
struct Lifecycle {
    bool draining = false;      // SIGTERM: connections close after their current response
    bool handing_over = false;  // a reload: connections go to the successor between requests
    bool stopping = false;      // the drain deadline passed: what is in flight is cancelled
};

// A connection that must hear of a drain or a reload while requests are under way on it (an
// HTTP/2 connection sends GOAWAY then, and finishes its open streams): on its worker's list
// while it lives.
struct DrainHook
    : boost::intrusive::list_base_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>> {
    std::function<void()> on_drain;
};
using DrainHooks = boost::intrusive::list<DrainHook, boost::intrusive::constant_time_size<false>>;

// A worker's requests under way and how many of them are retrying (the retry budget's view).
struct Flight {
    std::uint64_t requests = 0;
    std::uint64_t retrying = 0;
};

// What an exchange uses of its worker: the worker's parts, never the worker itself.
struct ExchangeContext {
    Executor executor;
    const LbConfig& config;
    const std::vector<TlsContextPtr>& tls;  // per cluster; nullptr where TLS is off
    WorkerMetrics& metrics;
    EndpointSelector& selector;
    UpstreamPool& pool;
    H2Upstreams& h2;  // connections to h2 clusters
    Buffers& buffers;
    Pipes& pipes;  // splice(2)'s (config.splice)
    const Lifecycle& lifecycle;
    RequestLog& log;
    Flight& flight;
    WatchList& watches;  // the worker's deadlines (an HTTP/2 stream adds its own)
    DrainHooks& drain_hooks;
};

// One request of a client connection and its response, in named steps sharing one state:
// read the request → pick a cluster and connect → send the request → read the response head →
// relay the response, or tunnel after a 101. A failure before any response byte goes back to
// picking (another cluster, or a fresh connection for a stale pooled one) when the retry policy
// allows; local answers (400, 408, 413, 431, 502, 503, 504) are written here. `buffer` holds
// what the client sent beyond the previous request; `watch` is the session's deadline. True
// when the connection may carry the next request.
template <class Stream>
Task<bool> exchange(ExchangeContext& cx,
                    Stream& client,
                    boost::beast::flat_buffer& buffer,
                    Watch& watch,
                    const ClientAddress& client_address);

}  // namespace lb
