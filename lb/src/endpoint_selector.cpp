#include "lb/endpoint_selector.hpp"

namespace lb {

EndpointSelector::EndpointSelector(std::vector<Picker::Member> members)
    : picker_(members), eligible_(members.size(), false) {}

void EndpointSelector::apply(const Snapshot& snapshot) {
    std::vector<Cluster> next(snapshot.clusters.size());
    for (std::size_t c = 0; c < snapshot.clusters.size(); ++c) {
        const auto* old = c < clusters_.size() ? &clusters_[c].endpoints : nullptr;
        next[c].next = c < clusters_.size() ? clusters_[c].next : 0;
        for (const auto& e : snapshot.clusters[c].endpoints) {
            Endpoint local{e.address, e.healthy, {}};
            for (std::size_t i = 0; old != nullptr && i < old->size(); ++i) {
                const auto& o = (*old)[i];
                if (o.address == e.address) {
                    // A check passed since the ejection: trust it again.
                    local.ejected_until =
                        e.healthy && !o.healthy ? Clock::time_point{} : o.ejected_until;
                    break;
                }
            }
            next[c].endpoints.push_back(local);
        }
    }
    clusters_ = std::move(next);
}

std::optional<EndpointSelector::Choice> EndpointSelector::choose(std::optional<std::size_t> exclude,
                                                                 Clock::time_point now) {
    // First honour passive ejections; if that leaves nothing, fall back to the active checks'
    // view alone (an ejection must never turn into a 503 by itself).
    for (const bool honour_ejection : {true, false}) {
        bool any = false;
        for (std::size_t c = 0; c < clusters_.size(); ++c) {
            bool ok = false;
            for (const auto& e : clusters_[c].endpoints) {
                if (e.healthy && (!honour_ejection || e.ejected_until <= now)) {
                    ok = true;
                    break;
                }
            }
            eligible_[c] = ok;
            any = any || ok;
        }
        if (!any) {
            continue;
        }
        const auto c = picker_.pick(eligible_, exclude);
        if (!c) {
            continue;
        }
        auto& cl = clusters_[*c];
        const std::size_t n = cl.endpoints.size();
        for (std::size_t i = 0; i < n; ++i) {
            const std::size_t k = (cl.next + i) % n;
            const auto& e = cl.endpoints[k];
            if (e.healthy && (!honour_ejection || e.ejected_until <= now)) {
                cl.next = k + 1;
                return Choice{*c, e.address};
            }
        }
    }
    return std::nullopt;
}

bool EndpointSelector::eject(const Choice& choice,
                             Clock::time_point now,
                             Clock::duration duration) {
    if (choice.cluster >= clusters_.size()) {
        return false;
    }
    for (auto& e : clusters_[choice.cluster].endpoints) {
        if (e.address == choice.address) {
            const bool fresh = e.ejected_until <= now;
            e.ejected_until = now + duration;
            return fresh;
        }
    }
    return false;
}

}  // namespace lb
