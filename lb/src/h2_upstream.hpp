#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "h2_session.hpp"
#include "io.hpp"
#include "lb/config.hpp"
#include "lb/endpoint_selector.hpp"
#include "lb/snapshot.hpp"
#include "metrics.hpp"
#include "signal.hpp"
#include "upstream_pool.hpp"

namespace lb {

// An HTTP/2 connection to one endpoint of an h2 cluster (clusters[].protocol: h2), on one
// worker: many requests' streams multiplexed on it. One coroutine reads and feeds the client
// H2Session, one writes what it produces; each request's exchange waits on its own H2Call.
// No locks: a worker is one thread.

// One request's stream, as its exchange sees it: what the cluster answered so far.
struct H2Call {
    explicit H2Call(const Executor& executor) : signal(executor), window(executor) {}
    std::optional<H2ResponseHead> head;
    std::string body;               // response bytes received and not taken yet (≤ its window)
    std::vector<H2Field> trailers;  // the response's, once it ended with them
    bool ended = false;             // the response is complete
    bool closed = false;            // the stream is gone (complete, reset, or the connection)
    std::uint32_t error = 0;        // RST_STREAM's code when it was reset
    bool lost = false;              // the connection broke (or closed) under it
    Signal signal;                  // any of the above changed
    Signal window;                  // the request body may go on (the writer sent some)
    [[nodiscard]] bool refused() const { return closed && error == kRefusedStream; }
    // (RFC 9113 8.7: the server did not process it; streams beyond a GOAWAY end so)
    static constexpr std::uint32_t kRefusedStream = 7;
};

class H2Upstream : public std::enable_shared_from_this<H2Upstream> {
public:
    using Choice = EndpointSelector::Choice;

    // Starts the connection's reader and writer on `up` (connected, TLS done with h2 agreed,
    // or plain h2c); `on_end` runs once when it is over (its pool forgets it).
    static std::shared_ptr<H2Upstream> start(const Executor& executor,
                                             const LbConfig& config,
                                             WorkerMetrics& metrics,
                                             const Choice& where,
                                             UpstreamPtr up,
                                             std::function<void(H2Upstream*)> on_end);
    H2Upstream(const Executor& executor,
               const LbConfig& config,
               WorkerMetrics& metrics,
               const Choice& where,
               UpstreamPtr up);
    ~H2Upstream();
    H2Upstream(const H2Upstream&) = delete;
    H2Upstream& operator=(const H2Upstream&) = delete;

    // A request on a new stream whose events go to `call`: its number, or 0 when the
    // connection takes no new stream (a GOAWAY came, it is closing).
    std::int32_t open(const H2RequestHead& head, std::shared_ptr<H2Call> call);
    // A piece of the request body; `last` ends it (pass false when trailers() follows).
    bool body(std::int32_t stream, std::string_view data, bool last);
    bool trailers(std::int32_t stream, const std::vector<H2Field>& fields);
    // Request body bytes not yet taken by the cluster's window (the caller waits above a bound:
    // its call is signalled as the writer sends).
    [[nodiscard]] std::size_t buffered(std::int32_t stream) const;
    // `bytes` of the stream's response body were relayed: the cluster may send as much more.
    void consume(std::int32_t stream, std::size_t bytes);
    // The exchange is done with the stream: reset when it is still open, the call forgotten
    // (what it had not taken of the body gives the window back).
    void release(std::int32_t stream);

    // Whether another stream may be opened now (alive, no GOAWAY either way, below the
    // cluster's SETTINGS_MAX_CONCURRENT_STREAMS and http2.maxConcurrentStreams).
    [[nodiscard]] bool usable() const;
    [[nodiscard]] std::size_t streams() const { return calls_.size(); }
    [[nodiscard]] const Choice& where() const { return where_; }
    [[nodiscard]] Clock::time_point idle_since() const { return idle_since_; }
    // No new stream; the open ones finish, then the connection closes (ejection, an endpoint
    // gone or unhealthy, idle).
    void go_away();
    // Drain, reload: it still carries what the worker has left to send, and goes away once it
    // has no stream (at once when it has none and `idle_now`).
    void retire(bool idle_now);
    // Ends the connection now: its streams fail.
    void stop();

private:
    Task<void> read_loop(std::shared_ptr<H2Upstream> self);
    Task<void> write_loop(std::shared_ptr<H2Upstream> self);
    H2Session::Events events();
    void end_calls();
    // Calls whose request body waits for the cluster's window: it may have opened.
    void wake_senders();

    const LbConfig& config_;
    WorkerMetrics& metrics_;
    const Choice where_;
    UpstreamPtr up_;
    std::unique_ptr<H2Session> session_;
    std::map<std::int32_t, std::shared_ptr<H2Call>> calls_;
    std::function<void(H2Upstream*)> on_end_;
    Signal writer_;
    Signal writer_done_;
    std::string out_;
    Clock::time_point idle_since_{};
    bool going_away_ = false;
    bool retiring_ = false;
    bool write_timed_out_ = false;
    bool over_ = false;  // read or write failed, or it closed: nothing more happens on it
};

// One worker's h2 connections to the endpoints of h2 clusters (UpstreamPool's counterpart).
// A request takes the usable connection with the most streams — one fills before the next is
// used (as Envoy's pool does): few connections, each busy (its HPACK tables warm, its ACKs
// riding on traffic), and those a burst needed go idle and close. While one is being opened to
// an endpoint, others wait for it rather than open their own (a burst at start shares one).
class H2Upstreams {
public:
    using Choice = EndpointSelector::Choice;

    H2Upstreams(const Executor& executor, const LbConfig& config, WorkerMetrics& metrics)
        : executor_(executor), config_(config), metrics_(metrics) {}

    // The usable connection to the endpoint with the most streams, or nullptr.
    std::shared_ptr<H2Upstream> find(const Choice& choice) const;
    // Whether a connection to the endpoint is being opened; wait_for_connect() waits for its
    // end (at most until the connector's `deadline`); begin/end_connect() mark one.
    [[nodiscard]] bool connecting(const Choice& choice) const;
    Task<void> wait_for_connect(const Choice& choice);
    void begin_connect(const Choice& choice, Clock::time_point deadline);
    void end_connect(const Choice& choice);
    // A new connection (its streams start now).
    std::shared_ptr<H2Upstream> add(const Choice& choice, UpstreamPtr up);

    // A new snapshot: connections to endpoints gone, unhealthy or in maintenance go away.
    void apply(const Snapshot& snapshot);
    // The endpoint was ejected: its connections take no new stream.
    void drop(const Choice& choice);
    // Connections without a stream for pool.idleTimeout close.
    void prune(Clock::time_point now);
    // Drain, hand-over: every connection goes away once it has no stream (the requests still
    // under way in the worker may take streams on them, or on a new one, which goes away after).
    void close();
    // The drain deadline passed: every connection ends now (its streams fail).
    void stop();

private:
    struct Key {
        std::size_t cluster;
        boost::asio::ip::tcp::endpoint address;
        bool operator<(const Key& o) const {
            return cluster != o.cluster ? cluster < o.cluster : address < o.address;
        }
    };
    const Executor executor_;
    const LbConfig& config_;
    WorkerMetrics& metrics_;
    std::map<Key, std::vector<std::shared_ptr<H2Upstream>>> conns_;
    std::map<Key, std::shared_ptr<Timer>> connecting_;  // cancelled when the connect ends
    bool closed_ = false;
};

}  // namespace lb
