// tandem-lb: an L7 balancer that round-robins requests across the clusters of a tandem fleet.
#include <csignal>
#include <iostream>

#include <CLI/CLI.hpp>

#include "lb/config.hpp"
#include "lb/server.hpp"

int main(int argc, char** argv) {
    CLI::App app{"tandem-lb: round-robin HTTP balancer across independent 3scale clusters"};
    std::string file;
    bool check_only = false;
    app.add_option("-c,--config", file, "Configuration file (YAML)")->required();
    app.add_flag("--check-config", check_only, "Validate the configuration and exit");
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
        std::cout << file << ": OK (" << config->clusters.size() << " clusters, listen "
                  << config->listen.to_string() << ", admin " << config->admin.to_string()
                  << ")\n";
        return 0;
    }
    // Block SIGTERM/SIGINT before any thread starts so only the main context's signal_set
    // sees them; SIGPIPE would kill the process on a write to a closed peer.
    std::signal(SIGPIPE, SIG_IGN);
    lb::Server server(std::move(*config));
    return server.run(std::cout);
}
