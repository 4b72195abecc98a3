#include "tls.hpp"

#include <algorithm>

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace lb {

namespace ssl = boost::asio::ssl;

namespace {
// The https listener's ALPN offer in wire format (length-prefixed names), the balancer's
// preference first: one of the four lists https.alpn may be, so the callback's argument lives
// as long as the program.
const std::string* alpn_offer(const std::vector<std::string>& protocols) {
    static const std::string kH2First("\x02h2\x08http/1.1", 12);
    static const std::string kHttp11First("\x08http/1.1\x02h2", 12);
    static const std::string kH2Only("\x02h2", 3);
    static const std::string kHttp11Only("\x08http/1.1", 9);
    const bool h2 = std::find(protocols.begin(), protocols.end(), "h2") != protocols.end();
    const bool h1 = std::find(protocols.begin(), protocols.end(), "http/1.1") != protocols.end();
    if (h2 && h1) {
        return protocols.front() == "h2" ? &kH2First : &kHttp11First;
    }
    return h2 ? &kH2Only : &kHttp11Only;
}

int select_protocol(SSL*,
                    const unsigned char** out,
                    unsigned char* outlen,
                    const unsigned char* in,
                    unsigned int inlen,
                    void* arg) {
    const auto* offer = static_cast<const std::string*>(arg);
    unsigned char* selected = nullptr;
    if (SSL_select_next_proto(
            &selected, outlen, reinterpret_cast<const unsigned char*>(offer->data()),
            static_cast<unsigned int>(offer->size()), in, inlen) != OPENSSL_NPN_NEGOTIATED) {
        return SSL_TLSEXT_ERR_NOACK;  // (the client then speaks HTTP/1.1)
    }
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
}

std::string openssl_reason(const boost::system::error_code& ec) {
    const unsigned long e = ERR_peek_last_error();
    ERR_clear_error();
    if (e != 0) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        return buf;
    }
    return ec.message();
}

// The certificate chain and key a context presents (`what` prefixes the field names in errors:
// "https." or "cluster east: tls."). An error says which file is wrong.
std::expected<void, std::string> load_key_pair(ssl::context& ctx,
                                               const std::string& cert_file,
                                               const std::string& key_file,
                                               const std::string& what) {
    boost::system::error_code ec;
    ctx.use_certificate_chain_file(cert_file, ec);
    if (ec) {
        return std::unexpected(what + "certFile '" + cert_file +
                               "' is not a usable PEM certificate chain: " + openssl_reason(ec));
    }
    ctx.use_private_key_file(key_file, ssl::context::pem, ec);
    const bool mismatch =
        ec && ec.category() == boost::asio::error::get_ssl_category() &&
        ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == X509_R_KEY_VALUES_MISMATCH;
    if (mismatch || (!ec && SSL_CTX_check_private_key(ctx.native_handle()) != 1)) {
        ERR_clear_error();
        return std::unexpected(what + "keyFile '" + key_file +
                               "' does not belong to the certificate in '" + cert_file + "'");
    }
    if (ec) {
        return std::unexpected(what + "keyFile '" + key_file +
                               "' is not a usable PEM private key: " + openssl_reason(ec));
    }
    return {};
}
}  // namespace

std::expected<std::vector<TlsContextPtr>, std::string> make_tls_contexts(const LbConfig& config) {
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
        static const unsigned char kHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
        static const unsigned char kH2[] = {2, 'h', '2'};
        if (c.protocol == ClusterProtocol::kH2) {
            SSL_CTX_set_alpn_protos(ctx->native_handle(), kH2, sizeof(kH2));
        } else {
            SSL_CTX_set_alpn_protos(ctx->native_handle(), kHttp11, sizeof(kHttp11));
        }
        if (c.tls.verify) {
            ctx->set_verify_mode(ssl::verify_peer, ec);
            if (c.tls.ca_file) {
                ctx->load_verify_file(*c.tls.ca_file, ec);
                if (ec) {
                    return std::unexpected("cluster " + c.name + ": tls.caFile '" + *c.tls.ca_file +
                                           "' holds no usable PEM certificate: " + ec.message());
                }
            } else {
                ctx->set_default_verify_paths(ec);
                if (ec) {
                    return std::unexpected("cluster " + c.name +
                                           ": cannot load the system trust store: " + ec.message() +
                                           " (set tls.caFile)");
                }
            }
        } else {
            ctx->set_verify_mode(ssl::verify_none, ec);
        }
        if (c.tls.cert_file && c.tls.key_file) {
            if (auto ok = load_key_pair(*ctx, *c.tls.cert_file, *c.tls.key_file,
                                        "cluster " + c.name + ": tls.");
                !ok) {
                return std::unexpected(ok.error());
            }
        }
        out.push_back(std::move(ctx));
    }
    return out;
}

std::expected<TlsContextPtr, std::string> make_server_tls_context(const HttpsConfig& https) {
    if (!https.enabled) {
        return nullptr;
    }
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
    boost::system::error_code ec;
    ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                         ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                         ssl::context::no_tlsv1_1 | ssl::context::single_dh_use,
                     ec);
    if (auto ok = load_key_pair(*ctx, https.cert_file, https.key_file, "https."); !ok) {
        return std::unexpected(ok.error());
    }
    SSL_CTX_set_alpn_select_cb(ctx->native_handle(), select_protocol,
                               const_cast<std::string*>(alpn_offer(https.alpn)));
    return ctx;
}

std::expected<void, std::string> check_tls_files(const LbConfig& config) {
    if (auto clients = make_tls_contexts(config); !clients) {
        return std::unexpected(clients.error());
    }
    if (auto server = make_server_tls_context(config.https); !server) {
        return std::unexpected(server.error());
    }
    return {};
}

bool negotiated_h2(SSL* ssl) {
    const unsigned char* proto = nullptr;
    unsigned int len = 0;
    SSL_get0_alpn_selected(ssl, &proto, &len);
    return len == 2 && proto[0] == 'h' && proto[1] == '2';
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

std::string tls_failure(const boost::system::error_code& ec,
                        SSL* ssl,
                        const ClusterConfig& cluster) {
    const long verify = ssl != nullptr ? SSL_get_verify_result(ssl) : X509_V_OK;
    if (cluster.tls.verify && verify != X509_V_OK) {
        return std::string("certificate verify failed: ") + X509_verify_cert_error_string(verify) +
               " (name checked: " + cluster.tls_name() + ")";
    }
    return ec.message();
}

}  // namespace lb
