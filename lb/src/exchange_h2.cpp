// An HTTP/1.1 client's request to an h2 cluster: the request head becomes a stream's (the same
// rewrite as for HTTP/1.1 clusters), the body is read on by forward_h2's pump while the response
// comes back as HTTP/1.1: with its length when the cluster gave one, else chunked with the
// trailers in the last chunk (gRPC's grpc-status). Errors are values; nothing here throws on
// purpose.
#include <boost/asio/write.hpp>
#include <boost/beast/core/string.hpp>

#include "exchange_state.hpp"
#include "h2_forward.hpp"
#include "h2_heads.hpp"

namespace lb {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using boost::system::error_code;

// The HTTP/1.1 exchange as forward_h2's origin. Its body reads (the pump) and response writes
// (the relay) may overlap: one read and one write on the stream, each under its own watch.
template <class Stream>
class H1Origin final : public H2Origin {
public:
    explicit H1Origin(Exchange<Stream>& x) : x_(x) { x_.cx_.watches.push_back(read_watch_); }
    ~H1Origin() { read_watch_.unlink(); }
    H1Origin(const H1Origin&) = delete;
    H1Origin& operator=(const H1Origin&) = delete;

    Task<std::optional<Piece>> body() override;
    void taken(std::size_t /*bytes*/) override {}
    void stop_body() override {
        stop_ = true;
        error_code ignored;
        lowest(x_.client_).cancel(ignored);  // (the relay has written everything by now)
    }
    Task<bool> head(const H2ResponseHead& head, bool end) override;
    Task<bool> data(std::string_view bytes, bool last) override;
    Task<bool> trailers(const std::vector<H2Field>& fields) override;
    void broke_off() override { x_.keep_ = false; }
    Task<void> reply(unsigned status, std::string text) override {
        // (written once forward_h2 is over: the pump may still be reading)
        replied_ = true;
        x_.reply_with(status, std::move(text), x_.client_ka_ && x_.rp_.is_done());
        co_return;
    }
    [[nodiscard]] bool gone() const override { return gone_ || x_.stopping(); }
    void watch_gone(Signal* signal) override { wake_ = signal; }

    [[nodiscard]] bool replied() const { return replied_; }

private:
    Task<bool> write(Out& out);
    void lost() {
        gone_ = true;
        if (wake_ != nullptr) {
            wake_->notify();
        }
    }

    Exchange<Stream>& x_;
    Watch read_watch_;
    H1ResponseFraming framing_;
    bool bodyless_ = false;
    bool stop_ = false;
    bool gone_ = false;
    bool replied_ = false;
    bool started_ = false;  // the response head went out
    Signal* wake_ = nullptr;
    Clock::time_point body_start_ = coarse_now();
    std::string last_;
};

template <class Stream>
Task<std::optional<H2Origin::Piece>> H1Origin<Stream>::body() {
    auto& x = x_;
    if (stop_ || gone_ || x.rp_.is_done()) {
        co_return std::nullopt;
    }
    const auto& limits = x.cx_.config.limits;
    auto& body = x.rp_.get().body();
    body.data = x.chunk();
    body.size = kChunk;
    x.rp_.eager(true);
    read_watch_.arm(lowest(x.client_),
                    body_read_deadline(body_start_, x.body_in_, coarse_now(), x.to_.client_body,
                                       limits.min_body_rate, x.to_.client_body_grace));
    error_code e;
    if (!parse_buffered(x.buffer_, x.rp_, false, kChunk, e)) {
        e = co_await read_message(x.client_, x.buffer_, x.rp_, false, kChunk);
    }
    read_watch_.disarm();
    if (stop_) {
        co_return std::nullopt;
    }
    const auto refuse = [&](unsigned status, std::string text) {
        if (started_) {
            lost();  // the answer is under way: the connection ends instead
        } else {
            replied_ = true;
            x.reply_with(status, std::move(text), false);
            if (wake_ != nullptr) {
                wake_->notify();
            }
        }
    };
    if (read_watch_.fired) {
        refuse(408,
               "request timeout: the request body arrived too slowly (timeouts.clientBody, "
               "limits.minBodyRate)");
        co_return std::nullopt;
    }
    if (e == http::error::body_limit) {
        refuse(413,
               "content too large (limit " + std::to_string(limits.max_body_bytes) + " bytes)");
        co_return std::nullopt;
    }
    if (e && is_parse_error(e)) {
        refuse(400, "malformed request body: " + e.message());
        co_return std::nullopt;
    }
    if (e) {
        lost();  // the client went away mid-body
        co_return std::nullopt;
    }
    const std::size_t len = kChunk - body.size;
    x.body_in_ += len;
    x.body_sent_ = true;
    co_return Piece{std::string_view(x.chunk_.get(), len), x.rp_.is_done(), {}};
}

template <class Stream>
Task<bool> H1Origin<Stream>::write(Out& out) {
    auto& x = x_;
    x.watch_.arm(lowest(x.client_), coarse_now() + x.to_.client_body);
    error_code e;
    if (!write_now(x.client_, out, e) && !e) {
        auto [we, n] = co_await asio::async_write(x.client_, out, kNoThrow);
        e = we;
    }
    x.watch_.disarm();
    if (e || x.watch_.fired) {
        lost();
        co_return false;
    }
    co_return true;
}

template <class Stream>
Task<bool> H1Origin<Stream>::head(const H2ResponseHead& head, bool end) {
    auto& x = x_;
    x.status_ = head.status;
    x.upstream_at_ = Clock::now();
    bodyless_ = end || x.method_ == http::verb::head || head.status == 204 || head.status == 304;
    framing_ = h1_framing(head, x.client_version_, bodyless_);
    x.keep_ = x.client_ka_ && !x.closing() && !framing_.close;
    std::string_view id_header;
    if (!x.request_id_.empty()) {
        id_header = x.cx_.config.request_id.header;
    }
    write_h1_response_head(head, framing_, x.keep_, id_header, x.request_id_, x.head_);
    started_ = true;
    x.head_sent_ = true;
    Out out;
    out.add(x.head_);
    co_return co_await write(out);
}

template <class Stream>
Task<bool> H1Origin<Stream>::data(std::string_view bytes, bool last) {
    if (bodyless_) {
        co_return true;  // (a HEAD's body, if the cluster sent one, is not the client's)
    }
    Out out;
    out.body(framing_.chunked ? Framing::kChunked : Framing::kAsIs, bytes.data(), bytes.size(),
             last);
    if (out.empty()) {
        co_return true;
    }
    co_return co_await write(out);
}

template <class Stream>
Task<bool> H1Origin<Stream>::trailers(const std::vector<H2Field>& fields) {
    if (bodyless_ || !framing_.chunked) {
        co_return true;  // (HTTP/1.1 carries trailers only in a chunked body)
    }
    last_ = last_chunk(fields);
    Out out;
    out.add(last_);
    co_return co_await write(out);
}

// GCC 12 warns that the frame's sized operator delete mismatches Asio's aligned allocation: a
// false positive (both are Asio's own pair).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
template <class Stream>
Task<bool> Exchange<Stream>::via_h2() {
    if (!upgrade_.empty()) {
        co_return co_await end(reply_with(501,
                                          "a protocol upgrade (WebSocket) cannot cross to an h2 "
                                          "cluster (clusters[].protocol: h2)",
                                          false));
    }
    if (expect_continue_) {
        static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        watch_.arm(lowest(client_), coarse_now() + to_.client_body);
        auto [e, n] = co_await asio::async_write(
            client_, asio::buffer(kContinue.data(), kContinue.size()), kNoThrow);
        watch_.disarm();
        if (e || watch_.fired) {
            co_return false;
        }
    }
    H2Forward f;
    const auto& req = rp_.get();
    bool te_trailers = false;
    for (const auto token : http::token_list{req[http::field::te]}) {
        te_trailers = te_trailers || beast::iequals(token, "trailers");
    }
    // (:scheme as X-Forwarded-Proto: how the client reached the balancer)
    f.head = h2_request_head(head_, kTls ? std::string_view("https") : cx_.config.forwarded_proto,
                             te_trailers, !has_body_);
    f.has_body = has_body_;
    f.idempotent = idempotent_;
    f.grpc = is_grpc(req[http::field::content_type]);
    f.route = route_;
    f.protocol = Protocol::kHttp1;
    f.started = started_;
    H1Origin<Stream> origin(*this);
    co_await forward_h2(cx_, at_, client_address_, f, origin);
    if (origin.replied()) {
        co_return co_await end(Next::kReply);
    }
    failure_ = f.failure;
    body_out_ = f.body_out;
    if (f.status == 0 || !f.failure.empty() || stopping()) {
        watch_.linger = f.status != 0;
        co_return false;
    }
    if (!rp_.is_done()) {
        watch_.linger = true;  // the client may still be sending the body the answer cut short
        co_return false;
    }
    co_return keep_ && !stopping();
}
#pragma GCC diagnostic pop

template Task<bool> Exchange<Socket>::via_h2();
template Task<bool> Exchange<TlsClient>::via_h2();

}  // namespace lb
