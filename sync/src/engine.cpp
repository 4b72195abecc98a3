#include "sync/engine.hpp"

#include <algorithm>
#include <barrier>
#include <optional>
#include <thread>

#include "sync/credentials.hpp"
#include "sync/curl_http_client.hpp"
#include "sync/differ.hpp"
#include "sync/state_reader.hpp"

namespace syncer {

namespace {

bool selected(const config::Instance& instance, const RunOptions& options) {
    return options.instances.empty() ||
           std::find(options.instances.begin(), options.instances.end(), instance.name) !=
               options.instances.end();
}

ReadExtras extras_of(const config::DesiredState& desired) {
    return {.accounts = !desired.accounts.empty() || !desired.applications.empty(),
            .active_docs = !desired.active_docs.empty(),
            .custom_policies = !desired.custom_policies.empty()};
}

// The undecided applications, as notes: what this run leaves alone and why.
void note_undecided(const config::DesiredState& desired,
                    const CredentialDecisions& decisions,
                    InstanceReport& report) {
    for (const auto& [key, why] : decisions.undecided) {
        const auto& app = desired.applications.at(key);
        report.notes.push_back("application " + app.account + ": " + app.product + " " + app.name +
                               " is left alone this run: " + why);
    }
}

void set_error(InstanceReport& report, const ApiError& error) {
    report.reachable = error.kind != ApiError::Kind::kUnreachable;
    report.error = error.to_string();
}

// For every selected instance, on its own thread: connect, read its whole state and hand it to
// fn (an instance that cannot be read gets its error in the report). Results in fleet order.
using InstanceFn = std::function<void(const config::Instance&,
                                      const config::DesiredState&,
                                      InstanceReport&,
                                      AdminClient&,
                                      StateReader&,
                                      InstanceState&&)>;

std::vector<InstanceReport> for_each_instance(const config::Fleet& fleet,
                                              const FleetSplit& split,
                                              const RunOptions& options,
                                              const HttpClientFactory& factory,
                                              const InstanceFn& fn) {
    std::vector<const config::Instance*> chosen;
    std::vector<const config::DesiredState*> desired;
    for (const auto& i : fleet.instances) {
        const auto k = std::find(split.instances.begin(), split.instances.end(), i.name);
        if (selected(i, options) && k != split.instances.end()) {
            chosen.push_back(&i);
            desired.push_back(
                &split.desired[static_cast<std::size_t>(k - split.instances.begin())]);
        }
    }
    std::vector<InstanceReport> reports(chosen.size());
    // Applications whose credentials tandem decides wait until every instance is read (one of
    // them may hold the credentials); the others go their own pace.
    const bool decide = needs_decisions(fleet.desired);
    std::vector<std::optional<InstanceState>> states(chosen.size());
    CredentialDecisions decisions;
    std::barrier read_all(static_cast<std::ptrdiff_t>(chosen.size()), [&]() noexcept {
        std::vector<InstanceView> views;
        for (std::size_t k = 0; k < chosen.size(); ++k) {
            views.push_back({chosen[k]->name, states[k] ? &*states[k] : nullptr});
        }
        decisions = decide_credentials(fleet.desired, views, system_random_hex());
    });
    {
        std::vector<std::jthread> threads;
        for (std::size_t k = 0; k < chosen.size(); ++k) {
            reports[k].name = chosen[k]->name;
            reports[k].admin_url = chosen[k]->admin_url;
            threads.emplace_back([&, k] {
                const config::Instance& instance = *chosen[k];
                auto http = factory(instance);
                AdminClient client = make_client(*http, instance);
                StateReader reader(client, instance.concurrency, extras_of(fleet.desired));
                auto state = reader.read();
                if (!state) {
                    set_error(reports[k], state.error());
                }
                if (!decide) {
                    if (state) {
                        fn(instance, *desired[k], reports[k], client, reader, std::move(*state));
                    }
                    return;
                }
                if (state) {
                    states[k] = std::move(*state);
                }
                read_all.arrive_and_wait();
                if (!states[k]) {
                    return;
                }
                config::DesiredState mine = *desired[k];
                apply_decisions(mine, decisions);
                note_undecided(fleet.desired, decisions, reports[k]);
                fn(instance, mine, reports[k], client, reader, std::move(*states[k]));
            });
        }
    }
    return reports;
}

}  // namespace

AdminClient make_client(HttpClient& http, const config::Instance& instance) {
    return {
        http,
        instance.admin_url,
        instance.token,
        instance.timeout,
        RetryPolicy{instance.retry_attempts, instance.retry_base_delay, instance.retry_max_delay},
        instance.concurrency};
}

HttpClientFactory curl_client_factory() {
    return [](const config::Instance& instance) -> std::unique_ptr<HttpClient> {
        return std::make_unique<CurlHttpClient>(
            TlsOptions{instance.ca_bundle, instance.insecure_skip_tls_verify});
    };
}

std::vector<std::string> unknown_instances(const config::Fleet& fleet, const RunOptions& options) {
    std::vector<std::string> out;
    std::vector<std::string> names = options.instances;
    names.insert(names.end(), options.without.begin(), options.without.end());
    for (const auto& name : names) {
        if (std::none_of(fleet.instances.begin(), fleet.instances.end(),
                         [&](const config::Instance& i) { return i.name == name; })) {
            out.push_back(name);
        }
    }
    return out;
}

std::vector<InstanceReport> plan(const config::Fleet& fleet,
                                 const FleetSplit& split,
                                 const RunOptions& options,
                                 Mode mode,
                                 const HttpClientFactory& factory) {
    return for_each_instance(
        fleet, split, options, factory,
        [&](const config::Instance&, const config::DesiredState& desired, InstanceReport& report,
            AdminClient&, StateReader&, InstanceState&& state) {
            // drift lists everything that differs, unmanaged included
            const Differ differ(
                DiffOptions{options.prune || mode == Mode::kDrift, fleet.mirror.enabled});
            report.operations = differ.diff(desired, state);
        });
}

std::vector<InstanceReport> apply(const config::Fleet& fleet,
                                  const FleetSplit& split,
                                  const RunOptions& options,
                                  const ApplyProgress& progress,
                                  const HttpClientFactory& factory) {
    return for_each_instance(
        fleet, split, options, factory,
        [&](const config::Instance& instance, const config::DesiredState& desired,
            InstanceReport& report, AdminClient& client, StateReader& reader,
            InstanceState&& state) {
            const DiffOptions diff_options{options.prune, fleet.mirror.enabled};
            report.operations = Differ(diff_options).diff(desired, state);
            if (report.operations.empty()) {
                return;  // converged already: not a single write
            }
            Applier applier(client, reader, desired, std::move(state), diff_options,
                            instance.concurrency, [&](const Operation& op, const ApiError* error) {
                                if (progress) {
                                    progress(instance.name, op, error);
                                }
                            });
            report.applied = applier.run();
        });
}

InstanceReport reconcile_instance(const config::Fleet& fleet,
                                  const config::Instance& instance,
                                  const config::DesiredState& desired,
                                  const PassOptions& options,
                                  const Decide& decide,
                                  const StateRead& state_read,
                                  const ApplyProgress& progress,
                                  const HttpClientFactory& factory) {
    InstanceReport report;
    report.name = instance.name;
    report.admin_url = instance.admin_url;
    auto http = factory(instance);
    AdminClient client = make_client(*http, instance);
    client.stop_writes_when(options.stop);
    StateReader reader(client, instance.concurrency, extras_of(fleet.desired));
    auto state = reader.read();
    if (!state) {
        set_error(report, state.error());
        return report;
    }
    if (state_read) {
        state_read(*state);
    }
    config::DesiredState mine = desired;
    if (needs_decisions(fleet.desired) && decide) {
        const auto decisions = decide(*state);
        apply_decisions(mine, decisions);
        note_undecided(fleet.desired, decisions, report);
    }
    const DiffOptions diff_options{options.prune || !options.write, fleet.mirror.enabled};
    report.operations = Differ(diff_options).diff(mine, *state);
    if (!options.write || report.operations.empty()) {
        return report;
    }
    Applier applier(client, reader, mine, std::move(*state),
                    DiffOptions{options.prune, fleet.mirror.enabled}, instance.concurrency,
                    [&](const Operation& op, const ApiError* error) {
                        if (progress) {
                            progress(instance.name, op, error);
                        }
                    });
    report.applied = applier.run();
    return report;
}

int plan_exit_code(const std::vector<InstanceReport>& reports, Mode mode, bool prune) {
    bool unreachable = false;
    bool changes = false;
    for (const auto& r : reports) {
        if (!r.error.empty()) {
            if (r.reachable) {
                return 1;
            }
            unreachable = true;
        }
        if (mode == Mode::kDrift) {
            for (const auto& e : drift_entries({r})) {
                changes = changes || prune || e.kind != "unmanaged";
            }
        } else {
            changes = changes || !r.operations.empty();
        }
    }
    return unreachable ? 3 : changes ? 2 : 0;
}

int apply_exit_code(const std::vector<InstanceReport>& reports) {
    for (const auto& r : reports) {
        if (!r.error.empty() || (r.applied && !r.applied->converged()) || !r.notes.empty()) {
            return 1;  // a note: something (an application) was left alone
        }
    }
    return 0;
}

}  // namespace syncer
