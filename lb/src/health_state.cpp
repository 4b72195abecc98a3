#include "lb/health_state.hpp"

#include <algorithm>

namespace lb {

HealthState::HealthState(std::uint32_t rise, std::uint32_t fall, Health initial)
    : rise_(std::max(rise, 1u)),
      fall_(std::max(fall, 1u)),
      health_(initial == Health::kUp ? rise_ + fall_ - 1 : 0) {}

Transition HealthState::record(bool passed) {
    const bool was_up = up();
    if (passed) {
        if (health_ < rise_ + fall_ - 1) {
            ++health_;
            if (health_ >= rise_) {
                health_ = rise_ + fall_ - 1;
            }
        }
    } else if (health_ > 0) {
        --health_;
        if (health_ < rise_) {
            health_ = 0;
        }
    }
    if (up() != was_up) {
        return up() ? Transition::kWentUp : Transition::kWentDown;
    }
    return Transition::kNone;
}

}  // namespace lb
