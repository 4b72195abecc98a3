// tandem-lb: an L7 balancer that round-robins requests across the clusters of a tandem fleet.
#include <csignal>
#include <iostream>

#include <CLI/CLI.hpp>

#include "lb/config.hpp"
#include "lb/healthz_client.hpp"
#include "lb/server.hpp"

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
        const auto errors = config::print(std::cerr, config.error());
        std::cerr << "tandem-lb: " << errors << " error" << (errors == 1 ? "" : "s") << " in "
                  << file << "\n";
        return 1;
    }
    if (check_only) {
        // The certificate, key and CA files' contents too (the loader checked they are readable).
        for (const auto& ok : {lb::check_tls_files(*config), lb::check_access_log(*config)}) {
            if (!ok) {
                std::cerr << file << ": error: " << ok.error() << "\ntandem-lb: 1 error in " << file
                          << "\n";
                return 1;
            }
        }
        std::cout << file << ": OK (" << config->clusters.size() << " clusters, listen "
                  << config->listen.to_string() << ", admin " << config->admin.to_string() << ")\n";
        return 0;
    }
    if (probe) {
        if (auto healthy = lb::check_health(*config); !healthy) {
            std::cerr << "tandem-lb unhealthy: " << healthy.error() << "\n";
            return 1;
        }
        return 0;
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
