#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>

#include "lb/config.hpp"

namespace lb {

struct Resolution {
    bool ok = false;
    std::string error;                                // when !ok: c-ares' reason
    std::vector<boost::asio::ip::address> addresses;  // every A and AAAA record
    std::chrono::seconds ttl{0};                      // the smallest record TTL
};

// Asynchronous DNS resolution with c-ares on one io_context (the main context): Asio watches
// c-ares' sockets (and releases, never closes, them); c-ares' timeouts run on an Asio timer.
// Not thread-safe: use it from the context's thread only.
class Resolver {
public:
    using Callback = std::function<void(Resolution)>;

    Resolver(boost::asio::io_context& context, const DnsConfig& config);
    ~Resolver();
    Resolver(const Resolver&) = delete;
    Resolver& operator=(const Resolver&) = delete;

    // Resolves `host` (A and AAAA). The callback runs on the context, exactly once, unless the
    // resolver is destroyed first.
    void resolve(const std::string& host, Callback callback);

    // Why the channel could not be set up (empty when it works); resolve() then fails at once.
    [[nodiscard]] const std::string& init_error() const;

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

}  // namespace lb
