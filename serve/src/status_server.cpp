// tandem serve's listener: /healthz /readyz /status /metrics and the webhooks over HTTP/1.1
// (Boost.Beast).
#include "status_server.hpp"

#include <set>
#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace serve {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kMaxConnections = 64;
constexpr std::uint64_t kMaxBody = 64 * 1024;

}  // namespace

struct StatusServer::Impl {
    asio::io_context ctx{1};
    tcp::acceptor acceptor{ctx};
    Handler handle;
    std::string bound;
    std::set<std::shared_ptr<beast::tcp_stream>> sessions;
    std::thread thread;
    bool stopped = false;

    asio::awaitable<void> accept_loop() {
        while (!stopped) {
            auto [ec, socket] = co_await acceptor.async_accept(kNoThrow);
            if (ec) {
                if (stopped || ec == asio::error::operation_aborted) {
                    break;
                }
                continue;
            }
            if (sessions.size() >= kMaxConnections) {
                error_code ignored;
                socket.close(ignored);  // (a probe or a scrape retries)
                continue;
            }
            auto stream = std::make_shared<beast::tcp_stream>(std::move(socket));
            sessions.insert(stream);
            asio::co_spawn(ctx, session(stream), asio::detached);
        }
    }

    asio::awaitable<void> session(std::shared_ptr<beast::tcp_stream> stream) {
        beast::flat_buffer buffer(16 * 1024);
        for (;;) {
            http::request_parser<http::string_body> parser;
            parser.header_limit(8 * 1024);
            parser.body_limit(kMaxBody);
            stream->expires_after(std::chrono::seconds(10));
            auto [ec, n] = co_await http::async_read(*stream, buffer, parser, kNoThrow);
            http::response<http::string_body> res{http::status::ok, 11};
            res.set(http::field::server, "tandem-serve");
            res.set(http::field::cache_control, "no-store");
            if (ec == http::error::body_limit) {
                res.result(http::status::payload_too_large);
                res.set(http::field::content_type, "text/plain; charset=utf-8");
                res.body() = "a body of at most 64 KiB\n";
                res.keep_alive(false);
                res.prepare_payload();
                stream->expires_after(std::chrono::seconds(10));
                co_await http::async_write(*stream, res, kNoThrow);
                break;
            }
            if (ec) {
                break;
            }
            auto& req = parser.get();
            const auto method = req.method();
            if (method != http::verb::get && method != http::verb::head &&
                method != http::verb::post) {
                res.result(http::status::method_not_allowed);
                res.set(http::field::allow, "GET, HEAD, POST");
                res.set(http::field::content_type, "text/plain; charset=utf-8");
                res.body() = "only GET and HEAD (and POST for webhooks)\n";
            } else {
                const std::string target(req.target());
                const auto reply =
                    handle(std::string(req.method_string()), target.substr(0, target.find('?')),
                           std::move(req.body()));
                res.result(reply.status);
                res.set(http::field::content_type, reply.content_type);
                res.body() = reply.body;
            }
            res.keep_alive(req.keep_alive() && !stopped);
            res.prepare_payload();
            if (req.method() == http::verb::head) {
                res.body().clear();
            }
            stream->expires_after(std::chrono::seconds(10));
            auto [wec, wn] = co_await http::async_write(*stream, res, kNoThrow);
            if (wec || !res.keep_alive()) {
                break;
            }
        }
        error_code ignored;
        stream->socket().shutdown(tcp::socket::shutdown_both, ignored);
        stream->close();
        sessions.erase(stream);
    }
};

StatusServer::StatusServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

std::expected<std::unique_ptr<StatusServer>, std::string> StatusServer::start(
    const std::string& listen, Handler handle) {
    auto impl = std::make_unique<Impl>();
    impl->handle = std::move(handle);
    const auto colon = listen.rfind(':');
    std::string host = listen.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    error_code ec;
    const auto address = asio::ip::make_address(host, ec);
    if (ec) {
        return std::unexpected("serve.listen: '" + host + "' is not an IP address");
    }
    const tcp::endpoint endpoint(address,
                                 static_cast<std::uint16_t>(std::stoul(listen.substr(colon + 1))));
    auto& a = impl->acceptor;
    if (a.open(endpoint.protocol(), ec); !ec) {
        a.set_option(asio::socket_base::reuse_address(true), ec);
        if (a.bind(endpoint, ec); !ec) {
            a.listen(asio::socket_base::max_listen_connections, ec);
        }
    }
    if (ec) {
        return std::unexpected("serve.listen: cannot listen on " + listen + ": " + ec.message());
    }
    const auto local = a.local_endpoint(ec);
    impl->bound = (local.address().is_v6() ? "[" + local.address().to_string() + "]"
                                           : local.address().to_string()) +
                  ":" + std::to_string(local.port());
    auto* raw = impl.get();
    asio::co_spawn(raw->ctx, raw->accept_loop(), asio::detached);
    raw->thread = std::thread([raw] { raw->ctx.run(); });
    return std::unique_ptr<StatusServer>(new StatusServer(std::move(impl)));
}

StatusServer::~StatusServer() {
    stop();
}

const std::string& StatusServer::bound() const {
    return impl_->bound;
}

void StatusServer::stop() {
    if (!impl_ || !impl_->thread.joinable()) {
        return;
    }
    auto* raw = impl_.get();
    asio::post(raw->ctx, [raw] {
        raw->stopped = true;
        error_code ignored;
        raw->acceptor.close(ignored);
        for (const auto& s : raw->sessions) {
            s->socket().cancel(ignored);
        }
    });
    raw->thread.join();
}

}  // namespace serve
