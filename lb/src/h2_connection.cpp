// An HTTP/2 client connection: the reader that feeds the session (and starts a coroutine per
// request stream), the writer that sends what the session produces, GOAWAY on drain, reload and
// idle timeout. Errors are values; nothing here throws on purpose.
#include "h2_connection.hpp"

#include <algorithm>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/write.hpp>

namespace lb {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

constexpr std::size_t kReadSize = 16 * 1024;
constexpr std::size_t kWriteSize = 64 * 1024;
constexpr std::uint32_t kRefusedStream = 7;  // (RFC 9113 8.7: the client may retry it elsewhere)

// The session's callbacks: what arrives for a stream goes to its state and wakes it.
H2Session::Events events_of(H2Conn& c) {
    H2Session::Events ev;
    ev.request = [&c](H2RequestHead head) {
        const std::int32_t id = head.stream;
        if (c.going_away || c.over || c.cx.lifecycle.stopping) {
            c.session->reset(id, kRefusedStream);
            return;
        }
        auto st = std::make_shared<H2StreamState>(c.cx.executor, std::move(head));
        st->ended = st->head.end_stream;
        c.streams[id] = st;
        c.cx.metrics.h2_stream(1);
        // (a shared_ptr to the connection: the reader outlives every stream, but the
        // coroutine's frame must not dangle on the way out)
        asio::co_spawn(c.cx.executor, h2_stream(c.shared_from_this(), std::move(st)),
                       asio::detached);
    };
    ev.body = [&c](std::int32_t id, std::string_view data) {
        const auto it = c.streams.find(id);
        if (it == c.streams.end() || it->second->answered || it->second->gone) {
            c.consume(id, data.size());  // nobody wants it: the window reopens at once
            return;
        }
        it->second->body.append(data);
        it->second->signal.notify();
    };
    ev.trailers = [&c](std::int32_t id, std::vector<H2Field> fields) {
        if (const auto it = c.streams.find(id); it != c.streams.end()) {
            it->second->trailers = std::move(fields);  // (the end of the request follows)
        }
    };
    ev.end = [&c](std::int32_t id) {
        if (const auto it = c.streams.find(id); it != c.streams.end()) {
            it->second->ended = true;
            it->second->signal.notify();
        }
    };
    ev.closed = [&c](std::int32_t id, std::uint32_t /*error*/) {
        if (const auto it = c.streams.find(id); it != c.streams.end()) {
            auto& st = *it->second;
            if (!st.answered) {
                st.cancel();  // reset before its answer was complete
            }
        }
    };
    return ev;
}

// The connection's idle deadline (the reader's watch) as the writer sees it: idle once no stream
// is open and everything is written — only then may drain, a reload or the idle timeout cancel
// the socket (which would cancel a write too). Going away, that ends the connection at once.
void writer_idle(H2Conn& c, bool idle) {
    Watch& w = *c.watch;
    if (!idle || !c.streams.empty() || c.closing) {
        w.idle = false;
        w.deadline = Clock::time_point::max();
        return;
    }
    if (c.going_away) {
        w.idle = false;
        w.deadline = coarse_now();  // the next tick ends the read
    } else if (!w.idle) {
        w.idle = true;
        w.parked = true;  // (never parked: the session's state is more than a socket)
        w.deadline = coarse_now() + c.cx.config.http2.idle_timeout;
    }
}

// Sends what the session produces until the connection closes: nothing waits in user space
// beyond one write, and a client that stops reading stops the writer (its window closes, the
// streams wait for it).
template <class Stream>
Task<void> write_loop(std::shared_ptr<H2Conn> c, Stream& client) {
    Watch watch;
    c->cx.watches.push_back(watch);
    const auto& to = c->cx.config.timeouts;
    std::string out;  // (kept between writes; given back when the connection goes idle)
    while (!c->over) {
        c->apply_consumed();
        c->session->output(out, kWriteSize);
        if (out.empty()) {
            c->wake_blocked();
            if (c->closing) {
                break;
            }
            if (!c->session->alive()) {
                // The session ended itself (libnghttp2 answered a flood with a GOAWAY it has now
                // sent, while receive() returned no error): the reader may be waiting for bytes
                // that never come, so it is woken to close.
                c->closing = true;
                error_code ignored;
                lowest(client).cancel(ignored);
                break;
            }
            writer_idle(*c, true);
            if (c->streams.empty() && out.capacity() > 4096) {
                std::string().swap(out);  // an idle connection holds no write buffer
            }
            co_await c->writer.wait(Clock::time_point::max());
            continue;
        }
        writer_idle(*c, false);
        watch.arm(lowest(client), coarse_now() + to.client_body);
        auto [ec, n] = co_await asio::async_write(client, asio::buffer(out), kNoThrow);
        watch.disarm();
        if (ec || watch.fired) {
            c->over = true;  // the client is gone or stopped reading: the reader stops too
            error_code ignored;
            lowest(client).cancel(ignored);
            break;
        }
        c->wake_blocked();
    }
    watch.unlink();
    c->writer_done.notify();
}

// http2.pingInterval: while streams are open and the client is silent for an interval, a PING;
// nothing heard within http2.pingTimeout ends the connection (its reader and writer stop).
Task<void> ping_loop(std::shared_ptr<H2Conn> c) {
    const auto& cfg = c->cx.config.http2;
    while (!c->over && !c->closing) {
        c->ping_timer.expires_after(cfg.ping_interval);
        co_await c->ping_timer.async_wait(kNoThrow);
        const auto now = coarse_now();
        if (c->over || c->closing || c->streams.empty() || now - c->heard < cfg.ping_interval) {
            continue;
        }
        c->session->ping();
        c->writer.notify();
        c->ping_timer.expires_after(cfg.ping_timeout);
        co_await c->ping_timer.async_wait(kNoThrow);
        if (!c->over && !c->closing && c->heard < now) {
            c->cx.metrics.h2_ping_timeout();
            c->over = true;  // the reader and the writer stop; the streams are cancelled
            error_code ignored;
            c->socket->cancel(ignored);
        }
    }
    c->pinging = false;
    c->ping_done.notify();
}

}  // namespace

template <class Stream>
Task<void> serve_h2(ExchangeContext& cx,
                    Stream& client,
                    boost::beast::flat_buffer& buffer,
                    Watch& watch,
                    const ClientAddress& client_address,
                    std::string_view tls) {
    auto c = std::make_shared<H2Conn>(cx, client_address, tls);
    c->session =
        H2Session::server(h2_limits(cx.config.http2, request_id_field(cx.config)), events_of(*c));
    if (!c->session) {
        co_return;
    }
    cx.metrics.h2_connection(1);
    c->drain_hook.on_drain = [raw = c.get()] { raw->go_away(); };
    cx.drain_hooks.push_back(c->drain_hook);
    c->socket = &lowest(client);
    c->watch = &watch;
    asio::co_spawn(cx.executor, write_loop(c, client), asio::detached);
    c->heard = coarse_now();
    if (cx.config.http2.ping_interval.count() > 0) {
        c->pinging = true;
        asio::co_spawn(cx.executor, ping_loop(c), asio::detached);
    }
    const auto& lifecycle = cx.lifecycle;
    std::string in(std::max(kReadSize, buffer.size()), '\0');
    std::size_t have = asio::buffer_copy(asio::buffer(in), buffer.data());  // (the preface)
    buffer.consume(buffer.size());
    bool read_once = have > 0;
    for (;;) {
        if (have > 0) {
            const auto r = c->session->receive(std::string_view(in.data(), have));
            have = 0;
            c->apply_consumed();
            c->writer.notify();
            if (!r) {
                break;  // a GOAWAY is queued: the writer sends it
            }
            if (!c->session->alive()) {
                break;  // the client ended the session (its GOAWAY, and nothing left to send)
            }
        }
        if (c->over || c->closing || lifecycle.stopping) {
            break;
        }
        if ((lifecycle.draining || lifecycle.handing_over) && read_once) {
            // Drain or reload: no new stream; the open ones finish (a client opens its next
            // ones on a new connection, in the new generation after a reload). A connection
            // accepted from the queue while draining gets the requests of its first read served
            // first (as an HTTP/1.1 one gets its first request).
            c->go_away();
        }
        if (c->going_away && c->streams.empty()) {
            break;
        }
        // Streams open: they have deadlines of their own. None: the writer arms the idle
        // timeout once everything is written (writer_idle).
        watch.target = &lowest(client);
        watch.fired = false;
        if (!c->streams.empty()) {
            writer_idle(*c, false);
        } else if (!watch.idle) {
            c->writer.notify();
        }
        auto [rec, n] = co_await client.async_read_some(asio::buffer(in), kNoThrow);
        if (rec == asio::error::operation_aborted && !watch.fired && !lifecycle.stopping &&
            !c->over) {
            continue;  // woken: drain, reload, or the last stream ended while going away
        }
        if (watch.fired && c->streams.empty() && !c->over) {
            if (!c->going_away) {
                c->session->goaway(0);  // idle timeout: say so before closing
            }
            break;
        }
        if (rec || watch.fired) {
            break;
        }
        have = n;
        read_once = true;
        c->heard = coarse_now();
    }
    watch.idle = false;
    watch.disarm();
    // What is left to send (a GOAWAY), then the streams stop.
    c->closing = true;
    c->writer.notify();
    if (!c->over && !lifecycle.stopping) {
        watch.arm(lowest(client), coarse_now() + cx.config.timeouts.client_body);
        co_await c->writer_done.wait(Clock::time_point::max());
        watch.disarm();
    } else {
        c->over = true;
        co_await c->writer_done.wait(Clock::time_point::max());
    }
    c->over = true;
    for (auto& [id, st] : c->streams) {
        st->cancel();
    }
    while (!c->streams.empty()) {
        co_await c->streams_done.wait(Clock::time_point::max());
    }
    c->ping_timer.cancel();
    while (c->pinging) {
        co_await c->ping_done.wait(Clock::time_point::max());
    }
    if (c->session->ended_by_error()) {
        cx.metrics.h2_connection_error();
        // What the client still sends must not turn the GOAWAY saying why into a reset
        // (the session's lingering close: write side shut, reads discarded, bounded).
        watch.linger = true;
    }
    c->drain_hook.unlink();
    cx.metrics.h2_connection(-1);
}

template Task<void> serve_h2(ExchangeContext&,
                             Socket&,
                             boost::beast::flat_buffer&,
                             Watch&,
                             const ClientAddress&,
                             std::string_view);
template Task<void> serve_h2(ExchangeContext&,
                             TlsClient&,
                             boost::beast::flat_buffer&,
                             Watch&,
                             const ClientAddress&,
                             std::string_view);

}  // namespace lb
