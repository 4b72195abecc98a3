// One proxied request, its bodies without the parser: a body with a Content-Length between plain
// sockets on both sides goes from one socket to the other as bytes — what arrived with the head
// is written with it, the rest spliced through a pipe (config.splice, a rest of at least
// splice.minBytes) or copied through the relay buffer, never through Beast's parser and a second
// buffer. The mover never reads past the body, so a pipelined request or the connection's next
// response stays in its socket; the read that sends a small request body with its head may take
// the start of a pipelined request, into the buffer that request's head is read from.
#include <array>
#include <charconv>
#include <cstring>

#include <boost/asio/write.hpp>

#include "drained_read.hpp"
#include "exchange_state.hpp"

namespace lb {

namespace asio = boost::asio;
using boost::system::error_code;

// What a request body's read asks for beyond the body (above): a read that comes up short shows
// the client's socket empty.
constexpr std::size_t kPastBody = 512;

template <class Stream>
bool Exchange<Stream>::direct_request() const {
    return !kTls && !at_.up().tls && req_framing_ == Framing::kAsIs && rp_.content_length() &&
           !rp_.is_done();
}

template <class Stream>
bool Exchange<Stream>::direct_response() const {
    return !kTls && !at_.up().tls && !bodyless_ && res_framing_ == Framing::kAsIs &&
           resp_->content_length() && !close_delimited_;
}

// Moves `m.left` bytes from `in` to `out`, waiting as the request or the response does: a
// request body's source is the client (each wait bounded by the body's pace,
// timeouts.clientBody and limits.minBodyRate, and ended early when the cluster answers first),
// its sink the cluster (timeouts.upstreamResponse); a response's source is the cluster
// (timeouts.upstreamResponse), its sink the client (timeouts.clientBody).
template <class Stream>
Task<typename Exchange<Stream>::Moved> Exchange<Stream>::move_body(Socket& in,
                                                                   Socket& out,
                                                                   ByteMove& m,
                                                                   bool request) {
    const auto& config = cx_.config;
    Pipe pipe;
    if (config.splice.enabled && m.left >= config.splice.min_bytes) {
        pipe = cx_.pipes.take();  // (none left: copied)
    }
    const std::uint64_t total = m.left;
    Moved end = Moved::kDone;
    for (;;) {
        const Want want = move_some(in.native_handle(), out.native_handle(), pipe ? &pipe : nullptr,
                                    pipe ? nullptr : chunk(), kChunk, m);
        if (want == Want::kDone) {
            break;
        }
        if (want == Want::kFailed) {
            end = m.sink_failed ? Moved::kSinkFailed : Moved::kSourceFailed;
            break;
        }
        error_code ec;
        if (want == Want::kRead && request) {
            // (The pace of the whole body so far, not of this move: a body in many chunks
            // gets one grace.)
            watch_.arm(in, body_read_deadline(body_start_, body_in_ + (total - m.left),
                                              coarse_now(), to_.client_body,
                                              config.limits.min_body_rate, to_.client_body_grace));
            // A slow client can keep thousands of bodies waiting: the relay buffer (empty now)
            // goes back to the pool meanwhile.
            cx_.buffers.give_chunk(std::move(chunk_));
            if (co_await client_or_cluster()) {
                end = Moved::kEarly;
                break;
            }
        } else if (want == Want::kRead) {
            watch_.arm(in, coarse_now() + to_.upstream_response);
            auto [e] = co_await in.async_wait(Socket::wait_read, kNoThrow);
            ec = e;
        } else {
            watch_.arm(out, coarse_now() + (request ? to_.upstream_response : to_.client_body));
            auto [e] = co_await out.async_wait(Socket::wait_write, kNoThrow);
            ec = e;
        }
        if (watch_.fired) {
            end = want == Want::kRead ? Moved::kReadTimeout : Moved::kWriteTimeout;
            break;
        }
        if (stopping() || (ec && ec != asio::error::operation_aborted)) {
            end = want == Want::kRead ? Moved::kSourceFailed : Moved::kSinkFailed;
            break;
        }
    }
    if (pipe) {
        cx_.metrics.spliced(m.written);
    }
    cx_.pipes.give(std::move(pipe));
    co_return end;
}

// A request body with a Content-Length: the head and what came with it in one write, then the
// rest moved. Nothing of the buffered part is consumed until the cluster took it, so a stale
// pooled connection is retried as for a bodyless request while no body byte was read.
template <class Stream>
Task<Next> Exchange<Stream>::send_direct() {
    const std::uint64_t total = *rp_.content_length();
    // A body whose rest fits one relay chunk is most often in the client's socket already: read
    // now, without waiting, it goes in the head's write, and the cluster's server wakes once for
    // head and body instead of twice (nginx spent 73 µs per 16 KiB upload behind tandem-lb, 57
    // µs behind HAProxy, which sends them together). A larger rest is moved (spliced as
    // configured): read here, its first chunk would be one more copy and one more read. The read
    // asks for a little more than the body: coming up short, it tells that the client has sent
    // nothing more, and the read for its next request waits for readiness instead of finding
    // nothing (what it takes of a pipelined request stays in the buffer for its turn).
    bool drained = false;
    if (buffer_.size() < total && total - buffer_.size() <= kChunk && total < buffer_.max_size()) {
        const auto more = static_cast<std::size_t>(
            std::min<std::uint64_t>(total + kPastBody, buffer_.max_size()) - buffer_.size());
        buffer_.commit(read_now(lowest(client_), buffer_.prepare(more), drained));
    }
    const auto have = static_cast<std::size_t>(std::min<std::uint64_t>(buffer_.size(), total));
    {
        Out out;
        out.add(head_);
        out.add(buffer_.data().data(), have);
        if (const error_code e = co_await send(out)) {
            if (cluster_answered()) {
                early_ = true;  // (a 413 before the body: the client's bytes stay unread)
                co_return Next::kOn;
            }
            co_return sent(e);
        }
    }
    buffer_.consume(have);
    body_in_ += have;
    body_sent_ = have > 0;
    ByteMove m(total - have);
    m.drained = drained;
    const Moved end = co_await move_body(lowest(client_), at_.up().socket, m, true);
    body_in_ += (total - have) - m.left;
    body_sent_ = body_sent_ || m.left < total - have;
    if (end == Moved::kDone && !stopping()) {
        request_moved_ = true;
        co_return sent(error_code{});
    }
    co_return request_move_failed(end);
}

template <class Stream>
Next Exchange<Stream>::request_move_failed(Moved end) {
    if (stopping()) {
        return Next::kClose;
    }
    switch (end) {
        case Moved::kDone:
            break;
        case Moved::kEarly:
            early_ = true;
            return Next::kOn;
        case Moved::kReadTimeout:
            return reply_with(408,
                              "request timeout: the request body arrived too slowly "
                              "(timeouts.clientBody, limits.minBodyRate)",
                              false);
        case Moved::kSourceFailed:
            return Next::kClose;  // the client went away mid-body
        case Moved::kWriteTimeout:
        case Moved::kSinkFailed:
            // The cluster stopped taking the body: it may have answered already (a 413 before
            // closing), and its answer is what the client should see.
            if (cluster_answered()) {
                early_ = true;
                return Next::kOn;
            }
            return sent(end == Moved::kWriteTimeout ? error_code(asio::error::timed_out)
                                                    : error_code(asio::error::broken_pipe));
    }
    return Next::kClose;
}

// A response body with a Content-Length: the rewritten head and what came with it in one write,
// then the rest moved.
template <class Stream>
Task<bool> Exchange<Stream>::relay_direct() {
    auto& up = at_.up();
    const std::uint64_t total = *resp_->content_length();
    const auto have = static_cast<std::size_t>(std::min<std::uint64_t>(up.buffer.size(), total));
    out_ = Out();
    out_.add(head_);
    out_.add(up.buffer.data().data(), have);
    head_sent_ = true;
    // Most responses came whole with their head and the client takes them at once: written
    // here, with no coroutine frame for the write or the move (each a malloc once it outgrows
    // Asio's frame cache).
    error_code e;
    watch_.arm(lowest(client_), coarse_now() + to_.client_body);
    if (!write_now(lowest(client_), out_, e)) {
        e = co_await write_body_bytes(lowest(client_), out_, false);
    }
    up.buffer.consume(have);
    body_out_ += have;
    if (e || watch_.fired) {
        keep_ = false;
        failure_ = "the client stopped taking the response";
        co_return true;
    }
    if (have == total) {
        response_moved_ = true;
        co_return true;
    }
    ByteMove m(total - have);
    const Moved end = co_await move_body(up.socket, lowest(client_), m, false);
    body_out_ += m.written;
    if (end == Moved::kDone) {
        response_moved_ = true;
        co_return true;
    }
    co_return response_move_failed(end);
}

template <class Stream>
bool Exchange<Stream>::response_move_failed(Moved end) {
    switch (end) {
        case Moved::kDone:
            return true;
        case Moved::kWriteTimeout:
        case Moved::kSinkFailed:
        case Moved::kEarly:
            keep_ = false;
            failure_ = "the client stopped taking the response";
            return true;
        case Moved::kReadTimeout:
        case Moved::kSourceFailed:
            break;
    }
    // The cluster failed mid-body: closing the client connection is the only way left to tell
    // it the response is incomplete.
    failure_ = "the cluster's response broke off mid-body";
    cx_.metrics.request(at_.cluster(), status_, seconds_since(started_));
    return false;
}

// Writes `o` on the request's way (to the cluster, timeouts.upstreamResponse) or the response's
// (to the client, timeouts.clientBody).
template <class Stream>
Task<error_code> Exchange<Stream>::write_body_bytes(Socket& out, Out& o, bool request) {
    if (request) {
        co_return co_await send(o);
    }
    watch_.arm(out, coarse_now() + to_.client_body);
    error_code e;
    if (!write_now(out, o, e)) {
        auto [ae, n] = co_await asio::async_write(out, o, kNoThrow);
        e = ae;
    }
    co_return watch_.fired ? error_code(asio::error::timed_out) : e;
}

template <class Stream>
template <class Parser>
Task<typename Exchange<Stream>::Moved> Exchange<Stream>::move_chunk(Socket& in,
                                                                    Socket& out,
                                                                    ChunkTap& tap,
                                                                    Parser& parser,
                                                                    std::string_view prefix,
                                                                    Framing framing,
                                                                    bool request) {
    const std::uint64_t left = tap.left();
    std::array<char, 20> size_line{};
    Out o;
    o.add(prefix);
    if (framing == Framing::kChunked) {
        const auto r = std::to_chars(size_line.data(), size_line.data() + 16, left, 16);
        std::memcpy(r.ptr, "\r\n", 2);
        o.add(size_line.data(), static_cast<std::size_t>(r.ptr + 2 - size_line.data()));
    }
    if (const error_code e = co_await write_body_bytes(out, o, request)) {
        co_return e == asio::error::timed_out ? Moved::kWriteTimeout : Moved::kSinkFailed;
    }
    ByteMove m(left);
    const Moved end = co_await move_body(in, out, m, request);
    (request ? body_in_ : body_out_) += m.written;
    if (end != Moved::kDone) {
        co_return end;
    }
    if (framing == Framing::kChunked) {
        Out crlf;
        crlf.add(std::string_view("\r\n"));
        if (const error_code e = co_await write_body_bytes(out, crlf, request)) {
            co_return e == asio::error::timed_out ? Moved::kWriteTimeout : Moved::kSinkFailed;
        }
    }
    // (The parser cannot refuse placeholder bytes inside a chunk it announced.)
    co_return tap.skip(parser, left) ? Moved::kSourceFailed : Moved::kDone;
}

template <class Stream>
Task<typename Exchange<Stream>::Moved> Exchange<Stream>::send_chunk_rest(std::string_view prefix) {
    body_sent_ = true;
    co_return co_await move_chunk(lowest(client_), at_.up().socket, req_tap_, rp_, prefix,
                                  req_framing_, true);
}

template <class Stream>
Task<typename Exchange<Stream>::Moved> Exchange<Stream>::relay_chunk_rest() {
    const std::string_view prefix = head_sent_ ? std::string_view() : std::string_view(head_);
    head_sent_ = true;
    co_return co_await move_chunk(at_.up().socket, lowest(client_), resp_tap_, *resp_, prefix,
                                  res_framing_, false);
}

// (Plain client connections only: run() and send_with_body() reach these for Socket.)
template bool Exchange<Socket>::direct_request() const;
template bool Exchange<Socket>::direct_response() const;
template Task<Next> Exchange<Socket>::send_direct();
template Task<bool> Exchange<Socket>::relay_direct();
template Task<Exchange<Socket>::Moved> Exchange<Socket>::send_chunk_rest(std::string_view);
template Task<Exchange<Socket>::Moved> Exchange<Socket>::relay_chunk_rest();
template Next Exchange<Socket>::request_move_failed(Moved);
template bool Exchange<Socket>::response_move_failed(Moved);

}  // namespace lb
