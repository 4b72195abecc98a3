#pragma once

#include <expected>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/system/error_code.hpp>

#include "lb/config.hpp"

namespace lb {

using TlsContextPtr = std::shared_ptr<boost::asio::ssl::context>;

// One client context per cluster (nullptr where TLS is off): TLS 1.2 or later, ALPN http/1.1
// (h2 for a cluster of protocol h2),
// peer verification against caFile or the system trust store unless verify is false. An error
// names the cluster and what failed (an unreadable or empty caFile).
std::expected<std::vector<TlsContextPtr>, std::string> make_tls_contexts(const LbConfig& config);

// The server context of the https listener (nullptr when there is none): TLS 1.2 or later, the
// certificate chain and key of `https`, ALPN as https.alpn lists (h2 and/or http/1.1). An error
// says which file is wrong (not PEM, key not matching the certificate).
std::expected<TlsContextPtr, std::string> make_server_tls_context(const HttpsConfig& https);

// Sets SNI (for a DNS name) and the name the certificate must match (OpenSSL's own check:
// a mismatch fails the handshake with "hostname mismatch") on a new connection to `cluster`.
void prepare_tls(SSL* ssl, const ClusterConfig& cluster);
// Whether h2 was chosen by ALPN in the handshake that completed on `ssl` (by a client of the
// https listener, or by an h2 cluster).
bool negotiated_h2(SSL* ssl);
template <class Stream>
void prepare_tls(boost::asio::ssl::stream<Stream>& stream, const ClusterConfig& cluster) {
    prepare_tls(stream.native_handle(), cluster);
}

// What a failed handshake means, with OpenSSL's verification result when that was the cause
// ("certificate verify failed: self-signed certificate (name checked: router.example.com)").
std::string tls_failure(const boost::system::error_code& ec,
                        SSL* ssl,
                        const ClusterConfig& cluster);

}  // namespace lb
