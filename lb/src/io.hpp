#pragma once

#include <chrono>
#include <ctime>
#include <memory>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <openssl/bio.h>
#include <openssl/ssl.h>

namespace lb {

// The I/O types of a worker. Its objects and coroutines use the io_context's concrete executor:
// the type-erased any_io_executor costs a few percent of the request path.
using Clock = std::chrono::steady_clock;
using Executor = boost::asio::io_context::executor_type;
using Socket = boost::asio::basic_stream_socket<boost::asio::ip::tcp, Executor>;
using Acceptor = boost::asio::basic_socket_acceptor<boost::asio::ip::tcp, Executor>;
using Timer = boost::asio::basic_waitable_timer<Clock, boost::asio::wait_traits<Clock>, Executor>;
template <class T>
using Task = boost::asio::awaitable<T, Executor>;
// A client of the https listener: the TLS stream over its socket, on the heap (parking moves it).
using TlsClient = boost::asio::ssl::stream<Socket>;
using TlsClientPtr = std::unique_ptr<TlsClient>;

// Completion token of the request path: errors come back as values, never as exceptions.
inline constexpr auto kNoThrow = boost::asio::as_tuple(boost::asio::use_awaitable_t<Executor>{});

// A deadline's "now": the coarse monotonic clock (the same clock as steady_clock, a few ms of
// resolution, no TSC read). Deadlines are checked by a 50 ms ticker anyway.
inline Clock::time_point coarse_now() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return Clock::time_point(std::chrono::duration_cast<Clock::duration>(
        std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec)));
}

// A client connection's socket and stream, plain or TLS.
inline Socket& lowest(Socket& s) {
    return s;
}
inline Socket& lowest(TlsClient& t) {
    return t.next_layer();
}
inline Socket& lowest(TlsClientPtr& t) {
    return t->next_layer();
}
inline Socket& stream_of(Socket& s) {
    return s;
}
inline TlsClient& stream_of(TlsClientPtr& t) {
    return *t;
}

// Closes a socket, ignoring errors (the peer may be gone).
inline void close_quietly(Socket& s) {
    boost::system::error_code ignored;
    s.shutdown(Socket::shutdown_both, ignored);
    s.close(ignored);
}
// Ends a client connection over TLS: a close_notify first (written without waiting for the
// peer's: the socket is non-blocking), then the socket.
inline void close_quietly(TlsClientPtr& t) {
    boost::system::error_code ignored;
    t->shutdown(ignored);
    close_quietly(t->next_layer());
}

// Whether a TLS stream holds bytes that a read would return without the socket being readable
// (decrypted but unread, or received but not yet decrypted): such a connection must not wait
// for readability.
inline bool buffered(TlsClient& t) {
    SSL* ssl = t.native_handle();
    return SSL_pending(ssl) > 0 || BIO_ctrl_pending(SSL_get_rbio(ssl)) > 0;
}
inline bool buffered(TlsClientPtr& t) {
    return buffered(*t);
}
inline bool buffered(Socket&) {
    return false;
}

}  // namespace lb
