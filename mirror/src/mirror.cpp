// One mirror comparison: a complete read of the portal instance, then every other instance
// converged to it through the sync engine's account operations.
#include "mirror/mirror.hpp"

#include <optional>
#include <set>
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

// What the target needs: per account, the engine's operations that are the mirror's, from one
// diff with every deletion of what only the target has; those `deletes` does not allow go to
// `held` (reported, left in place).
std::vector<Operation> operations(const config::DesiredState& desired,
                                  const config::DesiredState& crs,
                                  const syncer::InstanceState& target,
                                  bool deletes,
                                  std::vector<Operation>& held) {
    const syncer::Differ differ(syncer::DiffOptions{true, false});
    std::vector<Operation> out;
    for (const auto& [key, account] : desired.accounts) {
        for (auto& op : differ.account(key, desired, target)) {
            if (described_by_crs(op, crs)) {
                continue;
            }
            const bool stray = op.action == syncer::Action::kDelete && op.unmanaged;
            if (!mirror_may(op, crs, deletes) || (stray && !deletes)) {
                held.push_back(std::move(op));
            } else {
                out.push_back(std::move(op));
            }
        }
    }
    return out;
}

// A deletion the source's absence justifies (not the delete half of a replacement or a move).
bool absence_deletion(const Operation& op) {
    if (op.action != syncer::Action::kDelete) {
        return false;
    }
    const bool copy =
        std::any_of(op.changes.begin(), op.changes.end(),
                    [](const syncer::FieldChange& c) { return c.field == "copy of"; });
    return op.unmanaged || copy || op.kind == syncer::Kind::kApplicationKey;
}

std::string identity(const Operation& op) {
    std::string key;
    for (const auto& [k, v] : op.form) {
        key += k == "key" ? v : "";
    }
    return std::string(syncer::to_string(op.kind)) + "|" + op.account + "|" + op.product + "|" +
           op.name + "|" + std::to_string(op.id) + "|" + key;
}

// The source asked directly, just before a deletion, whether the object is really gone: a
// complete read walks paginated lists, and an object deleted between two pages shifts the next
// page, so another object can be missed by a read that succeeded. Only a lookup that answers
// "not found" confirms; any other answer holds the deletion.
class SourceCheck {
public:
    SourceCheck(syncer::AdminClient& source, const syncer::InstanceState& target)
        : source_(source), target_(target) {}

    bool absent(const Operation& op) {
        using syncer::Kind;
        switch (op.kind) {
            case Kind::kAccount:
                return not_found(
                    source_.get("/admin/api/accounts/find.json", {{"username", op.account}}));
            case Kind::kUser: {
                auto account =
                    source_.get("/admin/api/accounts/find.json", {{"username", op.account}});
                if (!account) {
                    return not_found(account);
                }
                auto users = source_.list("/admin/api/accounts/" + id_of(*account) + "/users.json",
                                          "users", false);
                return users && std::none_of(users->begin(), users->end(), [&](const auto& u) {
                           return u.value("username", "") == op.name;
                       });
            }
            case Kind::kApplication:
            case Kind::kApplicationKey: {
                auto app = find_app(op.id);
                if (!app) {
                    return false;
                }
                if (not_found(*app)) {
                    return true;  // the application, and so its keys
                }
                if (!*app || op.kind == Kind::kApplication) {
                    return false;
                }
                const auto found = syncer::unwrap(**app);
                auto keys = source_.list(
                    "/admin/api/accounts/" +
                        std::to_string(found.value("account_id", syncer::Id{0})) +
                        "/applications/" + std::to_string(found.value("id", syncer::Id{0})) +
                        "/keys.json",
                    "keys", false);
                const std::string key = op.form.empty() ? "" : op.form.front().second;
                return keys && std::none_of(keys->begin(), keys->end(), [&](const auto& k) {
                           return k.value("value", "") == key;
                       });
            }
            default:
                return false;
        }
    }

private:
    static bool not_found(const syncer::ApiResult<syncer::Json>& r) {
        return !r && r.error().kind == syncer::ApiError::Kind::kNotFound;
    }
    static std::string id_of(const syncer::Json& wrapped) {
        return std::to_string(syncer::unwrap(wrapped).value("id", syncer::Id{0}));
    }
    // The source's application with the credentials the target's application `id` has.
    std::optional<syncer::ApiResult<syncer::Json>> find_app(syncer::Id id) {
        for (const auto& [key, ids] : target_.applications) {
            if (ids.id != id) {
                continue;
            }
            const auto& app = target_.model.applications.at(key);
            if (!app.user_key.empty()) {
                return source_.get("/admin/api/applications/find.json",
                                   {{"user_key", app.user_key}});
            }
            return source_.get("/admin/api/applications/find.json",
                               {{"app_id", app.application_id}});
        }
        return std::nullopt;
    }

    syncer::AdminClient& source_;
    const syncer::InstanceState& target_;
};

void compare(const config::Fleet& fleet,
             const config::Instance& source,
             const config::Instance& instance,
             const MirroredState& mirrored,
             const MirrorOptions& options,
             const syncer::ApplyProgress& progress,
             const syncer::HttpClientFactory& factory,
             TargetResult& out) {
    out.report.name = instance.name;
    out.report.admin_url = instance.admin_url;
    auto http = factory(instance);
    syncer::AdminClient client = syncer::make_client(*http, instance);
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
    out.report.operations =
        operations(fitted.desired, fleet.desired, *target, options.deletes, out.strays);
    auto strays = stray_accounts(fitted.desired, *target);
    if (options.deletes) {
        out.report.operations.insert(out.report.operations.end(), strays.begin(), strays.end());
    } else {
        out.strays.insert(out.strays.end(), strays.begin(), strays.end());  // reported, left
        strays.clear();
    }
    if (!options.write || out.report.operations.empty()) {
        return;
    }
    // every deletion confirmed on the source first; one not confirmed is held (reported)
    std::set<std::string> confirmed;
    if (std::any_of(out.report.operations.begin(), out.report.operations.end(), absence_deletion)) {
        auto source_http = factory(source);
        syncer::AdminClient source_client = syncer::make_client(*source_http, source);
        SourceCheck check(source_client, *target);
        std::erase_if(out.report.operations, [&](const Operation& op) {
            if (!absence_deletion(op)) {
                return false;
            }
            if (check.absent(op)) {
                confirmed.insert(identity(op));
                return false;
            }
            out.strays.push_back(op);
            out.strays.back().changes.push_back(
                {"held", "", "the source still has it on a direct lookup: not deleted"});
            return true;
        });
        std::erase_if(strays,
                      [&](const Operation& op) { return !confirmed.contains(identity(op)); });
    }
    syncer::Applier applier(client, reader, fitted.desired, std::move(*target),
                            syncer::DiffOptions{options.deletes, false}, instance.concurrency,
                            [&](const Operation& op, const syncer::ApiError* error) {
                                if (progress) {
                                    progress(instance.name, op, error);
                                }
                            });
    out.report.applied = applier.run_accounts(
        [&](const Operation& op) {
            return mirror_may(op, fleet.desired, options.deletes) &&
                   (!absence_deletion(op) || confirmed.contains(identity(op)));
        },
        strays);
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
        syncer::AdminClient client = syncer::make_client(*http, *source);
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
                compare(fleet, *source, *others[k], mirrored, options, progress, factory,
                        result.targets[k]);
            });
        }
    }
    result.duration = since(start);
    return result;
}

}  // namespace mirror
