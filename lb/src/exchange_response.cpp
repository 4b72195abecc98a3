// One proxied request, the response side: reading the response head (1xx relayed on the way,
// retries on a failure before any byte), relaying the response, switching protocols, and the
// balancer's own answers.
#include <boost/asio/write.hpp>
#include <boost/beast/http.hpp>

#include "exchange_state.hpp"
#include "tunnel.hpp"

namespace lb {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using boost::system::error_code;

// ---- 4. read the response head ------------------------------------------------------------------

// The deadline for the response's first byte: the per-try timeout when a retry is still possible
// (an idempotent request, nothing of its body consumed), else timeouts.upstreamResponse.
template <class Stream>
void Exchange<Stream>::expect_response() {
    can_retry_ = idempotent_ && !body_sent_;
    read_deadline_ = at_.response_deadline(can_retry_);
}

// A parser for the next response head (after a 1xx, the final one).
template <class Stream>
typename Exchange<Stream>::ResponseParser& Exchange<Stream>::next_response() {
    resp_.emplace();
    if (!kTls && cx_.config.splice.enabled && !at_.up().tls) {
        resp_tap_.attach(*resp_);  // (before the head: Beast's rule)
    }
    resp_->header_limit(64 * 1024);
    resp_->body_limit(boost::none);
    if (method_ == http::verb::head) {
        resp_->skip(true);
    }
    watch_.arm(at_.up().socket, read_deadline_);
    return *resp_;
}

// A head was read (or not): kInterim for a 1xx (its head in interim_ for an HTTP/1.1 client),
// else what response_head() makes of it.
template <class Stream>
Next Exchange<Stream>::response_read(error_code ec) {
    if (watch_.fired) {
        ec = asio::error::timed_out;
    }
    if (stopping()) {
        return Next::kClose;
    }
    if (!ec) {
        upstream_at_ = Clock::now();
        if (const auto refusal = check_response(resp_->get())) {
            at_.outlier(true);
            // Nothing of it is relayed: where its body ends is not certain.
            return reply_with(502,
                              "bad response from upstream (cluster " + cluster_name() +
                                  "): " + std::string(refusal->reason),
                              false);
        }
        const unsigned st = resp_->get().result_int();
        if (st < 200 && st != 101) {
            if (client_version_ >= 11) {
                write_response_head(resp_->get(), ResponseRewrite{}, interim_);
            }
            return Next::kInterim;
        }
    }
    return response_head(ec);
}

// The final head, or why there is none: a 101 to an upgrade switches protocols; a per-try
// timeout or a failure before any response byte is retried when the policy allows; else 502/504.
template <class Stream>
Next Exchange<Stream>::response_head(error_code rec) {
    if (stopping()) {
        return Next::kClose;
    }
    if (!rec && resp_->get().result_int() == 101) {
        if (upgrade_.empty()) {
            rec = http::error::bad_value;  // nothing asked to switch: a broken upstream
        } else {
            return Next::kSwitch;
        }
    }
    if (!rec) {
        const unsigned st = resp_->get().result_int();
        at_.outlier(st == 502 || st == 503 || st == 504);
        return Next::kOn;
    }
    if (at_.retry_without_head(rec, can_retry_)) {
        return Next::kRetry;
    }
    return reply_with(at_.failure_status(), at_.take_failure(), client_ka_ && request_done());
}

// ---- 5. relay the response, or tunnel -----------------------------------------------------------

// The response head rewritten for the client: its framing (re-chunked for an HTTP/1.1 client when
// the upstream's body ends at the close), and whether the client connection is kept.
template <class Stream>
void Exchange<Stream>::start_relay() {
    auto& res = resp_->get();
    status_ = res.result_int();
    upstream_ka_ = res.keep_alive();
    const bool upstream_chunked = resp_->chunked();
    bodyless_ = method_ == http::verb::head || status_ == 204 || status_ == 304;
    close_delimited_ = !bodyless_ && !upstream_chunked && !resp_->content_length();
    keep_ = client_ka_ && request_done() && !closing();
    res_framing_ = Framing::kAsIs;
    if (!bodyless_ && (upstream_chunked || close_delimited_)) {
        if (client_version_ >= 11) {
            res_framing_ = Framing::kChunked;
        } else {
            keep_ = false;  // an HTTP/1.0 client: the end of the body is the close
        }
    }
    ResponseRewrite how;
    how.framing = bodyless_ && upstream_chunked ? Framing::kChunked : res_framing_;  // HEAD: as GET
    if (const auto cl = resp_->content_length()) {
        how.content_length = *cl;
    }
    how.connection = !keep_                 ? ConnectionToken::kClose
                     : client_version_ < 11 ? ConnectionToken::kKeepAlive
                                            : ConnectionToken::kNone;
    if (!request_id_.empty()) {
        how.id_header = cx_.config.request_id.header;
        how.id = request_id_;
    }
    write_response_head(res, how, head_);
    head_sent_ = false;
}

// A piece of the body (`len` bytes in the relay buffer; the head before the first one) in
// out_, written to the client at once as far as its socket takes it: false when the rest is to
// be awaited (`ec`: a failed write).
template <class Stream>
bool Exchange<Stream>::body_piece(std::size_t len, bool last, error_code& ec) {
    out_ = Out();
    if (!head_sent_) {
        out_.add(head_);
        head_sent_ = true;
    }
    if (!bodyless_) {
        out_.body(res_framing_, chunk_.get(), len, last);
    }
    watch_.arm(lowest(client_), coarse_now() + to_.client_body);
    return write_now(client_, out_, ec);
}

// The response is relayed: counted, and the upstream connection goes back to the pool when the
// response was read whole and it may be kept. True when the client connection is kept.
template <class Stream>
bool Exchange<Stream>::relay_done() {
    cx_.metrics.request(at_.cluster(), status_, seconds_since(started_));
    watch_.disarm();
    if (!request_done()) {
        watch_.linger = true;  // the client may still be sending the body the answer cut short
    }
    if (upstream_ka_ && response_done() && !close_delimited_ && at_.up().buffer.size() == 0 &&
        !early_ && !stopping()) {
        at_.give_back();
    }
    return keep_ && !stopping();
}

// Switching protocols: the 101 (and whatever the cluster sent after it), then bytes both ways.
// The connection is the tunnel's: not pooled, not kept.
template <class Stream>
Task<bool> Exchange<Stream>::switch_protocols() {
    cx_.metrics.request(at_.cluster(), 101, seconds_since(started_));
    const auto& res = resp_->get();
    std::string_view answer = upgrade_;  // (the cluster's own Upgrade value if it sent one)
    if (const auto their = res.find(http::field::upgrade); their != res.end()) {
        answer = their->value();
    }
    ResponseRewrite how;
    how.upgrade = answer;
    if (!request_id_.empty()) {
        how.id_header = cx_.config.request_id.header;
        how.id = request_id_;
    }
    write_response_head(res, how, head_);
    Out out;
    out.add(head_);
    out.add(at_.up().buffer.data().data(), at_.up().buffer.size());
    watch_.arm(lowest(client_), coarse_now() + to_.client_body);
    auto [we, wn] = co_await asio::async_write(client_, out, kNoThrow);
    at_.up().buffer.consume(at_.up().buffer.size());
    if (we || watch_.fired) {
        co_return false;
    }
    co_await tunnel(client_, buffer_, at_.up(), watch_, cx_.buffers, to_.tunnel_idle);
    watch_.linger = true;  // the client's last bytes (TLS close_notify) must not meet a reset
    co_return false;
}

template <class Stream>
Task<bool> Exchange<Stream>::reply() {
    cx_.metrics.request(WorkerMetrics::kNoCluster, reply_status_, seconds_since(started_));
    if (stopping()) {
        co_return false;
    }
    const bool keep_alive = reply_keep_ && !closing();
    http::response<http::string_body> res{static_cast<http::status>(reply_status_), 11};
    res.set(http::field::server, "tandem-lb");
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    if (!request_id_.empty()) {
        res.set(cx_.config.request_id.header, request_id_);
    }
    res.body() = reply_text_;  // (a copy: the access log gives it as the reason)
    res.body() += '\n';
    body_out_ = res.body().size();
    res.keep_alive(keep_alive);
    res.prepare_payload();
    watch_.linger = !keep_alive;
    watch_.arm(lowest(client_), coarse_now() + to_.client_body);
    auto [ec, n] = co_await http::async_write(client_, res, kNoThrow);
    co_return !ec && !watch_.fired && keep_alive;
}

// These steps for both kinds of client connection (run() and the request side are instantiated
// in exchange.cpp, where they are defined).
template class Exchange<Socket>;
template class Exchange<TlsClient>;

}  // namespace lb
