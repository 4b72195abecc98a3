#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "wire.hpp"

namespace lb {

// A worker's free relay buffers (kChunk bytes) and message-head strings, recycled so the
// request path does not allocate them per request. Bounded: at most kMaxFree of each are kept.
class Buffers {
public:
    static constexpr std::size_t kMaxFree = 64;

    std::unique_ptr<char[]> take_chunk() {
        if (chunks_.empty()) {
            return std::make_unique<char[]>(kChunk);
        }
        auto c = std::move(chunks_.back());
        chunks_.pop_back();
        return c;
    }
    void give_chunk(std::unique_ptr<char[]> chunk) {
        if (chunk && chunks_.size() < kMaxFree) {
            chunks_.push_back(std::move(chunk));
        }
    }

    std::string take_head() {
        if (heads_.empty()) {
            std::string s;
            s.reserve(1024);
            return s;
        }
        std::string s = std::move(heads_.back());
        heads_.pop_back();
        return s;
    }
    // Kept for the next request unless a huge header grew it (or enough are kept already).
    void give_head(std::string head) {
        if (heads_.size() < kMaxFree && head.capacity() <= kChunk) {
            heads_.push_back(std::move(head));
        }
    }

private:
    std::vector<std::unique_ptr<char[]>> chunks_;
    std::vector<std::string> heads_;
};

}  // namespace lb
