// SPDX-License-Identifier: MIT
#pragma once

#include <corio/detail/blocking_pool.hpp>
#include <corio/io/event_loop.hpp>

#include <coroutine>
#include <exception>
#include <functional>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>

namespace corio {

/// The awaiter of `to_thread`: a blocking job, living in the awaiting coroutine's frame.
template <class Fn>
class [[nodiscard]] to_thread_awaiter : detail::blocking_job {
public:
    using result_type = std::invoke_result_t<Fn&>;

    to_thread_awaiter(event_loop& loop, Fn fn) : loop_(loop), fn_(std::move(fn)) {
        run = &run_job;
        done = &job_done;
    }

    [[nodiscard]] bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) {
        waiter_ = h;
        loop_.start_blocking(*this);
    }
    result_type await_resume() {
        if (error_)
            std::rethrow_exception(error_);
        if constexpr (!std::is_void_v<result_type>)
            return std::move(*value_);
    }

private:
    static void run_job(detail::blocking_job* j) noexcept { // on a worker thread
        auto* self = static_cast<to_thread_awaiter*>(j);
        try {
            if constexpr (std::is_void_v<result_type>)
                std::invoke(self->fn_);
            else
                self->value_.emplace(std::invoke(self->fn_));
        } catch (...) {
            self->error_ = std::current_exception();
        }
        self->loop_.finish_blocking(*self); // back to the loop's thread: allocates nothing
    }
    static void job_done(detail::blocking_job* j) noexcept { // on the loop's thread
        static_cast<to_thread_awaiter*>(j)->waiter_.resume();
    }

    using stored = std::conditional_t<std::is_void_v<result_type>, char, result_type>;

    event_loop& loop_;
    Fn fn_;
    std::optional<stored> value_;
    std::exception_ptr error_;
    std::coroutine_handle<> waiter_;
};

/// Runs the blocking call `fn(args...)` on the loop's worker pool and resumes with its result
/// or rethrows its exception (asyncio.to_thread); other tasks run meanwhile. `fn` and `args`
/// are moved into the awaiter.
/// **Resumption**: on the loop's thread, once `fn` has returned.
/// **Cancellation**: not a cancellation point: a blocking call cannot be interrupted, and
/// dropping its result could lose a resource it made; a request made meanwhile is delivered
/// at the task's next cancellable suspension.
/// **Errors**: rethrows what `fn` throws; `std::logic_error` when the thread has no loop.
template <class Fn, class... Args>
[[nodiscard]] auto to_thread(Fn fn, Args... args) {
    auto call = [fn = std::move(fn), ... args = std::move(args)]() mutable -> decltype(auto) {
        return std::invoke(fn, std::move(args)...);
    };
    return to_thread_awaiter<decltype(call)>{event_loop::current("corio::to_thread"),
                                             std::move(call)};
}

} // namespace corio
