// tandem-lb: an L7 balancer that round-robins requests across the clusters of a tandem fleet.
#include <csignal>
#include <iostream>

#include <CLI/CLI.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include "lb/config.hpp"
#include "lb/server.hpp"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

// GET /healthz on the admin listener, bounded by 2 s: exit 0 on 200 (docker HEALTHCHECK,
// keepalived's track script, systemd), 1 otherwise. No curl needed on the host or in the image.
int healthcheck(const lb::LbConfig& config) {
    std::string host = config.admin.host;
    if (host == "0.0.0.0") {
        host = "127.0.0.1";
    } else if (host == "::") {
        host = "::1";
    }
    boost::system::error_code ec;
    const asio::ip::tcp::endpoint ep(asio::ip::make_address(host, ec), config.admin.port);
    asio::io_context ioc;
    beast::tcp_stream stream(ioc);
    stream.expires_after(std::chrono::seconds(2));
    http::request<http::empty_body> req{http::verb::get, "/healthz", 11};
    req.set(http::field::host, host);
    req.set(http::field::connection, "close");
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    std::string failure = "no answer within 2s";
    bool healthy = false;
    stream.async_connect(ep, [&](boost::system::error_code cec) {
        if (cec) {
            failure = "cannot connect to " + config.admin.to_string() + ": " + cec.message();
            return;
        }
        http::async_write(stream, req, [&](boost::system::error_code wec, std::size_t) {
            if (wec) {
                failure = wec.message();
                return;
            }
            http::async_read(stream, buffer, res, [&](boost::system::error_code rec, std::size_t) {
                if (rec) {
                    failure = rec.message();
                    return;
                }
                healthy = res.result_int() == 200;
                failure = std::to_string(res.result_int()) + " " + res.body();
            });
        });
    });
    ioc.run();
    if (!healthy) {
        std::cerr << "tandem-lb unhealthy: " << failure << "\n";
        return 1;
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"tandem-lb: round-robin HTTP balancer across independent 3scale clusters"};
    std::string file;
    bool check_only = false;
    bool probe = false;
    std::string keepalived_node;
    app.add_option("-c,--config", file, "Configuration file (YAML)")->required();
    app.add_flag("--check-config", check_only, "Validate the configuration and exit");
    app.add_flag("--healthcheck", probe,
                 "Ask the running balancer's /healthz (admin listener); exit 0 when healthy");
    app.add_option("--render-keepalived", keepalived_node,
                   "Print keepalived.conf for this node of the keepalived: section");
    app.set_version_flag("--version", "tandem-lb 0.1.0");
    CLI11_PARSE(app, argc, argv);

    auto config = lb::load_lb_config(file);
    if (!config) {
        std::size_t errors = 0;
        for (const auto& d : config.error()) {
            std::cerr << d.to_string() << "\n";
            errors += d.severity == config::Diagnostic::Severity::kError ? 1 : 0;
        }
        std::cerr << "tandem-lb: " << errors << " error" << (errors == 1 ? "" : "s") << " in "
                  << file << "\n";
        return 1;
    }
    if (check_only) {
        // The certificate, key and CA files' contents too (the loader checked they are readable).
        if (auto ok = lb::check_tls_files(*config); !ok) {
            std::cerr << file << ": error: " << ok.error() << "\ntandem-lb: 1 error in " << file
                      << "\n";
            return 1;
        }
        std::cout << file << ": OK (" << config->clusters.size() << " clusters, listen "
                  << config->listen.to_string() << ", admin " << config->admin.to_string() << ")\n";
        return 0;
    }
    if (probe) {
        return healthcheck(*config);
    }
    if (!keepalived_node.empty()) {
        auto text = lb::render_keepalived(*config, keepalived_node);
        if (!text) {
            std::cerr << "tandem-lb: " << text.error() << "\n";
            return 1;
        }
        std::cout << *text;
        return 0;
    }
    // SIGPIPE would kill the process on a write to a closed peer; SIGTERM/SIGINT are handled by
    // the main context's signal_set.
    std::signal(SIGPIPE, SIG_IGN);
    lb::Server server(std::move(*config), file);
    return server.run(std::cout);
}
