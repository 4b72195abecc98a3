#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "sim/simulator.hpp"
#include "sim/webhook_sender.hpp"

namespace sim {

struct ServerLimits {
    std::size_t max_header_bytes = 16 * 1024;
    std::size_t max_body_bytes = 4 * 1024 * 1024;
    std::chrono::seconds idle_timeout{60};
    std::chrono::seconds read_timeout{30};
    // When set, authorized gateway requests are forwarded there and its answer is returned.
    std::optional<boost::asio::ip::tcp::endpoint> upstream;
    std::chrono::seconds upstream_timeout{30};
    WebhookSender::Settings webhooks;
};

// The HTTP/1.1 front of a Simulator: an admin listener (admin API + /__sim/ control API) and a
// gateway listener, served by coroutines on one io_context.
class Server {
public:
    using tcp = boost::asio::ip::tcp;

    Server(boost::asio::io_context& ioc, Simulator& sim, ServerLimits limits);
    ~Server() { sim_.webhook_counters = nullptr; }
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Binds both listeners; port 0 picks a free port.
    void listen(const tcp::endpoint& admin, const tcp::endpoint& gateway);
    [[nodiscard]] tcp::endpoint admin_endpoint() const { return admin_.local_endpoint(); }
    [[nodiscard]] tcp::endpoint gateway_endpoint() const { return gateway_.local_endpoint(); }
    void start();
    void close();  // stop accepting
    // Called after every admin request (for the verbose access log).
    std::function<void(const Request&, const Response&, bool gateway)> on_request;

private:
    boost::asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, bool gateway);
    boost::asio::awaitable<void> session(tcp::socket socket, bool gateway);
    // Awaited directly by session(), so the reference outlives the coroutine.
    boost::asio::awaitable<Response> forward(const Request& request);

    boost::asio::io_context& ioc_;
    Simulator& sim_;
    ServerLimits limits_;
    tcp::acceptor admin_;
    tcp::acceptor gateway_;
    WebhookSender webhooks_;
};

}  // namespace sim
