#include "lb/picker.hpp"

namespace lb {

Picker::Picker(std::vector<Member> members)
    : members_(std::move(members)), current_(members_.size(), 0) {}

std::optional<std::size_t> Picker::pick(const std::vector<bool>& healthy,
                                        std::optional<std::size_t> exclude) {
    const auto candidates = [&](bool backup, bool allow_excluded) {
        std::vector<std::size_t> out;
        for (std::size_t i = 0; i < members_.size(); ++i) {
            if (members_[i].backup == backup && i < healthy.size() && healthy[i] &&
                (allow_excluded || exclude != i)) {
                out.push_back(i);
            }
        }
        return out;
    };
    std::vector<std::size_t> set = candidates(false, false);
    if (set.empty()) {
        set = candidates(true, false);
    }
    if (set.empty()) {  // only the excluded one is left: better it than nothing
        set = candidates(false, true);
        if (set.empty()) {
            set = candidates(true, true);
        }
    }
    if (set.empty()) {
        return std::nullopt;
    }
    std::int64_t total = 0;
    std::size_t best = set.front();
    for (const std::size_t i : set) {
        current_[i] += members_[i].weight;
        total += members_[i].weight;
        if (current_[i] > current_[best]) {
            best = i;
        }
    }
    current_[best] -= total;
    return best;
}

}  // namespace lb
