// SPDX-License-Identifier: MIT
#pragma once

#include <corio/detail/cancel_state.hpp>
#include <corio/detail/cancellation_point.hpp>
#include <corio/detail/cancelled_error.hpp>
#include <corio/detail/promise_base.hpp>
#include <corio/io/event_loop.hpp>
#include <corio/task.hpp>

#include <coroutine>
#include <stdexcept>
#include <utility>

namespace corio {

/// A spawned task's handle (asyncio's `Task` object): await it for the result, cancel it, or
/// let it go. Move-only; destroying or `detach()`ing it lets the task run on alone, and an
/// exception it then ends with goes to the loop's exception handler.
template <class T = void>
class [[nodiscard]] join_handle {
public:
    using handle_type = std::coroutine_handle<detail::task_promise<T>>;

    join_handle() noexcept = default;
    explicit join_handle(handle_type h) noexcept : h_(h) {}
    join_handle(join_handle&& other) noexcept : h_(std::exchange(other.h_, {})) {}
    join_handle& operator=(join_handle&& other) noexcept {
        if (this != &other) {
            detach();
            h_ = std::exchange(other.h_, {});
        }
        return *this;
    }
    ~join_handle() { detach(); }

    /// True when the task has finished (with a value, an exception or a cancellation).
    [[nodiscard]] bool done() const noexcept { return h_ && h_.promise().finished(); }

    /// Requests cancellation (asyncio's `Task.cancel`): a task suspended in a cancellable wait
    /// is woken with `cancelled_error`; a running or ready one sees it at its next suspension.
    /// Returns false when there is nothing to cancel (finished or detached).
    bool cancel() noexcept {
        if (!h_ || h_.promise().finished())
            return false;
        h_.promise().request_cancel();
        return true;
    }

    /// Lets the task run on without a handle.
    void detach() noexcept {
        if (handle_type h = std::exchange(h_, {}))
            h.promise().release_root(h);
    }

    class awaiter : detail::cancel_target, detail::cancellation_point {
    public:
        explicit awaiter(handle_type h) : h_(h) {
            if (!h_)
                throw std::logic_error("corio::join_handle: awaited an empty handle (moved from "
                                       "or detached)");
            on_cancel = &on_cancelled;
        }
        [[nodiscard]] bool await_ready() const {
            if (h_.promise().retrieved())
                throw std::logic_error("corio::join_handle: the result was already taken (a "
                                       "handle is awaited for its result once)");
            return h_.promise().finished();
        }

        template <class Promise>
        bool await_suspend(std::coroutine_handle<Promise> joiner) {
            if (cancel_pending(joiner))
                return false;
            if (h_.promise().has_joiner())
                throw std::logic_error("corio::join_handle: awaited by two coroutines at once");
            joiner_ = joiner;
            h_.promise().set_joiner(joiner);
            if (cancel_ != nullptr)
                cancel_->arm(this);
            return true;
        }

        T await_resume() {
            if (cancel_ != nullptr) {
                cancel_->disarm(this);
                if (!h_.promise().finished() && cancel_->requested()) {
                    cancel_->consume();
                    throw cancelled_error{};
                }
            }
            h_.promise().mark_retrieved();
            return h_.promise().take();
        }

    private:
        static void on_cancelled(detail::cancel_target* t) noexcept {
            auto* self = static_cast<awaiter*>(t);
            self->h_.promise().clear_joiner();
            event_loop::current().schedule(self->joiner_);
        }

        handle_type h_;
        std::coroutine_handle<> joiner_;
    };

    /// Waits for the task and returns its value or rethrows its exception (a cancelled task
    /// rethrows `cancelled_error`).
    /// **Cancellation**: cancelling the *waiting* coroutine wakes it with `cancelled_error` and
    /// leaves the task running (call `cancel()` on the handle to stop the task itself).
    awaiter operator co_await() const { return awaiter{h_}; }

private:
    handle_type h_;
};

/// Starts `t` on the current loop, concurrently with the caller (asyncio.create_task). It first
/// runs on the next loop turn.
/// **Errors**: `std::logic_error` when the thread has no loop or `t` is empty.
template <class T>
join_handle<T> spawn(task<T> t) {
    event_loop& loop = event_loop::current("corio::spawn");
    auto h = t.release();
    if (!h)
        throw std::logic_error("corio::spawn: empty task (moved from or already started)");
    if (h.promise().started())
        throw std::logic_error("corio::spawn: the task was already awaited");
    loop.start_task(h.promise(), h);
    return join_handle<T>{h};
}

} // namespace corio
