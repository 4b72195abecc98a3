#pragma once

#include <string>

#include <boost/asio/ip/tcp.hpp>

namespace lb {

// "10.0.0.1:80", "[2001:db8::1]:80": how logs, /status and metric labels name an address.
inline std::string endpoint_label(const boost::asio::ip::tcp::endpoint& e) {
    const auto a = e.address();
    return a.is_v6() ? "[" + a.to_string() + "]:" + std::to_string(e.port())
                     : a.to_string() + ":" + std::to_string(e.port());
}

}  // namespace lb
