// SPDX-License-Identifier: MIT
#pragma once

#include <coroutine>
#include <cstddef>
#include <memory>

namespace corio::detail {

/// FIFO of coroutines ready to run (asyncio's `call_soon` queue): a growable power-of-two ring,
/// so steady-state push and pop never allocate.
class ready_queue {
public:
    [[nodiscard]] bool empty() const noexcept { return head_ == tail_; }
    [[nodiscard]] std::size_t size() const noexcept { return tail_ - head_; }

    void push(std::coroutine_handle<> h) {
        if (size() == capacity_)
            grow();
        slots_[tail_++ & (capacity_ - 1)] = h;
    }

    std::coroutine_handle<> pop() noexcept { return slots_[head_++ & (capacity_ - 1)]; }

private:
    void grow() {
        const std::size_t cap = capacity_ == 0 ? 256 : capacity_ * 2;
        auto slots = std::make_unique<std::coroutine_handle<>[]>(cap);
        const std::size_t n = size();
        for (std::size_t i = 0; i < n; ++i)
            slots[i] = slots_[(head_ + i) & (capacity_ - 1)];
        slots_ = std::move(slots);
        capacity_ = cap;
        head_ = 0;
        tail_ = n;
    }

    std::unique_ptr<std::coroutine_handle<>[]> slots_;
    std::size_t capacity_ = 0;
    std::size_t head_ = 0;
    std::size_t tail_ = 0;
};

} // namespace corio::detail
