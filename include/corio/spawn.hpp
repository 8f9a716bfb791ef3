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
///
/// **Thread-safety**: the handle works from any loop, whichever loop the task runs on
/// (`spawn_on`, `switch_to`): a cancellation travels to the task's loop, and the awaiting
/// coroutine resumes exactly once, on its own loop. One handle is used by one coroutine at a
/// time.
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
            if (!h_.promise().join(joiner, event_loop::current("corio::join_handle").tasks()))
                return false; // it finished on another loop meanwhile
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
            if (self->h_.promise().unjoin())
                event_loop::current().schedule(self->joiner_);
            // else the task finished first and the joiner's resumption is on its way
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

/// Starts `t` on `loop`, which may be another thread's (Seastar's `submit_to`, tokio's
/// `Handle::spawn`): the task runs there, from its next turn, and is one of that loop's tasks
/// (its drain cancels it). Await the handle from any loop to get the result there; `cancel()`
/// travels to the task's loop. On the calling thread's own loop it is `spawn`.
/// **Errors**: `std::logic_error` when `t` is empty or already started.
/// **Thread-safety**: any thread, while `loop` exists.
template <class T>
join_handle<T> spawn_on(event_loop& loop, task<T> t) {
    auto h = t.release();
    if (!h)
        throw std::logic_error("corio::spawn_on: empty task (moved from or already started)");
    if (h.promise().started())
        throw std::logic_error("corio::spawn_on: the task was already awaited");
    if (&loop == event_loop::current_or_null()) {
        loop.start_task(h.promise(), h);
        return join_handle<T>{h};
    }
    h.promise().prepare_root(loop.tasks(), h);
    loop.expect_arrival();
    loop.resume_from_afar(h, &h.promise());
    return join_handle<T>{h};
}

namespace detail {

/// The awaiter of `switch_to`: moves the awaiting spawned task to another loop.
class [[nodiscard]] switch_awaiter : cancellation_point {
public:
    switch_awaiter(event_loop& target, bool cancellable) noexcept
        : target_(target), cancellable_(cancellable) {}

    [[nodiscard]] bool await_ready() const noexcept {
        return event_loop::current_or_null() == &target_;
    }

    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> h) {
        if (cancel_pending(h) && cancellable_)
            return false; // await_resume delivers it; the task stays where it is
        promise_base* task = nullptr;
        if (cancel_ != nullptr) {
            task = cancel_->root();
            if (task == nullptr)
                throw std::logic_error(
                    "corio::switch_to: cannot leave the loop from inside a timeout() (its "
                    "deadline is a timer of this loop); switch before it, or spawn_on the work");
        }
        event_loop& here = event_loop::current("corio::switch_to");
        if (task != nullptr) {
            target_.expect_arrival();
            here.tasks().remove(*task);
            task->move_to(target_.tasks());
        }
        moved_ = true;
        here.depart(target_, h, task); // sent once this thread's stack has left the coroutine
        return true;
    }

    void await_resume() const {
        if (!moved_)
            throw_if_cancelled();
    }

private:
    event_loop& target_;
    bool cancellable_;
    bool moved_ = false;
};

} // namespace detail

/// Continues the awaiting coroutine on `loop` (which may be another thread's): the spawned
/// task it belongs to, with every coroutine awaiting inside it, moves there and becomes one of
/// that loop's tasks. Free when it is already there.
///
/// Loop-bound objects (sockets, semaphores, clients...) stay behind: use them only on the loop
/// that made them.
/// **Cancellation**: a request pending when it is awaited throws `cancelled_error` and the
/// task stays; one made during the move is delivered at the next suspension on `loop`.
/// **Errors**: `std::logic_error` inside a `timeout()` (its deadline is a timer of the loop it
/// started on).
[[nodiscard]] inline detail::switch_awaiter switch_to(event_loop& loop) noexcept {
    return detail::switch_awaiter{loop, true};
}

} // namespace corio
