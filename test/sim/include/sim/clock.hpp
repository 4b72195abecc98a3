#pragma once

#include <chrono>
#include <cstdio>
#include <optional>
#include <string>

#include "ratelimit/period.hpp"

namespace sim {

using Seconds = ratelimit::Seconds;

inline std::string format_iso8601(Seconds t) {
    return ratelimit::to_iso8601(t);
}

// The simulator's idea of "now": the system clock plus an offset, or a frozen instant. Tests move
// it to roll limit windows over without waiting.
class SimClock {
public:
    [[nodiscard]] Seconds now() const {
        if (frozen_at_) {
            return *frozen_at_;
        }
        return std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()) + offset_;
    }
    void advance(std::chrono::seconds by) {
        if (frozen_at_) {
            *frozen_at_ += by;
        } else {
            offset_ += by;
        }
    }
    void set(Seconds at) {
        if (frozen_at_) {
            frozen_at_ = at;
        } else {
            offset_ =
                at - std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
        }
    }
    void freeze(bool on) {
        if (on && !frozen_at_) {
            frozen_at_ = now();
        } else if (!on && frozen_at_) {
            const Seconds at = *frozen_at_;
            frozen_at_.reset();
            set(at);
        }
    }
    [[nodiscard]] bool frozen() const { return frozen_at_.has_value(); }

private:
    std::chrono::seconds offset_{0};
    std::optional<Seconds> frozen_at_;
};

}  // namespace sim
