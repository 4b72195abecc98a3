#include "lb/picker.hpp"

namespace lb {

Picker::Picker(std::vector<Member> members)
    : members_(std::move(members)), current_(members_.size(), 0) {}

std::optional<std::size_t> Picker::pick(const std::vector<bool>& healthy,
                                        std::optional<std::size_t> exclude) {
    // Tiers in order: healthy primaries but the excluded one, healthy backups but the excluded
    // one, then the excluded member itself (better it than nothing). No allocation: this runs
    // once per request.
    const auto eligible = [&](std::size_t i, bool backup, bool allow_excluded) {
        return members_[i].backup == backup && i < healthy.size() && healthy[i] &&
               (allow_excluded || exclude != i);
    };
    for (const auto& [backup, allow_excluded] : {std::pair{false, false}, std::pair{true, false},
                                                 std::pair{false, true}, std::pair{true, true}}) {
        std::int64_t total = 0;
        std::optional<std::size_t> best;
        for (std::size_t i = 0; i < members_.size(); ++i) {
            if (!eligible(i, backup, allow_excluded)) {
                continue;
            }
            current_[i] += members_[i].weight;
            total += members_[i].weight;
            if (!best || current_[i] > current_[*best]) {
                best = i;
            }
        }
        if (best) {
            current_[*best] -= total;
            return best;
        }
    }
    return std::nullopt;
}

}  // namespace lb
