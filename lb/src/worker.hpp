#pragma once

#include <array>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "buffers.hpp"
#include "deadlines.hpp"
#include "exchange.hpp"
#include "h2_upstream.hpp"
#include "io.hpp"
#include "lb/config.hpp"
#include "lb/endpoint_selector.hpp"
#include "lb/proxy_protocol.hpp"
#include "lb/snapshot.hpp"
#include "metrics.hpp"
#include "tls.hpp"
#include "upstream_pool.hpp"

namespace lb {

// One share-nothing worker: its own io_context run by one thread, its own SO_REUSEPORT acceptor,
// upstream pools and endpoint selector. The main context talks to it only by posting: publish()
// a new snapshot, drain() on SIGTERM, hand_over() on a reload, stop_now() at the drain deadline.
// Its client connections are sessions (one coroutine each, parked when idle) whose requests are
// exchanges (exchange.hpp); a reload passes them to the next generation's worker (handover.cpp).
class Worker {
public:
    // `https_fd` is the https listener's socket (-1 without one), served with `server_tls`.
    Worker(unsigned index,
           const LbConfig& config,
           const std::vector<TlsContextPtr>& tls,
           WorkerMetrics& metrics,
           boost::asio::ip::tcp::acceptor::native_handle_type listen_fd,
           boost::asio::ip::tcp listen_protocol,
           int https_fd,
           boost::asio::ip::tcp https_protocol,
           boost::asio::ssl::context* server_tls,
           std::shared_ptr<AccessLogSink> access_log);
    ~Worker();
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    void start(SnapshotPtr first);
    void publish(SnapshotPtr snapshot);
    // Stop accepting (what was queued is still served, then the listening sockets close), close
    // idle keep-alive connections, let in-flight requests finish; calls `done` (from the
    // worker's thread) once no session is left.
    void drain(std::function<void()> done);
    // What a reload does with this worker's listening sockets (the server has closed its own
    // descriptors of those given up).
    enum class GiveUp {
        kNo,          // the successor accepts on the same socket: stop accepting
        kNow,         // its address moved: take what is queued on it, pass it on, close it
        kAfterGrace,  // fewer workers: new connections are steered to the others; keep taking
                      // (and passing on) what still arrives, e.g. handshakes begun before,
                      // for kGiveUpGrace, then close it and call `given_up`
    };
    static constexpr std::chrono::milliseconds kGiveUpGrace{2000};
    // A reload: stop accepting and pass every keep-alive connection to `next` (in the new
    // generation) as soon as it is between requests: idle ones at once, the others after their
    // response. No connection is closed. Calls `done` (from the worker's thread) once no session
    // is left.
    void hand_over(Worker& next,
                   std::function<void()> done,
                   GiveUp http,
                   GiveUp https,
                   std::function<void()> given_up);
    // A connection accepted by the previous generation on a socket it gave up, not served yet
    // (any thread): a new session, with the TLS handshake when `tls`.
    void take_new(int fd, boost::asio::ip::tcp protocol, bool tls);
    // A connection handed over by the previous generation (any thread); it is between requests.
    // With `ssl` (owned from here on) it is a TLS connection whose session goes on as it was.
    // `pending`: bytes of its next request(s) the previous worker had read already (plain
    // connections: a client that pipelines).
    // `proxied`: the client's addresses from the PROXY protocol, when it came through an L4
    // balancer that sent them.
    void adopt(int fd,
               boost::asio::ip::tcp protocol,
               SSL* ssl = nullptr,
               std::string pending = {},
               std::optional<Peer> proxied = std::nullopt);
    // Cancel whatever is still running (drain deadline passed).
    void stop_now();
    // After hand_over() has reported done, the thread keeps running (an older generation may
    // still pass connections through it) until this says no more will come.
    void finish();
    void join();

private:
    Task<void> accept_loop(Acceptor& acceptor, bool tls);
    // A new client connection's session (over TLS with `tls`), unless the connection limit is
    // reached.
    void start_session(Socket socket, bool tls);
    Task<void> ticker();
    // A client connection's requests (Conn: Socket, or TlsClientPtr from the https listener);
    // `resumed` when it comes back from parking or from the previous generation; `proxied`:
    // the addresses a PROXY protocol header gave (read when a new connection starts).
    template <class Conn>
    Task<void> session(Conn client,
                       bool resumed,
                       std::string pending = {},
                       std::optional<Peer> proxied = std::nullopt);
    // The PROXY protocol header a new connection from a trusted source must start with (what
    // `config` accepts), consumed from the socket and nothing beyond it (a TLS handshake may
    // follow): nullopt when it is not there, malformed, or late (`watch`).
    Task<std::optional<ProxyHeader>> read_proxy_header(Socket& sock,
                                                       ProxyVersion accept,
                                                       Watch& watch);
    // Whether a new plain connection (h2c on) starts with the HTTP/2 preface: reads until it can
    // tell (`buffer` holds the first bytes; what is read goes there too).
    Task<bool> h2c_preface(Socket& client, boost::beast::flat_buffer& buffer, Watch& watch);
    // An idle keep-alive connection without a coroutine: waits for readability (or `deadline`,
    // or drain) as a small heap object, then starts a new session.
    template <class Conn>
    void park(Conn client, Clock::time_point deadline, std::optional<Peer> proxied);
    // Whether connections are to close after the current response (draining).
    [[nodiscard]] bool closing() const { return lifecycle_.draining; }

    void apply(const SnapshotPtr& snapshot);
    // drain() and hand_over(): stop accepting, end idle sessions, close the pools; `done` once
    // no session is left.
    void wind_down(std::function<void()> done);
    void session_ended();
    // A client connection is no longer this worker's (closed or passed on).
    void connection_left();

    // ---- hand-over to the next generation (handover.cpp) -------------------------------------
    // What is queued on a listening socket this worker is the last to hold: to the successor,
    // or served here while draining.
    void accept_queued(Acceptor& acceptor, bool tls);
    // A descriptor from another worker as this worker's socket; nothing (closed) when it
    // cannot be taken or this worker is shutting down.
    std::optional<Socket> take_socket(int fd, boost::asio::ip::tcp protocol);
    // A connection accepted here but not served: to the successor, as new.
    void pass_new(Socket socket, bool tls);
    // GiveUp::kAfterGrace: after kGiveUpGrace, the last of the queue, then close.
    Task<void> give_up_after_grace();
    // Hands a session's connection (between requests) to successor_, with its OpenSSL session
    // when `ssl` (owned); ends the session here.
    void pass_on(Socket client,
                 SSL* ssl = nullptr,
                 std::string pending = {},
                 std::optional<Peer> proxied = std::nullopt);
    // The same for a TLS connection, with its OpenSSL session (keys, sequence numbers): only
    // while nothing is buffered on the way in (a read of it was waiting for the socket, and
    // neither OpenSSL nor its BIO hold bytes); otherwise it is closed.
    void pass_on(TlsClientPtr client, std::optional<Peer> proxied);
    void pass_on(Socket client, std::optional<Peer> proxied) {
        pass_on(std::move(client), nullptr, {}, std::move(proxied));
    }

    unsigned index_;
    const LbConfig& config_;
    WorkerMetrics& metrics_;
    // One thread runs it, and only that thread touches its sockets: no per-descriptor locking
    // (posts from the main context still lock the scheduler).
    boost::asio::io_context ctx_{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
    Acceptor acceptor_;
    std::optional<Acceptor> https_acceptor_;
    boost::asio::ssl::context* server_tls_;
    std::thread thread_;
    SnapshotPtr snapshot_;
    EndpointSelector selector_;
    UpstreamPool pool_;
    H2Upstreams h2_;
    Buffers buffers_;
    Pipes pipes_;
    Lifecycle lifecycle_;
    RequestLog log_;
    Flight flight_;
    ExchangeContext exchange_context_;
    WatchList watches_;
    DrainHooks drain_hooks_;
    std::array<char, 4096> sink_{};  // lingering close discards into it
    std::size_t sessions_ = 0;
    Worker* successor_ = nullptr;
    GiveUp give_up_http_ = GiveUp::kNo;  // hand_over(): what becomes of the listening sockets
    GiveUp give_up_https_ = GiveUp::kNo;
    std::function<void()> given_up_;
    std::optional<Timer> give_up_timer_;
    bool giving_up_ = false;  // give_up_after_grace() has not finished
    std::function<void()> drained_;
};

}  // namespace lb
