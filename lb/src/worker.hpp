#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <type_traits>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/intrusive/list.hpp>

#include "lb/config.hpp"
#include "lb/headers.hpp"
#include "lb/picker.hpp"
#include "metrics.hpp"
#include "snapshot.hpp"
#include "tls.hpp"

namespace lb {

using Clock = std::chrono::steady_clock;
// The worker's I/O objects and coroutines use the io_context's concrete executor: the
// type-erased any_io_executor costs a few percent of the request path.
using Executor = boost::asio::io_context::executor_type;
using Socket = boost::asio::basic_stream_socket<boost::asio::ip::tcp, Executor>;
using Acceptor = boost::asio::basic_socket_acceptor<boost::asio::ip::tcp, Executor>;
using Timer = boost::asio::basic_waitable_timer<Clock, boost::asio::wait_traits<Clock>, Executor>;
template <class T>
using Task = boost::asio::awaitable<T, Executor>;
// A client of the https listener: the TLS stream over its socket, on the heap (parking moves it).
using TlsClient = boost::asio::ssl::stream<Socket>;
using TlsClientPtr = std::unique_ptr<TlsClient>;

// One share-nothing worker: its own io_context run by one thread, its own SO_REUSEPORT acceptor,
// upstream pools and picker. The main context talks to it only by posting: publish() a new
// snapshot, drain() on SIGTERM, stop_now() at the drain deadline.
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
           boost::asio::ssl::context* server_tls);
    ~Worker();
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    void start(SnapshotPtr first);
    void publish(SnapshotPtr snapshot);
    // Stop accepting, close idle keep-alive connections, let in-flight requests finish; calls
    // `done` (from the worker's thread) once no session is left.
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
    void adopt(int fd, boost::asio::ip::tcp protocol, SSL* ssl = nullptr, std::string pending = {});
    // Cancel whatever is still running (drain deadline passed).
    void stop_now();
    // After hand_over() has reported done, the thread keeps running (an older generation may
    // still pass connections through it) until this says no more will come.
    void finish();
    void join();

private:
    // A session's current deadline and what to cancel when it passes. The ticker walks the
    // list: no timer per operation on the request path.
    struct Watch : boost::intrusive::list_base_hook<
                       boost::intrusive::link_mode<boost::intrusive::auto_unlink>> {
        Clock::time_point deadline = Clock::time_point::max();
        Socket* target = nullptr;
        bool fired = false;
        bool idle = false;    // between requests: drain closes it at once
        bool linger = false;  // answered early (413, 400...): drain what the client still sends
        bool park = false;    // set by the ticker: an idle wait is to continue without a buffer
        bool parked = false;  // ... and was already moved (once per idle period)
        Clock::time_point idle_since{};
        void arm(Socket& socket, Clock::time_point at) {
            target = &socket;
            deadline = at;
            fired = false;
        }
        void disarm() {
            target = nullptr;
            deadline = Clock::time_point::max();
        }
    };
    using WatchList = boost::intrusive::list<Watch, boost::intrusive::constant_time_size<false>>;
    // An idle keep-alive connection without a coroutine (Conn: Socket or TlsClientPtr).
    template <class Conn>
    struct Parked {
        explicit Parked(Conn c) : conn(std::move(c)) {}
        Watch watch;
        Conn conn;
    };

    struct Upstream {
        Upstream(boost::asio::io_context& ctx, boost::asio::ssl::context* tls_context)
            : socket(ctx.get_executor()) {
            if (tls_context != nullptr) {
                tls.emplace(socket, *tls_context);
            }
        }
        Socket socket;
        std::optional<boost::asio::ssl::stream<Socket&>> tls;  // over `socket` when TLS is on
        boost::beast::flat_buffer buffer{256 * 1024};
        Clock::time_point idle_since{};
        bool reused = false;
    };
    using UpstreamPtr = std::unique_ptr<Upstream>;

    struct EndpointLocal {
        boost::asio::ip::tcp::endpoint address;
        bool healthy = true;
        Clock::time_point ejected_until{};
        std::vector<UpstreamPtr> idle;
    };
    struct ClusterLocal {
        std::vector<EndpointLocal> endpoints;
        std::size_t next = 0;  // round robin over the endpoints
    };
    struct Choice {
        std::size_t cluster;
        boost::asio::ip::tcp::endpoint address;
    };

    Task<void> accept_loop(Acceptor& acceptor, bool tls);
    // A new client connection's session (over TLS with `tls`), unless the connection limit is
    // reached.
    void start_session(Socket socket, bool tls);
    // What is queued on a listening socket this worker is the last to hold: to the successor.
    void accept_queued(Acceptor& acceptor, bool tls);
    // A descriptor from another worker as this worker's socket; nothing (closed) when it
    // cannot be taken or this worker is shutting down.
    std::optional<Socket> take_socket(int fd, boost::asio::ip::tcp protocol);
    // A connection accepted here but not served: to the successor, as new.
    void pass_new(Socket socket, bool tls);
    // GiveUp::kAfterGrace: after kGiveUpGrace, the last of the queue, then close.
    Task<void> give_up_after_grace();
    Task<void> ticker();
    // A client connection's requests (Conn: Socket, or TlsClientPtr from the https listener);
    // `resumed` when it comes back from parking or from the previous generation.
    template <class Conn>
    Task<void> session(Conn client, bool resumed, std::string pending = {});
    // An idle keep-alive connection without a coroutine: waits for readability (or `deadline`,
    // or drain) as a small heap object, then starts a new session.
    template <class Conn>
    void park(Conn client, Clock::time_point deadline);
    template <class Stream>
    Task<bool> exchange(Stream& client,
                        boost::beast::flat_buffer& buffer,
                        Watch& watch,
                        const ClientAddress& client_address);
    // After a 101: bytes both ways between the client and the upstream until either closes,
    // an error, or timeouts.tunnelIdle without a byte; `pending` holds what the client sent
    // after its request head.
    template <class Stream>
    Task<void> tunnel(Stream& client,
                      boost::beast::flat_buffer& pending,
                      Upstream& up,
                      Watch& watch);
    template <class Stream>
    Task<bool> reply(Stream& client,
                     Watch& watch,
                     unsigned status,
                     std::string_view text,
                     bool keep_alive,
                     Clock::time_point started);
    // Whether connections are to close after the current response (draining).
    [[nodiscard]] bool closing() const { return draining_; }

    void apply(const SnapshotPtr& snapshot);
    std::optional<Choice> choose(std::optional<std::size_t> exclude, Clock::time_point now);
    EndpointLocal* find(std::size_t cluster, const boost::asio::ip::tcp::endpoint& address);
    UpstreamPtr take_idle(const Choice& choice, Clock::time_point now, bool probe);
    void give_back(const Choice& choice, UpstreamPtr upstream, Clock::time_point now);
    void eject(const Choice& choice, Clock::time_point now);
    void prune_pools(Clock::time_point now);
    void close_pools();
    // drain() and hand_over(): stop accepting, end idle sessions, close the pools; `done` once
    // no session is left.
    void wind_down(std::function<void()> done);
    void session_ended();
    // A client connection is no longer this worker's (closed or passed on).
    void connection_left();
    // Hands a session's connection (between requests) to successor_, with its OpenSSL session
    // when `ssl` (owned); ends the session here.
    void pass_on(Socket client, SSL* ssl = nullptr, std::string pending = {});
    // The same for a TLS connection, with its OpenSSL session (keys, sequence numbers): only
    // while nothing is buffered on the way in (a read of it was waiting for the socket, and
    // neither OpenSSL nor its BIO hold bytes); otherwise it is closed.
    void pass_on(TlsClientPtr client);
    std::unique_ptr<char[]> take_chunk();
    void give_chunk(std::unique_ptr<char[]> chunk);
    std::string take_head();
    void give_head(std::string head);

    unsigned index_;
    const LbConfig& config_;
    const std::vector<TlsContextPtr>& tls_;
    WorkerMetrics& metrics_;
    // One thread runs it, and only that thread touches its sockets: no per-descriptor locking
    // (posts from the main context still lock the scheduler).
    boost::asio::io_context ctx_{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
    Acceptor acceptor_;
    std::optional<Acceptor> https_acceptor_;
    boost::asio::ssl::context* server_tls_;
    std::thread thread_;
    Picker picker_;
    SnapshotPtr snapshot_;
    std::vector<ClusterLocal> clusters_;
    std::vector<bool> eligible_;  // scratch for choose(), no allocation per request
    WatchList watches_;
    std::vector<std::unique_ptr<char[]>> chunks_;  // free relay buffers
    std::vector<std::string> heads_;               // free message-head buffers
    std::array<char, 4096> sink_{};                // lingering close discards into it
    std::size_t sessions_ = 0;
    bool draining_ = false;
    bool handing_over_ = false;  // a reload: connections go to successor_
    Worker* successor_ = nullptr;
    GiveUp give_up_http_ = GiveUp::kNo;  // hand_over(): what becomes of the listening sockets
    GiveUp give_up_https_ = GiveUp::kNo;
    std::function<void()> given_up_;
    std::optional<Timer> give_up_timer_;
    bool giving_up_ = false;  // give_up_after_grace() has not finished
    bool stopping_ = false;
    std::function<void()> drained_;
};

}  // namespace lb
