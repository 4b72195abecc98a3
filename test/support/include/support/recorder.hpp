#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace support {

// An upstream that records what proxies forward to it (127.0.0.1, port 0, a thread per
// connection): each request it parses whole is recorded and answered 200 "ok"; a request for
// /respond/NAME is answered with the raw bytes set for NAME, then the connection closes (to
// see what a proxy makes of a malformed response). Requests for /__health (health checks)
// are answered and not recorded.
class Recorder {
public:
    struct Request {
        std::string method;
        std::string target;
        std::string host;
        std::string body;
        std::map<std::string, std::string> headers;  // lower-case names; repeated ones joined
    };

    Recorder();
    ~Recorder();
    Recorder(const Recorder&) = delete;
    Recorder& operator=(const Recorder&) = delete;

    [[nodiscard]] std::uint16_t port() const { return port_; }
    [[nodiscard]] std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
    void set_response(const std::string& name, std::string raw);
    // Forgets what was recorded so far.
    void clear();
    [[nodiscard]] std::vector<Request> requests() const;
    // Connections that sent bytes the recorder could not parse as a request.
    [[nodiscard]] std::size_t garbage() const;

private:
    void accept_loop();
    void serve(int fd);

    int listen_fd_ = -1;
    std::uint16_t port_ = 0;
    std::atomic<bool> stop_{false};
    mutable std::mutex mutex_;
    std::vector<Request> requests_;
    std::size_t garbage_ = 0;
    std::map<std::string, std::string> responses_;
    std::vector<int> fds_;
    std::vector<std::thread> threads_;
    std::thread acceptor_;
};

}  // namespace support
