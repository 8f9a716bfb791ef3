// SPDX-License-Identifier: MIT
#pragma once

#include <coroutine>
#include <cstddef>
#include <vector>

namespace corio::detail {

/// FIFO of coroutines ready to run (asyncio's `call_soon` queue): a growable power-of-two ring,
/// so steady-state push and pop never allocate.
class ready_queue {
public:
    [[nodiscard]] bool empty() const noexcept { return head_ == tail_; }
    [[nodiscard]] std::size_t size() const noexcept { return tail_ - head_; }

    void push(std::coroutine_handle<> h) {
        if (size() == slots_.size())
            grow();
        slots_[tail_++ & (slots_.size() - 1)] = h;
    }

    std::coroutine_handle<> pop() noexcept { return slots_[head_++ & (slots_.size() - 1)]; }

private:
    void grow() {
        const std::size_t cap = slots_.empty() ? 256 : slots_.size() * 2;
        std::vector<std::coroutine_handle<>> slots(cap);
        const std::size_t n = size();
        for (std::size_t i = 0; i < n; ++i)
            slots[i] = slots_[(head_ + i) & (slots_.size() - 1)];
        slots_ = std::move(slots);
        head_ = 0;
        tail_ = n;
    }

    std::vector<std::coroutine_handle<>> slots_; // size: zero or a power of two
    std::size_t head_ = 0;
    std::size_t tail_ = 0;
};

} // namespace corio::detail
