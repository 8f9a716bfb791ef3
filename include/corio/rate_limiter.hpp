// SPDX-License-Identifier: MIT
#pragma once

#include <corio/detail/assert.hpp>
#include <corio/detail/timer_heap.hpp>
#include <corio/io/event_loop.hpp>
#include <corio/io/loop_affinity.hpp>
#include <corio/waiter_queue.hpp>

#include <chrono>
#include <coroutine>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

namespace corio {

/// What `rate_limiter::scoped_acquire` returns: the guide's `async with RateLimiter(...)`. A
/// rate permit is spent, not given back, so releasing it does nothing.
struct [[nodiscard]] rate_permit {};

/// An exact sliding-window rate limiter: over any window [t, t + period), at most `rate`
/// acquisitions complete. (The guide's `RateLimiter(100, 60)`; asyncio has none.)
///
/// It keeps the completion times of the last `rate` acquisitions in a ring (a sliding log):
/// an acquisition may complete once the oldest of them is `period` old. O(1) per acquisition,
/// 8 bytes of memory per unit of `rate` (a rate of ten million is 80 MB: for huge rates, a
/// coarser sliding-window counter trades exactness for constant memory). Time is the loop's
/// monotonic clock, so a manual clock makes it deterministic.
///
/// **Resumption**: waiters are FIFO; the limiter sleeps (one timer, no system call) exactly
/// until the oldest stamp leaves the window, then admits as many waiters as the window allows.
/// **Cancellation**: a cancelled waiter leaves the queue and throws `cancelled_error` without
/// consuming a slot; one already admitted keeps its slot.
/// **Errors**: `std::invalid_argument` for a zero or negative rate or period.
/// **Thread-safety**: one loop, the first that uses it (from another, a `std::logic_error`). Share
/// one limiter between the callers it limits: a limiter built per call limits nothing.
class rate_limiter : detail::timer_node {
public:
    using clock = std::chrono::steady_clock;
    using duration = clock::duration;
    using time_point = clock::time_point;

    /// At most `rate` acquisitions in any window of length `period`.
    template <class Rep, class Period>
    rate_limiter(std::ptrdiff_t rate, std::chrono::duration<Rep, Period> period)
        : stamps_(checked_rate(rate)), period_(checked_period(period)) {
        fire = &on_timer;
    }
    rate_limiter(const rate_limiter&) = delete;
    rate_limiter& operator=(const rate_limiter&) = delete;
    ~rate_limiter() { disarm_timer(); }

    [[nodiscard]] std::size_t rate() const noexcept { return stamps_.size(); }
    [[nodiscard]] duration period() const noexcept { return period_; }
    /// Coroutines waiting for a slot.
    [[nodiscard]] std::size_t waiting() const noexcept { return waiters_.size(); }

    /// Takes a slot without waiting; false when the window is full or others are waiting.
    [[nodiscard]] bool try_acquire() {
        affinity_.check("corio::rate_limiter");
        if (!waiters_.empty())
            return false;
        return admit(event_loop::current("corio::rate_limiter::try_acquire").now());
    }

    class [[nodiscard]] acquire_awaiter : detail::waiter {
    public:
        explicit acquire_awaiter(rate_limiter& l) noexcept : lim_(l) {}
        [[nodiscard]] bool await_ready() { return lim_.try_acquire(); }
        template <class Promise>
        bool await_suspend(std::coroutine_handle<Promise> h) {
            lim_.arm_timer(/*force=*/true); // first: if it throws, nothing is linked yet
            if (lim_.waiters_.suspend(*this, h))
                return true;
            if (lim_.waiters_.empty())
                lim_.disarm_timer();
            return false;
        }
        void await_resume() const {
            if (status() == state::cancelled && lim_.waiters_.empty())
                lim_.disarm_timer(); // nobody left to wake: leave no timer behind
            if (status() != state::idle)
                (void)finish();
        }

    private:
        rate_limiter& lim_;
    };

    class [[nodiscard]] scoped_awaiter : public acquire_awaiter {
    public:
        using acquire_awaiter::acquire_awaiter;
        rate_permit await_resume() const {
            acquire_awaiter::await_resume();
            return {};
        }
    };

    /// Waits until the window has room, then takes a slot.
    acquire_awaiter acquire() {
        affinity_.check("corio::rate_limiter");
        return acquire_awaiter{*this};
    }
    /// As `acquire`, returning a `rate_permit` for `auto permit = co_await lim.scoped_acquire();`.
    scoped_awaiter scoped_acquire() {
        affinity_.check("corio::rate_limiter");
        return scoped_awaiter{*this};
    }

private:
    static std::size_t checked_rate(std::ptrdiff_t rate) {
        if (rate < 1)
            throw std::invalid_argument("corio::rate_limiter: rate must be at least 1, got " +
                                        std::to_string(rate));
        return static_cast<std::size_t>(rate);
    }
    template <class Rep, class Period>
    static duration checked_period(std::chrono::duration<Rep, Period> period) {
        using seconds = std::chrono::duration<double>;
        if (period <= std::chrono::duration<Rep, Period>::zero()) {
            const double s = seconds(period).count();
            throw std::invalid_argument(
                "corio::rate_limiter: period must be positive, got " +
                (s > -9e9
                     ? std::to_string(
                           std::chrono::duration_cast<std::chrono::nanoseconds>(period).count()) +
                           " ns"
                     : std::to_string(s) + " s"));
        }
        if (seconds(period) >= seconds(duration::max()))
            return duration::max(); // saturate: longer than the clock can tell apart
        return std::chrono::ceil<duration>(period);
    }

    /// The oldest of the last `rate` stamps, or nothing while fewer were recorded.
    [[nodiscard]] bool window_full() const noexcept { return recorded_ == stamps_.size(); }

    /// Records an acquisition at `now` when the window allows it.
    bool admit(time_point now) {
        if (window_full()) {
            if (now - stamps_[head_] < period_) // a difference: no overflow for huge periods
                return false;
            stamps_[head_] = now; // the oldest stamp has left the window: reuse its slot
        } else {
            stamps_[head_] = now;
            ++recorded_;
        }
        if (++head_ == stamps_.size())
            head_ = 0;
        return true;
    }

    /// Sleeps until the oldest stamp leaves the window (the window is full whenever someone
    /// waits), unless a timer already runs or `force` is false and nobody waits.
    void arm_timer(bool force = false) {
        if (scheduled() || (!force && waiters_.empty()))
            return;
        loop_ = &event_loop::current("corio::rate_limiter");
        const time_point oldest = stamps_[head_];
        deadline = oldest > time_point::max() - period_ ? time_point::max() : oldest + period_;
        loop_->add_timer(*this);
    }

    void disarm_timer() noexcept {
        if (scheduled()) // only then is loop_ known to be alive
            loop_->remove_timer(*this);
    }

    static void on_timer(detail::timer_node* t) noexcept {
        auto* self = static_cast<rate_limiter*>(t);
        const time_point now = self->loop_->last_now(); // the loop read it to fire this timer
        try {
            while (!self->waiters_.empty() && self->admit(now))
                self->waiters_.grant_front();
            self->arm_timer();
        } catch (...) {
            CORIO_ASSERT(false, "rate_limiter could not wake its waiters (out of memory)");
        }
    }

    std::vector<time_point> stamps_; // ring of the last `rate` completion times
    std::size_t head_ = 0;           // the oldest stamp, once the ring is full
    std::size_t recorded_ = 0;
    duration period_;
    detail::waiter_queue waiters_;
    detail::loop_affinity affinity_;
    event_loop* loop_ = nullptr;
};

} // namespace corio
