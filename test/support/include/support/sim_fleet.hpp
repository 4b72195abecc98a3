#pragma once

// `tandem` against real threescale-sim processes: N simulated instances, a fleet file naming them
// and resource files, and tandem run as a process (e2e_sync, e2e_crs).

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/http.hpp"
#include "support/sim_process.hpp"

namespace support {

struct CommandRun {
    int code = -1;
    std::string out;  // stdout and stderr
};

// tandem ARGS with `env` added to the environment.
CommandRun run_tandem(const std::vector<std::string>& args,
                      const std::map<std::string, std::string>& env,
                      std::chrono::seconds timeout = std::chrono::seconds(180));
// `command` through /bin/sh -c (pipes), with `env` added.
CommandRun run_shell(const std::string& command, const std::map<std::string, std::string>& env);

std::string slurp(const std::filesystem::path& p);
// Replaces the first `from` in `file` (a gtest failure when it is not there).
void edit(const std::filesystem::path& file, const std::string& from, const std::string& to);
nlohmann::json json_of(const HttpReply& r);
// Appends `text` to `file`.
void append(const std::filesystem::path& file, const std::string& text);

// N simulated instances and a fleet file naming them (timeout 5s each), with resource files in
// products/: the example CRs, or `resources` (file name -> text).
class SimFleet {
public:
    explicit SimFleet(std::vector<std::string> names,
                      std::vector<std::string> sim_args = {"--empty"},
                      std::map<std::string, std::vector<std::string>> per_instance_args = {},
                      std::map<std::string, std::string> resources = {},
                      std::map<std::string, int> weights = {});
    ~SimFleet();
    SimFleet(const SimFleet&) = delete;
    SimFleet& operator=(const SimFleet&) = delete;

    CommandRun tandem(std::vector<std::string> args);
    SimProcess& sim(const std::string& name) { return *sims_.at(name); }
    // Stops `name` (SIGKILL): its admin API and gateway go away.
    void kill(const std::string& name);
    // A new, empty simulator for `name` on the ports it had (with the same token): an instance
    // that came back with nothing, as after a restore from an old backup.
    void restart(const std::string& name);
    [[nodiscard]] const std::filesystem::path& dir() const { return dir_; }
    [[nodiscard]] const std::map<std::string, std::string>& env() const { return env_; }
    void set_env(const std::string& name, const std::string& value) { env_[name] = value; }
    nlohmann::json counters(const std::string& name);
    void reset_counters();
    std::uint64_t writes(const std::string& name);

private:
    std::filesystem::path dir_;
    std::map<std::string, std::unique_ptr<SimProcess>> sims_;
    std::map<std::string, std::string> env_;
    std::map<std::string, std::vector<std::string>> args_;  // each simulator's arguments
};

// The echo backend and product (user_key in the query, host echo.api.test, plan "basic" with a
// global limit of 100 hits/minute) as Backend and Product CRs.
extern const char* const kEchoProduct;
// kEchoProduct with a second plan, "premium" (for plan changes).
extern const std::string kEchoTwoPlans;
// DeveloperAccount "acme" with its admin (acme-admin) and the admin's password Secret
// (ADMIN-PASSWORD-CANARY, which must never be printed).
extern const char* const kAcmeAccount;
// kAcmeAccount and an Application CR on the echo product with no Secret: its credentials are
// tandem's to decide.
extern const std::string kAcmeKeylessApp;

// One definition of converged, under a fault at every step of the first apply of `instance`
// (the fleet's only one): for each n, from the state it has now, the n-th write is performed then
// answered 502 — and the instance either stays up (the applier resolves the unknown outcome in
// the same run) or goes away (the run is interrupted there). apply exits 0 only when a drift right
// after it is clean (and does, when it can read the instance); a rerun converges to exactly the
// CRs (drift --prune clean, no duplicate rule). Retries are shortened for speed. Returns how many
// writes the first apply makes.
int fault_at_every_write(SimFleet& fleet, const std::string& instance);

// Mapping rules that appear twice on the same owner (a blindly repeated create).
int duplicated_rules(SimProcess& sim);

}  // namespace support
