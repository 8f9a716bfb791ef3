// SPDX-License-Identifier: MIT
#pragma once

#include <corio/io/loop_affinity.hpp>
#include <corio/waiter_queue.hpp>

#include <coroutine>
#include <cstddef>

namespace corio {

/// A flag coroutines can wait for (asyncio.Event).
///
/// **Resumption**: `set()` wakes every waiter, in the order they started waiting, through the
/// loop's ready queue.
/// **Cancellation**: a cancelled waiter leaves the queue and throws `cancelled_error`.
/// **Thread-safety**: one loop, the first that uses it (from another, a `std::logic_error`);
/// from another thread, `loop.post([&]{ ev.set(); })`.
class event {
public:
    event() = default;
    event(const event&) = delete;
    event& operator=(const event&) = delete;

    /// Sets the flag and wakes every waiter.
    void set() {
        affinity_.check("corio::event");
        set_ = true;
        waiters_.wake_all(detail::waiter::state::granted);
    }
    /// Clears the flag; later waits block until the next `set()`.
    void clear() noexcept { set_ = false; }
    [[nodiscard]] bool is_set() const noexcept { return set_; }
    /// Coroutines waiting now.
    [[nodiscard]] std::size_t waiting() const noexcept { return waiters_.size(); }

    class [[nodiscard]] wait_awaiter : detail::waiter {
    public:
        explicit wait_awaiter(event& ev) noexcept : ev_(ev) {}
        [[nodiscard]] bool await_ready() const noexcept { return ev_.set_; }
        template <class Promise>
        bool await_suspend(std::coroutine_handle<Promise> h) {
            return ev_.waiters_.suspend(*this, h);
        }
        void await_resume() const {
            if (status() != state::idle)
                (void)finish();
        }

    private:
        event& ev_;
    };

    /// Waits until the flag is set; returns at once if it is.
    wait_awaiter wait() {
        affinity_.check("corio::event");
        return wait_awaiter{*this};
    }

private:
    detail::waiter_queue waiters_;
    detail::loop_affinity affinity_;
    bool set_ = false;
};

} // namespace corio
