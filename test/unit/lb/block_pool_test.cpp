#include "lb/block_pool.hpp"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace lb {
namespace {

TEST(BlockPool, RecyclesBlocksBySizeClassAndBoundsWhatItKeeps) {
    detail::BlockPool pool;
    void* a = pool.allocate(40);
    pool.deallocate(a, 40);
    EXPECT_EQ(pool.allocate(64), a);  // the same class (64 bytes) reuses the block
    void* big = pool.allocate(4096);  // beyond the largest class: operator new
    pool.deallocate(big, 4096);
    std::vector<void*> blocks;
    for (unsigned i = 0; i < detail::BlockPool::kMaxFree + 10; ++i) {
        blocks.push_back(pool.allocate(200));
    }
    for (void* b : blocks) {
        pool.deallocate(b, 200);  // the ones beyond kMaxFree go back to operator delete
    }
    pool.deallocate(a, 64);
    Fields f{PoolAllocator<char>{}};
    f.set("X-Test", std::string(300, 'v'));
    EXPECT_EQ(f["X-Test"].size(), 300u);
}

}  // namespace
}  // namespace lb
