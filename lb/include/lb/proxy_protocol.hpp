#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <boost/asio/ip/tcp.hpp>

namespace lb {

// The PROXY protocol (HAProxy's spec, versions 1 and 2): an L4 balancer in front tells the
// balancer who the client is, and the balancer tells a cluster (an OpenShift router with
// ROUTER_USE_PROXY_PROTOCOL). No Debian library parses it; this is the spec, bounded. Pure.

enum class ProxyVersion { kV1, kV2, kAny };

// A v1 header is at most 107 bytes; a v2 header is 16 bytes and its addresses and TLVs: up to
// this many in all here (TLVs beyond are refused, not read).
inline constexpr std::size_t kMaxProxyHeader = 4096;

struct ProxyHeader {
    std::size_t length = 0;  // the header's bytes: what the connection's data starts after
    // v1 UNKNOWN, v2 LOCAL, or an address family other than TCP over IPv4/IPv6: the
    // connection's own addresses stand (the L4 balancer's health checks send these).
    bool local = true;
    boost::asio::ip::tcp::endpoint source;
    boost::asio::ip::tcp::endpoint destination;
};

enum class ProxyParse { kNeedMore, kOk, kInvalid };
struct ProxyResult {
    ProxyParse status = ProxyParse::kNeedMore;
    ProxyHeader header;
    std::string_view error;  // with kInvalid: what was wrong
};

// The header at the start of `bytes` (what arrived so far), in a version `accept` allows.
ProxyResult parse_proxy_header(std::string_view bytes, ProxyVersion accept);

// The header announcing a connection from `source` to `destination` (v1: "PROXY TCP4 ...",
// v2: the binary form with the PROXY command); kAny is not a version to send.
std::string proxy_header(ProxyVersion version,
                         const boost::asio::ip::tcp::endpoint& source,
                         const boost::asio::ip::tcp::endpoint& destination);
// The header of a connection with no client behind it (a health check): v1 "PROXY UNKNOWN",
// v2 the LOCAL command.
std::string proxy_header_local(ProxyVersion version);

}  // namespace lb
