// One request's tries at the clusters: picking, connecting and the retry rules, shared by the
// HTTP/1.1 exchange and the HTTP/2 stream. Errors are values; nothing here throws on purpose.
#include "attempt.hpp"

#include <boost/asio/write.hpp>

#include "lb/proxy_protocol.hpp"
#include "wire.hpp"

namespace lb {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

Attempt::Picked Attempt::pick(std::size_t route, bool probe, const ClientAddress& client) {
    reset();
    picked_at_ = coarse_now();
    choice_ = cx_.selector.choose(route, exclude_, picked_at_);
    if (!choice_) {
        return Picked::kNone;
    }
    // A cluster behind the PROXY protocol learns the client from the connection's first bytes:
    // such a connection serves this client connection only.
    if (const auto& version = cx_.config.clusters[choice_->cluster].proxy_protocol) {
        proxy_header_ = proxy_header(*version, client.peer.source, client.peer.destination);
    } else {
        proxy_header_.clear();
    }
    if (cx_.config.clusters[choice_->cluster].protocol == ClusterProtocol::kH2) {
        h2_ = cx_.h2.find(*choice_);
        h2_reused_ = h2_ != nullptr;
        if (!h2_) {
            return Picked::kConnect;
        }
    } else if (up_ = cx_.pool.take(*choice_, picked_at_, probe, proxy_header_); !up_) {
        return Picked::kConnect;
    }
    in_flight_.emplace(cx_.metrics, choice_->cluster);
    return Picked::kPooled;
}

Task<bool> Attempt::share_connect() {
    if (!cx_.h2.connecting(*choice_)) {
        co_return false;
    }
    co_await cx_.h2.wait_for_connect(*choice_);
    h2_ = cx_.h2.find(*choice_);
    co_return h2_ != nullptr;
}

Task<Attempt::Connected> Attempt::connect(bool body_sent) {
    const auto& cluster = cx_.config.clusters[choice_->cluster];
    const bool h2 = cluster.protocol == ClusterProtocol::kH2;
    if (h2 && co_await share_connect()) {
        if (stopping()) {
            co_return Connected::kStopping;
        }
        in_flight_.emplace(cx_.metrics, choice_->cluster);
        co_return Connected::kOk;
    }
    // (a burst of requests to an h2 cluster waits for this one connection: share_connect())
    struct Connecting {
        H2Upstreams* set;
        EndpointSelector::Choice choice;
        ~Connecting() {
            if (set != nullptr) {
                set->end_connect(choice);
            }
        }
    } connecting{h2 ? &cx_.h2 : nullptr, *choice_};
    if (h2) {
        cx_.h2.begin_connect(*choice_, picked_at_ + cx_.config.timeouts.upstream_connect);
    }
    up_ = std::make_unique<Upstream>(cx_.executor, cx_.tls[choice_->cluster].get());
    watch_.arm(up_->socket, picked_at_ + cx_.config.timeouts.upstream_connect);  // and TLS
    auto [cec] = co_await up_->socket.async_connect(choice_->address, kNoThrow);
    if (!cec && !watch_.fired && !proxy_header_.empty()) {
        // (before TLS: the router reads it first)
        auto [pec, pn] =
            co_await asio::async_write(up_->socket, asio::buffer(proxy_header_), kNoThrow);
        cec = pec;
        up_->owner = proxy_header_;
    }
    std::string tls_problem;
    if (!cec && !watch_.fired && up_->tls) {
        error_code ignored;
        up_->socket.set_option(tcp::no_delay(true), ignored);
        prepare_tls(*up_->tls, cluster);
        auto [hec] = co_await up_->tls->async_handshake(asio::ssl::stream_base::client, kNoThrow);
        if (hec && !watch_.fired) {
            cec = hec;
            tls_problem = tls_failure(hec, up_->tls->native_handle(), cluster);
        } else if (!hec && h2 && !negotiated_h2(up_->tls->native_handle())) {
            cec = asio::error::no_protocol_option;
            tls_problem = "the cluster did not agree to h2 by ALPN (protocol: h2 needs it)";
        }
    }
    const bool timed_out = watch_.fired;
    if (stopping()) {
        co_return Connected::kStopping;
    }
    if (cec || timed_out) {
        cx_.metrics.upstream_connect(choice_->cluster, false);
        eject(Clock::now());
        outlier(true);
        // A refused connection reached no process: the retry is the request's only try, so
        // the budget (which keeps a sick fleet from serving requests twice) does not apply.
        const bool refused = !timed_out && cec == asio::error::connection_refused;
        if (retries_ < cx_.config.retry.attempts && !body_sent && (refused || budget_allows())) {
            ++retries_;
            cx_.metrics.retry(choice_->cluster, RetryReason::kConnect);
            exclude_ = choice_->cluster;
            co_return Connected::kRetry;
        }
        failure_status_ = timed_out ? 504 : 502;
        if (timed_out) {
            failure_ = "upstream connect timeout (cluster " + cluster_name() + ")";
        } else if (tls_problem.empty()) {
            failure_ = "upstream connect failed (cluster " + cluster_name() + "): " + cec.message();
        } else {
            failure_ = "TLS handshake with cluster " + cluster_name() + " failed: " + tls_problem;
        }
        co_return Connected::kFailed;
    }
    cx_.metrics.upstream_connect(choice_->cluster, true);
    error_code ignored;
    up_->socket.set_option(tcp::no_delay(true), ignored);
    up_->socket.non_blocking(true, ignored);
    if (h2) {
        h2_ = cx_.h2.add(*choice_, std::move(up_));
        if (!h2_) {
            failure_status_ = 502;
            failure_ = "no HTTP/2 session for cluster " + cluster_name() + " (out of memory)";
            co_return Connected::kFailed;
        }
    }
    in_flight_.emplace(cx_.metrics, choice_->cluster);
    co_return Connected::kOk;
}

bool Attempt::retry_elsewhere(bool allowed) {
    if (allowed && reused() && !stale_retried_) {
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

bool Attempt::retry_after_timeout() {
    eject(Clock::now());
    if (!budget_allows()) {
        return false;
    }
    ++retries_;
    cx_.metrics.retry(choice_->cluster, RetryReason::kPerTryTimeout);
    exclude_ = choice_->cluster;
    return true;
}

bool Attempt::retry_without_head(error_code ec, bool can_retry) {
    outlier(true);
    const bool nothing = nothing_received(ec) && up_->buffer.size() == 0;
    if (ec == asio::error::timed_out && per_try_ && retry_after_timeout()) {
        return true;
    }
    if (ec == asio::error::timed_out) {
        failure_status_ = 504;
        failure_ = "upstream response timeout (cluster " + cluster_name() + ")";
        return false;
    }
    if (retry_elsewhere(nothing && can_retry)) {
        return true;
    }
    failure_status_ = 502;
    failure_ = "bad response from upstream (cluster " + cluster_name() + "): " + ec.message();
    return false;
}

Clock::time_point Attempt::response_deadline(bool can_retry) {
    const auto& retry = cx_.config.retry;
    const auto& to = cx_.config.timeouts;
    per_try_ = can_retry && retries_ < retry.attempts && retry.per_try_timeout &&
               *retry.per_try_timeout < to.upstream_response;
    return coarse_now() + (per_try_ ? *retry.per_try_timeout : to.upstream_response);
}

void Attempt::give_back() {
    if (!up_->tls) {
        // A response read to its exact end (spliced, say) leaves the reactor free to try a recv
        // first on the next read, one that returns EAGAIN: the next response has not come when
        // its request has just left. Nothing else can come first: an HTTP/1.1 server speaks only
        // to answer, and its answer — or the reset of a connection it has closed meanwhile —
        // arrives after that request, as an event of its own.
        mark_drained(up_->socket);
    }
    cx_.pool.give_back(*choice_, std::move(up_), coarse_now());
}

void Attempt::outlier(bool gateway_error) {
    const auto& config = cx_.config.outlier;
    if (config.consecutive_errors > 0 &&
        cx_.selector.report(*choice_, gateway_error, coarse_now(), config)) {
        cx_.metrics.outlier_ejected(choice_->cluster);
        cx_.pool.drop(*choice_);
        cx_.h2.drop(*choice_);
    }
}

void Attempt::eject(Clock::time_point now) {
    if (cx_.config.retry.eject_for.count() <= 0) {
        return;
    }
    if (cx_.selector.eject(*choice_, now, cx_.config.retry.eject_for)) {
        cx_.metrics.ejected(choice_->cluster);
    }
    cx_.pool.drop(*choice_);
    cx_.h2.drop(*choice_);
}

bool Attempt::budget_allows() {
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

}  // namespace lb
