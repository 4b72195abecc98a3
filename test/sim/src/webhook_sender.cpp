// Webhook delivery: one coroutine drains the queue in order, each event retried on failure.
#include "sim/webhook_sender.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace sim {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

constexpr auto kAsTuple = asio::as_tuple(asio::use_awaitable);

struct Target {
    std::string host;
    std::string port = "80";
    std::string path = "/";
};

// http://host[:port][/path]; nullopt for anything else (https included: the simulator has no
// TLS client).
std::optional<Target> parse_http_url(const std::string& url) {
    constexpr std::string_view kScheme = "http://";
    if (!url.starts_with(kScheme)) {
        return std::nullopt;
    }
    Target t;
    std::string rest = url.substr(kScheme.size());
    const auto slash = rest.find('/');
    if (slash != std::string::npos) {
        t.path = rest.substr(slash);
        rest.resize(slash);
    }
    const auto colon = rest.rfind(':');
    if (colon != std::string::npos && rest.find(']') == std::string::npos) {
        t.port = rest.substr(colon + 1);
        rest.resize(colon);
    }
    t.host = rest;
    if (t.host.empty() || t.port.empty()) {
        return std::nullopt;
    }
    return t;
}

}  // namespace

WebhookSender::WebhookSender(asio::io_context& ioc, Settings settings)
    : ioc_(ioc), settings_(settings) {}

void WebhookSender::post(WebhookEvent event) {
    if (queue_.size() >= settings_.max_queue) {
        ++counters_.dropped;
        return;
    }
    queue_.push_back(std::move(event));
    if (!running_) {
        running_ = true;
        asio::co_spawn(ioc_, run(), asio::detached);
    }
}

asio::awaitable<void> WebhookSender::run() {
    while (!queue_.empty()) {
        const WebhookEvent event = std::move(queue_.front());
        queue_.pop_front();
        bool delivered = false;
        for (int attempt = 0; attempt < settings_.attempts && !delivered; ++attempt) {
            if (attempt > 0) {
                ++counters_.retries;
                asio::steady_timer pause(ioc_, settings_.retry_delay);
                co_await pause.async_wait(kAsTuple);
            }
            delivered = co_await deliver(event);
        }
        ++(delivered ? counters_.delivered : counters_.failed);
    }
    running_ = false;
}

asio::awaitable<bool> WebhookSender::deliver(const WebhookEvent& event) {
    const auto target = parse_http_url(event.url);
    if (!target) {
        co_return false;
    }
    asio::ip::tcp::resolver resolver(ioc_);
    beast::tcp_stream stream(ioc_);
    stream.expires_after(settings_.timeout);
    auto [rec, endpoints] = co_await resolver.async_resolve(target->host, target->port, kAsTuple);
    if (rec) {
        co_return false;
    }
    auto [cec, ep] = co_await stream.async_connect(endpoints, kAsTuple);
    if (cec) {
        co_return false;
    }
    http::request<http::string_body> req{http::verb::post, target->path, 11};
    req.set(http::field::host, target->host);
    req.set(http::field::user_agent, "threescale-sim webhooks");
    req.set(http::field::content_type, "application/xml");
    req.body() = event.body;
    req.keep_alive(false);
    req.prepare_payload();
    auto [wec, written] = co_await http::async_write(stream, req, kAsTuple);
    if (wec) {
        co_return false;
    }
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024);
    auto [hec, read] = co_await http::async_read(stream, buffer, parser, kAsTuple);
    beast::error_code ignored;
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    co_return !hec && parser.get().result_int() / 100 == 2;
}

}  // namespace sim
