#pragma once

#include <string_view>

#include <boost/asio/ip/address.hpp>
#include <boost/beast/http/fields.hpp>

namespace lb {

// Removes the hop-by-hop fields (RFC 9110 7.6.1): Connection and every field it names,
// Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding and Upgrade. The proxy frames the
// message again on the next hop.
void strip_hop_by_hop(boost::beast::http::fields& fields);

// Appends the client to X-Forwarded-For and Forwarded (RFC 7239: for="[v6]"), and sets
// X-Forwarded-Proto to how the client reached the balancer. Host is left as it is (every cluster
// serves the same wildcard domain).
void add_forwarding(boost::beast::http::fields& fields,
                    const boost::asio::ip::address& client,
                    std::string_view proto);

}  // namespace lb
