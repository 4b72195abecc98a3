#pragma once

#include <expected>
#include <functional>
#include <memory>
#include <string>

namespace serve {

// What a request to tandem serve's listener gets.
struct Reply {
    unsigned status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
};

// tandem serve's HTTP listener (/healthz /readyz /status /metrics, and the webhooks' POST):
// Boost.Beast on a thread of its own, keep-alive, 8 KiB headers, bodies of at most 64 KiB (a
// larger one is refused with 413), 10 s per read or write, at most 64 connections at once.
// `handle` (method, path without the query, body) is called on that thread. Nothing here logs a
// request: a webhook's path carries its token.
class StatusServer {
public:
    using Handler =
        std::function<Reply(const std::string& method, const std::string& path, std::string body)>;

    // Binds `listen` (IP:port; port 0 picks one) or says why it cannot.
    static std::expected<std::unique_ptr<StatusServer>, std::string> start(
        const std::string& listen, Handler handle);
    ~StatusServer();
    StatusServer(const StatusServer&) = delete;
    StatusServer& operator=(const StatusServer&) = delete;

    // "127.0.0.1:40123", as bound.
    [[nodiscard]] const std::string& bound() const;
    // Stops accepting, closes the connections and joins the thread.
    void stop();

    struct Impl;

private:
    explicit StatusServer(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace serve
