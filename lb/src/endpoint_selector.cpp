#include "lb/endpoint_selector.hpp"

#include <algorithm>

namespace lb {

EndpointSelector::EndpointSelector(std::vector<Picker::Member> members,
                                   const std::vector<RouteConfig>& routes)
    : eligible_(members.size(), false) {
    const auto add = [&](RoutePolicy policy, std::vector<std::size_t> clusters) {
        std::vector<Picker::Member> subset;
        for (const auto c : clusters) {
            subset.push_back(c < members.size() ? members[c] : Picker::Member{});
        }
        const auto n = clusters.size();
        routes_.push_back(
            {policy, std::move(clusters), Picker(std::move(subset)), std::vector<bool>(n, false)});
    };
    if (routes.empty()) {
        std::vector<std::size_t> all(members.size());
        for (std::size_t c = 0; c < all.size(); ++c) {
            all[c] = c;
        }
        add(RoutePolicy::kRoundRobin, std::move(all));
    }
    for (const auto& r : routes) {
        add(r.policy, r.clusters);
    }
}

std::optional<std::size_t> EndpointSelector::pick_cluster(Route& route,
                                                          std::optional<std::size_t> exclude) {
    const auto eligible = [&](std::size_t c) { return c < eligible_.size() && eligible_[c]; };
    if (route.policy == RoutePolicy::kPrimary) {
        // the first eligible cluster in order; the excluded one only when it is the last hope
        for (const bool allow_excluded : {false, true}) {
            for (const auto c : route.clusters) {
                if (eligible(c) && (allow_excluded || exclude != c)) {
                    return c;
                }
            }
        }
        return std::nullopt;
    }
    std::optional<std::size_t> excluded_member;
    for (std::size_t m = 0; m < route.clusters.size(); ++m) {
        route.eligible[m] = eligible(route.clusters[m]);
        if (exclude == route.clusters[m]) {
            excluded_member = m;
        }
    }
    const auto m = route.picker.pick(route.eligible, excluded_member);
    return m ? std::optional<std::size_t>(route.clusters[*m]) : std::nullopt;
}

void EndpointSelector::apply(const Snapshot& snapshot) {
    std::vector<Cluster> next(snapshot.clusters.size());
    for (std::size_t c = 0; c < snapshot.clusters.size(); ++c) {
        const auto* old = c < clusters_.size() ? &clusters_[c].endpoints : nullptr;
        next[c].next = c < clusters_.size() ? clusters_[c].next : 0;
        next[c].in_service = snapshot.clusters[c].admin == AdminState::kReady;
        for (const auto& e : snapshot.clusters[c].endpoints) {
            Endpoint local{e.address, e.healthy, {}};
            for (std::size_t i = 0; old != nullptr && i < old->size(); ++i) {
                const auto& o = (*old)[i];
                if (o.address == e.address) {
                    // A check passed since the ejection: trust it again (its record of
                    // outlier ejections stays: it is forgiven by answering well).
                    local.ejected_until =
                        e.healthy && !o.healthy ? Clock::time_point{} : o.ejected_until;
                    local.errors = o.errors;
                    local.ejections = o.ejections;
                    local.forgive_from = o.forgive_from;
                    break;
                }
            }
            next[c].endpoints.push_back(local);
        }
    }
    clusters_ = std::move(next);
}

std::optional<EndpointSelector::Choice> EndpointSelector::choose(std::size_t route,
                                                                 std::optional<std::size_t> exclude,
                                                                 Clock::time_point now) {
    if (route >= routes_.size()) {
        return std::nullopt;
    }
    // First honour passive ejections; if that leaves nothing, fall back to the active checks'
    // view alone (an ejection must never turn into a 503 by itself).
    for (const bool honour_ejection : {true, false}) {
        bool any = false;
        for (std::size_t c = 0; c < clusters_.size(); ++c) {
            bool ok = false;
            for (const auto& e : clusters_[c].endpoints) {
                if (!clusters_[c].in_service) {
                    break;  // drain or maint: no new requests, whatever its health
                }
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
        const auto c = pick_cluster(routes_[route], exclude);
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

EndpointSelector::Endpoint* EndpointSelector::find(const Choice& choice) {
    if (choice.cluster >= clusters_.size()) {
        return nullptr;
    }
    for (auto& e : clusters_[choice.cluster].endpoints) {
        if (e.address == choice.address) {
            return &e;
        }
    }
    return nullptr;
}

bool EndpointSelector::eject(const Choice& choice,
                             Clock::time_point now,
                             Clock::duration duration) {
    Endpoint* e = find(choice);
    if (e == nullptr) {
        return false;
    }
    const bool fresh = e->ejected_until <= now;
    e->ejected_until = std::max(e->ejected_until, now + duration);
    return fresh;
}

bool EndpointSelector::report(const Choice& choice,
                              bool gateway_error,
                              Clock::time_point now,
                              const OutlierConfig& config) {
    Endpoint* e = config.consecutive_errors == 0 ? nullptr : find(choice);
    if (e == nullptr) {
        return false;
    }
    if (!gateway_error) {
        e->errors = 0;
        if (e->ejections > 0 && now >= e->forgive_from + config.base_ejection) {
            --e->ejections;
            e->forgive_from = now;
        }
        return false;
    }
    if (++e->errors < config.consecutive_errors || e->ejected_until > now) {
        return false;
    }
    const auto& endpoints = clusters_[choice.cluster].endpoints;
    std::size_t ejected = 0;
    for (const auto& other : endpoints) {
        ejected += other.ejected_until > now ? 1U : 0U;
    }
    const std::size_t allowed =
        std::max<std::size_t>(1, endpoints.size() * config.max_ejection_percent / 100);
    if (ejected >= allowed) {
        return false;  // (its errors keep counting: ejected once another comes back)
    }
    e->errors = 0;
    ++e->ejections;
    const auto span =
        std::min<Clock::duration>(config.base_ejection * e->ejections, config.max_ejection);
    e->ejected_until = now + span;
    e->forgive_from = e->ejected_until;
    return true;
}

}  // namespace lb
