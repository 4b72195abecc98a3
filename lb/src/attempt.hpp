#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "exchange.hpp"
#include "h2_upstream.hpp"
#include "lb/retry_budget.hpp"

namespace lb {

// Counts a request as in flight to a cluster for as long as it lives.
struct InFlight {
    InFlight(WorkerMetrics& m, std::size_t c) : metrics(m), cluster(c) { metrics.in_flight(c, 1); }
    ~InFlight() { metrics.in_flight(cluster, -1); }
    InFlight(const InFlight&) = delete;
    InFlight& operator=(const InFlight&) = delete;
    WorkerMetrics& metrics;
    std::size_t cluster;
};

// One request's tries at the clusters, whatever protocol the client speaks (an HTTP/1.1
// exchange, an HTTP/2 stream): the cluster and endpoint picked, the connection to it (pooled or
// new), and the retry rules — another cluster after a connect failure or a reset before any
// response byte, a stale pooled connection once more, the retry budget, passive ejection and
// outlier detection. The caller reads and writes; this decides where and whether again.
class Attempt {
public:
    Attempt(ExchangeContext& cx, Watch& watch) : cx_(cx), watch_(watch) {}
    ~Attempt() {
        if (in_budget_) {
            --cx_.flight.requests;
        }
        if (retrying_) {
            --cx_.flight.retrying;
        }
    }
    Attempt(const Attempt&) = delete;
    Attempt& operator=(const Attempt&) = delete;

    // The request counts for the retry budget from here (its head is read).
    void start() {
        in_budget_ = true;
        ++cx_.flight.requests;
    }

    enum class Picked { kPooled, kConnect, kNone };
    // The cluster the round robin picks for `route` among the eligible ones (not the one a
    // retry excludes), and an idle connection to the chosen endpoint when the pool has one
    // (for an h2 cluster, a live connection with room for another stream: h2()).
    // `probe`: a pooled connection is checked first (a non-idempotent request cannot be
    // retried if it turns out closed). kNone: no cluster is healthy.
    Picked pick(std::size_t route, bool probe, const ClientAddress& client);

    enum class Connected { kOk, kRetry, kFailed, kStopping };
    // A new connection to the chosen endpoint (the PROXY protocol header, the TLS handshake);
    // the watch bounds it. For an h2 cluster: h2 agreed by ALPN over TLS (h2c otherwise), the
    // connection shared from then on; while another request opens one to the same endpoint,
    // this one waits for it and takes a stream on it. A failure is kRetry when the rules allow
    // another cluster (never once `body_sent`), else kFailed with failure() saying why
    // (`failure_status()`: 502 or 504).
    Task<Connected> connect(bool body_sent);
    [[nodiscard]] unsigned failure_status() const { return failure_status_; }
    [[nodiscard]] std::string take_failure() { return std::move(failure_); }

    // After a failure before any response byte, when `allowed`: a pooled connection that
    // turned out stale is retried on a fresh one (not a retry the budget counts: the request
    // never reached the cluster), anything else once on another cluster.
    bool retry_elsewhere(bool allowed);
    // A per-try timeout: the endpoint is ejected, and the request retried on another cluster
    // when the budget allows.
    bool retry_after_timeout();
    // No response head came (`ec`: reset, closed, timed out, malformed): true when the request
    // is to be tried again (a per-try timeout, or nothing received and `can_retry`), else
    // failure() says why (504 after the response timeout, 502 otherwise).
    bool retry_without_head(boost::system::error_code ec, bool can_retry);
    // The deadline for the response's first byte: the per-try timeout when a retry is still
    // possible (`can_retry`), else timeouts.upstreamResponse. per_try() says which.
    Clock::time_point response_deadline(bool can_retry);
    [[nodiscard]] bool per_try() const { return per_try_; }
    // Outlier detection: what the chosen endpoint answered (OutlierConfig); an ejected one's
    // idle connections close.
    void outlier(bool gateway_error);

    // The connection back to the pool (the response was read whole and it may be kept), its
    // socket marked drained: the next response's read waits for readiness.
    void give_back();

    [[nodiscard]] bool chosen() const { return choice_.has_value(); }
    [[nodiscard]] std::size_t cluster() const { return choice_->cluster; }
    [[nodiscard]] const std::string& cluster_name() const {
        return cx_.config.clusters[choice_->cluster].name;
    }
    [[nodiscard]] Upstream& up() { return *up_; }
    [[nodiscard]] const Upstream& up() const { return *up_; }
    [[nodiscard]] const std::shared_ptr<H2Upstream>& h2_shared() const { return h2_; }
    [[nodiscard]] bool is_h2() const { return h2_ != nullptr; }
    [[nodiscard]] bool has_upstream() const { return up_ != nullptr; }
    [[nodiscard]] const boost::asio::ip::tcp::endpoint& endpoint() const {
        return choice_->address;
    }
    // Retries of any kind (the access log's count).
    [[nodiscard]] unsigned retries() const { return retries_ + (stale_retried_ ? 1 : 0); }
    // Forgets the connection and cluster of the previous try (before pick()).
    void reset() {
        in_flight_.reset();
        up_.reset();
        h2_.reset();
    }

private:
    // Passive ejection of the chosen endpoint (retry.ejectFor): no new request picks it for a
    // while, and its idle connections are closed.
    void eject(Clock::time_point now);
    // Whether the retry budget lets this request retry (once it does, it counts as retrying
    // until it ends); a refusal is counted.
    bool budget_allows();
    bool stopping() const { return cx_.lifecycle.stopping; }
    // Whether the try is on a connection an earlier request opened (a stale one is retried).
    [[nodiscard]] bool reused() const { return h2_ ? h2_reused_ : up_->reused; }
    // (connect() for an h2 cluster) Another request's connect to the endpoint ended: its
    // connection, when it has room.
    Task<bool> share_connect();

    ExchangeContext& cx_;
    Watch& watch_;
    std::optional<std::size_t> exclude_;
    unsigned retries_ = 0;
    bool stale_retried_ = false;
    bool retrying_ = false;   // counted in cx_.flight.retrying
    bool in_budget_ = false;  // counted in cx_.flight.requests
    bool per_try_ = false;
    std::string proxy_header_;  // to the chosen cluster, when it takes the PROXY protocol
    Clock::time_point picked_at_{};
    std::optional<EndpointSelector::Choice> choice_;
    UpstreamPtr up_;
    std::shared_ptr<H2Upstream> h2_;  // an h2 cluster's connection
    bool h2_reused_ = false;
    std::optional<InFlight> in_flight_;
    unsigned failure_status_ = 502;
    std::string failure_;
};

struct AccessRecord;
// Completes `r` with what every protocol fills the same way (the time and durations from
// `started`, the route, the cluster, endpoint and retries of `at`'s tries) and writes it to the
// worker's access log buffer (exchange_log.cpp; the caller sampled it).
void write_access_line(ExchangeContext& cx,
                       AccessRecord& r,
                       Clock::time_point started,
                       Clock::time_point upstream_at,
                       std::optional<std::size_t> route,
                       const Attempt& at);

}  // namespace lb
