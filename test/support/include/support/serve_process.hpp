#pragma once

// `tandem serve -f FLEET` as a process (e2e_serve, e2e_mirror): ready when it prints its
// listener; /status, /metrics and a clean stop.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "support/child_process.hpp"
#include "support/sim_fleet.hpp"

namespace support {

struct Serve {
    std::unique_ptr<ChildProcess> process;
    std::uint16_t port = 0;

    // `merge_stderr`: its log is read with its output (read_all after stop()); keep it short.
    static std::unique_ptr<Serve> start(SimFleet& fleet,
                                        const std::string& file = "fleet.yaml",
                                        bool merge_stderr = false);
    [[nodiscard]] nlohmann::json status() const;
    // The instance `name` in /status (null when absent).
    [[nodiscard]] nlohmann::json instance(const std::string& name) const;
    // The sum of the /metrics series starting with `prefix`.
    [[nodiscard]] double metric(const std::string& prefix) const;
    // Passes over `name` finished so far.
    [[nodiscard]] int passes(const std::string& name) const;
    // SIGTERM and the exit code.
    std::optional<int> stop();
};

}  // namespace support
