// One proxied request, the request side: the driver that does the waiting, then reading the
// request, picking a cluster and connecting, and sending the request. Errors are error_code
// values; nothing here throws on purpose.
#include <algorithm>

#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/string.hpp>

#include "exchange_state.hpp"
#include "lb/routes.hpp"

namespace lb {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

bool is_idempotent(http::verb v) {
    switch (v) {
        case http::verb::get:
        case http::verb::head:
        case http::verb::options:
        case http::verb::trace:
        case http::verb::put:
        case http::verb::delete_:
            return true;
        default:
            return false;
    }
}

}  // namespace

// GCC 12 warns that the frame's sized operator delete (on the path where its allocation is
// undone) mismatches Asio's aligned allocation: a false positive (both are Asio's own pair).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
template <class Stream>
Task<bool> Exchange<Stream>::run(ExchangeContext& cx,
                                 Stream& client,
                                 beast::flat_buffer& buffer,
                                 Watch& watch,
                                 const ClientAddress& client_address) {
    Exchange x(cx, client, buffer, watch, client_address);
    if constexpr (!kTls) {
        if (cx.config.splice.enabled) {
            x.req_tap_.attach(x.rp_);  // (before the head: Beast's rule)
        }
    }
    // 1. Read the request head.
    x.rp_.header_limit(cx.config.limits.max_header_bytes);
    x.rp_.body_limit(cx.config.limits.max_body_bytes);
    watch.arm(lowest(client), x.started_ + x.to_.client_header);
    Next n = x.request_read(co_await read_message(client, buffer, x.rp_, true, kClientHeaderRead));
    if (n == Next::kOn && cx.config.protocol_of(x.route_) == ClusterProtocol::kH2) {
        co_return co_await x.via_h2();
    }
    while (n == Next::kOn) {
        // 2. Pick a cluster, and a pooled connection to it or a new one.
        n = x.pick();
        if (n == Next::kConnect) {
            n = co_await x.connect();
        }
        // 3. Send the request.
        if (n == Next::kOn && x.has_body_) {
            n = co_await x.send_with_body();
        } else if (n == Next::kOn) {
            n = x.send_head();
            if (n == Next::kWriting) {
                n = x.sent(co_await send_rest(x.at_.up(), x.out_));
            }
        }
        // 4. Read the response head; 1xx answers are relayed on the way.
        if (n == Next::kOn) {
            x.expect_response();
            do {
                auto& parser = x.next_response();
                error_code e;
                if (x.at_.up().tls) {  // (if/else, not ?: around co_await: GCC 12's coroutine bugs)
                    e = co_await read_message(*x.at_.up().tls, x.at_.up().buffer, parser, true,
                                              kUpstreamRead);
                } else {
                    e = co_await read_message(x.at_.up().socket, x.at_.up().buffer, parser, true,
                                              kUpstreamRead);
                }
                n = x.response_read(e);
                if (n == Next::kInterim && x.client_version_ >= 11) {
                    watch.arm(lowest(client), coarse_now() + x.to_.client_body);
                    auto [ie, in] =
                        co_await asio::async_write(client, asio::buffer(x.interim_), kNoThrow);
                    if (ie || watch.fired) {
                        n = Next::kClose;
                    }
                }
            } while (n == Next::kInterim);
        }
        if (n == Next::kRetry) {
            n = Next::kOn;
            continue;
        }
        if (n != Next::kOn) {
            break;
        }
        // 5. Relay the response: its head, then the body piece by piece.
        x.start_relay();
        if constexpr (!kTls) {
            if (x.direct_response()) {
                if (!co_await x.relay_direct()) {
                    co_return false;
                }
                co_return x.relay_done();
            }
        }
        for (bool last = false; !last;) {
            if constexpr (!kTls) {
                if (x.chunk_rest_due(x.resp_tap_, *x.resp_, x.at_.up().buffer)) {
                    // A large chunk's rest goes socket to socket; the parser reads on after it.
                    const Moved end = co_await x.relay_chunk_rest();
                    if (end == Moved::kDone) {
                        continue;
                    }
                    if (!x.response_move_failed(end)) {
                        co_return false;
                    }
                    break;
                }
            }
            std::size_t len = 0;
            if (!x.bodyless_ && !x.resp_->is_done()) {
                auto& body = x.resp_->get().body();
                body.data = x.chunk();
                body.size = kChunk;
                watch.arm(x.at_.up().socket, coarse_now() + x.to_.upstream_response);
                x.resp_->eager(true);
                error_code e;
                if (x.at_.up().tls) {
                    e = co_await read_message(*x.at_.up().tls, x.at_.up().buffer, *x.resp_, false,
                                              kUpstreamRead);
                } else {
                    e = co_await read_message(x.at_.up().socket, x.at_.up().buffer, *x.resp_, false,
                                              kUpstreamRead);
                }
                if ((e || watch.fired) && !x.head_sent_ && !x.stopping()) {
                    // Nothing relayed yet (a malformed first chunk, a body that never came):
                    // the client still gets an answer.
                    n = x.reply_with(
                        watch.fired ? 504 : 502,
                        watch.fired ? "upstream response timeout (cluster " + x.cluster_name() + ")"
                                    : "bad response body from upstream (cluster " +
                                          x.cluster_name() + "): " + e.message(),
                        false);
                    break;
                }
                if (e || watch.fired) {
                    // The upstream failed mid-body: closing the client connection is the only
                    // way left to tell it the response is incomplete.
                    x.failure_ = "the cluster's response broke off mid-body";
                    cx.metrics.request(x.at_.cluster(), x.status_, seconds_since(x.started_));
                    co_return false;
                }
                len = kChunk - body.size;
                x.body_out_ += len;
            }
            last = x.bodyless_ || x.resp_->is_done();
            error_code e;
            if (!x.body_piece(len, last, e)) {
                auto [ae, m] = co_await asio::async_write(client, x.out_, kNoThrow);
                e = ae;
            }
            if (e || watch.fired) {
                x.keep_ = false;
                x.failure_ = "the client stopped taking the response";
                break;
            }
        }
        if (n != Next::kOn) {
            break;
        }
        co_return x.relay_done();
    }
    if (n == Next::kSwitch) {
        co_return co_await x.switch_protocols();
    }
    co_return co_await x.end(n);
}
#pragma GCC diagnostic pop

// ---- 1. read the request ------------------------------------------------------------------------

template <class Stream>
Next Exchange<Stream>::request_read(error_code ec) {
    const auto& limits = cx_.config.limits;
    if (stopping()) {
        return Next::kClose;
    }
    const auto& ids = cx_.config.request_id;
    if (ids.enabled && rp_.got_some()) {
        // Kept when the client's is well-formed and trusted, generated otherwise; also for a
        // request refused below (its answer and its log line carry it).
        if (ids.trust_incoming && rp_.is_header_done()) {
            const auto it = rp_.get().find(ids.header);
            if (it != rp_.get().end() && well_formed_request_id(it->value())) {
                request_id_ = it->value();
            }
        }
        if (request_id_.empty()) {
            request_id_ = cx_.log.ids.next(id_buffer_);
        }
    }
    if (watch_.fired) {
        return reply_with(408, "request timeout: the request header did not arrive in time", false);
    }
    if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
        return reply_with(431,
                          "request header fields too large (limit " +
                              std::to_string(limits.max_header_bytes) + " bytes)",
                          false);
    }
    if (ec == http::error::body_limit) {
        return reply_with(
            413, "content too large (limit " + std::to_string(limits.max_body_bytes) + " bytes)",
            false);
    }
    if (ec == http::error::bad_version &&
        names_unsupported_version(
            std::string_view(static_cast<const char*>(buffer_.data().data()), buffer_.size()))) {
        return reply_with(505, "HTTP version not supported: only HTTP/1.0 and HTTP/1.1", false);
    }
    if (ec && is_parse_error(ec)) {
        return reply_with(400, "malformed request: " + ec.message(), false);
    }
    if (ec) {
        return Next::kClose;  // the client went away
    }
    auto& req = rp_.get();
    // What Beast lets through and RFC 9112 does not: refused before anything goes upstream, and
    // the connection closed (where this request ends is not certain).
    const auto shape = check_request(req);
    if (!shape) {
        return reply_with(shape.error().status, std::string(shape.error().reason), false);
    }
    // A request under way for the retry budget from here (a connection still sending its
    // head, a slowloris, is not one).
    at_.start();
    method_ = req.method();
    idempotent_ = is_idempotent(method_);
    client_ka_ = req.keep_alive();
    client_version_ = req.version();
    has_body_ = !rp_.is_done();
    RequestRewrite how;
    how.proto = kTls ? std::string_view("https") : cx_.config.forwarded_proto;
    how.target = shape->target;
    host_ = shape->host;
    if (shape->host_from_target) {
        how.host = shape->host;
    }
    route_ = match_route(cx_.config.routes, host_);
    if (!route_) {
        return reply_with(404, "no route for this host: no routes: entry takes it",
                          client_ka_ && !has_body_);
    }
    if (!request_id_.empty()) {
        how.id_header = ids.header;
        how.id = request_id_;
    }
    if (auto it = req.find(http::field::expect);
        it != req.end() && beast::iequals(it->value(), "100-continue")) {
        // Answered here (as nginx does): the body then streams through as it arrives.
        expect_continue_ = has_body_;
        how.drop_expect = true;
    }
    // A WebSocket handshake (RFC 6455: GET, HTTP/1.1, Connection: upgrade, Upgrade): asked of the
    // cluster as it came; a 101 then turns the exchange into a tunnel. (h2c is not: the balancer
    // speaks HTTP/1.1 to the clusters.)
    if (method_ == http::verb::get && !has_body_ && client_version_ == 11) {
        const auto up_it = req.find(http::field::upgrade);
        if (up_it != req.end() && !beast::iequals(up_it->value(), "h2c")) {
            for (const auto token : http::token_list{req[http::field::connection]}) {
                if (beast::iequals(token, "upgrade")) {
                    upgrade_ = up_it->value();
                }
            }
        }
    }
    how.upgrade = upgrade_;
    req_framing_ = rp_.chunked() ? Framing::kChunked : Framing::kAsIs;
    how.framing = req_framing_;
    if (const auto length = rp_.content_length()) {
        how.content_length = *length;
    }
    write_request_head(req, client_address_, how, head_);
    return Next::kOn;
}

// ---- 2. pick a cluster and connect --------------------------------------------------------------

// The cluster the round robin picks among the eligible ones, and an idle connection to the
// chosen endpoint when the pool has one (probed first for a non-idempotent request: it cannot
// be retried if the connection turns out closed).
template <class Stream>
Next Exchange<Stream>::pick() {
    resp_.reset();  // (what the previous attempt left)
    early_ = false;
    switch (at_.pick(route_.value_or(0), !idempotent_, client_address_)) {
        case Attempt::Picked::kNone:
            return reply_with(503,
                              "no healthy cluster: every cluster is failing its health checks "
                              "(see /status on the admin listener)",
                              client_ka_ && !has_body_);
        case Attempt::Picked::kConnect:
            return Next::kConnect;
        case Attempt::Picked::kPooled:
            break;
    }
    return Next::kOn;
}

// A new connection to the chosen endpoint; a failure is retried on another cluster when the
// policy allows, else answered 502/504.
template <class Stream>
Task<Next> Exchange<Stream>::connect() {
    const auto connected = co_await at_.connect(body_sent_);  // (not in the switch: GCC 12)
    switch (connected) {
        case Attempt::Connected::kOk:
            co_return Next::kOn;
        case Attempt::Connected::kRetry:
            co_return Next::kRetry;
        case Attempt::Connected::kStopping:
            co_return Next::kClose;
        case Attempt::Connected::kFailed:
            break;
    }
    co_return reply_with(at_.failure_status(), at_.take_failure(), client_ka_ && request_done());
}

// ---- 3. send the request ------------------------------------------------------------------------

// A request without a body: its head in one write when the socket takes it (kWriting when the
// rest is to be awaited; over TLS always).
template <class Stream>
Next Exchange<Stream>::send_head() {
    watch_.arm(at_.up().socket, coarse_now() + to_.upstream_response);
    out_ = Out();
    out_.add(head_);
    error_code wec;
    if (at_.up().tls || !write_now(at_.up().socket, out_, wec)) {
        return Next::kWriting;
    }
    return sent(wec);
}

// The request is written (or the write failed): a failed write means the upstream did not take
// the whole request, so it cannot have acted on it: safe to send again whatever the method, if
// nothing of the body was consumed.
template <class Stream>
Next Exchange<Stream>::sent(error_code ec) {
    if (watch_.fired) {
        ec = asio::error::timed_out;
    }
    if (stopping()) {
        return Next::kClose;
    }
    if (ec) {
        if (at_.retry_elsewhere(!body_sent_)) {
            return Next::kRetry;
        }
        return reply_with(502,
                          "upstream (cluster " + cluster_name() +
                              ") closed the connection while receiving the request",
                          false);
    }
    return Next::kOn;
}

// A request with a body: 100-continue answered here, then the head and the body piece by piece
// as it arrives (never buffered whole). While it waits for the client, the cluster may answer
// first (a 401, a 413, an upload endpoint's 200): the body stops there and the answer is
// relayed at once (`early_`; the connection then closes, lingering).
template <class Stream>
Task<Next> Exchange<Stream>::send_with_body() {
    if (expect_continue_) {
        expect_continue_ = false;
        static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        watch_.arm(lowest(client_), coarse_now() + to_.client_body);
        auto [e, n] = co_await asio::async_write(
            client_, asio::buffer(kContinue.data(), kContinue.size()), kNoThrow);
        if (e || watch_.fired) {
            co_return Next::kClose;
        }
    }
    body_start_ = coarse_now();
    if constexpr (!kTls) {
        if (direct_request()) {
            co_return co_await send_direct();
        }
    }
    const auto& limits = cx_.config.limits;
    const Clock::time_point body_start = body_start_;
    bool head_sent = false;
    for (bool last = false; !last;) {
        if constexpr (!kTls) {
            if (chunk_rest_due(req_tap_, rp_, buffer_)) {
                // A large chunk's rest goes socket to socket; the parser reads on after it.
                std::string_view prefix;  // (not a ?: inside co_await: GCC 12's coroutine bugs)
                if (!head_sent) {
                    prefix = head_;
                }
                const Moved end = co_await send_chunk_rest(prefix);
                head_sent = true;
                if (end == Moved::kDone) {
                    continue;
                }
                co_return request_move_failed(end);
            }
        }
        auto& body = rp_.get().body();
        std::size_t len = 0;
        if (!rp_.is_done()) {
            watch_.arm(lowest(client_),
                       body_read_deadline(body_start, body_in_, coarse_now(), to_.client_body,
                                          limits.min_body_rate, to_.client_body_grace));
            body.data = chunk();
            body.size = kChunk;
            rp_.eager(true);
            error_code e;
            std::size_t read_size = kChunk;
            if (!parse_buffered(buffer_, rp_, false, kChunk, e)) {
                if (!client_ready()) {
                    // Nothing of the body to relay now: the head goes ahead (the cluster may
                    // answer it), then whichever speaks first.
                    if (!head_sent) {
                        Out out;
                        out.add(head_);
                        head_sent = true;
                        if (const error_code se = co_await send(out)) {
                            co_return sent(se);
                        }
                        watch_.arm(
                            lowest(client_),
                            body_read_deadline(body_start, body_in_, coarse_now(), to_.client_body,
                                               limits.min_body_rate, to_.client_body_grace));
                    }
                    // A slow client can keep thousands of bodies waiting: meanwhile the relay
                    // buffer goes back to the pool (it holds nothing unsent), and what arrives
                    // is read in pieces its size, not into a 16 KiB region per connection.
                    cx_.buffers.give_chunk(std::move(chunk_));
                    const bool cluster_first = co_await client_or_cluster();
                    if (stopping()) {
                        co_return Next::kClose;
                    }
                    if (cluster_first) {
                        early_ = true;
                        co_return Next::kOn;
                    }
                    body.data = chunk();
                    body.size = kChunk;
                    error_code ignored;
                    read_size = std::clamp<std::size_t>(lowest(client_).available(ignored),
                                                        kClientHeaderRead, kChunk);
                }
                e = watch_.fired ? error_code(asio::error::timed_out)
                                 : co_await read_message(client_, buffer_, rp_, false, read_size);
            }
            if (stopping()) {
                co_return Next::kClose;
            }
            if (e == http::error::body_limit) {
                co_return reply_with(
                    413,
                    "content too large (limit " + std::to_string(limits.max_body_bytes) + " bytes)",
                    false);
            }
            if (watch_.fired) {
                co_return reply_with(408,
                                     "request timeout: the request body arrived too slowly "
                                     "(timeouts.clientBody, limits.minBodyRate)",
                                     false);
            }
            if (e && is_parse_error(e)) {
                co_return reply_with(400, "malformed request body: " + e.message(), false);
            }
            if (e) {
                co_return Next::kClose;  // the client went away mid-body
            }
            body_sent_ = true;
            len = kChunk - body.size;
            body_in_ += len;
        }
        last = rp_.is_done();
        Out out;
        if (!head_sent) {
            out.add(head_);
            head_sent = true;
        }
        out.body(req_framing_, chunk_.get(), len, last);
        if (const error_code e = co_await send(out)) {
            // The cluster stopped taking the body: it may have answered already (a 413 before
            // closing), and its answer is what the client should see.
            if (cluster_answered()) {
                early_ = true;
                co_return Next::kOn;
            }
            co_return sent(e);
        }
    }
    co_return sent(error_code{});
}

// Writes `out` to the cluster: at once as far as the socket takes it, the rest awaited.
template <class Stream>
Task<error_code> Exchange<Stream>::send(Out& out) {
    watch_.arm(at_.up().socket, coarse_now() + to_.upstream_response);
    error_code e;
    if (at_.up().tls || !write_now(at_.up().socket, out, e)) {
        e = co_await send_rest(at_.up(), out);
    }
    if (watch_.fired) {
        e = asio::error::timed_out;
    }
    co_return e;
}

// Whether the client has body bytes a read returns at once (without waiting).
template <class Stream>
bool Exchange<Stream>::client_ready() {
    if (buffered(client_)) {
        return true;
    }
    error_code ec;
    return lowest(client_).available(ec) > 0 || ec;
}

// Whether the cluster sent something (an answer, or its close) on the connection the request
// is on.
template <class Stream>
bool Exchange<Stream>::cluster_answered() {
    error_code ec;
    return at_.up().buffer.size() > 0 || at_.up().socket.available(ec) > 0;
}

// Waits until the client's socket or the cluster's has something to read (the watch, armed on
// the client's socket, ends the wait too): true when the cluster's came first.
template <class Stream>
Task<bool> Exchange<Stream>::client_or_cluster() {
    if (cluster_answered()) {
        co_return true;
    }
    auto [order, client_ec, cluster_ec] =
        co_await asio::experimental::make_parallel_group(
            lowest(client_).async_wait(Socket::wait_read, asio::deferred),
            at_.up().socket.async_wait(Socket::wait_read, asio::deferred))
            .async_wait(asio::experimental::wait_for_one(), asio::use_awaitable_t<Executor>{});
    co_return order[0] == 1 && !watch_.fired;
}

template <class Stream>
Task<bool> exchange(ExchangeContext& cx,
                    Stream& client,
                    beast::flat_buffer& buffer,
                    Watch& watch,
                    const ClientAddress& client_address) {
    return Exchange<Stream>::run(cx, client, buffer, watch, client_address);
}

// (What exchange_direct.cpp uses of this file, for plain client connections.)
template Task<error_code> Exchange<Socket>::send(Out&);
template Next Exchange<Socket>::sent(error_code);
template bool Exchange<Socket>::cluster_answered();
template Task<bool> Exchange<Socket>::client_or_cluster();

template Task<bool> exchange(
    ExchangeContext&, Socket&, beast::flat_buffer&, Watch&, const ClientAddress&);
template Task<bool> exchange(
    ExchangeContext&, TlsClient&, beast::flat_buffer&, Watch&, const ClientAddress&);

}  // namespace lb
