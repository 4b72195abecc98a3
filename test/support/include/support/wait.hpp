#pragma once

#include <chrono>
#include <thread>

namespace support {

// Polls `pred` every 10 ms until it holds or `timeout` passes; its last answer. For conditions
// a test observes from outside (a process's /status, a counter), never to let time pass.
template <class Pred>
bool wait_until(Pred pred, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (pred()) {
            return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return pred();
}

}  // namespace support
