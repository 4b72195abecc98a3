#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "sim/admin_api.hpp"
#include "sim/clock.hpp"
#include "sim/faults.hpp"
#include "sim/gateway.hpp"
#include "sim/options.hpp"
#include "sim/store.hpp"

namespace sim {

// One simulated tenant: admin API, gateway, control API, counters, faults and the state file.
// Not thread-safe: the server runs it on one io_context thread.
class Simulator {
public:
    Simulator(SimOptions options, FaultSettings faults, std::uint64_t key_seed);

    // Loads --state-file if it exists (else seeds a new tenant). Errors say what is wrong.
    std::expected<void, std::string> open_state(const std::optional<std::filesystem::path>& file);
    std::expected<void, std::string> save_state() const;

    static bool is_control(std::string_view path) { return path.starts_with("/__sim/"); }

    // Faults are decided before the (possibly delayed) request is handled.
    FaultInjector::Decision decide(bool gateway, const Request& request);
    Response handle_admin(const Request& request, const FaultInjector::Decision& decision);
    Gateway::Outcome handle_gateway(const Request& request,
                                    const FaultInjector::Decision& decision);
    Response handle_control(const Request& request);

    SimClock& clock() { return clock_; }
    Store& store() { return store_; }
    AdminApi& admin() { return admin_; }
    Gateway& gateway() { return gateway_; }
    [[nodiscard]] Json counters_json() const;
    // The webhook events the last requests emitted, for the server's sender; `webhook_counters`
    // (set by the server) shows the sender's counters under "webhooks".
    std::vector<WebhookEvent> take_webhooks() { return std::exchange(store_.webhook_outbox, {}); }
    std::function<Json()> webhook_counters;
    [[nodiscard]] const SimOptions& options() const { return options_; }

private:
    struct RouteCount {
        std::uint64_t count = 0;
        std::map<unsigned, std::uint64_t> by_status;
    };

    SimOptions options_;
    SimClock clock_;
    Store store_;
    std::mt19937_64 rng_;
    AdminApi admin_;
    Gateway gateway_;
    FaultInjector faults_;
    std::optional<std::filesystem::path> state_file_;
    std::uint64_t reads_ = 0;
    std::uint64_t writes_ = 0;
    std::uint64_t faults_failed_ = 0;
    std::uint64_t faults_ambiguous_ = 0;
    std::uint64_t faults_delayed_ = 0;
    std::map<std::string, RouteCount> routes_;
};

}  // namespace sim
