#pragma once

#include <chrono>
#include <cstdio>
#include <optional>
#include <string>

#include "ratelimit/period.hpp"

namespace sim {

using Seconds = ratelimit::Seconds;

// "2026-11-20T10:15:00Z"
inline std::string format_iso8601(Seconds t) {
    const auto day = std::chrono::floor<std::chrono::days>(t);
    const std::chrono::year_month_day ymd{day};
    const std::chrono::hh_mm_ss hms{t - day};
    char buf[32];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02dZ", static_cast<int>(ymd.year()),
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                  static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                  static_cast<int>(hms.seconds().count()));
    return buf;
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
