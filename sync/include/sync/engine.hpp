#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/fleet.hpp"
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

// Exit codes: plan/drift 0 none, 2 changes, 1 error, 3 an instance unreachable; apply 0/1.
// One definition of converged: drift exits 0 exactly when apply (with the same `prune`) would
// write nothing — objects no CR describes count only with `prune`.
int plan_exit_code(const std::vector<InstanceReport>& reports, Mode mode, bool prune = false);
int apply_exit_code(const std::vector<InstanceReport>& reports);

// Names in `options.instances` or `options.without` that are not in the fleet.
std::vector<std::string> unknown_instances(const config::Fleet& fleet, const RunOptions& options);

}  // namespace syncer
