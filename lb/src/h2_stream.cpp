// One HTTP/2 stream, balanced as one request: its head becomes an HTTP/1.1 request for the
// cluster (the same rewrite, forwarding fields and request ID as an HTTP/1.1 client's), Attempt
// picks, connects and decides retries, and the response goes back as HTTP/2 frames, its body
// flow-controlled by the client's window. Errors are values; nothing here throws on purpose.
#include <algorithm>
#include <cctype>
#include <charconv>

#include <boost/asio/write.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http.hpp>

#include "h2_exchange.hpp"
#include "lb/access_log_format.hpp"
#include "lb/http_rules.hpp"
#include "lb/routes.hpp"
#include "wire.hpp"

namespace lb {

namespace asio = boost::asio;
using boost::system::error_code;

using namespace h2x;  // NOLINT(google-build-using-namespace): this file's own class

// The HTTP/1.1 request head for the cluster (head_), or false with the local answer to give.
bool H2Exchange::build() {
    const auto& h = s_.head;
    const auto& ids = cx_.config.request_id;
    if (ids.enabled) {
        if (ids.trust_incoming) {
            const std::string id_name = lower(ids.header);
            for (const auto& f : h.fields) {
                if (f.name == id_name && well_formed_request_id(f.value)) {
                    request_id_ = f.value;
                }
            }
        }
        if (request_id_.empty()) {
            request_id_ = cx_.log.ids.next(id_buffer_);
        }
    }
    if (h.method == "CONNECT") {
        reply_status_ = 501;
        reply_text_ = "CONNECT is not supported over HTTP/2";
        return false;
    }
    if (h.path.empty() || (h.path.front() != '/' && !(h.path == "*" && h.method == "OPTIONS"))) {
        reply_status_ = 400;
        reply_text_ = "malformed request: :path must be origin-form";
        return false;
    }
    std::string cookie;
    std::optional<std::uint64_t> length;
    req_.method_string(h.method);
    req_.target(h.path);
    req_.version(11);
    for (const auto& f : h.fields) {
        if (f.name == "cookie") {
            // (HTTP/2 may split them; HTTP/1.1 wants one field: RFC 9113 8.2.3)
            cookie += cookie.empty() ? "" : "; ";
            cookie += f.value;
            continue;
        }
        if (f.name == "host" && host_.empty()) {
            host_ = f.value;
        }
        if (f.name == "content-length") {
            std::uint64_t v = 0;
            const auto [p, ec] =
                std::from_chars(f.value.data(), f.value.data() + f.value.size(), v);
            if (ec != std::errc() || p != f.value.data() + f.value.size()) {
                reply_status_ = 400;
                reply_text_ = "malformed request: content-length is not a number";
                return false;
            }
            length = v;
        }
        req_.insert(f.name, f.value);
    }
    if (!cookie.empty()) {
        req_.insert(http::field::cookie, cookie);
    }
    if (!h.authority.empty()) {
        host_ = h.authority;
    }
    if (host_.empty() || !valid_authority(host_)) {
        reply_status_ = 400;
        reply_text_ = "malformed request: no valid :authority or host";
        return false;
    }
    if (length && *length > cx_.config.limits.max_body_bytes) {
        reply_status_ = 413;
        reply_text_ = "content too large (limit " +
                      std::to_string(cx_.config.limits.max_body_bytes) + " bytes)";
        return false;
    }
    route_ = match_route(cx_.config.routes, host_);
    if (!route_) {
        reply_status_ = 404;
        reply_text_ = "no route for this host: no routes: entry takes it";
        return false;
    }
    idempotent_ = is_idempotent(h.method);
    has_body_ = !h.end_stream;
    RequestRewrite how;
    how.proto = c_.tls.empty() ? std::string_view(cx_.config.forwarded_proto) : "https";
    how.target = h.path;
    how.host = host_;
    if (!request_id_.empty()) {
        how.id_header = ids.header;
        how.id = request_id_;
    }
    if (has_body_ && !length) {
        framing_ = Framing::kChunked;
    }
    how.framing = framing_;
    how.content_length = length;
    how.drop_expect = true;  // (HTTP/2 has no 100-continue to wait for: the body just comes)
    write_request_head(req_, c_.client, how, head_);
    return true;
}

Task<void> H2Exchange::run() {
    if (!build()) {
        co_await reply(reply_status_, reply_text_);
        co_return;
    }
    at_.start();
    if (cx_.config.protocol_of(route_) == ClusterProtocol::kH2) {
        co_await via_h2();
        co_return;
    }
    for (;;) {
        resp_.reset();
        switch (at_.pick(route_.value_or(0), !idempotent_, c_.client)) {
            case Attempt::Picked::kNone:
                co_await reply(503,
                               "no healthy cluster: every cluster is failing its health checks "
                               "(see /status on the admin listener)");
                co_return;
            case Attempt::Picked::kConnect: {
                const auto connected = co_await at_.connect(body_sent_);
                if (connected == Attempt::Connected::kRetry) {
                    continue;
                }
                if (connected == Attempt::Connected::kStopping || stopped()) {
                    co_return;
                }
                if (connected == Attempt::Connected::kFailed) {
                    const unsigned st = at_.failure_status();
                    co_await reply(st, at_.take_failure());
                    co_return;
                }
                break;
            }
            case Attempt::Picked::kPooled:
                break;
        }
        s_.upstream = &at_.up().socket;
        error_code ec;
        if (!co_await send_request(ec)) {
            co_return;  // the stream is gone, or the local answer is given
        }
        if (stopped()) {
            co_return;
        }
        if (ec && body_sent_ && cluster_answered()) {
            // It stopped taking the body and answered (a 413, a 401): that answer is the
            // client's (the rest of the body is dropped as it arrives).
            ec = {};
        }
        if (ec) {
            if (at_.retry_elsewhere(!body_sent_)) {
                continue;
            }
            co_await reply(502, "upstream (cluster " + at_.cluster_name() +
                                    ") closed the connection while receiving the request");
            co_return;
        }
        const error_code rec = co_await read_head();
        if (stopped()) {
            co_return;
        }
        if (!rec) {
            const unsigned st = resp_->get().result_int();
            at_.outlier(st == 502 || st == 503 || st == 504);
            break;
        }
        if (at_.retry_without_head(rec, idempotent_ && !body_sent_)) {
            continue;
        }
        const unsigned st = at_.failure_status();
        co_await reply(st, at_.take_failure());
        co_return;
    }
    co_await relay();
}

Task<error_code> H2Exchange::send(Out& out) {
    auto& up = at_.up();
    watch_.arm(up.socket, coarse_now() + cx_.config.timeouts.upstream_response);
    error_code e;
    if (up.tls || !write_now(up.socket, out, e)) {
        e = co_await send_rest(up, out);
    }
    if (watch_.fired) {
        e = asio::error::timed_out;
    }
    co_return e;
}

// The head, then the body as the client sends it (never more than its window held here). False
// when the exchange is over (the stream gone, or a local answer given for a late body).
Task<bool> H2Exchange::send_request(error_code& ec) {
    Out out;
    out.add(head_);
    if (!has_body_) {
        ec = co_await send(out);
        co_return true;
    }
    const auto& to = cx_.config.timeouts;
    const auto& limits = cx_.config.limits;
    const Clock::time_point body_start = coarse_now();
    bool head_sent = false;
    for (;;) {
        if (s_.body.empty() && !s_.ended) {
            if (!head_sent) {
                head_sent = true;  // the cluster may start on it (and answer early)
                ec = co_await send(out);
                if (ec) {
                    co_return true;
                }
            }
            const bool woke =
                co_await wait(body_read_deadline(body_start, body_in_, coarse_now(), to.client_body,
                                                 limits.min_body_rate, to.client_body_grace));
            if (stopped()) {
                co_return false;
            }
            if (!woke && s_.body.empty() && !s_.ended) {
                co_await reply(408,
                               "request timeout: the request body arrived too slowly "
                               "(timeouts.clientBody, limits.minBodyRate)");
                co_return false;
            }
            continue;
        }
        std::string piece = std::move(s_.body);
        s_.body.clear();
        const bool last = s_.ended;
        body_in_ += piece.size();
        if (body_in_ > limits.max_body_bytes) {
            c_.consume(id_, piece.size());
            co_await reply(413, "content too large (limit " +
                                    std::to_string(limits.max_body_bytes) + " bytes)");
            co_return false;
        }
        Out o;
        if (!head_sent) {
            o.add(head_);
            head_sent = true;
        }
        // Trailers go in the last chunk (HTTP/1.1 can carry them only chunked; with a
        // Content-Length they are dropped).
        const bool with_trailers = last && framing_ == Framing::kChunked && !s_.trailers.empty();
        o.body(framing_, piece.data(), piece.size(), last && !with_trailers);
        if (with_trailers) {
            trailer_block_ = "0\r\n";
            for (const auto& f : s_.trailers) {
                if (!connection_specific(f.name)) {
                    trailer_block_ += f.name + ": " + f.value + "\r\n";
                }
            }
            trailer_block_ += "\r\n";
            o.add(trailer_block_);
        }
        ec = co_await send(o);
        if (!piece.empty()) {
            body_sent_ = true;
            c_.consume(id_, piece.size());
        }
        if (ec || last) {
            co_return true;
        }
    }
}

// The response head (1xx answers skipped: HTTP/2 clients get the final one).
Task<error_code> H2Exchange::read_head() {
    const auto deadline = at_.response_deadline(idempotent_ && !body_sent_);
    auto& up = at_.up();
    for (;;) {
        resp_.emplace();
        resp_->header_limit(64 * 1024);
        resp_->body_limit(boost::none);
        if (s_.head.method == "HEAD") {
            resp_->skip(true);
        }
        watch_.arm(up.socket, deadline);
        error_code e;
        if (up.tls) {
            e = co_await read_message(*up.tls, up.buffer, *resp_, true, kChunk + 4096);
        } else {
            e = co_await read_message(up.socket, up.buffer, *resp_, true, kChunk + 4096);
        }
        if (watch_.fired) {
            e = asio::error::timed_out;
        }
        if (e) {
            co_return e;
        }
        if (const auto refusal = check_response(resp_->get())) {
            co_return error_code(http::error::bad_value);
        }
        const unsigned st = resp_->get().result_int();
        if (st >= 200) {
            upstream_at_ = Clock::now();
            co_return error_code{};
        }
        if (st == 101) {
            co_return error_code(http::error::bad_value);  // nothing asked to switch
        }
    }
}

// The response to the client: its head as HTTP/2 fields, then the body piece by piece as the
// client's window takes it.
Task<void> H2Exchange::relay() {
    auto& res = resp_->get();
    auto& up = at_.up();
    status_ = res.result_int();
    const bool bodyless = s_.head.method == "HEAD" || status_ == 204 || status_ == 304 ||
                          (resp_->content_length() && *resp_->content_length() == 0);
    const std::string id_name = lower(cx_.config.request_id.header);
    std::vector<H2Field> fields;
    for (const auto& f : res) {
        std::string name = lower(f.name_string());
        if (connection_specific(name) || (!request_id_.empty() && name == id_name)) {
            continue;
        }
        fields.push_back({std::move(name), std::string(f.value())});
    }
    if (!request_id_.empty()) {
        fields.push_back({id_name, std::string(request_id_)});
    }
    const bool keep = res.keep_alive();
    const bool close_delimited = !bodyless && !resp_->chunked() && !resp_->content_length();
    // (a chunked response's trailer fields are appended to these by the parser)
    const auto head_fields = static_cast<std::size_t>(std::distance(res.begin(), res.end()));
    if (bodyless) {
        s_.answered = true;
    }
    if (!c_.session->respond(id_, status_, fields, bodyless)) {
        failure_ = "the client's stream closed before the response";
        co_return;
    }
    c_.writer.notify();
    const auto& to = cx_.config.timeouts;
    bool done = bodyless;
    while (!done) {
        auto& body = resp_->get().body();
        body.data = chunk();
        body.size = kChunk;
        resp_->eager(true);
        watch_.arm(up.socket, coarse_now() + to.upstream_response);
        error_code e;
        if (up.tls) {
            e = co_await read_message(*up.tls, up.buffer, *resp_, false, kChunk + 4096);
        } else {
            e = co_await read_message(up.socket, up.buffer, *resp_, false, kChunk + 4096);
        }
        if (stopped()) {
            failure_ = "the client reset the stream";
            co_return;
        }
        if (e || watch_.fired) {
            failure_ = "the cluster's response broke off mid-body";
            c_.session->reset(id_, 2);  // INTERNAL_ERROR: the client knows it is incomplete
            c_.writer.notify();
            cx_.metrics.request(at_.cluster(), status_,
                                std::chrono::duration<double>(Clock::now() - started_).count(),
                                Protocol::kH2);
            co_return;
        }
        const std::size_t len = kChunk - body.size;
        body_out_ += len;
        done = resp_->is_done();
        if (done) {
            s_.answered = true;
        }
        std::vector<H2Field> trailers;
        if (done && resp_->chunked()) {
            trailers = response_trailers(head_fields);
        }
        c_.session->body(id_, std::string_view(chunk_.get(), len), done && trailers.empty());
        if (!trailers.empty()) {
            c_.session->trailers(id_, trailers);
        }
        c_.writer.notify();
        // The client's window decides how fast: above a bound the cluster waits.
        if (!done && !co_await wait_for_window()) {
            co_return;
        }
    }
    watch_.disarm();
    cx_.metrics.request(at_.cluster(), status_,
                        std::chrono::duration<double>(Clock::now() - started_).count(),
                        Protocol::kH2);
    if (keep && resp_->is_done() && !close_delimited && up.buffer.size() == 0 &&
        !cx_.lifecycle.stopping) {
        at_.give_back();
    }
}

Task<bool> H2Exchange::wait_for_window() {
    while (c_.session->buffered(id_) > kMaxBuffered) {
        s_.blocked = true;
        const bool woke = co_await s_.window.wait(coarse_now() + cx_.config.timeouts.client_body);
        s_.blocked = false;
        if (stopped()) {
            failure_ = "the client reset the stream";
            co_return false;
        }
        if (!woke && c_.session->buffered(id_) > kMaxBuffered) {
            failure_ = "the client stopped taking the response";
            c_.session->reset(id_, kCancel);
            c_.writer.notify();
            co_return false;
        }
    }
    co_return true;
}

// The trailer fields of a chunked response: what the parser added after the head's `head_fields`.
std::vector<H2Field> H2Exchange::response_trailers(std::size_t head_fields) {
    std::vector<H2Field> out;
    std::size_t i = 0;
    for (const auto& f : resp_->get()) {
        if (i++ < head_fields) {
            continue;
        }
        std::string name = lower(f.name_string());
        if (!connection_specific(name) && name != "content-length") {
            out.push_back({std::move(name), std::string(f.value())});
        }
    }
    return out;
}

Task<void> H2Exchange::reply(unsigned status, std::string text) {
    reply_status_ = status;
    reply_text_ = std::move(text);
    cx_.metrics.request(WorkerMetrics::kNoCluster, status,
                        std::chrono::duration<double>(Clock::now() - started_).count(),
                        Protocol::kH2);
    if (stopped()) {
        co_return;
    }
    std::vector<H2Field> fields = {{"content-type", "text/plain; charset=utf-8"},
                                   {"server", "tandem-lb"}};
    if (!request_id_.empty()) {
        fields.push_back({lower(cx_.config.request_id.header), std::string(request_id_)});
    }
    s_.answered = true;
    const std::string body = reply_text_ + "\n";
    body_out_ = body.size();
    if (c_.session->respond(id_, status, fields, false)) {
        c_.session->body(id_, body, true);
    }
    c_.writer.notify();
    co_return;
}

void H2Exchange::record() {
    const auto& config = cx_.config.access_log;
    const unsigned status = reply_status_ != 0 ? reply_status_ : status_;
    if (!cx_.log.sampled(config.sample_percent, status, reply_status_ != 0)) {
        return;
    }
    AccessRecord r;
    r.client = c_.client.text;
    r.method = s_.head.method;
    r.target = s_.head.path;
    r.version = 20;
    r.host = host_;
    r.head = &req_;
    r.status = status;
    r.bytes_in = body_in_;
    r.bytes_out = body_out_;
    r.request_id = request_id_;
    r.tls = c_.tls;
    if (reply_status_ != 0) {
        r.reason = reply_text_;
    } else if (!failure_.empty()) {
        r.reason = failure_;
    } else if (status_ == 0) {
        r.reason = "no answer: the client reset the stream or the balancer stopped";
    }
    write_access_line(cx_, r, started_, upstream_at_, route_, at_);
}

Task<void> h2_stream(std::shared_ptr<H2Conn> conn, std::shared_ptr<H2StreamState> stream) {
    H2Exchange x(std::move(conn), std::move(stream));
    co_await x.run();
}

}  // namespace lb
