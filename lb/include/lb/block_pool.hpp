#pragma once

#include <cstddef>
#include <new>

#include <boost/beast/http/fields.hpp>

namespace lb {

namespace detail {

// Per-thread free lists of small blocks (64, 128, 256, 512 bytes). A balancer worker parses
// about ten header fields per request and Beast allocates each one separately; recycling them
// on the worker's own thread keeps malloc off the request path. Larger blocks go to operator
// new. A block freed on another thread (a coroutine frame destroyed at shutdown) just joins
// that thread's list: every block is a plain operator-new block of its class's size.
class BlockPool {
public:
    static constexpr std::size_t kClasses = 4;
    static constexpr std::size_t kSmallest = 64;
    static constexpr std::size_t kLargest = kSmallest << (kClasses - 1);
    static constexpr unsigned kMaxFree = 1024;  // per class: the bound on what is kept

    BlockPool() = default;
    BlockPool(const BlockPool&) = delete;
    BlockPool& operator=(const BlockPool&) = delete;
    ~BlockPool() {
        for (auto*& head : free_) {
            while (head != nullptr) {
                Node* next = head->next;
                ::operator delete(head);
                head = next;
            }
        }
    }

    void* allocate(std::size_t bytes) {
        if (bytes > kLargest) {
            return ::operator new(bytes);
        }
        const std::size_t c = size_class(bytes);
        if (Node* n = free_[c]; n != nullptr) {
            free_[c] = n->next;
            --count_[c];
            return n;
        }
        return ::operator new(kSmallest << c);
    }

    void deallocate(void* p, std::size_t bytes) noexcept {
        if (bytes > kLargest) {
            ::operator delete(p);
            return;
        }
        const std::size_t c = size_class(bytes);
        if (count_[c] >= kMaxFree) {
            ::operator delete(p);
            return;
        }
        auto* n = static_cast<Node*>(p);
        n->next = free_[c];
        free_[c] = n;
        ++count_[c];
    }

    static BlockPool& local() {
        thread_local BlockPool pool;
        return pool;
    }

private:
    struct Node {
        Node* next;
    };
    static std::size_t size_class(std::size_t bytes) {
        std::size_t c = 0;
        while ((kSmallest << c) < bytes) {
            ++c;
        }
        return c;
    }
    Node* free_[kClasses]{};
    unsigned count_[kClasses]{};
};

}  // namespace detail

// A stateless allocator over the calling thread's BlockPool.
template <class T>
struct PoolAllocator {
    using value_type = T;
    PoolAllocator() noexcept = default;
    template <class U>
    PoolAllocator(const PoolAllocator<U>& /*unused*/) noexcept {
    }  // NOLINT(google-explicit-constructor)
    T* allocate(std::size_t n) {
        return static_cast<T*>(detail::BlockPool::local().allocate(n * sizeof(T)));
    }
    void deallocate(T* p, std::size_t n) noexcept {
        detail::BlockPool::local().deallocate(p, n * sizeof(T));
    }
    friend bool operator==(const PoolAllocator& /*a*/, const PoolAllocator& /*b*/) { return true; }
    friend bool operator!=(const PoolAllocator& /*a*/, const PoolAllocator& /*b*/) { return false; }
};

// The header fields of every message on the request path.
using Fields = boost::beast::http::basic_fields<PoolAllocator<char>>;

}  // namespace lb
