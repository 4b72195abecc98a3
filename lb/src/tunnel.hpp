#pragma once

#include <type_traits>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include "buffers.hpp"
#include "deadlines.hpp"
#include "io.hpp"
#include "upstream_pool.hpp"
#include "wire.hpp"

namespace lb {

// One direction of a tunnel: what `from` sends goes to `to` until `from` ends (then `to` is
// told with a half close, or over TLS the tunnel ends) or something fails (then both are
// cancelled, which ends the other direction too). Each byte moved pushes the idle deadline.
template <class From, class To>
Task<void> pump(From& from,
                To& to,
                char* chunk,
                Clock::duration idle,
                Clock::time_point& deadline,
                Socket& a,
                Socket& b) {
    namespace asio = boost::asio;
    using boost::system::error_code;
    for (;;) {
        auto [re, n] = co_await from.async_read_some(asio::buffer(chunk, kChunk), kNoThrow);
        if (re == asio::error::eof || re == asio::ssl::error::stream_truncated) {
            error_code ignored;
            if constexpr (std::is_same_v<To, Socket>) {
                lowest(to).shutdown(Socket::shutdown_send, ignored);  // a half close, as TCP
            } else {
                // TLS has no half close: the tunnel ends, and the session's close sends
                // close_notify before the FIN.
                a.cancel(ignored);
                b.cancel(ignored);
            }
            co_return;
        }
        if (!re) {
            deadline = coarse_now() + idle;
            auto [we, wn] = co_await asio::async_write(to, asio::buffer(chunk, n), kNoThrow);
            re = we;
        }
        if (re) {
            error_code ignored;
            a.cancel(ignored);
            b.cancel(ignored);
            co_return;
        }
    }
}

// After a 101: bytes both ways between the client and the upstream until either closes, an
// error, or `idle` without a byte; `pending` holds what the client sent after its request head.
template <class Stream>
Task<void> tunnel(Stream& client,
                  boost::beast::flat_buffer& pending,
                  Upstream& up,
                  Watch& watch,
                  Buffers& buffers,
                  Clock::duration idle) {
    using namespace boost::asio::experimental::awaitable_operators;
    watch.arm(lowest(client), coarse_now() + idle);
    if (pending.size() > 0) {  // the client did not wait for the 101
        Out out;
        out.add(pending.data().data(), pending.size());
        const auto e = co_await send_rest(up, out);
        pending.consume(pending.size());
        if (e || watch.fired) {
            co_return;
        }
    }
    struct Chunks {
        Buffers& buffers;
        std::unique_ptr<char[]> in = buffers.take_chunk();
        std::unique_ptr<char[]> out = buffers.take_chunk();
        ~Chunks() {
            buffers.give_chunk(std::move(in));
            buffers.give_chunk(std::move(out));
        }
    } chunks{buffers};
    Socket& a = lowest(client);
    Socket& b = up.socket;
    if (up.tls) {
        co_await (pump(client, *up.tls, chunks.in.get(), idle, watch.deadline, a, b) &&
                  pump(*up.tls, client, chunks.out.get(), idle, watch.deadline, a, b));
    } else {
        co_await (pump(client, up.socket, chunks.in.get(), idle, watch.deadline, a, b) &&
                  pump(up.socket, client, chunks.out.get(), idle, watch.deadline, a, b));
    }
}

}  // namespace lb
