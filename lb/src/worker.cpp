// A worker: its thread, accept loops, snapshots, sessions (a client connection's requests, idle
// parking, lingering close), the deadline ticker and drain.
#include "worker.hpp"

#include <tuple>
#include <utility>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <netinet/tcp.h>

#include "drained_read.hpp"
#include "h2_connection.hpp"
#include "log.hpp"

namespace lb {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr auto kLinger = std::chrono::seconds(2);
constexpr std::size_t kLingerBytes = 64 * 1024 * 1024;
constexpr unsigned kPruneEveryTicks = 20;  // idle upstream connections: once a second

std::vector<Picker::Member> members(const LbConfig& config) {
    std::vector<Picker::Member> out;
    for (const auto& c : config.clusters) {
        out.push_back({c.weight, c.backup});
    }
    return out;
}

}  // namespace

Worker::Worker(unsigned index,
               const LbConfig& config,
               const std::vector<TlsContextPtr>& tls,
               WorkerMetrics& metrics,
               tcp::acceptor::native_handle_type listen_fd,
               tcp listen_protocol,
               int https_fd,
               tcp https_protocol,
               asio::ssl::context* server_tls,
               std::shared_ptr<AccessLogSink> access_log)
    : index_(index),
      config_(config),
      metrics_(metrics),
      guard_(asio::make_work_guard(ctx_)),
      acceptor_(ctx_.get_executor(), listen_protocol, listen_fd),
      server_tls_(server_tls),
      selector_(members(config), config.routes),
      pool_(config.pool, metrics),
      h2_(ctx_.get_executor(), config, metrics),
      pipes_(config.splice.max_pipes, kPipeSize),
      log_(config, index, std::move(access_log)),
      exchange_context_{
          ctx_.get_executor(), config, tls,     metrics,  selector_,   pool_, h2_, buffers_, pipes_,
          lifecycle_,          log_,   flight_, watches_, drain_hooks_} {
    if (https_fd >= 0) {
        https_acceptor_.emplace(ctx_.get_executor(), https_protocol, https_fd);
    }
}

Worker::~Worker() {
    join();
}

void Worker::start(SnapshotPtr first) {
    apply(first);
    snapshot_ = std::move(first);
    asio::co_spawn(ctx_.get_executor(), accept_loop(acceptor_, false), asio::detached);
    if (https_acceptor_) {
        asio::co_spawn(ctx_.get_executor(), accept_loop(*https_acceptor_, true), asio::detached);
    }
    asio::co_spawn(ctx_.get_executor(), ticker(), asio::detached);
    thread_ = std::thread([this] {
        for (;;) {
            try {
                ctx_.run();
                return;
            } catch (const std::exception& e) {  // a bug in one session must not kill the rest
                log_line(LogLevel::kError, "worker " + std::to_string(index_) +
                                               ": unexpected exception: " + e.what());
            }
        }
    });
}

void Worker::publish(SnapshotPtr snapshot) {
    asio::post(ctx_, [this, s = std::move(snapshot)]() mutable {
        apply(s);
        snapshot_ = std::move(s);
    });
}

void Worker::apply(const SnapshotPtr& snapshot) {
    selector_.apply(*snapshot);
    pool_.apply(*snapshot);
    h2_.apply(*snapshot);
}

void Worker::drain(std::function<void()> done) {
    asio::post(ctx_, [this, done = std::move(done)]() mutable {
        lifecycle_.draining = true;
        wind_down(std::move(done));
    });
}

void Worker::wind_down(std::function<void()> done) {
    drained_ = std::move(done);
    error_code ignored;
    const bool draining = lifecycle_.draining;
    const bool handing_over = lifecycle_.handing_over;
    // This worker's descriptors only: a successor accepts on its own.
    const auto stop_accepting = [&](Acceptor& a, GiveUp how, bool tls) {
        if (draining || how == GiveUp::kNow) {
            // This worker holds the socket's last descriptor (the server closed its own): what
            // is queued completed its handshake before the signal or the move, so it is taken
            // now (served here while draining, passed on when moving), and the socket closes:
            // a new connection is refused from then on.
            accept_queued(a, tls);
            a.close(ignored);
        } else if (how == GiveUp::kNo) {
            a.close(ignored);  // the successor accepts on the same socket
        }  // kAfterGrace: the accept loop passes connections on until the grace ends
    };
    stop_accepting(acceptor_, handing_over ? give_up_http_ : GiveUp::kNo, false);
    if (https_acceptor_) {
        stop_accepting(*https_acceptor_, handing_over ? give_up_https_ : GiveUp::kNo, true);
    }
    if (draining && give_up_timer_) {
        give_up_timer_->cancel();
    } else if (handing_over && !give_up_timer_ &&
               (give_up_http_ == GiveUp::kAfterGrace || give_up_https_ == GiveUp::kAfterGrace)) {
        give_up_timer_.emplace(ctx_.get_executor());
        giving_up_ = true;
        asio::co_spawn(ctx_.get_executor(), give_up_after_grace(), asio::detached);
    }
    // Idle sessions and parked waits end now: draining closes them (fired), a hand-over passes
    // them on.
    for (auto& w : watches_) {
        if (w.idle && w.target != nullptr) {
            w.fired = w.fired || draining;
            w.target->cancel(ignored);
        }
    }
    // Connections with requests under way that must say so (HTTP/2: GOAWAY), after the idle
    // ones above had their wait cancelled.
    for (auto& hook : drain_hooks_) {
        hook.on_drain();
    }
    pool_.close();
    h2_.close();
    if (sessions_ == 0) {
        session_ended();
    }
}

void Worker::connection_left() {
    metrics_.client_connections(-1);
    --sessions_;
    session_ended();
}

void Worker::stop_now() {
    asio::post(ctx_, [this] {
        lifecycle_.stopping = true;
        h2_.stop();
        error_code ignored;
        for (auto& w : watches_) {
            w.fired = true;
            if (w.target != nullptr) {
                w.target->cancel(ignored);
            }
        }
    });
}

void Worker::finish() {
    asio::post(ctx_, [this] { guard_.reset(); });
}

void Worker::join() {
    if (thread_.joinable()) {
        thread_.join();
    }
}

void Worker::session_ended() {
    // (A socket still being given up holds the hand-over open: its thread is joined after.)
    if ((lifecycle_.draining || lifecycle_.handing_over) && sessions_ == 0 && drained_ &&
        !giving_up_) {
        pool_.close();
        if (lifecycle_.draining) {
            guard_.reset();  // handing over: finish() ends the thread
        }
        auto done = std::move(drained_);
        drained_ = nullptr;
        done();
    }
}

Task<void> Worker::accept_loop(Acceptor& acceptor, bool tls) {
    Timer backoff(ctx_.get_executor());
    while (!lifecycle_.draining && acceptor.is_open()) {
        auto [ec, socket] = co_await acceptor.async_accept(kNoThrow);
        if (ec) {
            if (lifecycle_.draining || !acceptor.is_open() ||
                ec == asio::error::operation_aborted) {
                break;
            }
            // EMFILE/ENFILE and friends: back off instead of spinning on the same error.
            log_line(LogLevel::kWarn,
                     "worker " + std::to_string(index_) + ": accept: " + ec.message());
            backoff.expires_after(std::chrono::milliseconds(50));
            co_await backoff.async_wait(kNoThrow);
            continue;
        }
        if (lifecycle_.handing_over) {  // a socket being given up (GiveUp::kAfterGrace)
            pass_new(std::move(socket), tls);
        } else {
            start_session(std::move(socket), tls);
        }
    }
}

void Worker::start_session(Socket socket, bool tls) {
    if (sessions_ >= config_.limits.max_connections) {
        close_quietly(socket);
        return;
    }
    ++sessions_;
    if (tls) {
        asio::co_spawn(ctx_.get_executor(),
                       session(std::make_unique<TlsClient>(std::move(socket), *server_tls_), false),
                       asio::detached);
    } else {
        asio::co_spawn(ctx_.get_executor(), session(std::move(socket), false), asio::detached);
    }
}

Task<void> Worker::ticker() {
    Timer timer(ctx_.get_executor());
    unsigned ticks = 0;
    while (!((lifecycle_.draining || lifecycle_.handing_over) && sessions_ == 0)) {
        timer.expires_after(kTick);
        co_await timer.async_wait(kNoThrow);
        const auto now = Clock::now();
        tick(watches_, now);
        if (++ticks % kPruneEveryTicks == 0) {
            pool_.prune(now);
            h2_.prune(now);
        }
    }
}

template <class Conn>
void Worker::park(Conn client, Clock::time_point deadline, std::optional<Peer> proxied) {
    auto parked = std::make_unique<Parked<Conn>>(std::move(client), std::move(proxied));
    Parked<Conn>& p = *parked;
    p.watch.idle = true;
    p.watch.parked = true;  // the ticker only checks its deadline
    p.watch.arm(lowest(p.conn), deadline);
    watches_.push_back(p.watch);
    // The handler owns the connection: if the worker's io_context goes away first, destroying
    // the handler closes it.
    lowest(p.conn).async_wait(
        Socket::wait_read, [this, parked = std::move(parked)](error_code ec) mutable {
            parked->watch.unlink();
            if (lifecycle_.handing_over && !parked->watch.fired && !lifecycle_.draining &&
                !lifecycle_.stopping) {
                pass_on(std::move(parked->conn), std::move(parked->proxied));
                return;  // (the successor waits for the request)
            }
            if (ec || parked->watch.fired || closing() || lifecycle_.stopping) {
                close_quietly(parked->conn);
                connection_left();
                return;
            }
            asio::co_spawn(ctx_.get_executor(),
                           session(std::move(parked->conn), true, {}, std::move(parked->proxied)),
                           asio::detached);
        });
}

// GCC 12 warns (at -O2) that the frame's sized operator delete mismatches Asio's aligned
// allocation: a false positive (both are Asio's own pair; exchange.cpp says the same).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
template <class Conn>
Task<void> Worker::session(Conn conn,
                           bool resumed,
                           std::string pending,
                           std::optional<Peer> proxied) {
    using Stream = std::remove_reference_t<decltype(stream_of(conn))>;
    constexpr bool kTls = !std::is_same_v<Stream, Socket>;
    Socket& sock = lowest(conn);
    Stream& client = stream_of(conn);
    Watch watch;
    watches_.push_back(watch);
    error_code ec;
    error_code gone;  // the client closed or reset while parked, or the handshake failed
    const auto remote = sock.remote_endpoint(ec);
    const auto local = sock.local_endpoint(ec);
    if (!resumed) {
        metrics_.client_connections(1);
        sock.set_option(tcp::no_delay(true), ec);
        sock.non_blocking(true, ec);
        if (const auto unsent = config_.limits.client_unsent_bytes; unsent > 0) {
            const int lowat = static_cast<int>(unsent);
            ::setsockopt(sock.native_handle(), IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat,
                         sizeof lowat);
        }
        // An L4 balancer in front says who the client is, before anything else (TLS too).
        const auto& pp = kTls ? config_.https.proxy_protocol : config_.proxy_protocol;
        if (pp.trusts(remote.address())) {
            watch.arm(sock, coarse_now() + config_.timeouts.client_header);
            const auto header = co_await read_proxy_header(sock, pp.accept, watch);
            if (!header) {
                gone = asio::error::invalid_argument;
                metrics_.proxy_header_refused();
            } else if (!header->local) {
                proxied = Peer{header->source, header->destination};
            }
        }
        if constexpr (kTls) {
            if (!gone) {
                watch.arm(sock, coarse_now() + config_.timeouts.client_header);
                auto [hec] =
                    co_await client.async_handshake(asio::ssl::stream_base::server, kNoThrow);
                if (hec || watch.fired) {
                    gone = hec ? hec : asio::error::timed_out;
                }
            }
        }
    }
    const ClientAddress client_address(proxied ? *proxied : Peer{remote, local});
    beast::flat_buffer buffer(config_.limits.max_header_bytes + kChunk);
    if (pending.size() > buffer.max_size()) {
        gone = asio::error::message_size;  // (a reload lowered limits.maxHeaderBytes meanwhile)
    } else if (!pending.empty()) {
        buffer.commit(asio::buffer_copy(buffer.prepare(pending.size()), asio::buffer(pending)));
        std::string().swap(pending);
    }
    bool first = !resumed;
    bool h2 = false;  // an HTTP/2 connection: served by serve_h2 instead of the loop below
    if constexpr (kTls) {
        h2 = !gone && !resumed && negotiated_h2(client.native_handle());
    }
    if constexpr (!kTls) {
        if (resumed && buffer.size() == 0) {
            // Back from parking: the next request is readable now.
            const std::size_t n = client.read_some(buffer.prepare(1024), gone);  // non-blocking
            if (gone == asio::error::would_block || gone == asio::error::try_again) {
                gone = {};
            } else if (!gone) {
                buffer.commit(n);
            }
        }
    }
    // While draining, a connection accepted from the queue (first) still gets its request
    // served, with Connection: close; any other is closed at its next request.
    while (!h2 && !gone && (first || !closing()) && !lifecycle_.stopping) {
        if (buffer.size() == 0) {
            // Waiting for the next request's first byte: the idle keep-alive timeout (the
            // header timeout on a new connection); drain closes the connection here.
            watch.idle = true;
            watch.park = watch.parked = false;
            watch.idle_since = coarse_now();
            watch.arm(sock, watch.idle_since + (first ? config_.timeouts.client_header
                                                      : config_.timeouts.client_idle));
            if (!first && !lifecycle_.handing_over && (kTls || !kDrainedReads)) {
                // Let the other ready sessions run first. Asio reads speculatively after every
                // readiness event, and the client's next request has rarely arrived the moment
                // the response left: that read was an EAGAIN on nearly every request. Yielding
                // once (no syscall) gives the request time to arrive (measured: EAGAINs from
                // ~100% to ~6% of these reads; +3-5% requests/s with one thread). Not done
                // before reading an upstream's response: that cost p99 with two threads
                // (1.2 -> 4 ms) for no throughput. A plain client's read below does not
                // speculate after the short read of its last request (drained_read.hpp).
                co_await asio::post(ctx_.get_executor(), asio::use_awaitable_t<Executor>{});
            }
            if (lifecycle_.handing_over && !lifecycle_.draining) {
                // Between requests during a reload: the new generation serves the connection.
                if constexpr (!kTls) {
                    watch.unlink();
                    pass_on(std::move(conn), proxied);
                    co_return;
                } else {
                    // A TLS stream may hold bytes it read from the socket beyond what OpenSSL
                    // was given; none while its read waits for the socket. So it is passed on
                    // from there: this cancel runs once the read below has started (if a
                    // request was already there, it is served here and the next turn tries
                    // again).
                    asio::post(ctx_, [&sock] {
                        error_code ignored;
                        sock.cancel(ignored);
                    });
                }
            }
            error_code rec;
            std::size_t n = 0;
            if constexpr (kTls) {
                std::tie(rec, n) = co_await client.async_read_some(buffer.prepare(1024), kNoThrow);
            } else {
                std::tie(rec, n) =
                    co_await async_read_drained(client, buffer.prepare(1024), kNoThrow);
            }
            if (rec == asio::error::operation_aborted && lifecycle_.handing_over &&
                !lifecycle_.draining && !watch.fired && !lifecycle_.stopping && !buffered(conn)) {
                watch.unlink();
                pass_on(std::move(conn), proxied);  // cancelled by hand_over() or the ticker
                co_return;
            }
            if (rec == asio::error::operation_aborted && watch.park && !watch.fired && !closing() &&
                !lifecycle_.stopping && !buffered(conn)) {
                // Idle for a while (the ticker cancelled the read): this coroutine ends and
                // the connection waits for readability as a small parked object, with no
                // buffer and no coroutine frame (as nginx and HAProxy keep idle connections);
                // a new session starts when the next request arrives.
                watch.unlink();
                park(std::move(conn), watch.deadline, proxied);
                co_return;
            }
            if (rec == asio::error::operation_aborted && !watch.fired && !lifecycle_.stopping &&
                watch.park && buffered(conn)) {
                continue;  // TLS bytes already here: read them instead of parking or passing on
            }
            watch.idle = false;
            if (rec || watch.fired || n == 0) {
                break;
            }
            buffer.commit(n);
        }
        if constexpr (!kTls) {
            if (first && config_.http2.h2c && co_await h2c_preface(client, buffer, watch)) {
                h2 = true;  // prior knowledge (h2c): HTTP/2 from the first byte
                break;
            }
        }
        first = false;
        if constexpr (!kTls) {
            if (lifecycle_.handing_over && !lifecycle_.draining && !watch.fired) {
                // A reload, and the client's next request (pipelined) is here already: it goes
                // along with the connection.
                watch.unlink();
                const auto data = buffer.data();
                pass_on(std::move(conn), nullptr,
                        std::string(static_cast<const char*>(data.data()), data.size()), proxied);
                co_return;
            }
        }
        if (!co_await exchange(exchange_context_, client, buffer, watch, client_address)) {
            break;
        }
        if (buffer.size() == 0 && buffer.capacity() > 1024) {
            buffer.shrink_to_fit();  // give a body's buffer back before waiting idle
        }
    }
    if (h2 && !lifecycle_.stopping) {
        std::string_view tls;
        if constexpr (kTls) {
            tls = SSL_get_version(client.native_handle());
        }
        co_await serve_h2(exchange_context_, client, buffer, watch, client_address, tls);
    }
    const bool lingers = watch.linger && !lifecycle_.stopping;
    if (lingers) {
        // Lingering close (as nginx does): after an early answer the client may still be
        // sending its request (or, after a tunnel, its TLS close_notify); closing now would turn
        // our last bytes into a reset. Stop writing, discard what arrives for a bounded time and
        // amount, then close.
        error_code ignored;
        if constexpr (kTls) {
            client.shutdown(ignored);  // close_notify first (non-blocking: not waiting for theirs)
        }
        sock.shutdown(Socket::shutdown_send, ignored);
        watch.arm(sock, coarse_now() + kLinger);
        std::size_t discarded = 0;
        while (discarded < kLingerBytes && !watch.fired) {
            // Into the worker's shared sink: the bytes are thrown away, so sessions may share
            // it, and the session's coroutine frame stays small (an idle connection's cost).
            auto [rec, n] = co_await sock.async_read_some(asio::buffer(sink_), kNoThrow);
            if (rec) {
                break;
            }
            discarded += n;
        }
    }
    watch.disarm();
    if (lingers) {
        close_quietly(sock);  // (close_notify, if any, went before the write side was shut)
    } else {
        close_quietly(conn);
    }
    watch.unlink();
    connection_left();
}
#pragma GCC diagnostic pop

// The two kinds of client connection; handover.cpp resumes sessions too.
template Task<void> Worker::session(Socket, bool, std::string, std::optional<Peer>);
template Task<void> Worker::session(TlsClientPtr, bool, std::string, std::optional<Peer>);

Task<bool> Worker::h2c_preface(Socket& client, beast::flat_buffer& buffer, Watch& watch) {
    for (;;) {
        const std::string_view seen(static_cast<const char*>(buffer.data().data()), buffer.size());
        const Preface p = h2_preface(seen);
        if (p != Preface::kNotYet) {
            co_return p == Preface::kYes;
        }
        // (the header timeout the first read was armed with still runs)
        auto [rec, n] = co_await client.async_read_some(buffer.prepare(64), kNoThrow);
        if (rec || watch.fired || n == 0) {
            co_return false;  // (what came is then a malformed HTTP/1.1 request: a 400)
        }
        buffer.commit(n);
    }
}

Task<std::optional<ProxyHeader>> Worker::read_proxy_header(Socket& sock,
                                                           ProxyVersion accept,
                                                           Watch& watch) {
    // Peeked, not read: the header is consumed exactly, and whatever follows (a TLS
    // ClientHello) stays in the socket. While it is incomplete, SO_RCVLOWAT makes readiness
    // wait for more than what is there already (no spinning on the same bytes).
    const int fd = sock.native_handle();
    std::optional<ProxyHeader> out;
    for (int have = 0;;) {
        if (have > 0) {
            const int more = have + 1;
            ::setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &more, sizeof more);
        }
        auto [wec] = co_await sock.async_wait(Socket::wait_read, kNoThrow);
        if (wec || watch.fired || lifecycle_.stopping) {
            break;
        }
        // (Into the worker's shared sink: parsed before anything else runs on this thread.)
        const ssize_t n = ::recv(fd, sink_.data(), sink_.size(), MSG_PEEK);
        if (n <= 0) {
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
                continue;
            }
            break;  // closed before the header
        }
        const auto r =
            parse_proxy_header(std::string_view(sink_.data(), static_cast<std::size_t>(n)), accept);
        if (r.status == ProxyParse::kInvalid) {
            break;
        }
        if (r.status == ProxyParse::kOk) {
            const ssize_t taken = ::recv(fd, sink_.data(), r.header.length, 0);
            if (taken == static_cast<ssize_t>(r.header.length)) {
                out = r.header;
            }
            break;
        }
        have = static_cast<int>(n);
    }
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof one);
    watch.disarm();
    co_return out;
}

}  // namespace lb
