// SPDX-License-Identifier: MIT
#pragma once

#include <corio/detail/promise_base.hpp>

#include <coroutine>
#include <exception>
#include <new>
#include <stdexcept>
#include <type_traits>
#include <utility>

namespace corio {

template <class T = void>
class task;

namespace detail {

template <class T>
class task_promise;

/// Resumes the awaiter when the task finishes (or lets a root task's bookkeeping decide).
struct final_awaiter {
    [[nodiscard]] bool await_ready() const noexcept { return false; }
    template <class Promise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> h) noexcept {
        return h.promise().on_final(h);
    }
    void await_resume() const noexcept {}
};

template <class T>
class task_promise final : public promise_base {
public:
    task<T> get_return_object() noexcept;
    [[nodiscard]] std::suspend_always initial_suspend() const noexcept { return {}; }
    [[nodiscard]] final_awaiter final_suspend() const noexcept { return {}; }

    template <class U>
        requires std::is_convertible_v<U&&, T>
    void return_value(U&& value) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
        ::new (static_cast<void*>(&value_)) T(std::forward<U>(value));
        has_value_ = true;
    }

    /// The result, moved out; rethrows the coroutine's exception.
    T take() {
        if (exception_)
            std::rethrow_exception(exception_);
        return std::move(value_);
    }

    // Not `= default`: the union's member is constructed by return_value, not here.
    task_promise() noexcept {} // NOLINT(modernize-use-equals-default)
    ~task_promise() {
        if (has_value_)
            value_.~T();
    }

private:
    union {
        T value_;
    };
    bool has_value_ = false;
};

template <>
class task_promise<void> final : public promise_base {
public:
    task<void> get_return_object() noexcept;
    [[nodiscard]] std::suspend_always initial_suspend() const noexcept { return {}; }
    [[nodiscard]] final_awaiter final_suspend() const noexcept { return {}; }
    void return_void() const noexcept {}
    void take() const {
        if (exception_)
            std::rethrow_exception(exception_);
    }
};

} // namespace detail

/// A lazy coroutine producing a `T` (asyncio's coroutine object): it starts when awaited (or
/// spawned), runs on the awaiting coroutine's loop, and hands back its value or rethrows its
/// exception at the `co_await`.
///
/// **Ownership**: move-only; destroying a task that never started frees its frame and
/// arguments. A task can be awaited once: awaiting it again throws `std::logic_error`.
///
/// **Cancellation**: an awaited task shares its awaiter's cancellation state, so
/// `join_handle::cancel()` reaches the innermost suspended `co_await` of the chain.
///
/// **Stack**: the awaiter resumes the child inline and notices when it finishes without
/// suspending, so a loop of a million synchronously completing awaits uses constant stack on
/// every compiler and build (it does not rely on the tail call of symmetric transfer, which
/// g++ 12 omits below -O2 and under sanitizers, GCC bug 100897).
template <class T>
class [[nodiscard]] task {
    static_assert(!std::is_reference_v<T>, "corio::task<T&> is not supported; return a pointer");

public:
    using promise_type = detail::task_promise<T>;
    using value_type = T;
    using handle_type = std::coroutine_handle<promise_type>;

    task() noexcept = default;
    explicit task(handle_type h) noexcept : h_(h) {}
    task(task&& other) noexcept : h_(std::exchange(other.h_, {})) {}
    task& operator=(task&& other) noexcept {
        if (this != &other) {
            if (h_)
                h_.destroy();
            h_ = std::exchange(other.h_, {});
        }
        return *this;
    }
    task(const task&) = delete;
    task& operator=(const task&) = delete;
    ~task() {
        if (h_)
            h_.destroy();
    }

    /// True when the task has run to its end.
    [[nodiscard]] bool done() const noexcept { return h_ && h_.done(); }
    /// True when this object holds a coroutine.
    [[nodiscard]] explicit operator bool() const noexcept { return static_cast<bool>(h_); }

    /// Gives up ownership of the coroutine (used by `spawn`).
    [[nodiscard]] handle_type release() noexcept { return std::exchange(h_, {}); }

    class awaiter {
    public:
        explicit awaiter(handle_type h) noexcept : h_(h) {}

        [[nodiscard]] bool await_ready() const {
            if (!h_)
                throw std::logic_error("corio::task: awaited an empty task (moved from or "
                                       "released)");
            if (h_.promise().started())
                throw std::logic_error("corio::task: awaited twice; a task runs once");
            return false;
        }

        template <class Promise>
        bool await_suspend(std::coroutine_handle<Promise> awaiting) noexcept {
            auto& child = h_.promise();
            child.start_awaited(awaiting, detail::cancel_state_of(awaiting));
            h_.resume();
            return !child.finished_inline();
        }

        T await_resume() { return h_.promise().take(); }

    private:
        handle_type h_;
    };

    awaiter operator co_await() & noexcept { return awaiter{h_}; }
    awaiter operator co_await() && noexcept { return awaiter{h_}; }

private:
    handle_type h_;
};

namespace detail {

template <class T>
task<T> task_promise<T>::get_return_object() noexcept {
    return task<T>{std::coroutine_handle<task_promise>::from_promise(*this)};
}

inline task<void> task_promise<void>::get_return_object() noexcept {
    return task<void>{std::coroutine_handle<task_promise>::from_promise(*this)};
}

} // namespace detail
} // namespace corio
