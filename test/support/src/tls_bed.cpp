// TLS for tandem-lb's end-to-end tests (support/tls_bed.hpp).
#include "support/tls_bed.hpp"

#include <cstdio>
#include <cstdlib>

#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <unistd.h>

namespace support {

namespace fs = std::filesystem;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using namespace std::chrono_literals;

namespace {

// A certificate's serial number in hex ("" without one); frees `cert`.
std::string serial(X509* cert) {
    if (cert == nullptr) {
        return "";
    }
    BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get_serialNumber(cert), nullptr);
    char* hex = BN_bn2hex(bn);
    std::string out = hex;
    OPENSSL_free(hex);
    BN_free(bn);
    X509_free(cert);
    return out;
}

}  // namespace

// (SSL_set_tlsext_host_name without its C cast)
void set_sni(SSL* ssl) {
    SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
             const_cast<char*>("api.test"));
}

TestPki::TestPki() {
    dir = fs::temp_directory_path() / ("tandem-lb-pki-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    const std::string d = dir.string();
    const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    const std::string cmd =
        "set -e; cd '" + d +
        "'; exec >openssl.log 2>&1\n"
        "openssl req -x509" +
        ec +
        " -keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca\n"
        "openssl req -x509" +
        ec +
        " -keyout other.key -out other-ca.pem -days 2 "
        "-subj /CN=other-ca\n"
        "openssl req" +
        ec +
        " -keyout server.key -out server.csr -subj /CN=router.test\n"
        "printf 'subjectAltName=DNS:router.test,IP:127.0.0.1\\n' >san.ext\n"
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
        "-out server.pem -days 2 -extfile san.ext\n"
        // The balancer's own certificate for clients, and its renewal (a new key).
        "printf 'subjectAltName=DNS:api.test\\n' >api.ext\n"
        // A client certificate (mutual TLS towards clusters that ask for one).
        "openssl req" +
        ec +
        " -keyout client.key -out client.csr -subj /CN=tandem-lb\n"
        "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
        "-out client.pem -days 2\n"
        "for n in api api2; do openssl req" +
        ec +
        " -keyout \\$n.key -out \\$n.csr "
        "-subj /CN=api.test; openssl x509 -req -in \\$n.csr -CA ca.pem -CAkey ca.key "
        "-CAcreateserial -out \\$n.pem -days 2 -extfile api.ext; done\n";
    ok = std::system(("bash -c \"" + cmd + "\"").c_str()) == 0;
}

TestPki::~TestPki() {
    std::error_code ignored;
    fs::remove_all(dir, ignored);
}

std::vector<std::string> TestPki::server_args() const {
    return {"--tls-cert", (dir / "server.pem").string(), "--tls-key",
            (dir / "server.key").string()};
}

std::string serial_of(const fs::path& pem) {
    FILE* f = std::fopen(pem.c_str(), "r");
    X509* cert = f != nullptr ? PEM_read_X509(f, nullptr, nullptr, nullptr) : nullptr;
    if (f != nullptr) {
        std::fclose(f);
    }
    return serial(cert);
}

bool HttpsClient::connect(std::uint16_t port,
                          const fs::path& ca,
                          const std::string& ip,
                          const std::string& before_handshake) {
    ctx.load_verify_file(ca.string());
    ctx.set_verify_mode(asio::ssl::verify_peer);
    stream = std::make_unique<asio::ssl::stream<beast::tcp_stream>>(ioc, ctx);
    set_sni(stream->native_handle());
    SSL_set1_host(stream->native_handle(), "api.test");
    beast::get_lowest_layer(*stream).expires_after(5s);
    boost::system::error_code ec;
    beast::get_lowest_layer(*stream).connect(
        asio::ip::tcp::endpoint(asio::ip::make_address(ip), port), ec);
    if (!ec && !before_handshake.empty()) {
        asio::write(beast::get_lowest_layer(*stream), asio::buffer(before_handshake), ec);
    }
    if (!ec) {
        stream->handshake(asio::ssl::stream_base::client, ec);
    }
    return !ec;
}

boost::system::error_code HttpsClient::get(const std::string& path,
                                           http::response<http::string_body>& res) {
    http::request<http::empty_body> req{http::verb::get, path, 11};
    req.set(http::field::host, "api.test");
    boost::system::error_code ec;
    beast::get_lowest_layer(*stream).expires_after(5s);
    http::write(*stream, req, ec);
    if (!ec) {
        http::read(*stream, buffer, res, ec);
    }
    return ec;
}

std::string HttpsClient::peer_serial() {
    return serial(SSL_get1_peer_certificate(stream->native_handle()));
}

std::string TlsBed::https(const fs::path& cert, const fs::path& key) {
    return "https:\n  listen: 127.0.0.1:0\n  certFile: " + cert.string() +
           "\n  keyFile: " + key.string() + "\n";
}

std::string TlsBed::clusters(bool both) const {
    std::vector<std::pair<std::string, std::string>> c{{"east", east->address()}};
    if (both) {
        c.emplace_back("west", west->address());
    }
    return cluster_yaml(c);
}

}  // namespace support
