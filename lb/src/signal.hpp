#pragma once

#include "io.hpp"

namespace lb {

// Wakes one waiting coroutine (a timer that never expires on its own but at the deadline given
// to wait()); a notify() before the wait is not lost.
class Signal {
public:
    explicit Signal(const Executor& executor) : timer_(executor) {}
    void notify() {
        pending_ = true;
        timer_.cancel();
    }
    // True when notified, false when `deadline` passed first.
    Task<bool> wait(Clock::time_point deadline) {
        if (!pending_) {
            timer_.expires_at(deadline);
            co_await timer_.async_wait(kNoThrow);
        }
        const bool woke = pending_;
        pending_ = false;
        co_return woke;
    }

private:
    Timer timer_;
    bool pending_ = false;
};

}  // namespace lb
