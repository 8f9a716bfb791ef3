// SPDX-License-Identifier: MIT
#pragma once

#include <corio/detail/cancel_state.hpp>
#include <corio/detail/cancellation_point.hpp>
#include <corio/detail/intrusive_list.hpp>
#include <corio/io/event_loop.hpp>

#include <coroutine>
#include <cstdint>
#include <utility>

namespace corio::detail {

class waiter_queue;

/// One coroutine waiting in a primitive's FIFO (a semaphore's acquirer, a queue's getter...).
/// Lives in the waiting awaiter, so waiting never allocates.
class waiter : public list_hook, public cancel_target, public cancellation_point {
public:
    /// Where the wait stands: `granted` means the primitive handed this waiter what it waited
    /// for (a permit, an item); `closed` means the primitive was closed under it.
    enum class state : std::uint8_t { idle, waiting, granted, cancelled, closed };

    waiter() noexcept { on_cancel = &on_cancelled; }
    waiter(const waiter&) = delete;
    waiter& operator=(const waiter&) = delete;

    [[nodiscard]] state status() const noexcept { return state_; }

protected:
    /// For `await_resume`: throws `cancelled_error` when the wait was cancelled (consuming the
    /// request); true when granted, false when closed.
    [[nodiscard]] bool finish() const {
        if (state_ == state::cancelled)
            throw_if_cancelled();
        return state_ == state::granted;
    }

private:
    friend class waiter_queue;
    static void on_cancelled(cancel_target* t) noexcept;

    std::coroutine_handle<> handle_;
    waiter_queue* queue_ = nullptr;
    state state_ = state::idle;
};

/// A FIFO of waiters with asyncio's cancellation rules: a cancelled waiter is unlinked and woken
/// with `cancelled_error`; a waiter that was already granted keeps what it was given (a pending
/// cancellation then surfaces at its next suspension), so nothing handed over is ever lost.
/// Waiters resume through the loop's ready queue, in the order they were woken.
class waiter_queue {
public:
    waiter_queue() = default;
    waiter_queue(const waiter_queue&) = delete;
    waiter_queue& operator=(const waiter_queue&) = delete;

    [[nodiscard]] bool empty() const noexcept { return list_.empty(); }
    [[nodiscard]] std::size_t size() const noexcept { return list_.size(); }
    [[nodiscard]] waiter* front() const noexcept { return list_.front(); }

    /// Enqueues `w` for the coroutine `h`; false (do not suspend) when a cancellation is
    /// already pending, which `w`'s `finish()` then delivers.
    template <class Promise>
    bool suspend(waiter& w, std::coroutine_handle<Promise> h) {
        if (w.cancel_pending(h)) {
            w.state_ = waiter::state::cancelled;
            return false;
        }
        w.handle_ = h;
        w.queue_ = this;
        w.state_ = waiter::state::waiting;
        list_.push_back(w);
        if (w.cancel_ != nullptr)
            w.cancel_->arm(&w);
        return true;
    }

    /// Removes the first waiter, marks it `granted` and schedules it; returns it, so the caller
    /// can hand it an item before it runs.
    waiter& grant_front() { return wake(*list_.front(), waiter::state::granted); }

    /// Wakes every waiter with `how` (granted or closed).
    void wake_all(waiter::state how) {
        while (waiter* w = list_.front())
            wake(*w, how);
    }

private:
    friend class waiter;

    waiter& wake(waiter& w, waiter::state how) {
        list_.erase(w);
        if (w.cancel_ != nullptr)
            w.cancel_->disarm(&w);
        w.state_ = how;
        event_loop::current().schedule(w.handle_);
        return w;
    }

    intrusive_list<waiter> list_;
};

inline void waiter::on_cancelled(cancel_target* t) noexcept {
    auto* w = static_cast<waiter*>(t);
    w->queue_->list_.erase(*w);
    w->state_ = state::cancelled;
    event_loop::current().schedule(w->handle_);
}

} // namespace corio::detail
