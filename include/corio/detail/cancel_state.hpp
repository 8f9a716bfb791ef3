// SPDX-License-Identifier: MIT
#pragma once

#include <utility>

namespace corio::detail {

class promise_base;

/// A suspended awaiter that can abandon its wait: the one currently registered in a
/// `cancel_state`. `on_cancel` must arrange for the waiting coroutine to be resumed (never
/// inline: through the ready queue, or on the cancelled I/O operation's own completion).
struct cancel_target {
    void (*on_cancel)(cancel_target*) noexcept = nullptr;
};

/// The cancellation state of one chain of awaited tasks (a spawned task and every `task<T>` it
/// awaits, directly or nested). A chain runs one awaiter at a time, so one slot suffices.
///
/// It is touched only on the loop the chain runs on: a request from another loop travels
/// there first (`promise_base::request_cancel`).
///
/// Semantics are asyncio's: a request wakes the registered waiter, or waits for the next
/// cancellable suspension; delivering it as `cancelled_error` consumes it.
class cancel_state {
public:
    [[nodiscard]] bool requested() const noexcept { return requested_; }

    /// Requests cancellation; wakes the registered waiter if there is one.
    void request() noexcept {
        requested_ = true;
        if (cancel_target* t = std::exchange(waiter_, nullptr))
            t->on_cancel(t);
    }
    /// Marks the request as delivered (the awaiter is about to throw `cancelled_error`).
    void consume() noexcept { requested_ = false; }

    void arm(cancel_target* t) noexcept { waiter_ = t; }
    /// The spawned task whose own state this is; null for a scope's (a timeout's).
    [[nodiscard]] promise_base* root() const noexcept { return root_; }
    void set_root(promise_base* p) noexcept { root_ = p; }
    void disarm(cancel_target* t) noexcept {
        if (waiter_ == t)
            waiter_ = nullptr;
    }

private:
    cancel_target* waiter_ = nullptr;
    promise_base* root_ = nullptr;
    bool requested_ = false;
};

} // namespace corio::detail
