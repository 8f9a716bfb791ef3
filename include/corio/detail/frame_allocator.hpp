// SPDX-License-Identifier: MIT
#pragma once

#include <corio/detail/per_thread.hpp>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>
#include <utility>

// Under AddressSanitizer frames come straight from operator new, so that a use of a destroyed
// frame is still caught.
#if defined(__SANITIZE_ADDRESS__)
#define CORIO_FRAME_CACHE 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CORIO_FRAME_CACHE 0
#endif
#endif
#ifndef CORIO_FRAME_CACHE
#define CORIO_FRAME_CACHE 1
#endif

namespace corio::detail {

/// The free lists of one thread. Trivially destructible, so that it stays usable while the
/// thread's other thread_locals are destroyed.
struct frame_lists {
    static constexpr std::size_t granularity = 16;
    static constexpr std::size_t max_size = 2048;
    static constexpr std::size_t classes = max_size / granularity;
    struct node {
        node* next;
    };
    std::array<node*, classes> heads{};
    std::size_t cached_bytes = 0;   // across all classes
    std::size_t cached_blocks = 0;  // across all classes
    std::ptrdiff_t live_blocks = 0; // allocated on this thread minus freed on it
    bool cleanup_registered = false;
    bool closed = false;
};
/// The calling thread's free lists (see per_thread: the frame of a coroutine that moved to
/// another thread is freed, and its children allocated, on the thread it runs on).
inline frame_lists& thread_frame_lists() noexcept {
    struct tag {};
    return per_thread<frame_lists, tag>::get();
}

/// Blocks the caches of exited threads gave back (for tests: a thread's cache does not leak).
inline std::atomic<std::size_t> frame_blocks_released_at_exit{0};

/// Frees a thread's cached frames when the thread ends; later frees bypass the cache.
struct frame_lists_cleanup {
    frame_lists_cleanup() = default;
    frame_lists_cleanup(const frame_lists_cleanup&) = delete;
    frame_lists_cleanup& operator=(const frame_lists_cleanup&) = delete;
    ~frame_lists_cleanup() {
        frame_lists& l = thread_frame_lists();
        l.closed = true;
        std::size_t released = 0;
        for (frame_lists::node*& head : l.heads)
            while (head != nullptr) {
                ::operator delete(std::exchange(head, head->next));
                ++released;
            }
        l.cached_blocks = 0;
        l.cached_bytes = 0;
        frame_blocks_released_at_exit.fetch_add(released, std::memory_order_relaxed);
    }
};
/// Constructs the calling thread's cleanup object (on first use).
inline void register_frame_cleanup() noexcept {
    struct tag {};
    (void)per_thread<frame_lists_cleanup, tag>::get();
}

/// Recycles coroutine frames on each thread: a free list per 16-byte size class up to 2 KiB,
/// holding at most 4 MiB of frames in all (some 20,000 small frames, enough for a gather of
/// thousands), so a burst of a million short tasks leaves at most 4 MiB behind. Larger frames, and
/// frames freed once the thread's cache is gone, use plain operator new/delete. It halves the cost
/// of creating and awaiting a short task, which is mostly malloc/free otherwise.
class frame_allocator {
public:
    static void* allocate(std::size_t size) {
        frame_lists& l = thread_frame_lists();
#if CORIO_FRAME_CACHE
        if (size <= max_size && !l.closed) {
            const std::size_t c = size_class(size);
            if (frame_lists::node* n = l.heads[c]) {
                l.heads[c] = n->next;
                l.cached_bytes -= (c + 1) * granularity;
                --l.cached_blocks;
                ++l.live_blocks;
                return n;
            }
            void* p = ::operator new((c + 1) * granularity);
            ++l.live_blocks;
            return p;
        }
#endif
        void* p = ::operator new(size);
        ++l.live_blocks;
        return p;
    }

    static void deallocate(void* p, [[maybe_unused]] std::size_t size) noexcept {
        frame_lists& l = thread_frame_lists();
        --l.live_blocks;
#if CORIO_FRAME_CACHE
        if (size <= max_size && !l.closed) {
            const std::size_t c = size_class(size);
            const std::size_t bytes = (c + 1) * granularity;
            if (l.cached_bytes + bytes <= max_cached_bytes) {
                if (!l.cleanup_registered) {
                    l.cleanup_registered = true;
                    register_frame_cleanup();
                }
                auto* n = static_cast<frame_lists::node*>(p);
                n->next = l.heads[c];
                l.heads[c] = n;
                l.cached_bytes += bytes;
                ++l.cached_blocks;
                return;
            }
        }
#endif
        ::operator delete(p);
    }

    /// What the calling thread's cache holds, and its frames in use: for tests.
    struct counts {
        std::ptrdiff_t live_blocks; ///< allocated on this thread, not yet freed on it
        std::size_t cached_blocks;
        std::size_t cached_bytes;
    };
    [[nodiscard]] static counts thread_counts() noexcept {
        const frame_lists& l = thread_frame_lists();
        return {l.live_blocks, l.cached_blocks, l.cached_bytes};
    }
    /// The most a thread's cache holds.
    static constexpr std::size_t max_cached_bytes = std::size_t{4} << 20;
    /// Whether frames are cached at all (not under AddressSanitizer).
    static constexpr bool caching = CORIO_FRAME_CACHE != 0;

private:
    static constexpr std::size_t granularity = frame_lists::granularity;
    static constexpr std::size_t max_size = frame_lists::max_size;
    static constexpr std::size_t size_class(std::size_t size) noexcept {
        return size == 0 ? 0 : (size - 1) / granularity;
    }
};

} // namespace corio::detail
