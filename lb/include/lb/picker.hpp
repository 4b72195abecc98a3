#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace lb {

// Per-request weighted round robin (nginx's smooth weighted round robin: deterministic, spreads
// a heavier member's turns instead of bursting them) over the healthy primary members; the
// backup members only when no primary is healthy. Pure: the caller passes health in.
class Picker {
public:
    struct Member {
        std::int64_t weight = 1;  // > 0
        bool backup = false;
    };

    explicit Picker(std::vector<Member> members);

    // The next member, or nullopt when none is healthy. `exclude` (a member that just failed)
    // is skipped when another candidate exists: the retry goes elsewhere.
    std::optional<std::size_t> pick(const std::vector<bool>& healthy,
                                    std::optional<std::size_t> exclude = std::nullopt);

    [[nodiscard]] std::size_t size() const noexcept { return members_.size(); }

private:
    std::vector<Member> members_;
    std::vector<std::int64_t> current_;
};

}  // namespace lb
