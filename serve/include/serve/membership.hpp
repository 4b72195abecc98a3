#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace serve {

// Whether an instance's share of every global limit is enforced by it (in) or held by the
// others (out); restoring: back in the split (the others' shares are being lowered back) but its
// cluster still in maint on the balancers until every instance has converged to the new split.
enum class SplitState { kIn, kOut, kRestoring };
const char* split_state_name(SplitState s);

// What one balancer said at a poll: unreachable, or each cluster's health and runtime state.
struct BalancerView {
    bool reachable = false;
    struct Cluster {
        bool healthy = false;
        std::string admin_state = "ready";  // ready, drain, maint
    };
    std::map<std::string, Cluster> clusters;  // by name (= the instance's)
};

struct Transition {
    std::string instance;
    SplitState from = SplitState::kIn;
    SplitState to = SplitState::kIn;
    std::string why;
};

// The re-split rule, pure (no socket, no clock: time is passed in). An instance goes **out**
// when a quorum — a majority of the balancers that can be reached and know its cluster — has
// reported its cluster unhealthy for `after` without a break, and at least one other instance is
// in; it starts **restoring** once a quorum has reported it healthy for `restore_after`, and is
// **in** again when the caller says every instance in the split has converged (restored()).
// With no balancer reachable nothing changes and the clocks start again.
class Membership {
public:
    struct Timing {
        std::chrono::milliseconds after{60000};
        std::chrono::milliseconds restore_after{120000};
    };
    using Clock = std::chrono::steady_clock;

    Membership(std::vector<std::string> instances, Timing timing);

    // The first poll after a start: an instance whose cluster a quorum shows in maint starts
    // out (a serve that restarted put it there; its share is still on the others).
    std::vector<Transition> adopt(const std::vector<BalancerView>& views);
    // A poll's answers at `now`: the transitions they complete.
    std::vector<Transition> observe(const std::vector<BalancerView>& views, Clock::time_point now);
    // Every instance in the split converged to it since `instance` started restoring: in again.
    std::optional<Transition> restored(const std::string& instance);

    [[nodiscard]] SplitState state(const std::string& instance) const;
    // The instances the limits are split without (out).
    [[nodiscard]] std::vector<std::string> without() const;
    // Incremented by every transition that changes the split (out, restoring).
    [[nodiscard]] std::uint64_t split_generation() const { return generation_; }
    // The split generation `instance` started restoring under (0 when not restoring).
    [[nodiscard]] std::uint64_t restoring_since(const std::string& instance) const;
    // How long a quorum has seen it down (in) or up (out), for /status.
    [[nodiscard]] std::optional<Clock::time_point> down_since(const std::string& instance) const;
    [[nodiscard]] std::optional<Clock::time_point> up_since(const std::string& instance) const;
    [[nodiscard]] const std::vector<std::string>& instances() const { return names_; }

private:
    struct Member {
        SplitState state = SplitState::kIn;
        std::optional<Clock::time_point> down_since;
        std::optional<Clock::time_point> up_since;
        std::uint64_t restoring_generation = 0;
    };
    enum class Vote { kNone, kDown, kUp, kSplit };
    static Vote vote(const std::vector<BalancerView>& views,
                     const std::string& name,
                     bool maint_counts = false);
    [[nodiscard]] std::size_t in_count() const;

    std::vector<std::string> names_;
    Timing timing_;
    std::map<std::string, Member> members_;
    std::uint64_t generation_ = 1;
};

}  // namespace serve
