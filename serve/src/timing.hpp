#pragma once

// The controller's clocks and pace: jittered intervals, Unix seconds for metrics.
#include <chrono>
#include <random>

namespace serve {

// `interval` ±10%: passes of many instances (and of several serve replicas) do not line up.
inline std::chrono::milliseconds jittered(std::chrono::milliseconds interval) {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    std::uniform_real_distribution<double> d(0.9, 1.1);
    return std::chrono::milliseconds(
        static_cast<std::int64_t>(static_cast<double>(interval.count()) * d(rng)));
}

inline double unix_seconds(std::chrono::system_clock::time_point t) {
    return std::chrono::duration<double>(t.time_since_epoch()).count();
}

}  // namespace serve
