// The re-split rule: which instances are in the split, from what a quorum of balancers saw.
#include "serve/membership.hpp"

#include <algorithm>

namespace serve {

const char* split_state_name(SplitState s) {
    switch (s) {
        case SplitState::kIn:
            return "in";
        case SplitState::kOut:
            return "out";
        case SplitState::kRestoring:
            return "restoring";
    }
    return "in";
}

namespace {

std::string seconds_text(std::chrono::milliseconds d) {
    const auto ms = d.count();
    return ms % 1000 == 0 ? std::to_string(ms / 1000) + "s" : std::to_string(ms) + "ms";
}

}  // namespace

Membership::Membership(std::vector<std::string> instances, Timing timing)
    : names_(std::move(instances)), timing_(timing) {
    for (const auto& n : names_) {
        members_[n] = Member{};
    }
}

Membership::Vote Membership::vote(const std::vector<BalancerView>& views,
                                  const std::string& name,
                                  bool maint_counts) {
    std::size_t voters = 0;
    std::size_t down = 0;
    for (const auto& v : views) {
        const auto it = v.clusters.find(name);
        if (!v.reachable || it == v.clusters.end()) {
            continue;
        }
        ++voters;
        const bool is_down = maint_counts ? it->second.admin_state == "maint" : !it->second.healthy;
        down += is_down ? 1 : 0;
    }
    if (voters == 0) {
        return Vote::kNone;
    }
    if (2 * down > voters) {
        return Vote::kDown;
    }
    if (2 * (voters - down) > voters) {
        return Vote::kUp;
    }
    return Vote::kSplit;  // as many say down as up: no quorum either way
}

std::size_t Membership::in_count() const {
    return static_cast<std::size_t>(std::count_if(members_.begin(), members_.end(), [](auto& m) {
        return m.second.state != SplitState::kOut;
    }));
}

std::vector<Transition> Membership::adopt(const std::vector<BalancerView>& views) {
    std::vector<Transition> out;
    for (const auto& name : names_) {
        auto& m = members_[name];
        if (m.state == SplitState::kIn && vote(views, name, true) == Vote::kDown &&
            in_count() > 1) {
            m.state = SplitState::kOut;
            ++generation_;
            out.push_back({name, SplitState::kIn, SplitState::kOut,
                           "a quorum of balancers has its cluster in maint at start: taken as "
                           "out of the split until it has been healthy for " +
                               seconds_text(timing_.restore_after)});
        }
    }
    return out;
}

std::vector<Transition> Membership::observe(const std::vector<BalancerView>& views,
                                            Clock::time_point now) {
    std::vector<Transition> out;
    for (const auto& name : names_) {
        auto& m = members_[name];
        const Vote v = vote(views, name);
        if (v != Vote::kDown) {
            m.down_since.reset();
        } else if (!m.down_since) {
            m.down_since = now;
        }
        if (v != Vote::kUp) {
            m.up_since.reset();
        } else if (!m.up_since) {
            m.up_since = now;
        }
        switch (m.state) {
            case SplitState::kIn:
                if (m.down_since && now - *m.down_since >= timing_.after && in_count() > 1) {
                    m.state = SplitState::kOut;
                    ++generation_;
                    out.push_back({name, SplitState::kIn, SplitState::kOut,
                                   "a quorum of balancers has seen its cluster down for " +
                                       seconds_text(timing_.after)});
                }
                break;
            case SplitState::kOut:
                if (m.up_since && now - *m.up_since >= timing_.restore_after) {
                    m.state = SplitState::kRestoring;
                    m.restoring_generation = ++generation_;
                    out.push_back({name, SplitState::kOut, SplitState::kRestoring,
                                   "a quorum of balancers has seen its cluster healthy for " +
                                       seconds_text(timing_.restore_after) +
                                       ": lowering the others' shares first"});
                }
                break;
            case SplitState::kRestoring:
                if (m.down_since) {
                    m.state = SplitState::kOut;
                    m.restoring_generation = 0;
                    ++generation_;
                    out.push_back({name, SplitState::kRestoring, SplitState::kOut,
                                   "its cluster failed again while restoring"});
                }
                break;
        }
    }
    return out;
}

std::optional<Transition> Membership::restored(const std::string& instance) {
    auto it = members_.find(instance);
    if (it == members_.end() || it->second.state != SplitState::kRestoring) {
        return std::nullopt;
    }
    it->second.state = SplitState::kIn;
    it->second.restoring_generation = 0;
    return Transition{instance, SplitState::kRestoring, SplitState::kIn,
                      "every instance enforces the restored split: its cluster is set ready"};
}

SplitState Membership::state(const std::string& instance) const {
    const auto it = members_.find(instance);
    return it == members_.end() ? SplitState::kIn : it->second.state;
}

std::vector<std::string> Membership::without() const {
    std::vector<std::string> out;
    for (const auto& n : names_) {
        if (members_.at(n).state == SplitState::kOut) {
            out.push_back(n);
        }
    }
    return out;
}

std::uint64_t Membership::restoring_since(const std::string& instance) const {
    const auto it = members_.find(instance);
    return it == members_.end() ? 0 : it->second.restoring_generation;
}

std::optional<Membership::Clock::time_point> Membership::down_since(
    const std::string& instance) const {
    const auto it = members_.find(instance);
    return it == members_.end() ? std::nullopt : it->second.down_since;
}

std::optional<Membership::Clock::time_point> Membership::up_since(
    const std::string& instance) const {
    const auto it = members_.find(instance);
    return it == members_.end() ? std::nullopt : it->second.up_since;
}

}  // namespace serve
