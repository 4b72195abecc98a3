#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/fleet.hpp"
#include "sync/credentials.hpp"
#include "sync/report.hpp"
#include "sync/splitter.hpp"

namespace syncer {

struct RunOptions {
    std::vector<std::string> instances;  // empty: all
    std::vector<std::string> without;    // left out; the limits are re-split over the others
    bool prune = false;
};

// How the engine gets an HTTP client for an instance (tests can substitute).
using HttpClientFactory = std::function<std::unique_ptr<HttpClient>(const config::Instance&)>;
HttpClientFactory curl_client_factory();

// The admin API client of `instance`: its URL, token, timeout, retries and concurrency.
AdminClient make_client(HttpClient& http, const config::Instance& instance);

enum class Mode { kPlan, kDrift };

// Reads every selected instance in parallel and diffs it against the desired state.
// `split` holds each instance's desired state (see split_fleet); instances left out of it are
// not contacted.
std::vector<InstanceReport> plan(const config::Fleet& fleet,
                                 const FleetSplit& split,
                                 const RunOptions& options,
                                 Mode mode,
                                 const HttpClientFactory& factory = curl_client_factory());

// Plans and applies on every selected instance in parallel; one failing instance does not stop
// the others. `progress` is called for every operation done or failed (from worker threads).
using ApplyProgress =
    std::function<void(const std::string& instance, const Operation&, const ApiError*)>;
std::vector<InstanceReport> apply(const config::Fleet& fleet,
                                  const FleetSplit& split,
                                  const RunOptions& options,
                                  const ApplyProgress& progress,
                                  const HttpClientFactory& factory = curl_client_factory());

// One instance's pass, for `tandem serve`: read it, decide the credentials tandem decides
// through `decide` (called with the state just read, only when some application needs it: the
// caller knows the other instances), diff against `desired` (its share of the split) and, when
// `write`, apply. `state_read` sees the state as read (before any write), for the caller's view
// of the fleet. The report has the instance's operations, what was applied, or its error.
struct PassOptions {
    bool write = true;   // false: drift only
    bool prune = false;  // also what no CR describes (counted as drift in report mode)
    const std::atomic<bool>* stop = nullptr;  // true: no further write is sent (shutdown)
};
using Decide = std::function<CredentialDecisions(const InstanceState&)>;
using StateRead = std::function<void(const InstanceState&)>;
InstanceReport reconcile_instance(const config::Fleet& fleet,
                                  const config::Instance& instance,
                                  const config::DesiredState& desired,
                                  const PassOptions& options,
                                  const Decide& decide,
                                  const StateRead& state_read,
                                  const ApplyProgress& progress,
                                  const HttpClientFactory& factory = curl_client_factory());

// Exit codes: plan/drift 0 none, 2 changes, 1 error, 3 an instance unreachable; apply 0/1.
// One definition of converged: drift exits 0 exactly when apply (with the same `prune`) would
// write nothing — objects no CR describes count only with `prune`.
int plan_exit_code(const std::vector<InstanceReport>& reports, Mode mode, bool prune = false);
int apply_exit_code(const std::vector<InstanceReport>& reports);

// Names in `options.instances` or `options.without` that are not in the fleet.
std::vector<std::string> unknown_instances(const config::Fleet& fleet, const RunOptions& options);

}  // namespace syncer
