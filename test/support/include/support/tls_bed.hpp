#pragma once

// TLS for tandem-lb's end-to-end tests: a throwaway PKI made with the openssl command, an HTTPS
// client of the balancer's https listener, and the bed the https listener's tests share.

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include "support/balancer.hpp"

namespace support {

// A CA, a second CA that signed nothing we serve, a certificate for router.test and 127.0.0.1
// signed by the first, a client certificate, and two certificates for api.test (the balancer's
// own, and its renewal with a new key).
struct TestPki {
    std::filesystem::path dir;
    bool ok = false;
    TestPki();
    ~TestPki();
    TestPki(const TestPki&) = delete;
    TestPki& operator=(const TestPki&) = delete;
    // fake-upstream's flags to serve router.test's certificate.
    [[nodiscard]] std::vector<std::string> server_args() const;
};

// Asks for api.test by SNI (the name the balancer's test certificate is for).
void set_sni(SSL* ssl);

// A certificate's serial number in hex ("" without one).
std::string serial_of(const std::filesystem::path& pem);

// A TLS client of the balancer's https listener: verifies its certificate against the test CA
// for api.test (SNI api.test), keeps the connection alive.
struct HttpsClient {
    boost::asio::io_context ioc;
    boost::asio::ssl::context ctx{boost::asio::ssl::context::tls_client};
    std::unique_ptr<boost::asio::ssl::stream<boost::beast::tcp_stream>> stream;
    boost::beast::flat_buffer buffer;

    // `before_handshake`: bytes sent first (a PROXY protocol header).
    bool connect(std::uint16_t port,
                 const std::filesystem::path& ca,
                 const std::string& ip = "127.0.0.1",
                 const std::string& before_handshake = "");
    // GET `path`; the error when the connection failed (end_of_stream: closed by the balancer).
    boost::system::error_code get(
        const std::string& path,
        boost::beast::http::response<boost::beast::http::string_body>& res);
    // The serial number of the certificate the balancer presented.
    std::string peer_serial();
};

// The https listener's tests: a test PKI and two upstreams, east and west.
struct TlsBed {
    TestPki pki;
    std::unique_ptr<Upstream> east = Upstream::start("east");
    std::unique_ptr<Upstream> west = Upstream::start("west");
    [[nodiscard]] bool ready() const { return pki.ok && east && west; }
    // An https section serving `cert` and `key`.
    static std::string https(const std::filesystem::path& cert, const std::filesystem::path& key);
    // east, and west too when `both`.
    [[nodiscard]] std::string clusters(bool both) const;
};

}  // namespace support
