// One mirror comparison: a complete read of the portal instance, then every other instance
// converged to it through the sync engine's account operations.
#include "mirror/mirror.hpp"

#include <thread>

#include "sync/applier.hpp"
#include "sync/credentials.hpp"
#include "sync/differ.hpp"
#include "sync/state_reader.hpp"

namespace mirror {

namespace {

using Clock = std::chrono::steady_clock;
using syncer::Operation;

std::chrono::milliseconds since(Clock::time_point start) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
}

syncer::AdminClient make_client(syncer::HttpClient& http, const config::Instance& instance) {
    return {http,
            instance.admin_url,
            instance.token,
            instance.timeout,
            syncer::RetryPolicy{instance.retry_attempts, instance.retry_base_delay,
                                instance.retry_max_delay},
            instance.concurrency};
}

// What the target needs: per account, the engine's operations that are the mirror's.
std::vector<Operation> operations(const config::DesiredState& desired,
                                  const config::DesiredState& crs,
                                  const syncer::InstanceState& target,
                                  bool prune) {
    const syncer::Differ differ(syncer::DiffOptions{prune, false});
    std::vector<Operation> out;
    for (const auto& [key, account] : desired.accounts) {
        for (auto& op : differ.account(key, desired, target)) {
            if (!described_by_crs(op, crs)) {
                out.push_back(std::move(op));
            }
        }
    }
    return out;
}

void compare(const config::Fleet& fleet,
             const config::Instance& instance,
             const MirroredState& mirrored,
             const MirrorOptions& options,
             const syncer::ApplyProgress& progress,
             const syncer::HttpClientFactory& factory,
             TargetResult& out) {
    out.report.name = instance.name;
    out.report.admin_url = instance.admin_url;
    auto http = factory(instance);
    syncer::AdminClient client = make_client(*http, instance);
    client.stop_writes_when(options.stop);
    syncer::StateReader reader(client, instance.concurrency);
    auto target = reader.read_developers();
    if (!target) {
        out.report.reachable = target.error().kind != syncer::ApiError::Kind::kUnreachable;
        out.report.error = target.error().to_string();
        return;
    }
    const MirroredState fitted = fit_to(mirrored, *target);
    out.skipped = fitted.skipped;
    out.report.operations = operations(fitted.desired, fleet.desired, *target, options.deletes);
    auto strays = stray_accounts(fitted.desired, *target);
    if (options.deletes) {
        out.report.operations.insert(out.report.operations.end(), strays.begin(), strays.end());
    } else {
        // what a deletion would take: reported, left in place
        for (auto& op : operations(fitted.desired, fleet.desired, *target, true)) {
            if (op.action == syncer::Action::kDelete && op.unmanaged) {
                out.strays.push_back(std::move(op));
            }
        }
        out.strays.insert(out.strays.end(), strays.begin(), strays.end());
        strays.clear();
    }
    if (!options.write || out.report.operations.empty()) {
        return;
    }
    syncer::Applier applier(client, reader, fitted.desired, std::move(*target),
                            syncer::DiffOptions{options.deletes, false}, instance.concurrency,
                            [&](const Operation& op, const syncer::ApiError* error) {
                                if (progress) {
                                    progress(instance.name, op, error);
                                }
                            });
    out.report.applied = applier.run_accounts(
        [&](const Operation& op) { return !described_by_crs(op, fleet.desired); }, strays);
}

}  // namespace

bool MirrorResult::converged() const {
    if (!complete) {
        return false;
    }
    return std::all_of(targets.begin(), targets.end(), [](const TargetResult& t) {
        if (!t.report.error.empty()) {
            return false;
        }
        if (t.report.applied) {
            return t.report.applied->failed.empty();
        }
        return t.report.operations.empty();
    });
}

std::size_t MirrorResult::failed() const {
    std::size_t n = 0;
    for (const auto& t : targets) {
        n += t.report.applied ? t.report.applied->failed.size() : 0;
    }
    return n;
}

Password random_password() {
    return [random = syncer::system_random_hex()] {
        // no randomness: a password nobody can guess is still needed; refuse to make one
        return random(32).value_or(std::string());
    };
}

MirrorResult run_mirror(const config::Fleet& fleet,
                        const MirrorOptions& options,
                        const syncer::ApplyProgress& progress,
                        const syncer::HttpClientFactory& factory,
                        const Password& password) {
    const auto start = Clock::now();
    MirrorResult result;
    result.source = fleet.mirror.source;
    const auto source = std::find_if(fleet.instances.begin(), fleet.instances.end(),
                                     [&](const auto& i) { return i.name == fleet.mirror.source; });
    if (source == fleet.instances.end()) {
        result.source_error = "mirror.source '" + fleet.mirror.source + "' is not an instance";
        return result;
    }
    syncer::InstanceState source_state;
    {
        auto http = factory(*source);
        syncer::AdminClient client = make_client(*http, *source);
        syncer::StateReader reader(client, source->concurrency);
        auto read = reader.read_developers();
        result.source_read = since(start);
        if (!read) {
            result.source_error = read.error().to_string();
            result.duration = since(start);
            return result;
        }
        source_state = std::move(*read);
    }
    result.complete = true;
    const MirroredState mirrored = mirrored_state(fleet.desired, source_state, password);
    result.skipped = mirrored.skipped;
    for (const auto& [key, a] : source_state.model.accounts) {
        if (!fleet.desired.accounts.contains(key) && !key.starts_with("#")) {
            ++result.accounts;
        }
        for (const auto& [username, u] : a.users) {
            const auto cr = fleet.desired.accounts.find(key);
            if (!key.starts_with("#") &&
                (cr == fleet.desired.accounts.end() || !cr->second.users.contains(username))) {
                ++result.users;
            }
        }
    }
    for (const auto& [key, a] : mirrored.desired.applications) {
        if (!fleet.desired.applications.contains(key)) {
            ++result.applications;
        }
    }
    std::vector<const config::Instance*> others;
    for (const auto& i : fleet.instances) {
        if (i.name != fleet.mirror.source) {
            others.push_back(&i);
        }
    }
    result.targets.resize(others.size());
    {
        std::vector<std::jthread> threads;
        for (std::size_t k = 0; k < others.size(); ++k) {
            threads.emplace_back([&, k] {
                compare(fleet, *others[k], mirrored, options, progress, factory, result.targets[k]);
            });
        }
    }
    result.duration = since(start);
    return result;
}

}  // namespace mirror
