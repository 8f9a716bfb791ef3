// SPDX-License-Identifier: MIT
#pragma once

#include <corio/detail/cancel_state.hpp>
#include <corio/detail/cancellation_point.hpp>
#include <corio/detail/timer_heap.hpp>
#include <corio/io/event_loop.hpp>

#include <chrono>
#include <coroutine>

namespace corio {

/// The awaiter of `sleep_for` / `sleep_until`: a timer node in the loop's heap, no system call.
class [[nodiscard]] sleep_awaiter : detail::timer_node,
                                    detail::cancel_target,
                                    detail::cancellation_point {
public:
    /// Due at `deadline`.
    sleep_awaiter(event_loop& loop, event_loop::time_point deadline) noexcept : loop_(loop) {
        this->deadline = deadline;
        fire = &on_fire;
        on_cancel = &on_cancelled;
    }
    /// Due `d` after the first `co_await` (asyncio's sleep starts when awaited, not when made).
    sleep_awaiter(event_loop& loop, event_loop::duration d) noexcept
        : sleep_awaiter(loop, event_loop::time_point{}) {
        relative_ = d;
        relative_set_ = true;
    }

    [[nodiscard]] bool await_ready() const noexcept { return false; }

    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> h) {
        if (cancel_pending(h))
            return false; // a pending request is delivered here, without sleeping
        if (relative_set_) {
            relative_set_ = false; // from now on the deadline stands
            deadline = relative_ <= event_loop::duration::zero() ? loop_.last_now() // no clock read
                                                                 : after(loop_.now(), relative_);
        }
        waiter_ = h;
        loop_.add_timer(*this);
        if (cancel_ != nullptr)
            cancel_->arm(this);
        return true;
    }

    void await_resume() const { throw_if_cancelled(); }

private:
    static void on_fire(detail::timer_node* t) noexcept {
        auto* self = static_cast<sleep_awaiter*>(t);
        if (self->cancel_ != nullptr)
            self->cancel_->disarm(self);
        self->loop_.schedule(self->waiter_);
    }
    static void on_cancelled(detail::cancel_target* t) noexcept {
        auto* self = static_cast<sleep_awaiter*>(t);
        self->loop_.remove_timer(*self);
        self->loop_.schedule(self->waiter_);
    }

    // `now + d`, saturated at the clock's end instead of overflowing.
    static event_loop::time_point after(event_loop::time_point now,
                                        event_loop::duration d) noexcept {
        return d >= event_loop::time_point::max() - now ? event_loop::time_point::max() : now + d;
    }

    event_loop& loop_;
    std::coroutine_handle<> waiter_;
    event_loop::duration relative_{};
    bool relative_set_ = false;
};

/// Suspends until the loop's clock reaches `deadline` (a past deadline still yields once).
/// **Resumption**: on the loop's thread, in deadline order (FIFO among equal deadlines).
/// **Cancellation**: a cancelled sleep ends at once and throws `cancelled_error`.
/// **Errors**: `std::logic_error` when the thread has no loop.
[[nodiscard]] inline sleep_awaiter sleep_until(event_loop::time_point deadline) {
    return {event_loop::current("corio::sleep_until"), deadline};
}

/// Suspends for `d` of the loop's clock (asyncio.sleep), counted from the first `co_await`:
/// `auto s = sleep_for(1s); ...; co_await s;` sleeps a whole second whenever it is awaited.
/// `sleep_for(0)` yields to the loop for one turn through the timer path.
/// **Resumption**, **Cancellation**, **Errors**: as `sleep_until`.
template <class Rep, class Period>
[[nodiscard]] sleep_awaiter sleep_for(std::chrono::duration<Rep, Period> d) {
    event_loop& loop = event_loop::current("corio::sleep_for");
    if (d <= std::chrono::duration<Rep, Period>::zero())
        return {loop, event_loop::duration::zero()};
    // Saturate instead of overflowing: sleep_for(hours::max()) means "until cancelled".
    using seconds = std::chrono::duration<double>;
    if (std::chrono::duration_cast<seconds>(d) >=
        std::chrono::duration_cast<seconds>(event_loop::duration::max()))
        return {loop, event_loop::duration::max()};
    return {loop, std::chrono::ceil<event_loop::duration>(d)};
}

/// The awaiter of `yield_now`.
class [[nodiscard]] yield_awaiter : detail::cancellation_point {
public:
    explicit yield_awaiter(event_loop& loop) noexcept : loop_(loop) {}

    [[nodiscard]] bool await_ready() const noexcept { return false; }

    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> h) {
        if (cancel_pending(h))
            return false;
        loop_.schedule(h);
        return true;
    }

    void await_resume() const { throw_if_cancelled(); }

private:
    event_loop& loop_;
};

/// Lets every other ready coroutine run once, then resumes (asyncio.sleep(0)).
/// **Resumption**: after the coroutines that were ready before it (FIFO).
/// **Cancellation**: a pending request is delivered here as `cancelled_error`.
/// **Errors**: `std::logic_error` when the thread has no loop.
[[nodiscard]] inline yield_awaiter yield_now() {
    return yield_awaiter{event_loop::current("corio::yield_now")};
}

} // namespace corio
