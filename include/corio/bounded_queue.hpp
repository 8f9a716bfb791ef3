// SPDX-License-Identifier: MIT
#pragma once

#include <corio/detail/fixed_ring.hpp>
#include <corio/io/loop_affinity.hpp>
#include <corio/waiter_queue.hpp>

#include <coroutine>
#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace corio {

/// Thrown by `put` on a closed queue, and by `get` on a closed queue that has been drained.
class queue_closed : public std::runtime_error {
public:
    queue_closed() : std::runtime_error("corio::bounded_queue: the queue is closed") {}
};

/// A FIFO queue of at most `capacity` items for producers and consumers on one loop
/// (asyncio.Queue(maxsize), with `task_done`/`join`, plus `close`).
///
/// **Resumption**: a `put` into a queue with a waiting consumer hands the item straight to the
/// longest-waiting consumer; a `get` from a full queue admits the longest-waiting producer's
/// item. Waiters resume through the loop's ready queue, FIFO.
/// **Cancellation**: a cancelled waiter leaves its queue and throws `cancelled_error`: a
/// cancelled `put` has not enqueued its item, a cancelled `get` has taken none. An item already
/// handed to a consumer is returned by its `get` even if it was cancelled meanwhile (the
/// cancellation surfaces at its next suspension): items are never lost.
/// **Errors**: `std::invalid_argument` for a capacity below 1; `queue_closed` after `close()`;
/// `std::logic_error` for more `task_done()` calls than items put.
/// **Thread-safety**: one loop, the first that uses it (from another, a `std::logic_error`).
template <class T>
class bounded_queue {
public:
    /// A queue holding at most `capacity` items (>= 1).
    explicit bounded_queue(std::ptrdiff_t capacity) : items_(checked(capacity)) {}
    bounded_queue(const bounded_queue&) = delete;
    bounded_queue& operator=(const bounded_queue&) = delete;

    [[nodiscard]] std::size_t size() const noexcept { return items_.size(); }
    [[nodiscard]] std::size_t capacity() const noexcept { return items_.capacity(); }
    [[nodiscard]] bool empty() const noexcept { return items_.empty(); }
    [[nodiscard]] bool full() const noexcept { return items_.full(); }
    [[nodiscard]] bool closed() const noexcept { return closed_; }

    /// Enqueues without waiting; false when full.
    /// **Errors**: `queue_closed` after `close()`.
    /// On failure the item stays with the caller (nothing is moved from).
    [[nodiscard]] bool try_put(T&& value) {
        affinity_.check("corio::bounded_queue");
        return offer(std::move(value));
    }
    [[nodiscard]] bool try_put(const T& value) {
        affinity_.check("corio::bounded_queue");
        if (closed_)
            throw queue_closed{};
        if (full() && getters_.empty())
            return false;
        return offer(T(value));
    }

    /// Dequeues without waiting; std::nullopt when empty (also when closed and drained).
    [[nodiscard]] std::optional<T> try_get() {
        affinity_.check("corio::bounded_queue");
        if (empty())
            return std::nullopt;
        std::optional<T> item{items_.pop()};
        admit_putter();
        return item;
    }

    /// Marks one item taken by `get` as processed (asyncio's `task_done`).
    /// **Errors**: `std::logic_error` when called more times than items were put.
    void task_done() {
        affinity_.check("corio::bounded_queue");
        if (unfinished_ == 0)
            throw std::logic_error("corio::bounded_queue::task_done: called more times than "
                                   "items were put");
        if (--unfinished_ == 0)
            joiners_.wake_all(detail::waiter::state::granted);
    }

    /// Closes the queue: waiting and later `put`s throw `queue_closed`; `get` drains what is
    /// left, then throws `queue_closed`.
    void close() {
        affinity_.check("corio::bounded_queue");
        closed_ = true;
        putters_.wake_all(detail::waiter::state::closed);
        getters_.wake_all(detail::waiter::state::closed);
    }

    class [[nodiscard]] put_awaiter : detail::waiter {
    public:
        put_awaiter(bounded_queue& q, T&& value) : q_(q), value_(std::move(value)) {}
        [[nodiscard]] bool await_ready() { return q_.offer(std::move(*value_)); }
        template <class Promise>
        bool await_suspend(std::coroutine_handle<Promise> h) {
            return q_.putters_.suspend(*this, h);
        }
        void await_resume() const {
            if (status() != state::idle && !finish())
                throw queue_closed{};
        }

    private:
        friend class bounded_queue;
        bounded_queue& q_;
        std::optional<T> value_; // moved into the queue when admitted
    };

    class [[nodiscard]] get_awaiter : detail::waiter {
    public:
        explicit get_awaiter(bounded_queue& q) noexcept : q_(q) {}
        [[nodiscard]] bool await_ready() {
            item_ = q_.try_get();
            if (!item_ && q_.closed_)
                throw queue_closed{};
            return item_.has_value();
        }
        template <class Promise>
        bool await_suspend(std::coroutine_handle<Promise> h) {
            return q_.getters_.suspend(*this, h);
        }
        T await_resume() {
            if (status() != state::idle && !finish())
                throw queue_closed{};
            return std::move(*item_);
        }

    private:
        friend class bounded_queue;
        bounded_queue& q_;
        std::optional<T> item_;
    };

    class [[nodiscard]] join_awaiter : detail::waiter {
    public:
        explicit join_awaiter(bounded_queue& q) noexcept : q_(q) {}
        [[nodiscard]] bool await_ready() const noexcept { return q_.unfinished_ == 0; }
        template <class Promise>
        bool await_suspend(std::coroutine_handle<Promise> h) {
            return q_.joiners_.suspend(*this, h);
        }
        void await_resume() const {
            if (status() != state::idle)
                (void)finish();
        }

    private:
        bounded_queue& q_;
    };

    /// Enqueues `value`, waiting while the queue is full (asyncio's `await q.put(v)`).
    put_awaiter put(T value) {
        affinity_.check("corio::bounded_queue");
        return put_awaiter{*this, std::move(value)};
    }
    /// Dequeues the oldest item, waiting while the queue is empty (asyncio's `await q.get()`).
    get_awaiter get() {
        affinity_.check("corio::bounded_queue");
        return get_awaiter{*this};
    }
    /// Waits until every item put has been marked `task_done()` (asyncio's `await q.join()`).
    join_awaiter join() {
        affinity_.check("corio::bounded_queue");
        return join_awaiter{*this};
    }

private:
    static std::size_t checked(std::ptrdiff_t capacity) {
        if (capacity < 1)
            throw std::invalid_argument("corio::bounded_queue: capacity must be at least 1, got " +
                                        std::to_string(capacity));
        return static_cast<std::size_t>(capacity);
    }

    /// Enqueues `value` if it can without waiting; moves from it only then.
    bool offer(T&& value) {
        if (closed_)
            throw queue_closed{};
        if (!getters_.empty()) { // empty queue with consumers waiting: hand it over
            static_cast<get_awaiter&>(*getters_.front()).item_.emplace(std::move(value));
            getters_.grant_front();
            ++unfinished_;
            return true;
        }
        if (full())
            return false;
        items_.push(std::move(value));
        ++unfinished_;
        return true;
    }

    /// A slot was freed: the longest-waiting producer's item takes it.
    void admit_putter() {
        if (putters_.empty())
            return;
        auto& p = static_cast<put_awaiter&>(*putters_.front());
        items_.push(std::move(*p.value_));
        ++unfinished_;
        putters_.grant_front();
    }

    detail::fixed_ring<T> items_;
    std::size_t unfinished_ = 0;
    detail::waiter_queue getters_;
    detail::waiter_queue putters_;
    detail::waiter_queue joiners_;
    detail::loop_affinity affinity_;
    bool closed_ = false;
};

} // namespace corio
