#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

#include "sim/store.hpp"

namespace sim {

// Delivers webhook events in order, one at a time, as 3scale's background job does: an HTTP POST
// of the XML document (Content-Type application/xml); anything but a 2xx is retried `attempts`
// times `retry_delay` apart (3scale: 5 times, 60 s apart), each try within `timeout`. The queue
// is bounded: an event beyond `max_queue` is dropped and counted. http:// URLs only.
class WebhookSender {
public:
    struct Settings {
        std::size_t max_queue = 10000;
        int attempts = 5;
        std::chrono::milliseconds retry_delay{1000};
        std::chrono::milliseconds timeout{5000};
    };
    struct Counters {
        std::uint64_t delivered = 0;
        std::uint64_t failed = 0;  // every try failed
        std::uint64_t dropped = 0;
        std::uint64_t retries = 0;
    };

    WebhookSender(boost::asio::io_context& ioc, Settings settings);
    void post(WebhookEvent event);
    [[nodiscard]] const Counters& counters() const { return counters_; }
    [[nodiscard]] std::size_t queued() const { return queue_.size(); }

private:
    boost::asio::awaitable<void> run();
    boost::asio::awaitable<bool> deliver(const WebhookEvent& event);

    boost::asio::io_context& ioc_;
    Settings settings_;
    std::deque<WebhookEvent> queue_;
    bool running_ = false;
    Counters counters_;
};

}  // namespace sim
