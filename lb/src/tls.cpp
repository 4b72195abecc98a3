#include "tls.hpp"

#include <stdexcept>

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace lb {

namespace ssl = boost::asio::ssl;

std::vector<TlsContextPtr> make_tls_contexts(const LbConfig& config) {
    std::vector<TlsContextPtr> out;
    for (const auto& c : config.clusters) {
        if (!c.tls.enabled) {
            out.emplace_back();
            continue;
        }
        auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
        boost::system::error_code ec;
        ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                             ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                             ssl::context::no_tlsv1_1,
                         ec);
        static const unsigned char kAlpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
        SSL_CTX_set_alpn_protos(ctx->native_handle(), kAlpn, sizeof(kAlpn));
        if (c.tls.verify) {
            ctx->set_verify_mode(ssl::verify_peer, ec);
            if (c.tls.ca_file) {
                ctx->load_verify_file(*c.tls.ca_file, ec);
                if (ec) {
                    throw std::runtime_error("cluster " + c.name + ": tls.caFile '" +
                                             *c.tls.ca_file +
                                             "' holds no usable PEM certificate: " + ec.message());
                }
            } else {
                ctx->set_default_verify_paths(ec);
                if (ec) {
                    throw std::runtime_error("cluster " + c.name +
                                             ": cannot load the system trust store: " +
                                             ec.message() + " (set tls.caFile)");
                }
            }
        } else {
            ctx->set_verify_mode(ssl::verify_none, ec);
        }
        out.push_back(std::move(ctx));
    }
    return out;
}

void prepare_tls(SSL* ssl, const ClusterConfig& cluster) {
    const std::string& name = cluster.tls_name();
    boost::system::error_code not_ip;
    (void)boost::asio::ip::make_address(name, not_ip);
    if (not_ip) {
        // (SSL_set_tlsext_host_name without its C cast)
        SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                 const_cast<char*>(name.c_str()));
        if (cluster.tls.verify) {
            SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            SSL_set1_host(ssl, name.c_str());
        }
    } else if (cluster.tls.verify) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str());
    }
}

std::string tls_failure(const boost::system::error_code& ec, SSL* ssl,
                        const ClusterConfig& cluster) {
    const long verify = ssl != nullptr ? SSL_get_verify_result(ssl) : X509_V_OK;
    if (cluster.tls.verify && verify != X509_V_OK) {
        return std::string("certificate verify failed: ") +
               X509_verify_cert_error_string(verify) + " (name checked: " + cluster.tls_name() +
               ")";
    }
    return ec.message();
}

}  // namespace lb
