// SPDX-License-Identifier: MIT
#pragma once

#include <chrono>
#include <cstddef>
#include <utility>
#include <vector>

namespace corio::detail {

/// A deadline embedded in the awaiter that waits for it (a sleep, a timeout).
struct timer_node {
    using time_point = std::chrono::steady_clock::time_point;

    time_point deadline{};
    /// Called by the loop when the deadline has passed; the node is already out of the heap.
    void (*fire)(timer_node*) noexcept = nullptr;
    /// Position in the heap, or `npos` when not scheduled.
    std::size_t index = npos;

    static constexpr std::size_t npos = static_cast<std::size_t>(-1);
    [[nodiscard]] bool scheduled() const noexcept { return index != npos; }
};

/// An intrusive 4-ary min-heap of timer nodes ordered by deadline, then by insertion order
/// (equal deadlines fire first-in first-out). O(log n) insert and erase, O(1) top, one pointer of
/// storage per timer. 4-ary rather than binary: half the depth, and the four children share a
/// cache line, which matters with a million sleeping tasks.
class timer_heap {
public:
    [[nodiscard]] bool empty() const noexcept { return heap_.empty(); }
    [[nodiscard]] std::size_t size() const noexcept { return heap_.size(); }
    [[nodiscard]] timer_node* top() const noexcept {
        return heap_.empty() ? nullptr : heap_[0].node;
    }

    void push(timer_node& n) {
        heap_.push_back({&n, seq_++});
        n.index = heap_.size() - 1;
        sift_up(n.index);
    }

    void erase(timer_node& n) noexcept {
        const std::size_t i = n.index;
        n.index = timer_node::npos;
        const std::size_t last = heap_.size() - 1;
        if (i != last) {
            place(i, heap_[last]);
            heap_.pop_back();
            sift_down(i);
            sift_up(i);
        } else {
            heap_.pop_back();
        }
    }

    timer_node* pop() noexcept {
        timer_node* n = top();
        if (n != nullptr)
            erase(*n);
        return n;
    }

private:
    struct entry {
        timer_node* node;
        std::size_t seq;
    };
    static constexpr std::size_t arity = 4;

    static bool before(const entry& a, const entry& b) noexcept {
        return a.node->deadline < b.node->deadline ||
               (a.node->deadline == b.node->deadline && a.seq < b.seq);
    }
    void place(std::size_t i, entry e) noexcept {
        heap_[i] = e;
        e.node->index = i;
    }
    void sift_up(std::size_t i) noexcept {
        const entry e = heap_[i];
        while (i > 0) {
            const std::size_t parent = (i - 1) / arity;
            if (!before(e, heap_[parent]))
                break;
            place(i, heap_[parent]);
            i = parent;
        }
        place(i, e);
    }
    void sift_down(std::size_t i) noexcept {
        const entry e = heap_[i];
        const std::size_t n = heap_.size();
        for (;;) {
            const std::size_t first = i * arity + 1;
            if (first >= n)
                break;
            std::size_t best = first;
            const std::size_t end = first + arity < n ? first + arity : n;
            for (std::size_t c = first + 1; c < end; ++c)
                if (before(heap_[c], heap_[best]))
                    best = c;
            if (!before(heap_[best], e))
                break;
            place(i, heap_[best]);
            i = best;
        }
        place(i, e);
    }

    std::vector<entry> heap_;
    std::size_t seq_ = 0;
};

} // namespace corio::detail
