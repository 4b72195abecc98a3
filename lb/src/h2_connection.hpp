#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/beast/core/flat_buffer.hpp>

#include "exchange.hpp"
#include "h2_session.hpp"
#include "signal.hpp"

namespace lb {

// An HTTP/2 client connection (h2 by ALPN, h2c with prior knowledge): one coroutine reads and
// feeds the H2Session, one writes what it produces, and every request stream is a coroutine of
// its own on the same worker thread (h2_stream.cpp) that balances it as an HTTP/1.1 exchange
// would (Attempt): streams of one connection spread over the clusters. No locks: a worker is
// one thread.

// The connection preface a prior-knowledge h2c client starts with (RFC 9113 3.4).
inline constexpr std::string_view kH2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
enum class Preface { kYes, kNotYet, kNo };
// Whether `bytes`, the first a client sent, are the preface (kNotYet: a prefix of it). Pure.
inline Preface h2_preface(std::string_view bytes) {
    const std::size_t n = std::min(bytes.size(), kH2Preface.size());
    if (bytes.substr(0, n) != kH2Preface.substr(0, n)) {
        return Preface::kNo;
    }
    return n == kH2Preface.size() ? Preface::kYes : Preface::kNotYet;
}

// What a stream's coroutine and its connection share.
struct H2StreamState {
    H2StreamState(const Executor& executor, H2RequestHead h)
        : head(std::move(h)), signal(executor), window(executor) {}
    H2RequestHead head;
    std::string body;               // request body received and not sent on (at most the window)
    std::vector<H2Field> trailers;  // the request's, when it ended with them
    bool ended = false;             // the request is complete
    bool gone = false;              // reset by the client, or the connection is over
    bool answered = false;          // the response is complete: body still arriving is dropped
    bool blocked = false;           // waiting for the client's window to take the response
    Socket* upstream = nullptr;     // cancelled when the stream goes
    Signal* also = nullptr;         // woken when the stream goes (an h2 cluster's call)
    Signal signal;                  // body, end, reset
    Signal window;                  // the client's window may have opened (`blocked`)

    // The stream is over for its coroutine (reset, or the connection ended): what it waits
    // for ends now.
    void cancel() {
        gone = true;
        if (upstream != nullptr) {
            boost::system::error_code ignored;
            upstream->cancel(ignored);
        }
        signal.notify();
        window.notify();
        if (also != nullptr) {
            also->notify();
        }
    }
};

// One HTTP/2 connection's state, shared by its reader, its writer and its streams (which may
// outlive nothing of it: the reader waits for them).
struct H2Conn : std::enable_shared_from_this<H2Conn> {
    H2Conn(ExchangeContext& context, const ClientAddress& address, std::string_view tls_version)
        : cx(context),
          client(address),
          tls(tls_version),
          writer(context.executor),
          writer_done(context.executor),
          streams_done(context.executor),
          ping_timer(context.executor),
          ping_done(context.executor) {}

    // A stream's request body bytes are dealt with: the client may send as much more (applied
    // after the session's receive(), never from inside its callbacks).
    void consume(std::int32_t stream, std::size_t bytes) {
        if (bytes > 0) {
            consumed.emplace_back(stream, bytes);
            writer.notify();
        }
    }
    void apply_consumed() {
        for (const auto& [stream, bytes] : consumed) {
            session->consume(stream, bytes);
        }
        consumed.clear();
    }
    // Streams waiting for the client's window: it may have opened.
    void wake_blocked() {
        for (auto& [id, st] : streams) {
            if (st->blocked) {
                st->window.notify();
            }
        }
    }

    // Drain or reload: GOAWAY now, no new stream; the open ones finish.
    void go_away() {
        if (!going_away && !over && session) {
            going_away = true;
            session->goaway(0);
            writer.notify();
        }
    }

    ExchangeContext& cx;
    const ClientAddress client;
    const std::string_view tls;  // "TLSv1.3", or "" for h2c (static storage: OpenSSL's)
    std::unique_ptr<H2Session> session;
    std::map<std::int32_t, std::shared_ptr<H2StreamState>> streams;  // coroutines running
    std::vector<std::pair<std::int32_t, std::size_t>> consumed;
    Signal writer;              // the session has output, or the connection is closing
    Signal writer_done;         // the writer has stopped
    Signal streams_done;        // the last stream coroutine has ended
    Timer ping_timer;           // http2.pingInterval: the ping loop's wait
    Signal ping_done;           // ... and its end
    bool pinging = false;       // the ping loop runs
    Clock::time_point heard{};  // when the client's last bytes came
    Socket* socket = nullptr;
    Watch* watch = nullptr;   // the reader's (idle timeout)
    bool closing = false;     // no more reads: the writer sends what is left and stops
    bool over = false;        // the socket is done with: streams stop, nothing is written
    bool going_away = false;  // GOAWAY sent: the open streams finish, no new one starts
    DrainHook drain_hook;     // on the worker's list: go_away() on drain and reload
};

// Serves an HTTP/2 connection until it ends; `buffer` holds what was read of it already (the
// h2c preface). `tls` is the TLS version for the log ("" for h2c).
template <class Stream>
Task<void> serve_h2(ExchangeContext& cx,
                    Stream& client,
                    boost::beast::flat_buffer& buffer,
                    Watch& watch,
                    const ClientAddress& client_address,
                    std::string_view tls);

// A stream's request, balanced and relayed (h2_stream.cpp).
Task<void> h2_stream(std::shared_ptr<H2Conn> conn, std::shared_ptr<H2StreamState> stream);

}  // namespace lb
