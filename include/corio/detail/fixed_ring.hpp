// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <optional>
#include <utility>
#include <vector>

namespace corio::detail {

/// The FIFO storage of a bounded queue (`bounded_queue`, `channel`): `capacity` slots allocated
/// once, used as a ring. The owner checks `full()` before `push` and `empty()` before `pop`.
template <class T>
class fixed_ring {
public:
    explicit fixed_ring(std::size_t capacity) : slots_(capacity) {}

    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] std::size_t capacity() const noexcept { return slots_.size(); }
    [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
    [[nodiscard]] bool full() const noexcept { return size_ == slots_.size(); }

    void push(T&& value) {
        std::size_t tail = head_ + size_;
        if (tail >= slots_.size())
            tail -= slots_.size();
        slots_[tail].emplace(std::move(value));
        ++size_;
    }

    T pop() {
        T value = std::move(*slots_[head_]);
        slots_[head_].reset();
        if (++head_ == slots_.size())
            head_ = 0;
        --size_;
        return value;
    }

private:
    std::vector<std::optional<T>> slots_;
    std::size_t head_ = 0;
    std::size_t size_ = 0;
};

} // namespace corio::detail
