// SPDX-License-Identifier: MIT
#include "../support/catch.hpp"

#include <corio/detail/frame_allocator.hpp>

#include <cstddef>
#include <thread>
#include <vector>

using corio::detail::frame_allocator;

TEST_CASE("frame_allocator: a freed frame is reused for the next frame of its size class",
          "[detail][alloc]") {
    const frame_allocator::counts before = frame_allocator::thread_counts();
    void* a = frame_allocator::allocate(100);
    CHECK(frame_allocator::thread_counts().live_blocks == before.live_blocks + 1);
    frame_allocator::deallocate(a, 100);
    CHECK(frame_allocator::thread_counts().live_blocks == before.live_blocks);
    if (frame_allocator::caching) {
        CHECK(frame_allocator::thread_counts().cached_blocks == before.cached_blocks + 1);
        void* b = frame_allocator::allocate(104); // same 16-byte class as 100
        CHECK(b == a);
        CHECK(frame_allocator::thread_counts().cached_blocks == before.cached_blocks);
        frame_allocator::deallocate(b, 104);
    } else {
        CHECK(frame_allocator::thread_counts().cached_blocks == 0); // ASan: nothing is cached
    }
}

TEST_CASE("frame_allocator: large frames and bursts beyond the cache go back to the heap",
          "[detail][alloc]") {
    const frame_allocator::counts before = frame_allocator::thread_counts();
    void* big = frame_allocator::allocate(64 * 1024);
    frame_allocator::deallocate(big, 64 * 1024);
    CHECK(frame_allocator::thread_counts().cached_blocks == before.cached_blocks); // not cached
    std::vector<void*> burst;
    for (int i = 0; i < 40'000; ++i) // 8 MiB of 208-byte blocks: twice what the cache keeps
        burst.push_back(frame_allocator::allocate(200));
    CHECK(frame_allocator::thread_counts().live_blocks == before.live_blocks + 40'000);
    for (void* p : burst)
        frame_allocator::deallocate(p, 200);
    burst.clear();
    const frame_allocator::counts after = frame_allocator::thread_counts();
    CHECK(after.live_blocks == before.live_blocks);
    CHECK(after.cached_bytes <= frame_allocator::max_cached_bytes);
    if (frame_allocator::caching)
        CHECK(after.cached_bytes > frame_allocator::max_cached_bytes - 208); // full, not more
}

TEST_CASE("frame_allocator: frames may be freed on another thread, and an exiting thread "
          "gives its cache back",
          "[detail][alloc]") {
    std::vector<void*> frames;
    for (int i = 0; i < 100; ++i)
        frames.push_back(frame_allocator::allocate(300));
    const std::size_t released_before =
        corio::detail::frame_blocks_released_at_exit.load(std::memory_order_relaxed);
    std::size_t cached_by_other = 0;
    std::thread other([&frames, &cached_by_other] {
        const frame_allocator::counts start = frame_allocator::thread_counts();
        for (void* p : frames)
            frame_allocator::deallocate(p, 300); // cached by `other`, freed when it exits
        cached_by_other = frame_allocator::thread_counts().cached_blocks - start.cached_blocks;
    });
    other.join();
    const std::size_t released =
        corio::detail::frame_blocks_released_at_exit.load(std::memory_order_relaxed) -
        released_before;
    if (frame_allocator::caching) {
        CHECK(cached_by_other == 100);
        CHECK(released == 100); // the exiting thread freed its whole cache
    } else {
        CHECK(cached_by_other == 0);
        CHECK(released == 0);
    }
    void* mine = frame_allocator::allocate(300);
    frame_allocator::deallocate(mine, 300);
}
