#include "deadlines.hpp"

#include <algorithm>

namespace lb {

Due due(const Watch& w, Clock::time_point now) {
    if (w.target == nullptr) {
        return Due::kNothing;
    }
    if (!w.fired && w.deadline <= now) {
        return Due::kFire;
    }
    if (w.idle && !w.parked && now - w.idle_since >= kParkAfter) {
        return Due::kPark;
    }
    return Due::kNothing;
}

Clock::time_point body_read_deadline(Clock::time_point start,
                                     std::uint64_t received,
                                     Clock::time_point now,
                                     Clock::duration idle,
                                     std::uint64_t min_rate,
                                     Clock::duration grace) {
    const Clock::time_point by_idle = now + idle;
    if (min_rate == 0) {
        return by_idle;
    }
    // received / min_rate seconds of credit, in the clock's unit (no overflow below ~290 years).
    const auto credit = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
        static_cast<double>(received) / static_cast<double>(min_rate)));
    return std::min(by_idle, start + grace + credit);
}

void tick(WatchList& watches, Clock::time_point now) {
    boost::system::error_code ignored;
    for (auto& w : watches) {
        switch (due(w, now)) {
            case Due::kFire:
                w.fired = true;
                w.target->cancel(ignored);
                break;
            case Due::kPark:
                w.park = w.parked = true;  // the session re-waits without a buffer
                w.target->cancel(ignored);
                break;
            case Due::kNothing:
                break;
        }
    }
}

}  // namespace lb
