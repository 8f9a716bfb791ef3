// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

namespace corio::detail {

/// A bounded lock-free multi-producer multi-consumer FIFO of `capacity` slots: Dmitry Vyukov's
/// bounded MPMC queue. Each slot carries a sequence number that says whose turn it is: the
/// slot of position `p` (of the unbounded sequence of pushes) is free for the push of `p` when
/// its sequence is `2p`, holds that item at `2p + 1`, and is free for the push of
/// `p + capacity` once popped, at `2(p + capacity)`. (Vyukov's `p` and `p + 1` would confuse
/// "holds the item of p" with "free for p + 1" at capacity 1.) `try_push` and `try_pop` claim a
/// position with one compare-and-swap on the tail or the head, which sit on cache lines of their
/// own.
///
/// `try_pop` may say empty while a push that claimed its slot has not yet published its item;
/// the channel built on it copes with that (the pushing side checks for waiters after
/// publishing). Used by `channel`.
template <class T>
class mpmc_ring {
    static_assert(std::is_nothrow_move_constructible_v<T>,
                  "corio::channel<T>: T must be nothrow move constructible (an item is moved "
                  "into a slot other threads already wait on)");

public:
    explicit mpmc_ring(std::size_t capacity) : capacity_(capacity), slots_(capacity) {
        for (std::size_t i = 0; i < capacity; ++i)
            slots_[i].sequence.store(2 * i, std::memory_order_relaxed);
    }
    mpmc_ring(const mpmc_ring&) = delete;
    mpmc_ring& operator=(const mpmc_ring&) = delete;
    ~mpmc_ring() {
        while (try_pop_into([](T&&) noexcept {})) {
        }
    }

    [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

    /// Items held now; a snapshot when other threads push or pop.
    [[nodiscard]] std::size_t size() const noexcept {
        const std::uint64_t head = head_.load(std::memory_order_acquire);
        const std::uint64_t tail = tail_.load(std::memory_order_acquire);
        return tail > head ? static_cast<std::size_t>(tail - head) : 0;
    }

    /// Moves `value` into the ring; false (and `value` untouched) when it is full.
    bool try_push(T& value) noexcept {
        std::uint64_t pos = tail_.load(std::memory_order_relaxed);
        for (;;) {
            slot& s = at(pos);
            const std::uint64_t seq = s.sequence.load(std::memory_order_acquire);
            const auto lag = static_cast<std::int64_t>(seq - 2 * pos);
            if (lag == 0) {
                if (tail_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
                    ::new (static_cast<void*>(s.storage.data())) T(std::move(value));
                    s.sequence.store(2 * pos + 1, std::memory_order_release);
                    return true;
                }
            } else if (lag < 0) {
                return false; // the slot still holds the item of the previous lap: full
            } else {
                pos = tail_.load(std::memory_order_relaxed);
            }
        }
    }

    /// Pops the oldest item into `sink(T&&)`; false when empty.
    template <class Sink>
    bool try_pop_into(Sink&& sink) noexcept(noexcept(sink(std::declval<T&&>()))) {
        std::uint64_t pos = head_.load(std::memory_order_relaxed);
        for (;;) {
            slot& s = at(pos);
            const std::uint64_t seq = s.sequence.load(std::memory_order_acquire);
            const auto lag = static_cast<std::int64_t>(seq - (2 * pos + 1));
            if (lag == 0) {
                if (head_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
                    T* item = std::launder(reinterpret_cast<T*>(s.storage.data()));
                    struct release_slot { // the slot is freed even if the sink throws
                        slot& s;
                        T* item;
                        std::uint64_t next;
                        ~release_slot() {
                            item->~T();
                            s.sequence.store(next, std::memory_order_release);
                        }
                    } release{s, item, 2 * (pos + capacity_)};
                    sink(std::move(*item));
                    return true;
                }
            } else if (lag < 0) {
                return false; // nothing published at the head yet: empty
            } else {
                pos = head_.load(std::memory_order_relaxed);
            }
        }
    }

private:
    struct slot {
        std::atomic<std::uint64_t> sequence{0};
        alignas(T) std::array<std::byte, sizeof(T)> storage;
    };

    slot& at(std::uint64_t pos) noexcept { return slots_[pos % capacity_]; }

    static constexpr std::size_t line = 64; // a cache line on the machines corio runs on
    const std::size_t capacity_;
    std::vector<slot> slots_; // never resized: slots do not move
    alignas(line) std::atomic<std::uint64_t> head_{0};
    alignas(line) std::atomic<std::uint64_t> tail_{0}; // the owner starts a new line after it
};

} // namespace corio::detail
