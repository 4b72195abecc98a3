#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "exchange.hpp"
#include "lb/request_id.hpp"
#include "lb/retry_budget.hpp"
#include "wire.hpp"

namespace lb {

// The state and steps of one exchange (exchange.hpp), shared by its two files: exchange.cpp
// (the driver and the request side) and exchange_response.cpp (the response side).

// Client headers are read in small steps (an idle keep-alive connection then holds 1-4 KiB, not
// a body-sized buffer). Upstream connections are few (pooled): read a header and a whole chunk
// of body at once.
inline constexpr std::size_t kClientHeaderRead = 4096;
inline constexpr std::size_t kUpstreamRead = kChunk + 4096;

inline double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

// Counts a request as in flight to a cluster for as long as it lives.
struct InFlight {
    InFlight(WorkerMetrics& m, std::size_t c) : metrics(m), cluster(c) { metrics.in_flight(c, 1); }
    ~InFlight() { metrics.in_flight(cluster, -1); }
    InFlight(const InFlight&) = delete;
    InFlight& operator=(const InFlight&) = delete;
    WorkerMetrics& metrics;
    std::size_t cluster;
};

// What a step leaves the exchange to do.
enum class Next {
    kOn,       // the next step
    kConnect,  // no pooled connection to the chosen endpoint: open one
    kWriting,  // the socket did not take the whole request head at once
    kInterim,  // a 1xx answer: relay it, then read the next head
    kSwitch,   // a 101 to the client's upgrade: tunnel
    kRetry,    // pick again (the state says what to exclude)
    kReply,    // answer locally with the state's reply
    kClose,    // end the connection without an answer (the client went away, or stopping)
};

// One request and its response, as named steps over one state:
//   1. read the request      request_read()
//   2. pick and connect      pick(), connect() for a new connection
//   3. send the request      send_head() (bodyless), send_with_body()
//   4. read the response head  expect_response(), next_response(), response_read()
//   5. relay the response    start_relay(), body_piece(), relay_done(); or switch_protocols()
// The steps decide; run() does the waiting. So the common path (a pooled connection, a request
// without a body, a response the client's socket takes at once) is one coroutine frame, and each
// step can be changed on its own. The slow paths (a new connection, a request body, a local
// answer, a tunnel) are coroutines of their own.
template <class Stream>
class Exchange {
public:
    static Task<bool> run(ExchangeContext& cx,
                          Stream& client,
                          boost::beast::flat_buffer& buffer,
                          Watch& watch,
                          const ClientAddress& client_address);

    Exchange(ExchangeContext& cx,
             Stream& client,
             boost::beast::flat_buffer& buffer,
             Watch& watch,
             const ClientAddress& client_address)
        : cx_(cx),
          to_(cx.config.timeouts),
          client_(client),
          buffer_(buffer),
          watch_(watch),
          client_address_(client_address),
          head_(cx.buffers.take_head()) {}
    ~Exchange() {
        if (in_budget_) {
            --cx_.flight.requests;
        }
        if (retrying_) {
            --cx_.flight.retrying;
        }
        if (cx_.log.sink) {
            record();
        }
        cx_.buffers.give_head(std::move(head_));
        cx_.buffers.give_chunk(std::move(chunk_));
        watch_.disarm();
    }
    Exchange(const Exchange&) = delete;
    Exchange& operator=(const Exchange&) = delete;

private:
    static constexpr bool kTls = !std::is_same_v<Stream, Socket>;
    using RequestParser =
        boost::beast::http::request_parser<boost::beast::http::buffer_body, PoolAllocator<char>>;
    using ResponseParser =
        boost::beast::http::response_parser<boost::beast::http::buffer_body, PoolAllocator<char>>;

    // The steps: 1-3 in exchange.cpp, 4-5 in exchange_response.cpp.
    Next request_read(boost::system::error_code ec);
    Next pick();
    Task<Next> connect();
    Next send_head();
    Task<Next> send_with_body();
    Task<boost::system::error_code> send(Out& out);
    bool client_ready();
    bool cluster_answered();
    Task<bool> client_or_cluster();
    Next sent(boost::system::error_code ec);
    void expect_response();
    ResponseParser& next_response();
    Next response_read(boost::system::error_code ec);
    Next response_head(boost::system::error_code ec);
    Task<bool> switch_protocols();
    void start_relay();
    bool body_piece(std::size_t len, bool last, boost::system::error_code& ec);
    bool relay_done();

    // The end of an exchange that did not relay a response.
    Task<bool> end(Next n) {
        if (n == Next::kReply) {
            co_return co_await reply();
        }
        co_return false;
    }
    // The access log's line for this exchange (a request, or what arrived of one).
    void record();
    // A local answer (nothing from a cluster): counted without a cluster; `linger` when the
    // connection closes after it, so what the client still sends does not turn it into a reset.
    Task<bool> reply();
    Next reply_with(unsigned status, std::string text, bool keep_alive) {
        reply_status_ = status;
        reply_text_ = std::move(text);
        reply_keep_ = keep_alive;
        return Next::kReply;
    }

    char* chunk() {
        if (!chunk_) {
            chunk_ = cx_.buffers.take_chunk();
        }
        return chunk_.get();
    }
    [[nodiscard]] bool stopping() const { return cx_.lifecycle.stopping; }
    [[nodiscard]] bool closing() const { return cx_.lifecycle.draining; }
    [[nodiscard]] const std::string& cluster_name() const {
        return cx_.config.clusters[choice_->cluster].name;
    }
    // Passive ejection of the chosen endpoint (retry.ejectFor): no new request picks it for a
    // while, and its idle connections are closed.
    void eject(Clock::time_point now) {
        if (cx_.config.retry.eject_for.count() <= 0) {
            return;
        }
        if (cx_.selector.eject(*choice_, now, cx_.config.retry.eject_for)) {
            cx_.metrics.ejected(choice_->cluster);
        }
        cx_.pool.drop(*choice_);
    }
    // Whether the retry budget lets this request retry (once it does, it counts as retrying
    // until it ends); a refusal is counted.
    bool budget_allows() {
        if (retrying_) {
            return true;
        }
        if (!retry_allowed(cx_.flight.requests, cx_.flight.retrying, cx_.config.retry.budget)) {
            cx_.metrics.retry_refused(choice_->cluster);
            return false;
        }
        retrying_ = true;
        ++cx_.flight.retrying;
        return true;
    }
    // Outlier detection: what the chosen endpoint answered (OutlierConfig); an ejected one's
    // idle connections close.
    void outlier(bool gateway_error) {
        const auto& config = cx_.config.outlier;
        if (config.consecutive_errors > 0 &&
            cx_.selector.report(*choice_, gateway_error, coarse_now(), config)) {
            cx_.metrics.outlier_ejected(choice_->cluster);
            cx_.pool.drop(*choice_);
        }
    }
    // After a failure before any response byte, when `allowed`: a pooled connection that turned out
    // stale is retried on a fresh one (not a retry the budget counts: the request never reached
    // the cluster), anything else once on another cluster.
    bool retry_elsewhere(bool allowed) {
        if (allowed && up_->reused && !stale_retried_) {
            stale_retried_ = true;
            cx_.metrics.retry(choice_->cluster, RetryReason::kStaleConnection);
            return true;
        }
        if (allowed && retries_ < cx_.config.retry.attempts && budget_allows()) {
            ++retries_;
            cx_.metrics.retry(choice_->cluster, RetryReason::kReset);
            exclude_ = choice_->cluster;
            return true;
        }
        return false;
    }

    ExchangeContext& cx_;
    const TimeoutConfig& to_;
    Stream& client_;
    boost::beast::flat_buffer& buffer_;
    Watch& watch_;
    const ClientAddress& client_address_;
    const Clock::time_point started_ = Clock::now();
    std::string head_;  // the message head for the next hop: the request's, then the response's
    std::unique_ptr<char[]> chunk_;  // the relay buffer, taken when a body needs it
    Out out_;                        // what a write puts on the wire

    // The request, as read.
    RequestParser rp_;
    boost::beast::http::verb method_ = boost::beast::http::verb::unknown;
    bool idempotent_ = false;
    bool client_ka_ = false;
    unsigned client_version_ = 11;
    bool has_body_ = false;
    bool expect_continue_ = false;
    std::string_view upgrade_;  // (into rp_'s fields)
    Framing req_framing_ = Framing::kAsIs;
    std::string_view host_;             // the authority it is for (Host, or the absolute-form's)
    std::optional<std::size_t> route_;  // the route its host takes (routes:, first match)
    std::string_view request_id_;       // kept from the client, or generated into id_buffer_
    RequestIdGenerator::Buffer id_buffer_;
    std::uint64_t body_in_ = 0;  // request body bytes read from the client

    // The attempts.
    std::optional<std::size_t> exclude_;
    unsigned retries_ = 0;
    bool stale_retried_ = false;
    bool body_sent_ = false;    // body bytes consumed from the client: it cannot be replayed
    std::string proxy_header_;  // to the chosen cluster, when it takes the PROXY protocol
    bool early_ = false;        // the cluster answered before the whole body was sent
    bool retrying_ = false;     // counted in cx_.flight.retrying
    bool in_budget_ = false;    // counted in cx_.flight.requests (from its head on)
    Clock::time_point picked_at_{};
    std::optional<EndpointSelector::Choice> choice_;
    UpstreamPtr up_;
    std::optional<InFlight> in_flight_;

    // The response.
    bool can_retry_ = false;
    bool per_try_ = false;
    Clock::time_point read_deadline_{};
    std::optional<ResponseParser> resp_;
    std::string interim_;  // a 1xx head (not head_: a retry may still send the request)
    unsigned status_ = 0;
    bool upstream_ka_ = false;
    bool bodyless_ = false;
    bool close_delimited_ = false;
    bool keep_ = false;
    Framing res_framing_ = Framing::kAsIs;
    bool head_sent_ = false;
    Clock::time_point upstream_at_{};  // the response head arrived
    std::uint64_t body_out_ = 0;       // response body bytes relayed
    std::string_view failure_;         // why a relayed response did not end well

    // A local answer.
    unsigned reply_status_ = 0;
    std::string reply_text_;
    bool reply_keep_ = false;
};

}  // namespace lb
