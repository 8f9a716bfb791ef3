// SPDX-License-Identifier: MIT
#pragma once

#include <chrono>
#include <stdexcept>
#include <string>

namespace corio {

/// A clock that moves only when told to: give it to a loop through `loop_options::clock` and
/// timers, timeouts and rate limiters become deterministic (tokio's paused time).
///
/// When the loop has nothing ready and no operation in flight but a timer pending, it advances
/// the clock to that timer's deadline itself, so a test of "sleep 10 s" takes no time.
/// **Thread-safety**: none; use it from the loop's thread.
class manual_clock {
public:
    using duration = std::chrono::steady_clock::duration;
    using time_point = std::chrono::steady_clock::time_point;

    /// Starts at `start` (by default the real steady clock's reading, so the two stay comparable).
    explicit manual_clock(time_point start = std::chrono::steady_clock::now()) noexcept
        : now_(start) {}

    [[nodiscard]] time_point now() const noexcept { return now_; }

    /// Moves time forward by `d`.
    /// **Errors**: `std::invalid_argument` for a negative duration (the clock is monotonic).
    void advance(duration d) {
        if (d < duration::zero())
            throw std::invalid_argument("corio::manual_clock::advance: negative duration (" +
                                        std::to_string(d.count()) + " ticks)");
        now_ += d;
    }

    /// Moves time forward to `t`; a `t` in the past is ignored (the clock is monotonic).
    void advance_to(time_point t) noexcept {
        if (t > now_)
            now_ = t;
    }

private:
    time_point now_;
};

} // namespace corio
