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

struct AnchorProxy {
    enum class Kind { kHaproxy, kNginx };
    Kind kind = Kind::kHaproxy;
    std::filesystem::path dir;
    std::filesystem::path socket;  // where it listens (a unix socket in `dir`: no port to race)
    std::unique_ptr<ChildProcess> process;

    // Started in front of `upstream` (host:port) and ready to accept, or nullptr (why on
    // stderr). `extra` goes into HAProxy's frontend / nginx's server block.
    static std::unique_ptr<AnchorProxy> start(Kind kind,
                                              const std::string& upstream,
                                              const std::string& extra = "");
    ~AnchorProxy();
    [[nodiscard]] std::string name() const { return kind == Kind::kHaproxy ? "haproxy" : "nginx"; }
};

// Sends `bytes` over a fresh connection, half-closes it (the peer sees the end of what the
// client will send) and returns everything received until the peer closes or `timeout`
// passes. To 127.0.0.1:port, or to a unix socket.
std::string send_and_half_close(std::uint16_t port,
                                const std::string& bytes,
                                std::chrono::milliseconds timeout = std::chrono::seconds(5));
std::string send_and_half_close(const std::filesystem::path& unix_socket,
                                const std::string& bytes,
                                std::chrono::milliseconds timeout = std::chrono::seconds(5));

}  // namespace support
