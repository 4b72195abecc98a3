#include "sim/server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace sim {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

constexpr auto kAsTuple = asio::as_tuple(asio::use_awaitable);

Request to_request(const http::request<http::string_body>& req) {
    Request out;
    out.method = std::string(req.method_string());
    out.target = std::string(req.target());
    for (const auto& field : req) {
        std::string name(field.name_string());
        for (auto& ch : name) {
            ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        }
        out.headers.emplace_back(std::move(name), std::string(field.value()));
    }
    out.body = req.body();
    return out;
}

http::response<http::string_body> to_beast(const Response& r, unsigned version, bool keep_alive) {
    http::response<http::string_body> res{static_cast<http::status>(r.status), version};
    res.set(http::field::server, "threescale-sim");
    if (!r.body.empty() || r.status != 200) {
        res.set(http::field::content_type, r.content_type);
    }
    for (const auto& [name, value] : r.headers) {
        res.set(name, value);
    }
    res.body() = r.body;
    res.keep_alive(keep_alive);
    res.prepare_payload();
    return res;
}

}  // namespace

Server::Server(asio::io_context& ioc, Simulator& sim, ServerLimits limits)
    : ioc_(ioc),
      sim_(sim),
      limits_(limits),
      admin_(ioc),
      gateway_(ioc),
      webhooks_(ioc, limits.webhooks) {
    sim_.webhook_counters = [this] {
        const auto& c = webhooks_.counters();
        return Json{{"delivered", c.delivered},
                    {"failed", c.failed},
                    {"dropped", c.dropped},
                    {"retries", c.retries},
                    {"queued", webhooks_.queued()}};
    };
}

void Server::listen(const tcp::endpoint& admin, const tcp::endpoint& gateway) {
    for (auto [acceptor, ep] : {std::pair{&admin_, admin}, std::pair{&gateway_, gateway}}) {
        acceptor->open(ep.protocol());
        acceptor->set_option(asio::socket_base::reuse_address(true));
        acceptor->bind(ep);
        acceptor->listen(asio::socket_base::max_listen_connections);
    }
}

void Server::start() {
    asio::co_spawn(ioc_, accept_loop(admin_, false), asio::detached);
    asio::co_spawn(ioc_, accept_loop(gateway_, true), asio::detached);
}

void Server::close() {
    boost::system::error_code ignored;
    admin_.close(ignored);
    gateway_.close(ignored);
}

asio::awaitable<void> Server::accept_loop(tcp::acceptor& acceptor, bool gateway) {
    for (;;) {
        auto [ec, socket] = co_await acceptor.async_accept(kAsTuple);
        if (ec == asio::error::operation_aborted || !acceptor.is_open()) {
            co_return;
        }
        if (ec) {
            continue;  // EMFILE and friends: keep serving the connections we have
        }
        asio::co_spawn(ioc_, session(std::move(socket), gateway), asio::detached);
    }
}

asio::awaitable<void> Server::session(tcp::socket socket, bool gateway) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer(limits_.max_header_bytes + 4096);
    for (;;) {
        http::request_parser<http::string_body> parser;
        parser.header_limit(static_cast<std::uint32_t>(limits_.max_header_bytes));
        parser.body_limit(limits_.max_body_bytes);
        stream.expires_after(limits_.idle_timeout);
        auto [ec, n] = co_await http::async_read(stream, buffer, parser, kAsTuple);
        if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
            ec == asio::error::connection_reset || ec == asio::error::eof) {
            break;
        }
        if (ec) {
            // Malformed or oversized requests get an answer, then the connection closes.
            Response r = Response::text(400, "Bad Request: " + ec.message());
            if (ec == http::error::body_limit) {
                r = Response::text(413, "Payload Too Large");
            } else if (ec == http::error::header_limit) {
                r = Response::text(431, "Request Header Fields Too Large");
            }
            auto res = to_beast(r, 11, false);
            stream.expires_after(limits_.read_timeout);
            co_await http::async_write(stream, res, kAsTuple);
            break;
        }
        auto req = parser.release();
        const Request request = to_request(req);
        Response response;
        if (!gateway && Simulator::is_control(request.path())) {
            response = sim_.handle_control(request);
        } else if (request.path() == "/status/live" || request.path() == "/status/ready") {
            // APIcast's liveness/readiness answers (its management API), served on the
            // gateway port so a balancer can health-check the "cluster" without spending
            // any application's limits; on the admin port too, so a balancer can check the
            // portal side the same way.
            response = Response::json(200, Json{{"status", "ready"}, {"success", true}});
        } else {
            const auto decision = sim_.decide(gateway, request);
            if (decision.delay.count() > 0) {
                asio::steady_timer timer(stream.get_executor());
                timer.expires_after(decision.delay);
                co_await timer.async_wait(kAsTuple);
            }
            if (gateway) {
                auto outcome = sim_.handle_gateway(request, decision);
                response = std::move(outcome.response);
                if (outcome.verdict == Gateway::Verdict::kAuthorized && limits_.upstream) {
                    response = co_await forward(request);
                }
            } else {
                response = sim_.handle_admin(request, decision);
                for (auto& event : sim_.take_webhooks()) {
                    webhooks_.post(std::move(event));
                }
            }
        }
        if (on_request) {
            on_request(request, response, gateway);
        }
        const bool keep_alive = req.keep_alive();
        auto res = to_beast(response, req.version(), keep_alive);
        if (req.method() == http::verb::head) {
            res.body().clear();
        }
        stream.expires_after(limits_.read_timeout);
        auto [wec, written] = co_await http::async_write(stream, res, kAsTuple);
        if (wec || !keep_alive) {
            break;
        }
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

asio::awaitable<Response> Server::forward(const Request& request) {
    beast::tcp_stream upstream(co_await asio::this_coro::executor);
    upstream.expires_after(limits_.upstream_timeout);
    auto [cec] = co_await upstream.async_connect(*limits_.upstream, kAsTuple);
    if (cec) {
        co_return Response::text(502, "Bad Gateway: upstream: " + cec.message());
    }
    http::request<http::string_body> req;
    req.method_string(request.method);
    req.target(request.target);
    req.version(11);
    for (const auto& [name, value] : request.headers) {
        if (name != "connection" && name != "keep-alive" && name != "transfer-encoding" &&
            name != "content-length" && name != "upgrade" && name != "te") {
            req.set(name, value);
        }
    }
    req.body() = request.body;
    req.keep_alive(false);
    req.prepare_payload();
    auto [wec, written] = co_await http::async_write(upstream, req, kAsTuple);
    if (wec) {
        co_return Response::text(502, "Bad Gateway: upstream: " + wec.message());
    }
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(limits_.max_body_bytes);
    auto [rec, read] = co_await http::async_read(upstream, buffer, parser, kAsTuple);
    if (rec) {
        co_return Response::text(rec == beast::error::timeout ? 504 : 502,
                                 "upstream: " + rec.message());
    }
    const auto& res = parser.get();
    Response out;
    out.status = res.result_int();
    out.content_type = std::string(res[http::field::content_type]);
    out.body = res.body();
    for (const auto& field : res) {
        const auto name = field.name();
        if (name != http::field::connection && name != http::field::content_length &&
            name != http::field::transfer_encoding && name != http::field::content_type &&
            name != http::field::keep_alive && name != http::field::server) {
            out.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
        }
    }
    co_return out;
}

}  // namespace sim
