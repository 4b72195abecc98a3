#pragma once

#include <algorithm>
#include <atomic>
#include <expected>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace syncer {

// Runs fn(0..n-1) on up to `concurrency` threads; stops handing out work after the first error,
// which it returns.
template <class E>
std::expected<void, E> parallel_for(std::size_t n,
                                    int concurrency,
                                    const std::function<std::expected<void, E>(std::size_t)>& fn) {
    std::atomic<std::size_t> next{0};
    std::atomic<bool> failed{false};
    std::mutex mutex;
    std::optional<E> first_error;
    const auto worker = [&] {
        for (;;) {
            if (failed.load()) {
                return;
            }
            const std::size_t i = next.fetch_add(1);
            if (i >= n) {
                return;
            }
            auto r = fn(i);
            if (!r) {
                const std::lock_guard lock(mutex);
                if (!first_error) {
                    first_error = r.error();
                }
                failed = true;
            }
        }
    };
    const auto threads =
        std::min<std::size_t>(static_cast<std::size_t>(std::max(1, concurrency)), n);
    {
        std::vector<std::jthread> pool;
        for (std::size_t t = 1; t < threads; ++t) {
            pool.emplace_back(worker);
        }
        worker();
    }
    if (first_error) {
        return std::unexpected(*first_error);
    }
    return {};
}

}  // namespace syncer
