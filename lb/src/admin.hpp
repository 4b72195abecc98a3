#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include "listeners.hpp"
#include "plane.hpp"

namespace lb {

// How the last reload went.
struct ReloadOutcome {
    std::chrono::system_clock::time_point at{};
    bool ok = false;
    std::string error;
};

// What the admin endpoints show, as the server sees it at the moment of a request.
struct StatusView {
    bool draining = false;
    std::chrono::steady_clock::duration uptime{};
    const Plane& plane;                   // the current generation
    std::vector<const Plane*> finishing;  // earlier generations still finishing requests
    const Listeners& listeners;
    std::uint64_t snapshots = 0;  // snapshots published so far
    std::string config_file;
    std::uint64_t reloads = 0;  // reloads handled (applied or not)
    std::optional<ReloadOutcome> last_reload;
};

// The admin listener: GET/HEAD /healthz (200 while a cluster is healthy, ready and the
// balancer not draining), /status (JSON: listeners, generations, reloads, every cluster with
// its runtime state and every endpoint with its DNS and health-check state), /metrics
// (Prometheus text), and the runtime API: GET /clusters/NAME/state, PUT it with
// {"state": "ready" | "drain" | "maint"} (Authorization: Bearer admin.token when one is set;
// without one only on a loopback listener). Keep-alive, 8 KiB headers, 4 KiB bodies, 10 s per
// read or write.
class Admin {
public:
    using View = std::function<StatusView()>;
    // Sets a cluster's runtime state (the name is one of the current plane's); returns the
    // state it had.
    using SetState = std::function<AdminState(const std::string& cluster, AdminState)>;

    Admin(boost::asio::io_context& ctx, View view, SetState set_state);

    // Accepts on `acceptor` until it is closed (shutdown, or a reload moved the admin listener).
    void serve(std::shared_ptr<boost::asio::ip::tcp::acceptor> acceptor);
    // Shutdown: the acceptor closes, open sessions end, answers say Connection: close.
    void stop();

private:
    boost::asio::awaitable<void> accept_loop(std::shared_ptr<boost::asio::ip::tcp::acceptor> a);
    boost::asio::awaitable<void> session(std::shared_ptr<boost::beast::tcp_stream> stream);

    boost::asio::io_context& ctx_;
    View view_;
    SetState set_state_;
    std::shared_ptr<boost::asio::ip::tcp::acceptor> acceptor_;
    std::set<std::shared_ptr<boost::beast::tcp_stream>> sessions_;
    bool stopped_ = false;
};

}  // namespace lb
