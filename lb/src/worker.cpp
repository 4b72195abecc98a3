// The request path: accept, parse with Beast, pick a cluster, relay both ways (streamed bodies),
// keep upstream connections alive in a per-worker pool. Errors are error_code values; nothing
// here throws on purpose (an exception escaping a session only ends that session).
#include "worker.hpp"

#include <cerrno>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http.hpp>
#include <sys/socket.h>
#include <unistd.h>

#include "lb/headers.hpp"
#include "log.hpp"

namespace lb {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable_t<Executor>{});
constexpr std::size_t kChunk = 16 * 1024;
// Client headers are read in small steps (an idle keep-alive connection then holds 1-4 KiB, not
// a body-sized buffer). Upstream connections are few (pooled): read a header and a whole chunk
// of body at once.
constexpr std::size_t kClientHeaderRead = 4096;
constexpr std::size_t kUpstreamRead = kChunk + 4096;
constexpr std::size_t kMaxFreeChunks = 64;
constexpr auto kTick = std::chrono::milliseconds(50);
constexpr auto kLinger = std::chrono::seconds(2);
constexpr auto kParkAfter = std::chrono::seconds(1);
constexpr std::size_t kLingerBytes = 64 * 1024 * 1024;

std::vector<Picker::Member> members(const LbConfig& config) {
    std::vector<Picker::Member> out;
    for (const auto& c : config.clusters) {
        out.push_back({c.weight, c.backup});
    }
    return out;
}

bool is_idempotent(http::verb v) {
    switch (v) {
        case http::verb::get:
        case http::verb::head:
        case http::verb::options:
        case http::verb::trace:
        case http::verb::put:
        case http::verb::delete_:
            return true;
        default:
            return false;
    }
}

bool is_parse_error(const error_code& ec) {
    return ec.category() == http::make_error_code(http::error::bad_target).category() &&
           ec != http::error::end_of_stream && ec != http::error::partial_message &&
           ec != http::error::need_buffer;
}

bool nothing_received(const error_code& ec) {
    return ec == http::error::end_of_stream || ec == asio::error::eof ||
           ec == asio::ssl::error::stream_truncated || ec == asio::error::connection_reset ||
           ec == asio::error::broken_pipe;
}

// Closes a socket, ignoring errors (the peer may be gone).
void close_quietly(Socket& s) {
    error_code ignored;
    s.shutdown(Socket::shutdown_both, ignored);
    s.close(ignored);
}

// A client connection's socket and stream, plain or TLS.
Socket& lowest(Socket& s) {
    return s;
}
Socket& lowest(TlsClient& t) {
    return t.next_layer();
}
Socket& lowest(TlsClientPtr& t) {
    return t->next_layer();
}
Socket& stream_of(Socket& s) {
    return s;
}
TlsClient& stream_of(TlsClientPtr& t) {
    return *t;
}

// Ends a client connection: over TLS a close_notify first (written without waiting for the
// peer's), then the socket.
void close_quietly(TlsClientPtr& t) {
    error_code ignored;
    t->shutdown(ignored);  // non-blocking socket: sends close_notify, does not wait for the reply
    close_quietly(t->next_layer());
}

// Whether a TLS stream holds bytes that a read would return without the socket being readable
// (decrypted but unread, or received but not yet decrypted): such a connection must not wait
// for readability.
bool buffered(TlsClientPtr& t) {
    SSL* ssl = t->native_handle();
    return SSL_pending(ssl) > 0 || BIO_ctrl_pending(SSL_get_rbio(ssl)) > 0;
}
bool buffered(Socket&) {
    return false;
}

// A deadline's "now": the coarse monotonic clock (the same clock as steady_clock, a few ms of
// resolution, no TSC read). Deadlines are checked by a 50 ms ticker anyway.
Clock::time_point coarse_now() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return Clock::time_point(std::chrono::duration_cast<Clock::duration>(
        std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec)));
}

// What one write puts on the wire: the message head (once), then a piece of the body framed
// for the next hop. At most five buffers, written with one sendmsg.
class Out {
public:
    using value_type = asio::const_buffer;
    using const_iterator = const asio::const_buffer*;
    [[nodiscard]] const_iterator begin() const { return b_.data() + first_; }
    [[nodiscard]] const_iterator end() const { return b_.data() + n_; }

    void add(std::string_view s) { add(s.data(), s.size()); }
    void add(const void* p, std::size_t len) {
        if (len > 0) {
            b_[n_++] = asio::const_buffer(p, len);
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
    std::array<asio::const_buffer, 5> b_{};
    std::size_t first_ = 0;
    std::size_t n_ = 0;
    std::array<char, 20> size_line_{};
};

// Writes what the socket takes at once (most writes: no suspension, no posted completion);
// false when something is left for an asynchronous write. Sockets on the request path are in
// non-blocking mode.
bool write_now(Socket& socket, Out& out, error_code& ec) {
    const std::size_t n = socket.write_some(out, ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
        ec = {};
    }
    out.consume(n);
    return ec || out.empty();
}
// Over TLS everything goes through the asynchronous write (the engine encrypts as it goes).
bool write_now(TlsClient&, Out&, error_code&) {
    return false;
}

// Writes what write_now() left on an upstream connection, or all of it over TLS.
template <class Upstream>
Task<error_code> send_rest(Upstream& up, Out& out) {
    if (up.tls) {
        auto [e, n] = co_await asio::async_write(*up.tls, out, kNoThrow);
        co_return e;
    }
    auto [e, n] = co_await asio::async_write(up.socket, out, kNoThrow);
    co_return e;
}

// Reads from `socket` into `parser` through `buffer`: parses what is already buffered first and
// reads only when the parser needs more. Returns once the header is complete (header_only), or
// once the parser produced some body bytes, filled the body buffer or finished the message —
// so a slowly trickling body is relayed as it comes. Beast's composed operations do the same
// with more machinery (and a posted completion when the data is already buffered); this runs
// twice per proxied request.
template <class Stream, bool isRequest>
Task<error_code> read_message(
    Stream& socket,
    beast::flat_buffer& buffer,
    http::parser<isRequest, http::buffer_body, PoolAllocator<char>>& parser,
    bool header_only,
    std::size_t read_size) {
    const std::size_t room_before = header_only ? 0 : parser.get().body().size;
    for (;;) {
        if (header_only ? parser.is_header_done() : parser.is_done()) {
            co_return error_code{};
        }
        if (buffer.size() > 0) {
            error_code ec;
            const std::size_t n = parser.put(buffer.data(), ec);
            buffer.consume(n);
            if (ec == http::error::need_buffer) {
                co_return error_code{};  // the body buffer is full
            }
            if (ec && ec != http::error::need_more) {
                co_return ec;
            }
            if (header_only ? parser.is_header_done()
                            : parser.is_done() || parser.get().body().size != room_before) {
                co_return error_code{};
            }
            if (!ec && n > 0) {
                continue;  // e.g. the header just completed: parse on into the body
            }
        }
        if (buffer.size() >= buffer.max_size()) {
            co_return error_code(http::error::buffer_overflow);
        }
        const std::size_t room =
            std::min<std::size_t>(buffer.max_size() - buffer.size(), read_size);
        auto [rec, m] = co_await socket.async_read_some(buffer.prepare(room), kNoThrow);
        if (rec == asio::error::eof || rec == asio::ssl::error::stream_truncated) {
            // (A TLS peer that closes without close_notify: the same end of stream; a body
            // whose length is known is still checked by the parser.)
            if (!parser.got_some()) {
                co_return error_code(http::error::end_of_stream);
            }
            error_code ec;
            parser.put_eof(ec);  // fine when the body ends at the close; else partial_message
            co_return ec;
        }
        if (rec) {
            co_return rec;
        }
        buffer.commit(m);
    }
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
               asio::ssl::context* server_tls)
    : index_(index),
      config_(config),
      tls_(tls),
      metrics_(metrics),
      guard_(asio::make_work_guard(ctx_)),
      acceptor_(ctx_.get_executor(), listen_protocol, listen_fd),
      server_tls_(server_tls),
      picker_(members(config)),
      eligible_(config.clusters.size(), false) {
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

void Worker::drain(std::function<void()> done) {
    asio::post(ctx_, [this, done = std::move(done)]() mutable {
        draining_ = true;
        wind_down(std::move(done));
    });
}

void Worker::hand_over(Worker& next,
                       std::function<void()> done,
                       GiveUp http,
                       GiveUp https,
                       std::function<void()> given_up) {
    asio::post(ctx_, [this, &next, done = std::move(done), http, https,
                      given_up = std::move(given_up)]() mutable {
        handing_over_ = true;
        successor_ = &next;
        give_up_http_ = http;
        give_up_https_ = https_acceptor_ ? https : GiveUp::kNo;
        given_up_ = std::move(given_up);
        if (give_up_http_ != GiveUp::kAfterGrace && give_up_https_ != GiveUp::kAfterGrace &&
            given_up_) {
            std::exchange(given_up_, nullptr)();  // (nothing to wait for after all)
        }
        wind_down(std::move(done));
    });
}

void Worker::wind_down(std::function<void()> done) {
    drained_ = std::move(done);
    error_code ignored;
    // This worker's descriptors only: a successor accepts on its own.
    const auto stop_accepting = [&](Acceptor& a, GiveUp how, bool tls) {
        if (draining_ || how == GiveUp::kNo) {
            a.close(ignored);
        } else if (how == GiveUp::kNow) {
            accept_queued(a, tls);
            a.close(ignored);
        }  // kAfterGrace: the accept loop passes connections on until the grace ends
    };
    stop_accepting(acceptor_, handing_over_ ? give_up_http_ : GiveUp::kNo, false);
    if (https_acceptor_) {
        stop_accepting(*https_acceptor_, handing_over_ ? give_up_https_ : GiveUp::kNo, true);
    }
    if (draining_ && give_up_timer_) {
        give_up_timer_->cancel();
    } else if (handing_over_ && !give_up_timer_ &&
               (give_up_http_ == GiveUp::kAfterGrace || give_up_https_ == GiveUp::kAfterGrace)) {
        give_up_timer_.emplace(ctx_.get_executor());
        giving_up_ = true;
        asio::co_spawn(ctx_.get_executor(), give_up_after_grace(), asio::detached);
    }
    // Idle sessions and parked waits end now: draining closes them (fired), a hand-over passes
    // them on.
    for (auto& w : watches_) {
        if (w.idle && w.target != nullptr) {
            w.fired = w.fired || draining_;
            w.target->cancel(ignored);
        }
    }
    close_pools();
    if (sessions_ == 0) {
        session_ended();
    }
}

namespace {
// A descriptor in transit between workers: closed if the handler never runs.
struct OwnedFd {
    explicit OwnedFd(int f) : fd(f) {}
    OwnedFd(OwnedFd&& o) noexcept : fd(std::exchange(o.fd, -1)) {}
    OwnedFd& operator=(OwnedFd&&) = delete;
    OwnedFd(const OwnedFd&) = delete;
    ~OwnedFd() {
        if (fd >= 0) {
            ::close(fd);
        }
    }
    int release() { return std::exchange(fd, -1); }
    int fd;
};

// A TLS session in transit: freed if the handler never runs.
struct OwnedSsl {
    explicit OwnedSsl(SSL* s) : ssl(s) {}
    OwnedSsl(OwnedSsl&& o) noexcept : ssl(std::exchange(o.ssl, nullptr)) {}
    OwnedSsl& operator=(OwnedSsl&&) = delete;
    OwnedSsl(const OwnedSsl&) = delete;
    ~OwnedSsl() {
        if (ssl != nullptr) {
            SSL_free(ssl);
        }
    }
    SSL* release() { return std::exchange(ssl, nullptr); }
    SSL* ssl;
};
}  // namespace

void Worker::accept_queued(Acceptor& acceptor, bool tls) {
    // The server closed its descriptor of this socket before the hand-over: once this one is
    // closed too, the kernel resets whatever is still queued, so take it all now. (Between the
    // last accept and the close, a few microseconds, a connection can still arrive and be reset;
    // net.ipv4.tcp_migrate_req=1 makes the kernel move those to another socket of the group.)
    error_code ec;
    acceptor.non_blocking(true, ec);
    while (!ec) {
        Socket socket(ctx_.get_executor());
        acceptor.accept(socket, ec);
        if (!ec) {  // (would_block: nothing left)
            pass_new(std::move(socket), tls);
        }
    }
}

void Worker::pass_new(Socket socket, bool tls) {
    error_code ec;
    const auto protocol = socket.local_endpoint(ec).protocol();
    const int fd = ec ? -1 : socket.release(ec);
    if (ec) {
        close_quietly(socket);
        return;
    }
    successor_->take_new(fd, protocol, tls);
}

Task<void> Worker::give_up_after_grace() {
    give_up_timer_->expires_after(kGiveUpGrace);
    co_await give_up_timer_->async_wait(kNoThrow);
    error_code ignored;
    if (give_up_http_ == GiveUp::kAfterGrace && acceptor_.is_open()) {
        accept_queued(acceptor_, false);
        acceptor_.close(ignored);
    }
    if (give_up_https_ == GiveUp::kAfterGrace && https_acceptor_ && https_acceptor_->is_open()) {
        accept_queued(*https_acceptor_, true);
        https_acceptor_->close(ignored);
    }
    if (given_up_) {
        std::exchange(given_up_, nullptr)();
    }
    giving_up_ = false;
    session_ended();
}

void Worker::take_new(int fd, tcp protocol, bool tls) {
    asio::post(ctx_, [this, owned = OwnedFd(fd), protocol, tls]() mutable {
        if (handing_over_) {  // reloaded again meanwhile
            successor_->take_new(owned.release(), protocol, tls);
            return;
        }
        auto client = take_socket(owned.release(), protocol);
        if (client && tls && server_tls_ == nullptr) {
            close_quietly(*client);  // https was turned off
        } else if (client) {
            start_session(std::move(*client), tls);
        }
    });
}

std::optional<Socket> Worker::take_socket(int fd, tcp protocol) {
    Socket client(ctx_.get_executor());
    error_code ec;
    client.assign(protocol, fd, ec);
    if (ec) {
        ::close(fd);
        return std::nullopt;
    }
    // The descriptor is non-blocking already, but a socket object assigned one does not know
    // it: its synchronous reads (a resumed session's first one, a TLS close) would poll until
    // the client sends something, stopping this whole worker.
    client.non_blocking(true, ec);
    if (draining_ || stopping_) {
        close_quietly(client);
        return std::nullopt;
    }
    return client;
}

void Worker::adopt(int fd, tcp protocol, SSL* ssl, std::string pending) {
    asio::post(ctx_, [this, owned = OwnedFd(fd), protocol, tls = OwnedSsl(ssl),
                      pending = std::move(pending)]() mutable {
        auto client = take_socket(owned.release(), protocol);
        if (!client) {
            return;
        }
        ++sessions_;
        metrics_.client_connection_moved_in();
        const auto resume = [this, &pending](auto conn) {
            if (handing_over_) {  // reloaded again meanwhile
                if constexpr (std::is_same_v<decltype(conn), Socket>) {
                    pass_on(std::move(conn), nullptr, std::move(pending));
                } else {
                    pass_on(std::move(conn));
                }
                return;
            }
            asio::co_spawn(ctx_.get_executor(), session(std::move(conn), true, std::move(pending)),
                           asio::detached);
        };
        if (tls.ssl != nullptr) {
            // The same OpenSSL session over a fresh BIO pair on this worker's socket.
            resume(std::make_unique<TlsClient>(std::move(*client), tls.release()));
        } else {
            resume(std::move(*client));
        }
    });
}

void Worker::pass_on(TlsClientPtr client) {
    SSL* ssl = client->native_handle();
    // Another reference, so that destroying the stream here (its BIO pair, its timers) leaves
    // the session to the successor.
    if (buffered(client) || SSL_up_ref(ssl) != 1) {
        close_quietly(client);
        connection_left();
        return;
    }
    Socket sock(std::move(client->next_layer()));
    client.reset();
    pass_on(std::move(sock), ssl);
}

void Worker::pass_on(Socket client, SSL* ssl, std::string pending) {
    OwnedSsl tls(ssl);  // freed here unless the successor takes it
    error_code ec;
    const auto local = client.local_endpoint(ec);
    if (!ec) {
        const int fd = client.release(ec);
        if (!ec) {
            successor_->adopt(fd, local.protocol(), tls.release(), std::move(pending));
        }
    }
    if (ec) {
        close_quietly(client);
    }
    connection_left();
}

void Worker::connection_left() {
    metrics_.client_connections(-1);
    --sessions_;
    session_ended();
}

void Worker::stop_now() {
    asio::post(ctx_, [this] {
        stopping_ = true;
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
    if ((draining_ || handing_over_) && sessions_ == 0 && drained_ && !giving_up_) {
        close_pools();
        if (draining_) {
            guard_.reset();  // handing over: finish() ends the thread
        }
        auto done = std::move(drained_);
        drained_ = nullptr;
        done();
    }
}

void Worker::apply(const SnapshotPtr& snapshot) {
    std::vector<ClusterLocal> next(snapshot->clusters.size());
    for (std::size_t c = 0; c < snapshot->clusters.size(); ++c) {
        auto& old = c < clusters_.size() ? clusters_[c].endpoints : next[c].endpoints;
        next[c].next = c < clusters_.size() ? clusters_[c].next : 0;
        for (const auto& e : snapshot->clusters[c].endpoints) {
            EndpointLocal local;
            local.address = e.address;
            local.healthy = e.healthy;
            for (auto& o : old) {
                if (o.address == e.address) {
                    local.ejected_until = o.ejected_until;
                    local.idle = std::move(o.idle);
                    // A check passed since the ejection: trust it again.
                    if (e.healthy && !o.healthy) {
                        local.ejected_until = {};
                    }
                    break;
                }
            }
            if (!local.healthy && !local.idle.empty()) {  // don't reuse connections to it
                metrics_.pool_idle(c, -static_cast<int>(local.idle.size()));
                local.idle.clear();
            }
            next[c].endpoints.push_back(std::move(local));
        }
    }
    // Endpoints that left the DNS answer: drop their idle connections.
    for (std::size_t c = 0; c < clusters_.size(); ++c) {
        for (auto& o : clusters_[c].endpoints) {
            if (!o.idle.empty()) {
                metrics_.pool_idle(c, -static_cast<int>(o.idle.size()));
            }
        }
    }
    clusters_ = std::move(next);
}

std::optional<Worker::Choice> Worker::choose(std::optional<std::size_t> exclude,
                                             Clock::time_point now) {
    // First honour passive ejections; if that leaves nothing, fall back to the active checks'
    // view alone (an ejection must never turn into a 503 by itself).
    for (const bool honour_ejection : {true, false}) {
        bool any = false;
        for (std::size_t c = 0; c < clusters_.size(); ++c) {
            bool ok = false;
            for (const auto& e : clusters_[c].endpoints) {
                if (e.healthy && (!honour_ejection || e.ejected_until <= now)) {
                    ok = true;
                    break;
                }
            }
            eligible_[c] = ok;
            any = any || ok;
        }
        if (!any) {
            continue;
        }
        const auto c = picker_.pick(eligible_, exclude);
        if (!c) {
            continue;
        }
        auto& cl = clusters_[*c];
        const std::size_t n = cl.endpoints.size();
        for (std::size_t i = 0; i < n; ++i) {
            const std::size_t k = (cl.next + i) % n;
            const auto& e = cl.endpoints[k];
            if (e.healthy && (!honour_ejection || e.ejected_until <= now)) {
                cl.next = k + 1;
                return Choice{*c, e.address};
            }
        }
    }
    return std::nullopt;
}

Worker::EndpointLocal* Worker::find(std::size_t cluster, const tcp::endpoint& address) {
    if (cluster >= clusters_.size()) {
        return nullptr;
    }
    for (auto& e : clusters_[cluster].endpoints) {
        if (e.address == address) {
            return &e;
        }
    }
    return nullptr;
}

Worker::UpstreamPtr Worker::take_idle(const Choice& choice, Clock::time_point now, bool probe) {
    auto* e = find(choice.cluster, choice.address);
    if (e == nullptr) {
        return nullptr;
    }
    while (!e->idle.empty()) {
        UpstreamPtr up = std::move(e->idle.back());
        e->idle.pop_back();
        metrics_.pool_idle(choice.cluster, -1);
        if (now - up->idle_since > config_.pool.idle_timeout) {
            continue;
        }
        if (!probe) {
            up->reused = true;
            return up;
        }
        // A connection the upstream closed while idle reads as EOF (or data it should not
        // have sent): never reuse it. One non-blocking peek; no handler, no timer.
        char byte = 0;
        const ssize_t r = ::recv(up->socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            up->reused = true;
            return up;
        }
    }
    return nullptr;
}

void Worker::give_back(const Choice& choice, UpstreamPtr upstream, Clock::time_point now) {
    auto* e = find(choice.cluster, choice.address);
    if (e == nullptr || !e->healthy || draining_ || handing_over_ ||
        e->idle.size() >= config_.pool.max_idle_per_endpoint) {
        return;  // closes it
    }
    upstream->idle_since = now;
    e->idle.push_back(std::move(upstream));
    metrics_.pool_idle(choice.cluster, 1);
}

void Worker::eject(const Choice& choice, Clock::time_point now) {
    if (config_.retry.eject_for.count() <= 0) {
        return;
    }
    if (auto* e = find(choice.cluster, choice.address); e != nullptr) {
        if (e->ejected_until <= now) {
            metrics_.ejected(choice.cluster);
        }
        e->ejected_until = now + config_.retry.eject_for;
        if (!e->idle.empty()) {
            metrics_.pool_idle(choice.cluster, -static_cast<int>(e->idle.size()));
            e->idle.clear();
        }
    }
}

void Worker::prune_pools(Clock::time_point now) {
    for (std::size_t c = 0; c < clusters_.size(); ++c) {
        for (auto& e : clusters_[c].endpoints) {
            const auto before = e.idle.size();
            std::erase_if(e.idle, [&](const UpstreamPtr& up) {
                return now - up->idle_since > config_.pool.idle_timeout;
            });
            if (before != e.idle.size()) {
                metrics_.pool_idle(c, -static_cast<int>(before - e.idle.size()));
            }
        }
    }
}

void Worker::close_pools() {
    for (std::size_t c = 0; c < clusters_.size(); ++c) {
        for (auto& e : clusters_[c].endpoints) {
            if (!e.idle.empty()) {
                metrics_.pool_idle(c, -static_cast<int>(e.idle.size()));
                e.idle.clear();
            }
        }
    }
}

std::unique_ptr<char[]> Worker::take_chunk() {
    if (chunks_.empty()) {
        return std::make_unique<char[]>(kChunk);
    }
    auto c = std::move(chunks_.back());
    chunks_.pop_back();
    return c;
}

void Worker::give_chunk(std::unique_ptr<char[]> chunk) {
    if (chunk && chunks_.size() < kMaxFreeChunks) {
        chunks_.push_back(std::move(chunk));
    }
}

std::string Worker::take_head() {
    if (heads_.empty()) {
        std::string s;
        s.reserve(1024);
        return s;
    }
    std::string s = std::move(heads_.back());
    heads_.pop_back();
    return s;
}

void Worker::give_head(std::string head) {
    // Kept for the next request unless a huge header grew it (or enough are kept already).
    if (heads_.size() < kMaxFreeChunks && head.capacity() <= kChunk) {
        heads_.push_back(std::move(head));
    }
}

Task<void> Worker::accept_loop(Acceptor& acceptor, bool tls) {
    Timer backoff(ctx_.get_executor());
    while (!draining_ && acceptor.is_open()) {
        auto [ec, socket] = co_await acceptor.async_accept(kNoThrow);
        if (ec) {
            if (draining_ || !acceptor.is_open() || ec == asio::error::operation_aborted) {
                break;
            }
            // EMFILE/ENFILE and friends: back off instead of spinning on the same error.
            log_line(LogLevel::kWarn,
                     "worker " + std::to_string(index_) + ": accept: " + ec.message());
            backoff.expires_after(std::chrono::milliseconds(50));
            co_await backoff.async_wait(kNoThrow);
            continue;
        }
        if (handing_over_) {  // a socket being given up (GiveUp::kAfterGrace)
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
    while (!((draining_ || handing_over_) && sessions_ == 0)) {
        timer.expires_after(kTick);
        co_await timer.async_wait(kNoThrow);
        const auto now = Clock::now();
        error_code ignored;
        for (auto& w : watches_) {
            if (!w.fired && w.deadline <= now && w.target != nullptr) {
                w.fired = true;
                w.target->cancel(ignored);
            } else if (w.idle && !w.parked && now - w.idle_since >= kParkAfter &&
                       w.target != nullptr) {
                w.park = w.parked = true;  // the session re-waits without a buffer
                w.target->cancel(ignored);
            }
        }
        if (++ticks % 20 == 0) {
            prune_pools(now);
        }
    }
}

namespace {

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

// Counts a request as in flight to a cluster for as long as it lives.
struct InFlight {
    InFlight(WorkerMetrics& m, std::size_t c) : metrics(m), cluster(c) { metrics.in_flight(c, 1); }
    ~InFlight() { metrics.in_flight(cluster, -1); }
    InFlight(const InFlight&) = delete;
    InFlight& operator=(const InFlight&) = delete;
    WorkerMetrics& metrics;
    std::size_t cluster;
};

}  // namespace

template <class Conn>
void Worker::park(Conn client, Clock::time_point deadline) {
    auto parked = std::make_unique<Parked<Conn>>(std::move(client));
    Parked<Conn>& p = *parked;
    p.watch.idle = true;
    p.watch.parked = true;  // the ticker only checks its deadline
    p.watch.arm(lowest(p.conn), deadline);
    watches_.push_back(p.watch);
    // The handler owns the connection: if the worker's io_context goes away first, destroying
    // the handler closes it.
    lowest(p.conn).async_wait(Socket::wait_read, [this, parked = std::move(parked)](
                                                     error_code ec) mutable {
        parked->watch.unlink();
        if (handing_over_ && !parked->watch.fired && !draining_ && !stopping_) {
            pass_on(std::move(parked->conn));  // the successor waits for the request
            return;
        }
        if (ec || parked->watch.fired || closing() || stopping_) {
            close_quietly(parked->conn);
            connection_left();
            return;
        }
        asio::co_spawn(ctx_.get_executor(), session(std::move(parked->conn), true), asio::detached);
    });
}

template <class Conn>
Task<void> Worker::session(Conn conn, bool resumed, std::string pending) {
    using Stream = std::remove_reference_t<decltype(stream_of(conn))>;
    constexpr bool kTls = !std::is_same_v<Stream, Socket>;
    Socket& sock = lowest(conn);
    Stream& client = stream_of(conn);
    Watch watch;
    watches_.push_back(watch);
    error_code ec;
    error_code gone;  // the client closed or reset while parked, or the handshake failed
    if (!resumed) {
        metrics_.client_connections(1);
        sock.set_option(tcp::no_delay(true), ec);
        sock.non_blocking(true, ec);
        if constexpr (kTls) {
            watch.arm(sock, coarse_now() + config_.timeouts.client_header);
            auto [hec] = co_await client.async_handshake(asio::ssl::stream_base::server, kNoThrow);
            if (hec || watch.fired) {
                gone = hec ? hec : asio::error::timed_out;
            }
        }
    }
    const auto remote = sock.remote_endpoint(ec);
    const ClientAddress client_address(ec ? asio::ip::address() : remote.address());
    beast::flat_buffer buffer(config_.limits.max_header_bytes + kChunk);
    if (pending.size() > buffer.max_size()) {
        gone = asio::error::message_size;  // (a reload lowered limits.maxHeaderBytes meanwhile)
    } else if (!pending.empty()) {
        buffer.commit(asio::buffer_copy(buffer.prepare(pending.size()), asio::buffer(pending)));
        std::string().swap(pending);
    }
    bool first = !resumed;
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
    while (!gone && !closing() && !stopping_) {
        if (buffer.size() == 0) {
            // Waiting for the next request's first byte: the idle keep-alive timeout (the
            // header timeout on a new connection); drain closes the connection here.
            watch.idle = true;
            watch.park = watch.parked = false;
            watch.idle_since = coarse_now();
            watch.arm(sock, watch.idle_since + (first ? config_.timeouts.client_header
                                                      : config_.timeouts.client_idle));
            if (!first && !handing_over_) {
                // Let the other ready sessions run first. Asio reads speculatively after every
                // readiness event, and the client's next request has rarely arrived the moment
                // the response left: that read was an EAGAIN on nearly every request. Yielding
                // once (no syscall) gives the request time to arrive (measured: EAGAINs from
                // ~100% to ~6% of these reads; +3-5% requests/s with one thread). Not done
                // before reading an upstream's response: that cost p99 with two threads
                // (1.2 -> 4 ms) for no throughput.
                co_await asio::post(ctx_.get_executor(), asio::use_awaitable_t<Executor>{});
            }
            if (handing_over_ && !draining_) {
                // Between requests during a reload: the new generation serves the connection.
                if constexpr (!kTls) {
                    watch.unlink();
                    pass_on(std::move(conn));
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
            auto [rec, n] = co_await client.async_read_some(buffer.prepare(1024), kNoThrow);
            if (rec == asio::error::operation_aborted && handing_over_ && !draining_ &&
                !watch.fired && !stopping_ && !buffered(conn)) {
                watch.unlink();
                pass_on(std::move(conn));  // cancelled by hand_over() or the ticker: nothing read
                co_return;
            }
            if (rec == asio::error::operation_aborted && watch.park && !watch.fired && !closing() &&
                !stopping_ && !buffered(conn)) {
                // Idle for a while (the ticker cancelled the read): this coroutine ends and
                // the connection waits for readability as a small parked object, with no
                // buffer and no coroutine frame (as nginx and HAProxy keep idle connections);
                // a new session starts when the next request arrives.
                watch.unlink();
                park(std::move(conn), watch.deadline);
                co_return;
            }
            if (rec == asio::error::operation_aborted && !watch.fired && !stopping_ && watch.park &&
                buffered(conn)) {
                continue;  // TLS bytes already here: read them instead of parking or passing on
            }
            watch.idle = false;
            if (rec || watch.fired || n == 0) {
                break;
            }
            buffer.commit(n);
        }
        first = false;
        if constexpr (!kTls) {
            if (handing_over_ && !draining_ && !watch.fired) {
                // A reload, and the client's next request (pipelined) is here already: it goes
                // along with the connection.
                watch.unlink();
                const auto data = buffer.data();
                pass_on(std::move(conn), nullptr,
                        std::string(static_cast<const char*>(data.data()), data.size()));
                co_return;
            }
        }
        if (!co_await exchange(client, buffer, watch, client_address)) {
            break;
        }
        if (buffer.size() == 0 && buffer.capacity() > 1024) {
            buffer.shrink_to_fit();  // give a body's buffer back before waiting idle
        }
    }
    const bool lingers = watch.linger && !stopping_;
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

namespace {
// One direction of a tunnel: what `from` sends goes to `to` until `from` ends (then `to` is
// told with a half close, or over TLS the tunnel ends) or something fails (then both are cancelled,
// which ends the other direction too). Each byte moved pushes the idle deadline.
template <class From, class To>
Task<void> pump(From& from,
                To& to,
                char* chunk,
                Clock::duration idle,
                Clock::time_point& deadline,
                Socket& a,
                Socket& b) {
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
}  // namespace

template <class Stream>
Task<void> Worker::tunnel(Stream& client, beast::flat_buffer& pending, Upstream& up, Watch& watch) {
    using namespace asio::experimental::awaitable_operators;
    const auto idle = config_.timeouts.tunnel_idle;
    watch.arm(lowest(client), coarse_now() + idle);
    if (pending.size() > 0) {  // the client did not wait for the 101
        Out out;
        out.add(pending.data().data(), pending.size());
        const error_code e = co_await send_rest(up, out);
        pending.consume(pending.size());
        if (e || watch.fired) {
            co_return;
        }
    }
    struct Chunks {
        Worker& worker;
        std::unique_ptr<char[]> in = worker.take_chunk();
        std::unique_ptr<char[]> out = worker.take_chunk();
        ~Chunks() {
            worker.give_chunk(std::move(in));
            worker.give_chunk(std::move(out));
        }
    } chunks{*this};
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

template <class Stream>
Task<bool> Worker::reply(Stream& client,
                         Watch& watch,
                         unsigned status,
                         std::string_view text,
                         bool keep_alive,
                         Clock::time_point started) {
    metrics_.request(WorkerMetrics::kNoCluster, status, seconds_since(started));
    if (stopping_) {
        co_return false;
    }
    keep_alive = keep_alive && !closing();
    http::response<http::string_body> res{static_cast<http::status>(status), 11};
    res.set(http::field::server, "tandem-lb");
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    res.body().assign(text);
    res.body() += '\n';
    res.keep_alive(keep_alive);
    res.prepare_payload();
    watch.linger = !keep_alive;
    watch.arm(lowest(client), coarse_now() + config_.timeouts.client_body);
    auto [ec, n] = co_await http::async_write(client, res, kNoThrow);
    co_return !ec && !watch.fired && keep_alive;
}

template <class Stream>
Task<bool> Worker::exchange(Stream& client,
                            beast::flat_buffer& buffer,
                            Watch& watch,
                            const ClientAddress& client_address) {
    constexpr bool kTls = !std::is_same_v<Stream, Socket>;
    struct Disarm {
        Watch& w;
        ~Disarm() { w.disarm(); }
    } disarm{watch};
    struct ChunkHolder {
        Worker& worker;
        std::unique_ptr<char[]> chunk;
        char* get() {
            if (!chunk) {
                chunk = worker.take_chunk();
            }
            return chunk.get();
        }
        ~ChunkHolder() { worker.give_chunk(std::move(chunk)); }
    } chunk{*this, nullptr};
    // The message head for the next hop: the request's, then the response's.
    struct HeadHolder {
        Worker& worker;
        std::string text;
        ~HeadHolder() { worker.give_head(std::move(text)); }
    } head{*this, take_head()};

    const auto started = Clock::now();
    const auto& to = config_.timeouts;
    http::request_parser<http::buffer_body, PoolAllocator<char>> rp;
    rp.header_limit(config_.limits.max_header_bytes);
    rp.body_limit(config_.limits.max_body_bytes);
    watch.arm(lowest(client), started + to.client_header);
    {
        const error_code ec = co_await read_message(client, buffer, rp, true, kClientHeaderRead);
        if (stopping_) {
            co_return false;
        }
        if (watch.fired) {
            co_return co_await reply(client, watch, 408,
                                     "request timeout: the request header did not arrive in time",
                                     false, started);
        }
        if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
            co_return co_await reply(client, watch, 431,
                                     "request header fields too large (limit " +
                                         std::to_string(config_.limits.max_header_bytes) +
                                         " bytes)",
                                     false, started);
        }
        if (ec == http::error::body_limit) {
            co_return co_await reply(client, watch, 413,
                                     "content too large (limit " +
                                         std::to_string(config_.limits.max_body_bytes) + " bytes)",
                                     false, started);
        }
        if (ec && is_parse_error(ec)) {
            co_return co_await reply(client, watch, 400, "malformed request: " + ec.message(),
                                     false, started);
        }
        if (ec) {
            co_return false;  // the client went away
        }
    }

    auto& req = rp.get();
    const http::verb method = req.method();
    const bool idempotent = is_idempotent(method);
    const bool client_ka = req.keep_alive();
    const unsigned client_version = req.version();
    const bool has_body = !rp.is_done();
    const bool req_chunked = rp.chunked();
    bool expect_continue = false;
    bool drop_expect = false;
    if (auto it = req.find(http::field::expect);
        it != req.end() && beast::iequals(it->value(), "100-continue")) {
        // Answered here (as nginx does): the body then streams through as it arrives.
        expect_continue = has_body;
        drop_expect = true;
    }
    // A WebSocket handshake (RFC 6455: GET, HTTP/1.1, Connection: upgrade, Upgrade): asked of
    // the cluster as it came; a 101 then turns the exchange into a tunnel. (h2c is not: the
    // balancer speaks HTTP/1.1 to the clusters.)
    std::string_view upgrade;
    if (method == http::verb::get && !has_body && client_version == 11) {
        const auto up_it = req.find(http::field::upgrade);
        if (up_it != req.end() && !beast::iequals(up_it->value(), "h2c")) {
            for (const auto token : http::token_list{req[http::field::connection]}) {
                if (beast::iequals(token, "upgrade")) {
                    upgrade = up_it->value();
                }
            }
        }
    }
    const Framing req_framing = req_chunked ? Framing::kChunked : Framing::kAsIs;
    write_request_head(req, client_address,
                       kTls ? std::string_view("https") : config_.forwarded_proto, req_framing,
                       drop_expect, head.text, upgrade);

    std::optional<std::size_t> exclude;
    unsigned retries = 0;
    bool stale_retried = false;
    bool body_sent = false;  // body bytes consumed from the client: the request cannot be replayed
    for (;;) {
        const auto now = coarse_now();
        const auto choice = choose(exclude, now);
        if (!choice) {
            co_return co_await reply(
                client, watch, 503,
                "no healthy cluster: every cluster is failing its health checks (see /status on "
                "the admin listener)",
                client_ka && !has_body, started);
        }
        const std::string& cluster_name = config_.clusters[choice->cluster].name;
        // A non-idempotent request cannot be retried if a pooled connection turns out to be
        // closed, so only then is the pooled connection probed first (one syscall).
        UpstreamPtr up = take_idle(*choice, now, !idempotent);
        if (!up) {
            up = std::make_unique<Upstream>(ctx_, tls_[choice->cluster].get());
            watch.arm(up->socket, now + to.upstream_connect);  // connect and TLS handshake
            auto [cec] = co_await up->socket.async_connect(choice->address, kNoThrow);
            std::string tls_problem;
            if (!cec && !watch.fired && up->tls) {
                error_code ignored;
                up->socket.set_option(tcp::no_delay(true), ignored);
                prepare_tls(*up->tls, config_.clusters[choice->cluster]);
                auto [hec] =
                    co_await up->tls->async_handshake(asio::ssl::stream_base::client, kNoThrow);
                if (hec && !watch.fired) {
                    cec = hec;
                    tls_problem = tls_failure(hec, up->tls->native_handle(),
                                              config_.clusters[choice->cluster]);
                }
            }
            const bool timed_out = watch.fired;
            if (stopping_) {
                co_return false;
            }
            if (cec || timed_out) {
                metrics_.upstream_connect(choice->cluster, false);
                eject(*choice, Clock::now());
                if (retries < config_.retry.attempts && !body_sent) {
                    ++retries;
                    metrics_.retry(choice->cluster, RetryReason::kConnect);
                    exclude = choice->cluster;
                    continue;
                }
                // (Built first: GCC 12 destroys a temporary of a conditional expression
                // inside a co_await twice.)
                std::string why;
                if (timed_out) {
                    why = "upstream connect timeout (cluster " + cluster_name + ")";
                } else if (tls_problem.empty()) {
                    why =
                        "upstream connect failed (cluster " + cluster_name + "): " + cec.message();
                } else {
                    why = "TLS handshake with cluster " + cluster_name + " failed: " + tls_problem;
                }
                co_return co_await reply(client, watch, timed_out ? 504 : 502, why,
                                         client_ka && rp.is_done(), started);
            }
            metrics_.upstream_connect(choice->cluster, true);
            error_code ignored;
            up->socket.set_option(tcp::no_delay(true), ignored);
            up->socket.non_blocking(true, ignored);
        }
        InFlight in_flight(metrics_, choice->cluster);
        // After a failure before any response byte, when `allowed`: a pooled connection that
        // turned out stale is retried on a fresh one, anything else once on another cluster.
        const auto retry_elsewhere = [&](bool allowed) {
            if (allowed && up->reused && !stale_retried) {
                stale_retried = true;
                metrics_.retry(choice->cluster, RetryReason::kStaleConnection);
                return true;
            }
            if (allowed && retries < config_.retry.attempts) {
                ++retries;
                metrics_.retry(choice->cluster, RetryReason::kReset);
                exclude = choice->cluster;
                return true;
            }
            return false;
        };

        // The request: head, then the body piece by piece as it arrives (never buffered whole).
        error_code wec;
        if (!has_body) {
            watch.arm(up->socket, coarse_now() + to.upstream_response);
            Out out;
            out.add(head.text);
            if (up->tls || !write_now(up->socket, out, wec)) {
                wec = co_await send_rest(*up, out);
            }
            if (watch.fired) {
                wec = asio::error::timed_out;
            }
        } else {
            if (expect_continue) {
                expect_continue = false;
                static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
                watch.arm(lowest(client), coarse_now() + to.client_body);
                auto [e, n] = co_await asio::async_write(
                    client, asio::buffer(kContinue.data(), kContinue.size()), kNoThrow);
                if (e || watch.fired) {
                    co_return false;
                }
            }
            bool head_sent = false;
            for (bool last = false; !last;) {
                auto& body = req.body();
                std::size_t len = 0;
                if (!rp.is_done()) {
                    body.data = chunk.get();
                    body.size = kChunk;
                    watch.arm(lowest(client), coarse_now() + to.client_body);
                    rp.eager(true);
                    const error_code e = co_await read_message(client, buffer, rp, false, kChunk);
                    if (stopping_) {
                        co_return false;
                    }
                    if (e == http::error::body_limit) {
                        co_return co_await reply(client, watch, 413,
                                                 "content too large (limit " +
                                                     std::to_string(config_.limits.max_body_bytes) +
                                                     " bytes)",
                                                 false, started);
                    }
                    if (e || watch.fired) {
                        co_return false;  // the client went away or stalled mid-body
                    }
                    body_sent = true;
                    len = kChunk - body.size;
                }
                last = rp.is_done();
                Out out;
                if (!head_sent) {
                    out.add(head.text);
                    head_sent = true;
                }
                out.body(req_framing, chunk.chunk.get(), len, last);
                watch.arm(up->socket, coarse_now() + to.upstream_response);
                error_code e;
                if (up->tls || !write_now(up->socket, out, e)) {
                    e = co_await send_rest(*up, out);
                }
                if (watch.fired) {
                    e = asio::error::timed_out;
                }
                if (e) {
                    wec = e;
                    break;
                }
            }
        }
        if (stopping_) {
            co_return false;
        }
        if (wec) {
            // A failed write means the upstream did not take the whole request, so it cannot
            // have acted on it: safe to send again whatever the method, if nothing of the body
            // was consumed.
            if (retry_elsewhere(!body_sent)) {
                continue;
            }
            co_return co_await reply(client, watch, 502,
                                     "upstream (cluster " + cluster_name +
                                         ") closed the connection while receiving the request",
                                     false, started);
        }

        // The response header (interim 1xx responses are relayed to 1.1 clients and skipped).
        const bool can_retry = idempotent && !body_sent;
        const bool per_try = can_retry && retries < config_.retry.attempts &&
                             config_.retry.per_try_timeout &&
                             *config_.retry.per_try_timeout < to.upstream_response;
        const auto read_deadline =
            coarse_now() + (per_try ? *config_.retry.per_try_timeout : to.upstream_response);
        std::optional<http::response_parser<http::buffer_body, PoolAllocator<char>>> resp;
        error_code rec;
        for (;;) {
            resp.emplace();
            resp->header_limit(64 * 1024);
            resp->body_limit(boost::none);
            if (method == http::verb::head) {
                resp->skip(true);
            }
            watch.arm(up->socket, read_deadline);
            error_code e;
            if (up->tls) {  // (if/else, not ?: around co_await: GCC 12's coroutine bugs)
                e = co_await read_message(*up->tls, up->buffer, *resp, true, kUpstreamRead);
            } else {
                e = co_await read_message(up->socket, up->buffer, *resp, true, kUpstreamRead);
            }
            if (watch.fired) {
                e = asio::error::timed_out;
            }
            if (e) {
                rec = e;
                break;
            }
            const unsigned st = resp->get().result_int();
            if (st >= 200 || st == 101) {
                break;
            }
            if (client_version >= 11) {
                std::string interim;  // not head.text: a retry may still send the request
                write_response_head(resp->get(), Framing::kAsIs, ConnectionToken::kNone, interim);
                watch.arm(lowest(client), coarse_now() + to.client_body);
                auto [ie, in] = co_await asio::async_write(client, asio::buffer(interim), kNoThrow);
                if (ie || watch.fired) {
                    co_return false;
                }
            }
        }
        if (stopping_) {
            co_return false;
        }
        if (!rec && resp->get().result_int() == 101) {
            if (upgrade.empty()) {
                rec = http::error::bad_value;  // nothing asked to switch: a broken upstream
            } else {
                // Switching protocols: the 101 (and whatever the cluster sent after it), then
                // bytes both ways. The connection is the tunnel's: not pooled, not kept.
                metrics_.request(choice->cluster, 101, seconds_since(started));
                const auto& res = resp->get();
                std::string_view answer =
                    upgrade;  // (the cluster's own Upgrade value if it sent one)
                if (const auto their = res.find(http::field::upgrade); their != res.end()) {
                    answer = their->value();
                }
                write_response_head(res, Framing::kAsIs, ConnectionToken::kNone, head.text, answer);
                Out out;
                out.add(head.text);
                out.add(up->buffer.data().data(), up->buffer.size());
                watch.arm(lowest(client), coarse_now() + to.client_body);
                auto [we, wn] = co_await asio::async_write(client, out, kNoThrow);
                up->buffer.consume(up->buffer.size());
                if (we || watch.fired) {
                    co_return false;
                }
                co_await tunnel(client, buffer, *up, watch);
                watch.linger =
                    true;  // the client's last bytes (TLS close_notify) must not meet a reset
                co_return false;
            }
        }
        if (rec) {
            const bool nothing = nothing_received(rec) && up->buffer.size() == 0;
            if (rec == asio::error::timed_out && per_try) {
                eject(*choice, Clock::now());
                ++retries;
                metrics_.retry(choice->cluster, RetryReason::kPerTryTimeout);
                exclude = choice->cluster;
                continue;
            }
            if (rec == asio::error::timed_out) {
                co_return co_await reply(client, watch, 504,
                                         "upstream response timeout (cluster " + cluster_name + ")",
                                         client_ka && rp.is_done(), started);
            }
            if (retry_elsewhere(nothing && can_retry)) {
                continue;
            }
            co_return co_await reply(
                client, watch, 502,
                "bad response from upstream (cluster " + cluster_name + "): " + rec.message(),
                client_ka && rp.is_done(), started);
        }

        // The response: header rewritten, body relayed chunk by chunk.
        auto& res = resp->get();
        const unsigned status = res.result_int();
        const bool upstream_ka = res.keep_alive();
        const bool upstream_chunked = resp->chunked();
        const bool bodyless = method == http::verb::head || status == 204 || status == 304;
        const bool close_delimited = !bodyless && !upstream_chunked && !resp->content_length();
        bool keep = client_ka && rp.is_done() && !closing();
        Framing res_framing = Framing::kAsIs;
        if (!bodyless && (upstream_chunked || close_delimited)) {
            if (client_version >= 11) {
                res_framing = Framing::kChunked;
            } else {
                keep = false;  // an HTTP/1.0 client: the end of the body is the close
            }
        }
        write_response_head(
            res, bodyless && upstream_chunked ? Framing::kChunked : res_framing,  // HEAD: as GET
            !keep                 ? ConnectionToken::kClose
            : client_version < 11 ? ConnectionToken::kKeepAlive
                                  : ConnectionToken::kNone,
            head.text);
        bool head_sent = false;
        for (bool last = false; !last;) {
            auto& body = res.body();
            std::size_t len = 0;
            if (!bodyless && !resp->is_done()) {
                body.data = chunk.get();
                body.size = kChunk;
                watch.arm(up->socket, coarse_now() + to.upstream_response);
                resp->eager(true);
                error_code e;
                if (up->tls) {
                    e = co_await read_message(*up->tls, up->buffer, *resp, false, kUpstreamRead);
                } else {
                    e = co_await read_message(up->socket, up->buffer, *resp, false, kUpstreamRead);
                }
                if (e || watch.fired) {
                    // The upstream failed mid-body: closing the client connection is the
                    // only way left to tell it the response is incomplete.
                    metrics_.request(choice->cluster, status, seconds_since(started));
                    co_return false;
                }
                len = kChunk - body.size;
            }
            last = bodyless || resp->is_done();
            Out out;
            if (!head_sent) {
                out.add(head.text);
                head_sent = true;
            }
            if (!bodyless) {
                out.body(res_framing, chunk.chunk.get(), len, last);
            }
            watch.arm(lowest(client), coarse_now() + to.client_body);
            error_code e;
            if (!write_now(client, out, e)) {
                auto [ae, n] = co_await asio::async_write(client, out, kNoThrow);
                e = ae;
            }
            if (e || watch.fired) {
                keep = false;
                break;
            }
        }
        metrics_.request(choice->cluster, status, seconds_since(started));
        watch.disarm();
        if (upstream_ka && resp->is_done() && !close_delimited && up->buffer.size() == 0 &&
            !stopping_) {
            give_back(*choice, std::move(up), coarse_now());
        }
        co_return keep && !stopping_;
    }
}

}  // namespace lb
