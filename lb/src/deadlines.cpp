#include "deadlines.hpp"

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
