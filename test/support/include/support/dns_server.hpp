#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace support {

// A tiny authoritative DNS server on 127.0.0.1 (UDP, port 0) for tests: answers A queries for
// the names it is given, NODATA for other types of known names, NXDOMAIN otherwise. The
// answers can change while it runs.
class FakeDnsServer {
public:
    FakeDnsServer();
    ~FakeDnsServer();
    FakeDnsServer(const FakeDnsServer&) = delete;
    FakeDnsServer& operator=(const FakeDnsServer&) = delete;

    [[nodiscard]] std::uint16_t port() const { return port_; }
    void set(const std::string& name, std::vector<std::string> ipv4, std::uint32_t ttl);
    void remove(const std::string& name);
    // A queries answered or refused for `name` so far.
    std::size_t queries(const std::string& name) const;

private:
    void serve();

    struct Record {
        std::vector<std::string> ipv4;
        std::uint32_t ttl = 0;
    };
    int fd_ = -1;
    std::uint16_t port_ = 0;
    std::atomic<bool> stop_{false};
    mutable std::mutex mutex_;
    std::map<std::string, Record> records_;
    std::map<std::string, std::size_t> queries_;
    std::thread thread_;
};

}  // namespace support
