// SPDX-License-Identifier: MIT
#pragma once

#include <corio/detail/cancel_state.hpp>
#include <corio/detail/cancelled_error.hpp>
#include <corio/detail/promise_base.hpp>
#include <corio/detail/timer_heap.hpp>
#include <corio/gather.hpp>
#include <corio/io/event_loop.hpp>
#include <corio/task.hpp>

#include <chrono>
#include <coroutine>
#include <stdexcept>
#include <string>
#include <utility>

namespace corio {

/// Thrown by `timeout` when the deadline passed first (asyncio's `TimeoutError`), after the
/// inner work was cancelled and has unwound.
///
/// `std::runtime_error` is a virtual base, so a higher layer's error can be a `timeout_error`
/// too and still be one `std::runtime_error`: `corio::http::timeout_error` derives from both
/// this and `corio::http::error`, and `catch (const corio::timeout_error&)` catches every
/// timeout corio reports.
class timeout_error : public virtual std::runtime_error {
public:
    explicit timeout_error(std::chrono::nanoseconds limit)
        : std::runtime_error("corio::timeout: timed out after " + describe(limit)), limit_(limit) {}
    // Copies only: a defaulted move assignment would move the virtual base more than once
    // (g++'s -Wvirtual-move-assign).
    timeout_error(const timeout_error&) = default;
    timeout_error& operator=(const timeout_error&) = default;
    ~timeout_error() override = default;
    /// The limit that passed.
    [[nodiscard]] std::chrono::nanoseconds limit() const noexcept { return limit_; }

private:
    static std::string describe(std::chrono::nanoseconds d) {
        using namespace std::chrono;
        if (d % milliseconds(1) == nanoseconds::zero())
            return std::to_string(duration_cast<milliseconds>(d).count()) + " ms";
        return std::to_string(d.count()) + " ns";
    }
    std::chrono::nanoseconds limit_;
};

/// The awaiter of `timeout`: runs the inner task in a cancellation scope of its own, with a
/// timer that cancels that scope, and forwards an outer cancellation into it.
template <class T>
class [[nodiscard]] timeout_awaiter : detail::timer_node, detail::cancel_target {
public:
    using handle_type = typename task<T>::handle_type;

    timeout_awaiter(task<T> inner, event_loop::duration limit)
        : h_(inner.release()), limit_(limit) {
        if (!h_ || h_.promise().started())
            throw std::logic_error("corio::timeout: empty or already awaited task");
        fire = &on_fire;
        on_cancel = &on_outer_cancel;
    }
    timeout_awaiter(timeout_awaiter&& other) noexcept
        : h_(std::exchange(other.h_, {})), limit_(other.limit_) {
        fire = &on_fire;
        on_cancel = &on_outer_cancel;
    }
    timeout_awaiter(const timeout_awaiter&) = delete;
    timeout_awaiter& operator=(const timeout_awaiter&) = delete;
    timeout_awaiter& operator=(timeout_awaiter&&) = delete;
    ~timeout_awaiter() {
        if (h_)
            h_.destroy();
    }

    [[nodiscard]] bool await_ready() const noexcept { return false; }

    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> h) {
        outer_ = detail::cancel_state_of(h);
        if (outer_ != nullptr && outer_->requested())
            return false; // await_resume delivers it; the inner task never starts
        loop_ = &event_loop::current("corio::timeout");
        const event_loop::time_point now = loop_->now();
        deadline = limit_ >= event_loop::time_point::max() - now ? event_loop::time_point::max()
                                                                 : now + limit_;
        loop_->add_timer(*this);
        if (outer_ != nullptr)
            outer_->arm(this);
        auto& inner = h_.promise();
        inner.start_awaited(h, &scope_); // the inner chain answers to our scope, not to `h`'s
        h_.resume();
        if (!inner.finished_inline())
            return true;
        finish();
        return false;
    }

    T await_resume() {
        if (loop_ == nullptr) { // cancelled before it started
            outer_->consume();
            throw cancelled_error{};
        }
        finish();
        try {
            return h_.promise().take();
        } catch (const cancelled_error&) {
            if (outer_ != nullptr && outer_->requested()) {
                outer_->consume(); // an outer cancel is never reported as a timeout
                throw;
            }
            if (timed_out_)
                throw timeout_error{limit_};
            throw;
        }
    }

private:
    void finish() noexcept {
        loop_->remove_timer(*this);
        if (outer_ != nullptr)
            outer_->disarm(this);
    }
    static void on_fire(detail::timer_node* t) noexcept {
        auto* self = static_cast<timeout_awaiter*>(t);
        self->timed_out_ = true;
        self->scope_.request();
    }
    static void on_outer_cancel(detail::cancel_target* t) noexcept {
        static_cast<timeout_awaiter*>(t)->scope_.request();
    }

    handle_type h_;
    event_loop::duration limit_;
    event_loop* loop_ = nullptr;
    detail::cancel_state* outer_ = nullptr;
    detail::cancel_state scope_;
    bool timed_out_ = false;
};

/// Awaits `aw` for at most `limit` (asyncio.wait_for / asyncio.timeout): its value, or, when the
/// limit passes first, the inner work is cancelled, awaited until it has unwound, and
/// `timeout_error` is thrown. The inner work must finish before the deadline: if both fall due
/// in the same instant, the timeout wins; if the inner work produced its result before the
/// cancellation reached it (an I/O operation that won the race), that result is returned.
/// **Cancellation**: an outer cancellation cancels the inner work and throws `cancelled_error`
/// once it has unwound; it is never reported as a timeout.
/// **Errors**: rethrows what the inner work throws; `std::logic_error` when the thread has no
/// loop.
template <class Rep, class Period, class Awaitable>
    requires detail::awaitable<Awaitable>
[[nodiscard]] auto timeout(std::chrono::duration<Rep, Period> limit, Awaitable&& aw) {
    auto inner = detail::as_task(std::forward<Awaitable>(aw));
    using T = typename decltype(inner)::value_type;
    using duration = event_loop::duration;
    duration step = duration::zero();
    if (limit >= std::chrono::duration_cast<std::chrono::duration<double>>(duration::max()))
        step = duration::max(); // saturate: a limit beyond the clock's range never fires
    else if (limit > std::chrono::duration<Rep, Period>::zero())
        step = std::chrono::ceil<duration>(limit);
    return timeout_awaiter<T>{std::move(inner), step};
}

} // namespace corio
