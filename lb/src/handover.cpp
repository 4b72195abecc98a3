// A reload passes a worker's connections to the next generation: listening sockets given up
// (their queue taken and passed on), keep-alive connections between requests (plain, or TLS
// with their OpenSSL session), and what a pipelining client had sent already.
#include <cerrno>
#include <type_traits>
#include <utility>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <unistd.h>

#include "worker.hpp"

namespace lb {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

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

void Worker::hand_over(Worker& next,
                       std::function<void()> done,
                       GiveUp http,
                       GiveUp https,
                       std::function<void()> given_up) {
    asio::post(ctx_, [this, &next, done = std::move(done), http, https,
                      given_up = std::move(given_up)]() mutable {
        lifecycle_.handing_over = true;
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

void Worker::accept_queued(Acceptor& acceptor, bool tls) {
    // The server closed its descriptor of this socket before the hand-over or the drain: once
    // this one is closed too, the kernel resets whatever is still queued, so take it all now.
    // (Between the last accept and the close, a few microseconds, a connection can still arrive
    // and be reset; net.ipv4.tcp_migrate_req=1 makes the kernel move those to another socket of
    // the group.)
    error_code ec;
    acceptor.non_blocking(true, ec);
    while (!ec) {
        Socket socket(ctx_.get_executor());
        acceptor.accept(socket, ec);
        if (ec) {
            break;  // (would_block: nothing left)
        }
        if (lifecycle_.draining) {
            start_session(std::move(socket), tls);
        } else {
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
        if (lifecycle_.handing_over) {  // reloaded again meanwhile
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
    if (lifecycle_.draining || lifecycle_.stopping) {
        close_quietly(client);
        return std::nullopt;
    }
    return client;
}

void Worker::adopt(
    int fd, tcp protocol, SSL* ssl, std::string pending, std::optional<Peer> proxied) {
    asio::post(ctx_, [this, owned = OwnedFd(fd), protocol, tls = OwnedSsl(ssl),
                      pending = std::move(pending), proxied]() mutable {
        auto client = take_socket(owned.release(), protocol);
        if (!client) {
            return;
        }
        ++sessions_;
        metrics_.client_connection_moved_in();
        const auto resume = [this, &pending, &proxied](auto conn) {
            if (lifecycle_.handing_over) {  // reloaded again meanwhile
                if constexpr (std::is_same_v<decltype(conn), Socket>) {
                    pass_on(std::move(conn), nullptr, std::move(pending), proxied);
                } else {
                    pass_on(std::move(conn), proxied);
                }
                return;
            }
            asio::co_spawn(ctx_.get_executor(),
                           session(std::move(conn), true, std::move(pending), proxied),
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

void Worker::pass_on(TlsClientPtr client, std::optional<Peer> proxied) {
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
    pass_on(std::move(sock), ssl, {}, std::move(proxied));
}

void Worker::pass_on(Socket client, SSL* ssl, std::string pending, std::optional<Peer> proxied) {
    OwnedSsl tls(ssl);  // freed here unless the successor takes it
    error_code ec;
    const auto local = client.local_endpoint(ec);
    if (!ec) {
        const int fd = client.release(ec);
        if (!ec) {
            successor_->adopt(fd, local.protocol(), tls.release(), std::move(pending),
                              std::move(proxied));
        }
    }
    if (ec) {
        close_quietly(client);
    }
    connection_left();
}

}  // namespace lb
