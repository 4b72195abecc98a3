#pragma once

#include <cstdint>

namespace lb {

enum class Health { kDown, kUp };
enum class Transition { kNone, kWentUp, kWentDown };

// HAProxy's health hysteresis as one counter (src/check.c): health in [0, rise + fall - 1];
// UP when health >= rise. A pass while down counts up and, on reaching rise, jumps to the top; a
// failure while up counts down and, below rise, drops to 0. So it takes `rise` consecutive passes
// to come up and `fall` consecutive failures to go down, and one flap undoes no progress.
class HealthState {
public:
    HealthState(std::uint32_t rise, std::uint32_t fall, Health initial = Health::kDown);

    Transition record(bool passed);
    [[nodiscard]] Health health() const noexcept {
        return health_ >= rise_ ? Health::kUp : Health::kDown;
    }
    [[nodiscard]] bool up() const noexcept { return health() == Health::kUp; }
    [[nodiscard]] std::uint32_t counter() const noexcept { return health_; }

private:
    std::uint32_t rise_;
    std::uint32_t fall_;
    std::uint32_t health_;
};

}  // namespace lb
