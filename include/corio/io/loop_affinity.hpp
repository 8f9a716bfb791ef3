// SPDX-License-Identifier: MIT
#pragma once

#include <corio/io/event_loop.hpp>

#include <stdexcept>
#include <string>

namespace corio::detail {

/// Ties a loop-bound object (a semaphore, a queue, a task group, an HTTP client...) to the loop
/// it belongs to: the first loop that uses it. (Not the one that made it: an object may be
/// made on one loop and handed to another before it is used, as a server does with the part it
/// runs on each loop.) Each operation checks it, so using the object from a second loop's
/// thread is a clear `std::logic_error` rather than a data race. The check is one thread-local
/// read.
class loop_affinity {
public:
    loop_affinity() noexcept = default;

    /// **Errors**: `std::logic_error` naming `who` when the calling thread's loop is not the
    /// object's.
    void check(const char* who) {
        event_loop* here = event_loop::current_or_null();
        if (here == loop_) [[likely]]
            return;
        if (loop_ == nullptr && here != nullptr) {
            loop_ = here;
            return;
        }
        throw std::logic_error(
            std::string(who) +
            (here == nullptr ? ": used on a thread without an event loop; "
                             : ": used on another event loop than the one it belongs to; ") +
            "it is loop-bound (hand work across loops with corio::channel, spawn_on or "
            "switch_to)");
    }

    /// The loop the object belongs to, or null before its first use off any loop.
    [[nodiscard]] event_loop* loop() const noexcept { return loop_; }

private:
    event_loop* loop_ = nullptr;
};

} // namespace corio::detail
