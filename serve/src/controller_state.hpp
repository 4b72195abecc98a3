#pragma once

// What the controller's threads share: the desired state, the membership, every instance's
// last pass, the balancers' last answers; one mutex guards it all (held only to read or record,
// never across I/O).
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "balancer_client.hpp"
#include "credential_store.hpp"
#include "serve/controller.hpp"
#include "serve/membership.hpp"
#include "serve_metrics.hpp"
#include "status_server.hpp"

namespace serve {

using SteadyClock = std::chrono::steady_clock;
using SystemClock = std::chrono::system_clock;

struct PassRecord {
    SystemClock::time_point started{};
    SystemClock::time_point finished{};
    double seconds = 0;
    std::string result;  // converged, applied, drift, failed, unreachable
    std::string error;
    std::size_t found = 0;      // differences the pass found
    std::size_t applied = 0;    // writes done
    std::size_t failed = 0;     // writes failed
    std::size_t remaining = 0;  // differences left after it
    std::map<std::string, int> drift;
    std::vector<std::string> notes;
    std::uint64_t split_generation = 0;
    bool up = false;         // the instance could be read
    bool converged = false;  // what the instance enforces is the desired state, split included
};

struct InstanceRuntime {
    std::string name;
    std::string admin_url;
    std::optional<PassRecord> last;
    std::optional<SystemClock::time_point> last_success;
    std::uint64_t passes = 0;
    int failures = 0;  // in a row
    SteadyClock::time_point next_due{};
    bool nudged = false;
    bool running = false;
    std::uint64_t converged_generation = 0;  // split generation of its last converged pass
};

struct BalancerRuntime {
    std::string url;
    BalancerView view;
    std::string error;
    std::optional<SystemClock::time_point> polled_at;
};

struct TransitionRecord {
    SystemClock::time_point at;
    Transition t;
};

struct ReloadRecord {
    SystemClock::time_point at;
    bool ok = false;
    std::string why;
    std::string error;
};

// The mirror's last comparison (mirror: section), as /status shows it.
struct MirrorRecord {
    SystemClock::time_point started{};
    SystemClock::time_point finished{};
    double seconds = 0;
    std::string result;  // converged, applied, compared, failed, paused
    std::string error;
    std::size_t accounts = 0;  // on the source, mirrored
    std::size_t users = 0;
    std::size_t applications = 0;
    std::size_t differences = 0;  // found on the other instances
    std::size_t written = 0;
    std::size_t failed = 0;
    std::map<std::string, std::size_t> strays;  // per instance: left in place (deletes: false)
    std::map<std::string, std::string> unread;  // per instance that could not be read: why
    std::vector<std::string> skipped;           // "what: why" (the first 20)
};

struct MirrorRuntime {
    std::optional<MirrorRecord> last;
    std::optional<SystemClock::time_point> last_success;
    std::uint64_t comparisons = 0;
    int failures = 0;  // in a row
    SteadyClock::time_point next_due{};
    bool nudged = false;
    // The earliest nudge since the last comparison began, and the moment differences were first
    // seen and not yet written everywhere: the propagation lag runs from there.
    std::optional<SteadyClock::time_point> nudged_at;
    std::optional<SteadyClock::time_point> change_seen;
    std::uint64_t webhooks = 0;
    std::uint64_t webhooks_refused = 0;
    std::optional<SystemClock::time_point> last_webhook;
    std::string webhooks_configured;  // "" (not asked), "yes", or why not
    std::string configured_for;       // "source URL": what the webhooks were set to
};

struct Controller::State {
    State(config::Fleet fleet, ControllerOptions options);

    ControllerOptions options;
    std::shared_ptr<const config::Fleet> fleet;  // the last good desired state
    std::uint64_t fleet_generation = 1;
    SystemClock::time_point loaded_at = SystemClock::now();
    std::optional<ReloadRecord> last_reload;
    std::vector<std::string> names;  // the instances, in fleet order (fixed for the process)
    Membership membership;
    bool adopted = false;  // the balancers' maint states looked at (the first poll)
    // The split the passes use, published by the poll once the balancers are set (an instance
    // goes out only after its cluster is in maint), and its generation.
    std::vector<std::string> without;
    std::uint64_t split_generation = 1;
    std::vector<config::BalancerRef> balancer_refs;  // (as at start)
    std::set<std::string> pending_ready;             // restored: set ready on every balancer
    std::vector<InstanceRuntime> instances;
    std::vector<BalancerRuntime> balancers;
    std::deque<TransitionRecord> transitions;  // the last 50
    MirrorRuntime mirror;
    ServeMetrics metrics;
    CredentialStore credentials;
    std::unique_ptr<StatusServer> server;

    std::mutex mutex;
    std::mutex loading;  // one load at a time (the watcher's and SIGHUP's)
    std::condition_variable wake;
    std::atomic<bool> stopping{false};
    std::vector<std::thread> threads;

    // ---- passes (controller.cpp) ----
    void log(const std::string& line) const;
    PassRecord pass(std::size_t i);
    void record(std::size_t i, const PassRecord& rec);
    void worker(std::size_t i);
    void nudge_all();
    void watcher();
    void load(const std::string& why);

    // ---- re-split (resplit.cpp) ----
    // One poll of every balancer; the transitions it completes; the cluster states set.
    void poll();
    void poller();

    // ---- the mirror (mirror_loop.cpp) ----
    MirrorRecord mirror_pass();
    void record_mirror(const MirrorRecord& rec, bool wrote);
    void mirror_worker();
    // The source's webhooks pointed at this listener (mirror.webhooks.url), when asked and not
    // done yet for the current settings.
    void configure_webhooks();
    Reply webhook(const std::string& token);

    // ---- the listener (status.cpp) ----
    Reply handle(const std::string& method, const std::string& path, std::string body);
    std::string status_json();
};

}  // namespace serve
