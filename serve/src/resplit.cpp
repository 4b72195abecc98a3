// The re-split loop: poll every balancer, let Membership decide who is in the split, set the
// balancers' cluster states to match (maint before an instance's share moves to the others,
// ready only once every instance enforces the restored split), then publish the new split to
// the passes.
#include <future>

#include "controller_state.hpp"
#include "sync/curl_http_client.hpp"

namespace serve {

namespace {

// The state `tandem serve` wants a cluster in on every balancer, if any: maint while its
// instance is out or restoring, ready once restored (until every balancer shows it).
std::map<std::string, std::string> wanted_states(const Membership& m,
                                                 const std::set<std::string>& pending_ready) {
    std::map<std::string, std::string> out;
    for (const auto& name : m.instances()) {
        if (m.state(name) != SplitState::kIn) {
            out[name] = "maint";
        } else if (pending_ready.contains(name)) {
            out[name] = "ready";
        }
    }
    return out;
}

}  // namespace

void Controller::State::poll() {
    std::shared_ptr<const config::Fleet> f;
    {
        const std::lock_guard lock(mutex);
        f = fleet;
    }
    const auto timeout = f->serve.balancer_timeout;
    // Every balancer at once, each within the timeout.
    std::vector<std::unique_ptr<syncer::HttpClient>> clients;
    std::vector<std::future<std::pair<BalancerView, std::string>>> answers;
    for (const auto& ref : balancer_refs) {
        clients.push_back(std::make_unique<syncer::CurlHttpClient>(
            syncer::TlsOptions{ref.ca_bundle, ref.insecure_skip_tls_verify}));
        answers.push_back(std::async(std::launch::async, [&ref, &http = *clients.back(), timeout] {
            std::string error;
            BalancerClient c(ref, http, timeout);
            auto view = c.status(&error);
            return std::pair{std::move(view), std::move(error)};
        }));
    }
    std::vector<BalancerView> views;
    std::vector<std::string> errors;
    for (auto& a : answers) {
        auto [view, error] = a.get();
        views.push_back(std::move(view));
        errors.push_back(std::move(error));
    }
    std::vector<Transition> changes;
    std::map<std::string, std::string> wanted;
    bool enforce = f->serve.enforce;
    {
        const std::lock_guard lock(mutex);
        for (std::size_t b = 0; b < balancers.size(); ++b) {
            balancers[b].view = views[b];
            balancers[b].error = errors[b];
            balancers[b].polled_at = SystemClock::now();
            metrics.balancer(balancers[b].url, views[b].reachable);
        }
        const bool any = std::any_of(views.begin(), views.end(),
                                     [](const BalancerView& v) { return v.reachable; });
        if (!adopted && any) {
            adopted = true;
            changes = membership.adopt(views);
        }
        for (auto& t : membership.observe(views, SteadyClock::now())) {
            changes.push_back(std::move(t));
        }
        // Restoring -> in: once every instance in the split has converged since it started.
        for (const auto& name : names) {
            if (membership.state(name) != SplitState::kRestoring) {
                continue;
            }
            const auto since = membership.restoring_since(name);
            const bool all = std::all_of(instances.begin(), instances.end(), [&](auto& r) {
                return membership.state(r.name) == SplitState::kOut ||
                       r.converged_generation >= since;
            });
            if (all) {
                if (auto t = membership.restored(name)) {
                    changes.push_back(std::move(*t));
                }
            }
        }
        for (const auto& t : changes) {
            if (t.to == SplitState::kIn) {
                pending_ready.insert(t.instance);
            } else {
                pending_ready.erase(t.instance);
            }
            transitions.push_back({SystemClock::now(), t});
            while (transitions.size() > 50) {
                transitions.pop_front();
            }
            metrics.transition(t.instance, split_state_name(t.to));
            metrics.split_state(t.instance, split_state_name(t.to));
        }
        wanted = wanted_states(membership, pending_ready);
    }
    for (const auto& t : changes) {
        log(std::string("split: ") + t.instance + " " + split_state_name(t.from) + " -> " +
            split_state_name(t.to) + ": " + t.why +
            (enforce ? "" : " (mode report: no balancer or limit is changed)"));
    }
    // The balancers first: an instance's cluster is in maint before its share moves.
    std::set<std::string> ready_everywhere;
    for (const auto& [name, _] : wanted) {
        ready_everywhere.insert(name);
    }
    for (std::size_t b = 0; enforce && b < balancer_refs.size(); ++b) {
        BalancerClient c(balancer_refs[b], *clients[b], timeout);
        for (const auto& [name, state] : wanted) {
            const auto it = views[b].clusters.find(name);
            if (!views[b].reachable) {
                ready_everywhere.erase(name);
                continue;
            }
            if (it == views[b].clusters.end() || it->second.admin_state == state) {
                continue;
            }
            auto ok = c.set_state(name, state);
            metrics.balancer_write(balancer_refs[b].url, ok.has_value());
            log("balancer " + balancer_refs[b].url + ": cluster " + name + " -> " + state +
                (ok ? "" : " FAILED: " + ok.error() + " (tried again at the next poll)"));
            if (!ok) {
                ready_everywhere.erase(name);
            }
        }
    }
    {
        const std::lock_guard lock(mutex);
        for (const auto& name : ready_everywhere) {
            if (wanted[name] == "ready" && enforce) {
                pending_ready.erase(name);
            }
        }
        if (enforce) {
            without = membership.without();
            split_generation = membership.split_generation();
        }
    }
    if (!changes.empty() && enforce) {
        nudge_all();
    }
}

void Controller::State::poller() {
    std::unique_lock lock(mutex);
    while (!stopping) {
        const auto every = fleet->serve.poll;
        lock.unlock();
        poll();
        lock.lock();
        wake.wait_for(lock, every, [&] { return stopping.load(); });
    }
}

}  // namespace serve
