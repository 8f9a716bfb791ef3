// SPDX-License-Identifier: MIT
#pragma once

#include <corio/child_scope.hpp>
#include <corio/outcome.hpp>
#include <corio/spawn.hpp>
#include <corio/task.hpp>

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <stdexcept>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace corio {

/// How `gather` and `gather_settled` run a vector of tasks.
struct gather_options {
    /// At most this many children run at once (0: all of them). A scraper's window: the next
    /// child starts when one finishes.
    std::size_t max_concurrency = 0;
};

/// The winner of `when_any`: its index in the vector and its value (`std::monostate` for
/// `task<void>`).
template <class T>
struct when_any_result {
    std::size_t index;
    std::conditional_t<std::is_void_v<T>, std::monostate, T> value;
};

namespace detail {

/// The awaiter `co_await a` uses: `a.operator co_await()` when it has one, else `a` itself.
template <class A>
decltype(auto) get_awaiter(A&& a) {
    if constexpr (requires { std::forward<A>(a).operator co_await(); })
        return std::forward<A>(a).operator co_await();
    else
        return std::forward<A>(a);
}

/// What `co_await` of an `A` produces.
template <class A>
using await_result_t = decltype(get_awaiter(std::declval<A>()).await_resume());

/// Something a corio coroutine can `co_await`: an awaiter, or a type with `operator co_await`
/// (a task, a join_handle).
template <class A>
concept awaitable = requires(A&& a) {
    { get_awaiter(std::forward<A>(a)).await_ready() } -> std::convertible_to<bool>;
    get_awaiter(std::forward<A>(a)).await_resume();
};

template <class T>
struct is_task : std::false_type {};
template <class T>
struct is_task<task<T>> : std::true_type {};

/// Wraps any awaitable in a task, so that gather and timeout run everything the same way.
template <class Awaitable>
task<await_result_t<Awaitable>> awaitable_task(Awaitable aw) {
    co_return co_await std::move(aw);
}

template <class T>
struct is_join_handle : std::false_type {};
template <class T>
struct is_join_handle<join_handle<T>> : std::true_type {};

/// Awaits a spawned task as a child: when the join is cancelled (the gather failed, the timeout
/// passed), the task itself is cancelled and awaited too, as asyncio does with an awaited Task.
template <class T>
task<T> joined_task(join_handle<T> h) {
    try {
        co_return co_await h;
    } catch (const cancelled_error&) {
        if (h.done())
            throw; // the task itself ended cancelled
    }
    h.cancel();
    try {
        co_await h; // wait until it has unwound; what it ended with no longer matters
    } catch (...) {
    }
    throw cancelled_error{};
}

template <class A>
auto as_task(A&& aw) {
    using plain = std::remove_cvref_t<A>;
    if constexpr (is_task<plain>::value)
        return std::forward<A>(aw);
    else if constexpr (is_join_handle<plain>::value)
        return joined_task(std::forward<A>(aw));
    else
        return awaitable_task(std::forward<A>(aw));
}

/// gather: a failure cancels the siblings; a child cancelled on its own ends the gather with
/// `cancelled_error` once the others are done.
inline constexpr child_scope::policy gather_policy{.cancel_on_error = true,
                                                   .rethrow_child_cancel = true};

template <class T>
using gathered_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

/// Runs the tasks of `tasks` in `scope`, at most `window` at once, stopping the starts when
/// one fails (unless the scope keeps going on errors); returns when all have finished.
template <class T>
task<> run_window(child_scope& scope, std::vector<task<T>>& tasks, std::vector<outcome<T>>& out,
                  std::size_t window) {
    const std::size_t n = tasks.size();
    std::size_t next = 0;
    auto start_more = [&] {
        while (next < n && scope.running() < window && !scope.stopping()) {
            const std::size_t i = next++;
            scope.start([&](std::size_t slot) {
                return run_child(std::move(tasks[i]), &scope, slot, &out[i]);
            });
        }
    };
    start_more();
    while (scope.running() > 0) {
        co_await scope.next_completion();
        start_more();
    }
}

template <class T>
task<std::vector<outcome<T>>> gather_outcomes(std::vector<task<T>> tasks, gather_options options,
                                              child_scope::policy policy) {
    std::vector<outcome<T>> out(tasks.size());
    child_scope scope{policy};
    const std::size_t window =
        options.max_concurrency == 0 ? tasks.size() : options.max_concurrency;
    scope.reserve(std::min(window, tasks.size()));
    co_await run_window(scope, tasks, out, window);
    scope.rethrow(); // the owner's cancellation, or (when cancelling on error) the first error
    co_return out;
}

template <class... Ts>
task<std::tuple<gathered_t<Ts>...>> gather_tuple(task<Ts>... children) {
    std::tuple<outcome<Ts>...> out;
    child_scope scope{gather_policy};
    std::tuple<task<Ts>...> pending{std::move(children)...};
    auto start_all = [&]<std::size_t... I>(std::index_sequence<I...>) {
        (scope.start([&](std::size_t slot) {
            return run_child(std::move(std::get<I>(pending)), &scope, slot, &std::get<I>(out));
        }),
         ...);
    };
    start_all(std::index_sequence_for<Ts...>{});
    while (scope.running() > 0)
        co_await scope.next_completion();
    scope.rethrow();
    auto unwrap = [](auto& o) {
        using V = std::remove_cvref_t<decltype(o)>;
        if constexpr (std::is_same_v<V, outcome<void>>)
            return std::monostate{};
        else
            return std::move(o).value();
    };
    co_return std::apply([&](auto&... o) { return std::tuple{unwrap(o)...}; }, out);
}

} // namespace detail

/// Runs the awaitables concurrently and returns all their values as a tuple (asyncio.gather);
/// a `void` result becomes `std::monostate`. Tasks run as they are; other awaitables are
/// wrapped in tasks.
/// **Errors**: when one fails, the others are cancelled and awaited, then the first error is
/// rethrown: no child outlives the `co_await`.
/// **Cancellation**: cancelling the gather cancels every child, waits for them, then throws
/// `cancelled_error`.
template <class... Awaitables>
    requires(sizeof...(Awaitables) > 0 && (detail::awaitable<Awaitables> && ...))
[[nodiscard]] auto gather(Awaitables&&... aws) {
    return detail::gather_tuple(detail::as_task(std::forward<Awaitables>(aws))...);
}

/// Runs the tasks concurrently (at most `options.max_concurrency` at once) and returns their
/// values in order (asyncio.gather(*tasks)).
/// **Errors**, **Cancellation**: as the variadic `gather`; with a window, children not yet
/// started when one fails are never started.
template <class T>
[[nodiscard]] task<std::conditional_t<std::is_void_v<T>, void, std::vector<T>>>
gather(std::vector<task<T>> tasks, gather_options options = {}) {
    std::vector<outcome<T>> out =
        co_await detail::gather_outcomes(std::move(tasks), options, detail::gather_policy);
    if constexpr (!std::is_void_v<T>) {
        std::vector<T> values;
        values.reserve(out.size());
        for (outcome<T>& o : out)
            values.push_back(std::move(o).value());
        co_return values;
    }
}

/// Runs the tasks concurrently (windowed like `gather`) and returns every outcome, values and
/// exceptions alike (asyncio.gather(..., return_exceptions=True)). A failure cancels nothing.
/// **Cancellation**: cancelling it cancels every child, waits for them, throws
/// `cancelled_error`.
template <class T>
[[nodiscard]] task<std::vector<outcome<T>>> gather_settled(std::vector<task<T>> tasks,
                                                           gather_options options = {}) {
    return detail::gather_outcomes(std::move(tasks), options, detail::child_scope::policy{});
}

/// Runs the tasks concurrently; the first to finish wins and the others are cancelled and
/// awaited (asyncio.wait(FIRST_COMPLETED) plus cancelling the rest).
/// **Errors**: `std::invalid_argument` for an empty vector; if the winner failed, its
/// exception is rethrown (after the others have unwound).
template <class T>
[[nodiscard]] task<when_any_result<T>> when_any(std::vector<task<T>> tasks) {
    if (tasks.empty())
        throw std::invalid_argument("corio::when_any: no tasks (an empty vector has no winner)");
    std::vector<outcome<T>> out(tasks.size());
    detail::child_scope scope{detail::child_scope::policy{}};
    scope.reserve(tasks.size());
    for (std::size_t i = 0; i < tasks.size(); ++i)
        scope.start([&](std::size_t slot) { // slots are 0, 1, ...: the indices
            return detail::run_child(std::move(tasks[i]), &scope, slot, &out[i]);
        });
    co_await scope.next_completion();
    scope.cancel_all(); // the first has finished: stop the rest
    while (scope.running() > 0)
        co_await scope.next_completion();
    const std::size_t winner = scope.first_done();
    scope.rethrow();
    if constexpr (std::is_void_v<T>) {
        out[winner].value();
        co_return when_any_result<T>{winner, std::monostate{}};
    } else {
        co_return when_any_result<T>{winner, std::move(out[winner]).value()};
    }
}

} // namespace corio
