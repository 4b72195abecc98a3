#pragma once

#include <array>
#include <cstddef>
#include <string_view>
#include <tuple>
#include <type_traits>

#include <boost/asio/buffer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>

#include "drained_read.hpp"
#include "io.hpp"
#include "lb/block_pool.hpp"
#include "lb/headers.hpp"
#include "lb/http_rules.hpp"

namespace lb {

// What goes on the wire on the request path: message heads and framed body pieces written with
// one sendmsg, messages read through Beast's parser with as few reads as it needs.

// A body piece is relayed through a buffer of this size.
inline constexpr std::size_t kChunk = 16 * 1024;

// What one write puts on the wire: the message head (once), then a piece of the body framed
// for the next hop. At most five buffers, written with one sendmsg.
class Out {
public:
    using value_type = boost::asio::const_buffer;
    using const_iterator = const boost::asio::const_buffer*;
    [[nodiscard]] const_iterator begin() const { return b_.data() + first_; }
    [[nodiscard]] const_iterator end() const { return b_.data() + n_; }

    void add(std::string_view s) { add(s.data(), s.size()); }
    void add(const void* p, std::size_t len) {
        if (len > 0) {
            b_[n_++] = boost::asio::const_buffer(p, len);
        }
    }
    // A piece of body `data` (`len` bytes), the `last` one or not, framed as `framing` says.
    void body(Framing framing, const char* data, std::size_t len, bool last) {
        if (framing != Framing::kChunked) {
            add(data, len);
            return;
        }
        if (len > 0) {
            static constexpr char kHex[] = "0123456789abcdef";
            char* p = size_line_.data() + size_line_.size();
            *--p = '\n';
            *--p = '\r';
            for (std::size_t v = len; v != 0; v >>= 4) {
                *--p = kHex[v & 0xf];
            }
            add(p, static_cast<std::size_t>(size_line_.data() + size_line_.size() - p));
            add(data, len);
            add(std::string_view("\r\n"));
        }
        if (last) {
            add(std::string_view("0\r\n\r\n"));
        }
    }
    [[nodiscard]] bool empty() const { return first_ == n_; }
    // Drops the first `bytes` bytes (written already).
    void consume(std::size_t bytes) {
        while (first_ < n_ && bytes >= b_[first_].size()) {
            bytes -= b_[first_].size();
            ++first_;
        }
        if (first_ < n_) {
            b_[first_] += bytes;
        }
    }

private:
    std::array<boost::asio::const_buffer, 5> b_{};
    std::size_t first_ = 0;
    std::size_t n_ = 0;
    std::array<char, 20> size_line_{};
};

// Writes what the socket takes at once (most writes: no suspension, no posted completion);
// false when something is left for an asynchronous write. Sockets on the request path are in
// non-blocking mode.
inline bool write_now(Socket& socket, Out& out, boost::system::error_code& ec) {
    const std::size_t n = socket.write_some(out, ec);
    if (ec == boost::asio::error::would_block || ec == boost::asio::error::try_again) {
        ec = {};
    }
    out.consume(n);
    return ec || out.empty();
}
// Over TLS everything goes through the asynchronous write (the engine encrypts as it goes).
inline bool write_now(TlsClient&, Out&, boost::system::error_code&) {
    return false;
}

// Writes what write_now() left on an upstream connection (`Upstream`: its socket, and its TLS
// stream when `tls` is set), or all of it over TLS.
template <class Upstream>
Task<boost::system::error_code> send_rest(Upstream& up, Out& out) {
    if (up.tls) {
        auto [e, n] = co_await boost::asio::async_write(*up.tls, out, kNoThrow);
        co_return e;
    }
    auto [e, n] = co_await boost::asio::async_write(up.socket, out, kNoThrow);
    co_return e;
}

// A parser error that means the message is malformed (not that the peer went away).
inline bool is_parse_error(const boost::system::error_code& ec) {
    namespace http = boost::beast::http;
    return ec.category() == http::make_error_code(http::error::bad_target).category() &&
           ec != http::error::end_of_stream && ec != http::error::partial_message &&
           ec != http::error::need_buffer;
}

// The peer closed or reset without sending anything.
inline bool nothing_received(const boost::system::error_code& ec) {
    namespace asio = boost::asio;
    return ec == boost::beast::http::error::end_of_stream || ec == asio::error::eof ||
           ec == asio::ssl::error::stream_truncated || ec == asio::error::connection_reset ||
           ec == asio::error::broken_pipe;
}

template <bool isRequest>
using BufferParser =
    boost::beast::http::parser<isRequest, boost::beast::http::buffer_body, PoolAllocator<char>>;

// Parses what `buffer` holds into `parser`, without reading: true when that is as far as a read
// goes (the header is complete and its lines are clean — check_head_lines —, or the parser
// produced body bytes beyond `room_before`, filled the body buffer or finished the message;
// `ec` says whether it failed), false when the parser needs bytes from the socket.
template <bool isRequest>
bool parse_buffered(boost::beast::flat_buffer& buffer,
                    BufferParser<isRequest>& parser,
                    bool header_only,
                    std::size_t room_before,
                    boost::system::error_code& ec) {
    namespace http = boost::beast::http;
    ec = {};
    for (;;) {
        if (header_only ? parser.is_header_done() : parser.is_done()) {
            return true;
        }
        if (buffer.size() == 0) {
            return false;
        }
        const std::size_t n = parser.put(buffer.data(), ec);
        if (header_only && n > 0 && parser.is_header_done()) {
            // The whole head went through put() at once (Beast parses a head only when it has
            // all of it): its lines as received.
            const auto lines = check_head_lines(
                std::string_view(static_cast<const char*>(buffer.data().data()), n));
            if (lines != HeadLines::kOk) {
                ec = lines == HeadLines::kBareLf ? http::error::bad_line_ending
                                                 : http::error::bad_obs_fold;
                return true;
            }
        }
        buffer.consume(n);
        if (ec == http::error::need_buffer) {
            ec = {};
            return true;  // the body buffer is full
        }
        if (ec && ec != http::error::need_more) {
            return true;
        }
        if (header_only ? parser.is_header_done()
                        : parser.is_done() || parser.get().body().size != room_before) {
            ec = {};
            return true;
        }
        if (ec || n == 0) {
            ec = {};
            return false;
        }
        // (e.g. the header just completed: parse on into the body)
    }
}

// Reads from `socket` into `parser` through `buffer`: parses what is already buffered first and
// reads only when the parser needs more. Returns once parse_buffered() says so — so a slowly
// trickling body is relayed as it comes. Beast's composed operations do the same with more
// machinery (and a posted completion when the data is already buffered); this runs twice per
// proxied request.
template <class Stream, bool isRequest>
Task<boost::system::error_code> read_message(Stream& socket,
                                             boost::beast::flat_buffer& buffer,
                                             BufferParser<isRequest>& parser,
                                             bool header_only,
                                             std::size_t read_size) {
    namespace asio = boost::asio;
    namespace http = boost::beast::http;
    using boost::system::error_code;
    const std::size_t room_before = header_only ? 0 : parser.get().body().size;
    for (;;) {
        error_code ec;
        if (parse_buffered(buffer, parser, header_only, room_before, ec)) {
            co_return ec;
        }
        if (buffer.size() >= buffer.max_size()) {
            co_return error_code(http::error::buffer_overflow);
        }
        const std::size_t room =
            std::min<std::size_t>(buffer.max_size() - buffer.size(), read_size);
        error_code rec;
        std::size_t m = 0;
        if constexpr (std::is_same_v<Stream, Socket>) {
            std::tie(rec, m) = co_await async_read_drained(socket, buffer.prepare(room), kNoThrow);
        } else {
            std::tie(rec, m) = co_await socket.async_read_some(buffer.prepare(room), kNoThrow);
        }
        if (rec == asio::error::eof || rec == asio::ssl::error::stream_truncated) {
            // (A TLS peer that closes without close_notify: the same end of stream; a body
            // whose length is known is still checked by the parser.)
            if (!parser.got_some()) {
                co_return error_code(http::error::end_of_stream);
            }
            parser.put_eof(ec);  // fine when the body ends at the close; else partial_message
            co_return ec;
        }
        if (rec) {
            co_return rec;
        }
        buffer.commit(m);
    }
}

}  // namespace lb
