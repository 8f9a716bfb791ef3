// SPDX-License-Identifier: MIT
#include "../support/catch.hpp"

#include <corio/detail/frame_allocator.hpp>

#include <cstddef>
#include <thread>
#include <vector>

using corio::detail::frame_allocator;

TEST_CASE("frame_allocator: a freed frame is reused for the next frame of its size class",
          "[detail][alloc]") {
    void* a = frame_allocator::allocate(100);
    frame_allocator::deallocate(a, 100);
    void* b = frame_allocator::allocate(104); // same 16-byte class as 100
    if (CORIO_FRAME_CACHE)
        CHECK(b == a);
    frame_allocator::deallocate(b, 104);
}

TEST_CASE("frame_allocator: large frames and bursts beyond the cache go back to the heap",
          "[detail][alloc]") {
    void* big = frame_allocator::allocate(64 * 1024);
    frame_allocator::deallocate(big, 64 * 1024);
    std::vector<void*> burst;
    for (int i = 0; i < 40'000; ++i)
        burst.push_back(frame_allocator::allocate(200));
    for (void* p : burst)
        frame_allocator::deallocate(p, 200); // at most 4 MiB stay cached; ASan/LSan see the rest
    burst.clear();
    for (int i = 0; i < 40'000; ++i)
        burst.push_back(frame_allocator::allocate(200));
    for (void* p : burst)
        frame_allocator::deallocate(p, 200);
}

TEST_CASE("frame_allocator: frames may be freed on another thread and threads clean up",
          "[detail][alloc]") {
    std::vector<void*> frames;
    for (int i = 0; i < 100; ++i)
        frames.push_back(frame_allocator::allocate(300));
    std::thread other([&frames] {
        for (void* p : frames)
            frame_allocator::deallocate(p, 300); // cached by `other`, freed when it exits
    });
    other.join();
    void* mine = frame_allocator::allocate(300);
    frame_allocator::deallocate(mine, 300);
}
