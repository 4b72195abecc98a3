#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/message.hpp>

#include "lb/block_pool.hpp"

namespace lb {

using RequestHead = boost::beast::http::request_header<Fields>;
using ResponseHead = boost::beast::http::response_header<Fields>;

// The two ends of a client connection: the socket's, or what the PROXY protocol header from an
// L4 balancer in front said.
struct Peer {
    boost::asio::ip::tcp::endpoint source;       // the client
    boost::asio::ip::tcp::endpoint destination;  // the address it connected to
};

// How a client appears in the forwarding fields and the log; computed once per connection.
struct ClientAddress {
    explicit ClientAddress(const Peer& peer);
    Peer peer;
    std::string text;  // 192.0.2.7, 2001:db8::1
    std::string node;  // RFC 7239 node: 192.0.2.7, "[2001:db8::1]"
};

// How the next hop learns where the body ends.
enum class Framing {
    kAsIs,     // Content-Length as received (or no body)
    kChunked,  // Transfer-Encoding: chunked (the proxy frames the body again)
};
// What the response says about the client connection.
enum class ConnectionToken { kNone, kClose, kKeepAlive };

// How the request head is rewritten for the cluster.
struct RequestRewrite {
    std::string_view proto = "http";  // how the client reached the balancer
    Framing framing = Framing::kAsIs;
    // With kAsIs, the request's Content-Length (Beast folds identical duplicates into one): the
    // only one sent.
    std::optional<std::uint64_t> content_length;
    bool drop_expect = false;  // 100-continue was answered here
    // The request-target to send: origin-form or "*" ("/" goes before it when it is empty or
    // starts with "?": what follows an absolute-form's authority).
    std::string_view target;
    std::string_view host;     // non-empty: replaces every Host field (an absolute-form's)
    std::string_view upgrade;  // non-empty: a WebSocket handshake asked of the next hop
    // Non-empty: the request ID field (X-Request-Id) written with `id`, replacing what came.
    std::string_view id_header;
    std::string_view id;
};

// Writes the request head for the upstream into `out` (replacing its contents): the request
// line as HTTP/1.1, every end-to-end field in order, then X-Forwarded-For and Forwarded with
// the client appended to what earlier proxies wrote, X-Forwarded-Proto set to how the client
// reached the balancer, the framing and the blank line. Hop-by-hop fields (RFC 9110 7.6.1:
// Connection and every field it names, Keep-Alive, Proxy-Connection, TE, Trailer,
// Transfer-Encoding, Upgrade) are dropped, as is Expect when `drop_expect`. Host is kept (every
// cluster serves the same wildcard domain) unless `host` replaces it. Content-Length is written
// once, by the balancer. A non-empty `upgrade` is asked of the next hop: Connection: upgrade,
// Upgrade.
void write_request_head(const RequestHead& head,
                        const ClientAddress& client,
                        const RequestRewrite& how,
                        std::string& out);

// How a response head is rewritten for the client.
struct ResponseRewrite {
    Framing framing = Framing::kAsIs;
    // With kAsIs, the response's Content-Length when it had one: the only one sent.
    std::optional<std::uint64_t> content_length;
    ConnectionToken connection = ConnectionToken::kNone;
    std::string_view upgrade;    // non-empty (a 101): Connection: upgrade and Upgrade instead
    std::string_view id_header;  // non-empty: the request ID field, replacing the cluster's
    std::string_view id;
};

// Writes the response head for the client into `out` (replacing its contents): the status line
// as HTTP/1.1 with the upstream's reason, every end-to-end field, the request ID, the framing,
// the Connection token (or the upgrade) and the blank line.
void write_response_head(const ResponseHead& head, const ResponseRewrite& how, std::string& out);

}  // namespace lb
