// The --healthcheck client of /healthz: one GET, as a coroutine like the rest of tandem-lb.
#include "lb/healthz_client.hpp"

#include <optional>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

namespace lb {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

asio::awaitable<std::expected<void, std::string>> ask(const HostPort admin,
                                                      std::string host,
                                                      std::chrono::milliseconds timeout) {
    boost::system::error_code ec;
    const asio::ip::tcp::endpoint ep(asio::ip::make_address(host, ec), admin.port);
    if (ec) {
        co_return std::unexpected("admin address " + admin.to_string() + ": " + ec.message());
    }
    beast::tcp_stream stream(co_await asio::this_coro::executor);
    stream.expires_after(timeout);  // one deadline for connect, request and answer
    const auto failed = [&](const boost::system::error_code& e, const std::string& what) {
        return std::unexpected(e == beast::error::timeout
                                   ? "no answer within " + std::to_string(timeout.count()) + "ms"
                                   : what + e.message());
    };
    if (auto [cec] = co_await stream.async_connect(ep, kNoThrow); cec) {
        co_return failed(cec, "cannot connect to " + admin.to_string() + ": ");
    }
    http::request<http::empty_body> req{http::verb::get, "/healthz", 11};
    req.set(http::field::host, host);
    req.set(http::field::connection, "close");
    if (auto [wec, wn] = co_await http::async_write(stream, req, kNoThrow); wec) {
        co_return failed(wec, "");
    }
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024);
    if (auto [rec, rn] = co_await http::async_read(stream, buffer, parser, kNoThrow); rec) {
        co_return failed(rec, "");
    }
    const auto& res = parser.get();
    if (res.result_int() != 200) {
        co_return std::unexpected(std::to_string(res.result_int()) + " " + res.body());
    }
    co_return std::expected<void, std::string>{};
}

}  // namespace

std::expected<void, std::string> check_health(const LbConfig& config,
                                              std::chrono::milliseconds timeout) {
    std::string host = config.admin.host;
    if (host == "0.0.0.0") {
        host = "127.0.0.1";
    } else if (host == "::") {
        host = "::1";
    }
    asio::io_context ioc;
    std::optional<std::expected<void, std::string>> outcome;
    asio::co_spawn(ioc, ask(config.admin, host, timeout),
                   [&](std::exception_ptr e, std::expected<void, std::string> r) {
                       outcome = e ? std::unexpected(std::string("unexpected failure")) : r;
                   });
    ioc.run();
    return outcome.value_or(std::unexpected(std::string("no answer")));
}

}  // namespace lb
