#pragma once

// The anchors tandem-lb is measured against, as real processes: HAProxy 2.6 and nginx 1.22 from
// Debian, configured as the reverse proxies a user would otherwise run in front of the
// clusters (their defaults: no option relaxing what they accept).

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "support/child_process.hpp"

namespace support {

// How an anchor is set up beyond the defaults.
struct AnchorOptions {
    std::string extra;           // lines for HAProxy's frontend / nginx's location /
    bool tcp = false;            // listen on 127.0.0.1:port (else a unix socket)
    std::string bind_options;    // after the address: "accept-proxy", "proxy_protocol"
    std::string server_options;  // HAProxy's server line: "send-proxy-v2"
    bool l4 = false;             // HAProxy in mode tcp (a layer-4 balancer in front)
};

struct AnchorProxy {
    enum class Kind { kHaproxy, kNginx };
    using Options = AnchorOptions;
    Kind kind = Kind::kHaproxy;
    std::filesystem::path dir;
    std::filesystem::path socket;  // where it listens without `tcp` (no port to race)
    std::uint16_t port = 0;        // where it listens with `tcp`
    std::unique_ptr<ChildProcess> process;

    // Started in front of `upstream` (host:port) and ready to accept, or nullptr (why on
    // stderr).
    static std::unique_ptr<AnchorProxy> start(Kind kind,
                                              const std::string& upstream,
                                              const Options& options = {});
    ~AnchorProxy();
    [[nodiscard]] std::string name() const { return kind == Kind::kHaproxy ? "haproxy" : "nginx"; }
};

// Sends `bytes` over a fresh connection, half-closes it (the peer sees the end of what the
// client will send) and returns everything received until the peer closes or `timeout`
// passes. To 127.0.0.1:port, or to a unix socket.
std::string send_and_half_close(std::uint16_t port,
                                const std::string& bytes,
                                std::chrono::milliseconds timeout = std::chrono::seconds(5));
// The same from the loopback address `source` (127.0.0.3: a client another hop can tell apart).
std::string send_and_half_close_from(const char* source,
                                     std::uint16_t port,
                                     const std::string& bytes,
                                     std::chrono::milliseconds timeout = std::chrono::seconds(5));
std::string send_and_half_close(const std::filesystem::path& unix_socket,
                                const std::string& bytes,
                                std::chrono::milliseconds timeout = std::chrono::seconds(5));

}  // namespace support
