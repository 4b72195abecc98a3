#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace support {

struct HttpReply {
    unsigned status = 0;  // 0: no answer (connect error, timeout, closed)
    std::string body;
    std::map<std::string, std::string> headers;  // lower-case names
    std::string error;
};

// One HTTP/1.1 request over a fresh loopback connection, bounded by `timeout`.
HttpReply http_request(std::uint16_t port,
                       const std::string& method,
                       const std::string& target,
                       const std::string& body = "",
                       const std::vector<std::pair<std::string, std::string>>& headers = {},
                       std::chrono::milliseconds timeout = std::chrono::seconds(10));

// The same to `ip` (another loopback address, 127.0.0.2...).
HttpReply http_request_at(const std::string& ip,
                          std::uint16_t port,
                          const std::string& method,
                          const std::string& target,
                          const std::string& body = "",
                          const std::vector<std::pair<std::string, std::string>>& headers = {},
                          std::chrono::milliseconds timeout = std::chrono::seconds(10));

// Sends raw bytes and returns whatever comes back until the peer closes or the deadline passes.
std::string raw_exchange(std::uint16_t port,
                         const std::string& bytes,
                         std::chrono::milliseconds timeout = std::chrono::seconds(10));

std::string basic_auth(const std::string& user, const std::string& password);

// The sum of the series of a Prometheus text exposition whose line starts with `prefix`.
double metric_sum(const std::string& exposition, const std::string& prefix);

}  // namespace support
