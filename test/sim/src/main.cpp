// threescale-sim: one simulated 3scale tenant (admin API + gateway) for tandem's demo and tests.
#include <cstdlib>
#include <fstream>
#include <iostream>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "sim/server.hpp"

namespace {

std::string read_token_file(const std::string& path) {
    std::ifstream in(path);
    std::string token;
    std::getline(in, token);
    while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) {
        token.pop_back();
    }
    return token;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"threescale-sim: a simulated 3scale tenant (Account Management API + gateway)"};
    std::string bind = "127.0.0.1";
    unsigned admin_port = 0;
    unsigned gateway_port = 0;
    std::string token_flag;
    std::string token_file;
    std::string state_file;
    sim::SimOptions options;
    sim::FaultSettings faults;
    sim::ServerLimits limits;
    std::int64_t purge_delay = options.purge_delay.count();
    std::int64_t clock_start = 0;
    bool freeze_clock = false;
    bool empty = false;
    bool verbose = false;
    std::uint64_t key_seed = 0;

    app.add_option("--admin-port", admin_port, "Admin API port (0 = any free port)")
        ->check(CLI::Range(0, 65535));
    app.add_option("--gateway-port", gateway_port, "Gateway port (0 = any free port)")
        ->check(CLI::Range(0, 65535));
    app.add_option("--bind", bind, "Address to listen on")->capture_default_str();
    app.add_option("--token", token_flag,
                   "Admin access token (prefer TANDEM_SIM_TOKEN or --token-file: argv is visible "
                   "to other users)");
    app.add_option("--token-file", token_file, "File whose first line is the admin access token")
        ->check(CLI::ExistingFile);
    app.add_option("--name", options.name, "Instance name (gateway answers carry it)")
        ->capture_default_str();
    app.add_option("--wildcard-domain", options.wildcard_domain,
                   "Domain of the generated (hosted) gateway endpoints")
        ->capture_default_str();
    app.add_option("--purge-delay", purge_delay,
                   "Seconds a deleted product/backend/account keeps its name taken")
        ->check(CLI::Range(0, 86400 * 365))
        ->capture_default_str();
    app.add_flag("--empty", empty, "Start with no products or accounts (no default API product)");
    app.add_option("--state-file", state_file, "Persist the state to this file and reload it");
    app.add_option("--key-seed", key_seed, "Seed for generated keys and tokens (0 = random)");
    app.add_option("--clock-start", clock_start, "Start the simulated clock at this Unix time");
    app.add_flag("--freeze-clock", freeze_clock, "The clock only moves through /__sim/clock");
    app.add_option("--max-body", limits.max_body_bytes, "Largest request body in bytes")
        ->capture_default_str();
    app.add_option("--fault-seed", faults.seed, "Seed of the fault injector")
        ->capture_default_str();
    app.add_option("--fault-latency-ms", faults.admin.latency_ms, "Added latency, admin API")
        ->check(CLI::Range(0, 600000));
    app.add_option("--fault-error-rate", faults.admin.error_rate,
                   "Fraction of admin requests answered 5xx before doing anything")
        ->check(CLI::Range(0.0, 1.0));
    app.add_option("--fault-ambiguous-rate", faults.admin.ambiguous_rate,
                   "Fraction of admin writes performed and then answered 502")
        ->check(CLI::Range(0.0, 1.0));
    app.add_option("--fault-error-status", faults.admin.error_status, "Status of injected errors")
        ->check(CLI::Range(500, 599));
    app.add_option("--gateway-latency-ms", faults.gateway.latency_ms, "Added latency, gateway")
        ->check(CLI::Range(0, 600000));
    app.add_option("--gateway-error-rate", faults.gateway.error_rate,
                   "Fraction of gateway requests answered 5xx")
        ->check(CLI::Range(0.0, 1.0));
    std::string upstream;
    app.add_option("--upstream", upstream,
                   "Forward authorized gateway requests to this IP:PORT and return its answer");
    app.add_flag("--verbose", verbose, "Log every request (method, path, status) to stderr");
    CLI11_PARSE(app, argc, argv);

    std::string token = token_flag;
    if (token.empty() && !token_file.empty()) {
        token = read_token_file(token_file);
    }
    if (token.empty()) {
        if (const char* env = std::getenv("TANDEM_SIM_TOKEN")) {
            token = env;
        }
    }
    if (token.empty()) {
        std::cerr << "threescale-sim: no admin token: set TANDEM_SIM_TOKEN, or pass --token-file "
                     "FILE (or --token)\n";
        return 2;
    }
    options.token = token;
    if (const char* ro = std::getenv("TANDEM_SIM_READONLY_TOKEN")) {
        options.read_only_token = ro;
    }
    options.purge_delay = std::chrono::seconds(purge_delay);
    options.seed_default_objects = !empty;
    if (key_seed == 0) {
        key_seed = std::random_device{}();
    }

    try {
        sim::Simulator simulator(options, faults, key_seed);
        if (clock_start != 0) {
            simulator.clock().set(sim::Seconds(std::chrono::seconds(clock_start)));
        }
        if (freeze_clock) {
            simulator.clock().freeze(true);
        }
        std::optional<std::filesystem::path> state;
        if (!state_file.empty()) {
            state = state_file;
        }
        if (auto opened = simulator.open_state(state); !opened) {
            std::cerr << "threescale-sim: state file: " << opened.error() << "\n";
            return 2;
        }

        if (!upstream.empty()) {
            const auto colon = upstream.rfind(':');
            boost::system::error_code ec;
            const auto addr = boost::asio::ip::make_address(
                colon == std::string::npos ? "" : upstream.substr(0, colon), ec);
            int port = 0;
            try {
                port = colon == std::string::npos ? 0 : std::stoi(upstream.substr(colon + 1));
            } catch (const std::exception&) {
                port = 0;
            }
            if (ec || port < 1 || port > 65535) {
                std::cerr << "threescale-sim: --upstream must be IP:PORT, e.g. 127.0.0.1:8080\n";
                return 2;
            }
            limits.upstream =
                boost::asio::ip::tcp::endpoint(addr, static_cast<std::uint16_t>(port));
        }
        boost::asio::io_context ioc{1};
        sim::Server server(ioc, simulator, limits);
        const auto address = boost::asio::ip::make_address(bind);
        server.listen({address, static_cast<std::uint16_t>(admin_port)},
                      {address, static_cast<std::uint16_t>(gateway_port)});
        if (verbose) {
            server.on_request = [&](const sim::Request& req, const sim::Response& res, bool gw) {
                // The path only: the query string may carry access_token or user_key.
                std::cerr << (gw ? "gateway " : "admin ") << req.method << ' ' << req.path() << ' '
                          << res.status << '\n';
            };
        }
        server.start();
        const auto show = [](const boost::asio::ip::tcp::endpoint& ep) {
            const auto addr = ep.address();
            return "http://" + (addr.is_v6() ? "[" + addr.to_string() + "]" : addr.to_string()) +
                   ":" + std::to_string(ep.port());
        };
        std::cout << "threescale-sim name=" << options.name
                  << " admin=" << show(server.admin_endpoint())
                  << " gateway=" << show(server.gateway_endpoint()) << std::endl;

        boost::asio::signal_set signals(ioc, SIGINT, SIGTERM);
        signals.async_wait([&](const boost::system::error_code&, int) {
            server.close();
            if (auto saved = simulator.save_state(); !saved) {
                std::cerr << "threescale-sim: " << saved.error() << "\n";
            }
            ioc.stop();
        });
        ioc.run();
    } catch (const std::exception& e) {
        std::cerr << "threescale-sim: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
