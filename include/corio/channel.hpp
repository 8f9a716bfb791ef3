// SPDX-License-Identifier: MIT
#pragma once

#include <corio/bounded_queue.hpp>
#include <corio/detail/cancel_state.hpp>
#include <corio/detail/cancellation_point.hpp>
#include <corio/detail/intrusive_list.hpp>
#include <corio/detail/mpmc_ring.hpp>
#include <corio/io/event_loop.hpp>

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

namespace corio {

namespace detail {

/// A coroutine waiting in a channel, on the loop it waits on. Lives in its awaiter. Its state
/// is guarded by the channel's mutex; once it is `granted` or `closed` only the thread that
/// decided so touches it, until the coroutine resumes.
struct channel_waiter : list_hook, cancel_target, cancellation_point {
    enum class state : std::uint8_t { idle, waiting, granted, cancelled, closed };
    std::coroutine_handle<> handle;
    event_loop* loop = nullptr;
    state status = state::idle;

    /// The waiting chain's cancellation state (recorded by `cancel_pending`).
    [[nodiscard]] cancel_state* chain() const noexcept { return cancel_; }

    /// On resumption: stops listening for cancellation (a waiter decided by another thread is
    /// still armed), and throws `cancelled_error` when the wait was cancelled.
    void leave() {
        if (cancel_ != nullptr)
            cancel_->disarm(this);
        if (status == state::cancelled)
            throw_if_cancelled();
    }
};

/// Resumes a waiter that another party decided about: on its own loop, from any thread.
inline void wake_channel_waiter(event_loop& loop, std::coroutine_handle<> h) {
    if (&loop == event_loop::current_or_null())
        loop.schedule(h);
    else
        loop.resume_from_afar(h);
}

} // namespace detail

/// A bounded multi-producer multi-consumer FIFO between loops and threads (Go's buffered
/// channel, tokio's `mpsc`/`async_channel`): `send` waits while it holds `capacity` items,
/// `receive` waits while it is empty, and `close` ends it. Unlike the loop-bound
/// `bounded_queue`, a channel may be used from every loop of a runtime at once, and
/// `try_send` / `try_receive` from any thread at all.
///
/// **How**: items sit in a lock-free ring (a compare-and-swap per `send` and per `receive`, no
/// lock while neither side has to wait); the waiters queue under a mutex, taken only when
/// someone waits. A sent item goes to a waiting receiver, the longest-waiting first; a
/// `receive` that makes room admits the longest-waiting sender's item. A `send` or `receive`
/// that finds an item or a free slot at once takes it without queueing, even when others
/// wait (tokio's and crossbeam's channels do the same). A waiter always resumes on its own
/// loop, exactly once.
/// **Cancellation**: `bounded_queue`'s rules. A cancelled waiter leaves the channel and throws
/// `cancelled_error`: a cancelled `send` has not enqueued its item, a cancelled `receive` has
/// taken none (the item stays for the next receiver). An item already handed to a receiver is
/// returned by its `receive` even if it was cancelled meanwhile: items are never lost.
/// **Errors**: `std::invalid_argument` for a capacity below 1; `queue_closed` from `send`
/// after `close()`, and from `receive` once a closed channel is empty. `T` must be nothrow
/// move constructible (checked at compile time).
/// **Thread-safety**: every member, from any thread; `send` and `receive` are awaited on a
/// loop. The channel must outlive its waiters.
template <class T>
class channel {
public:
    /// A channel holding at most `capacity` items (>= 1).
    explicit channel(std::ptrdiff_t capacity) : items_(checked(capacity)) {}
    channel(const channel&) = delete;
    channel& operator=(const channel&) = delete;
    ~channel() = default;

    [[nodiscard]] std::size_t capacity() const noexcept { return items_.capacity(); }
    /// Items held now (a snapshot: other threads may change it at once).
    [[nodiscard]] std::size_t size() const noexcept { return items_.size(); }
    [[nodiscard]] bool closed() const noexcept { return closed_.load(std::memory_order_acquire); }

    /// Sends without waiting; false when full (the item stays with the caller).
    /// **Errors**: `queue_closed` after `close()`.
    [[nodiscard]] bool try_send(T&& value) { return offer(value); }
    [[nodiscard]] bool try_send(const T& value) {
        T copy(value);
        return offer(copy);
    }

    /// Receives without waiting; std::nullopt when empty.
    /// **Errors**: `queue_closed` once the channel is closed and drained.
    [[nodiscard]] std::optional<T> try_receive() {
        std::optional<T> item;
        (void)take(item);
        return item;
    }

    /// Closes the channel: waiting and later `send`s throw `queue_closed`; `receive` drains
    /// what is left, then throws `queue_closed`. Idempotent.
    void close() {
        waiter_list woken;
        {
            std::lock_guard lock(mutex_);
            closed_.store(true, std::memory_order_release);
            for (waiter_list* list : {&senders_, &receivers_})
                while (waiter* w = list->front()) {
                    dequeue(*w, *list);
                    w->status = state::closed;
                    woken.push_back(*w);
                }
        }
        wake(woken);
    }

    class [[nodiscard]] send_awaiter : detail::channel_waiter {
    public:
        send_awaiter(channel& c, T&& value) : c_(c), value_(std::move(value)) {
            on_cancel = &on_cancelled;
        }
        [[nodiscard]] bool await_ready() { return c_.offer(*value_); }
        template <class Promise>
        bool await_suspend(std::coroutine_handle<Promise> h) {
            if (cancel_pending(h)) {
                status = state::cancelled;
                return false;
            }
            return c_.wait_to_send(*this, h);
        }
        void await_resume() {
            leave();
            if (status == state::closed)
                throw queue_closed{};
        }

    private:
        friend class channel;
        static void on_cancelled(detail::cancel_target* t) noexcept {
            auto* self = static_cast<send_awaiter*>(t);
            self->c_.withdraw(*self, self->c_.senders_);
        }
        channel& c_;
        std::optional<T> value_; // moved into the channel when admitted
    };

    class [[nodiscard]] receive_awaiter : detail::channel_waiter {
    public:
        explicit receive_awaiter(channel& c) noexcept : c_(c) { on_cancel = &on_cancelled; }
        [[nodiscard]] bool await_ready() { return c_.take(item_); }
        template <class Promise>
        bool await_suspend(std::coroutine_handle<Promise> h) {
            if (cancel_pending(h)) {
                status = state::cancelled;
                return false;
            }
            return c_.wait_to_receive(*this, h);
        }
        T await_resume() {
            leave();
            // Woken by close(): what was sent before it is still delivered, then queue_closed.
            if (!item_ && !c_.take(item_))
                throw queue_closed{};
            return std::move(*item_);
        }

    private:
        friend class channel;
        static void on_cancelled(detail::cancel_target* t) noexcept {
            auto* self = static_cast<receive_awaiter*>(t);
            self->c_.withdraw(*self, self->c_.receivers_);
        }
        channel& c_;
        std::optional<T> item_;
    };

    /// Sends `value`, waiting while the channel is full (Go's `ch <- v`).
    send_awaiter send(T value) { return send_awaiter{*this, std::move(value)}; }
    /// Receives the oldest item, waiting while the channel is empty (Go's `<-ch`).
    receive_awaiter receive() noexcept { return receive_awaiter{*this}; }

private:
    using waiter = detail::channel_waiter;
    using state = waiter::state;
    using cancel_state = detail::cancel_state;
    using waiter_list = detail::intrusive_list<waiter>;

    static std::size_t checked(std::ptrdiff_t capacity) {
        if (capacity < 1)
            throw std::invalid_argument("corio::channel: capacity must be at least 1, got " +
                                        std::to_string(capacity));
        return static_cast<std::size_t>(capacity);
    }

    // --- the lock-free path: the ring, then a look for waiters -----------------------------

    /// Buffers `value`, moving from it only on success; false when full.
    bool offer(T& value) {
        if (closed_.load(std::memory_order_acquire))
            throw queue_closed{};
        if (!items_.try_push(value))
            return false;
        serve_waiters();
        return true;
    }

    /// Takes the oldest item into `out`; false when empty.
    /// **Errors**: `queue_closed` when the channel is closed and drained.
    bool take(std::optional<T>& out) {
        if (pop_into(out))
            return true;
        if (!closed_.load(std::memory_order_acquire))
            return false;
        // Closed: what was sent before is still delivered, a send that claimed its slot but
        // has not published its item yet included (a few instructions away).
        for (;;) {
            if (pop_into(out))
                return true;
            if (items_.size() == 0)
                throw queue_closed{};
            std::this_thread::yield();
        }
    }

    bool pop_into(std::optional<T>& out) {
        if (!items_.try_pop_into([&out](T&& v) noexcept { out.emplace(std::move(v)); }))
            return false;
        serve_waiters();
        return true;
    }

    /// After a push or a pop: serves the waiters it may concern. A waiter counts itself in
    /// `waiters_` and then looks at the ring again; a push or pop changes the ring and then
    /// looks at `waiters_`. The two fences make sure one of the two sees the other, so no
    /// waiter sleeps while an item (or a free slot) is there for it.
    void serve_waiters() {
        std::atomic_thread_fence(std::memory_order_seq_cst);
        if (waiters_.load(std::memory_order_relaxed) == 0)
            return;
        waiter_list woken;
        {
            std::lock_guard lock(mutex_);
            balance(woken);
        }
        wake(woken);
    }

    // --- the waiters: under the mutex -------------------------------------------------------

    /// Queues a sender, unless room appeared meanwhile (then it sends and does not suspend).
    template <class Promise>
    bool wait_to_send(send_awaiter& s, std::coroutine_handle<Promise> h) {
        waiter_list woken;
        {
            std::lock_guard lock(mutex_);
            if (closed_.load(std::memory_order_relaxed)) {
                s.status = state::closed;
                return false;
            }
            enqueue(s, h, senders_);
            if (!items_.try_push(*s.value_)) {
                arm(s);
                return true;
            }
            dequeue(s, senders_);
            balance(woken);
        }
        wake(woken);
        return false;
    }

    /// Queues a receiver, unless an item (or the end) appeared meanwhile.
    template <class Promise>
    bool wait_to_receive(receive_awaiter& r, std::coroutine_handle<Promise> h) {
        waiter_list woken;
        {
            std::lock_guard lock(mutex_);
            enqueue(r, h, receivers_);
            const bool taken =
                items_.try_pop_into([&r](T&& v) noexcept { r.item_.emplace(std::move(v)); });
            if (!taken && !closed_.load(std::memory_order_relaxed)) {
                arm(r);
                return true;
            }
            dequeue(r, receivers_);
            if (!taken)
                r.status = state::closed; // await_resume drains what is left, or throws
            balance(woken);
        }
        wake(woken);
        return false;
    }

    /// With the mutex held: hands buffered items to waiting receivers and admits waiting
    /// senders' items while there is room, collecting the waiters it decided about in
    /// `woken` (woken once the mutex is released).
    void balance(waiter_list& woken) noexcept {
        for (bool progress = true; progress;) {
            progress = false;
            while (waiter* r = receivers_.front()) {
                auto& ra = static_cast<receive_awaiter&>(*r);
                if (!items_.try_pop_into([&ra](T&& v) noexcept { ra.item_.emplace(std::move(v)); }))
                    break;
                grant(*r, receivers_, woken);
                progress = true;
            }
            while (waiter* s = senders_.front()) {
                if (!items_.try_push(*static_cast<send_awaiter&>(*s).value_))
                    break;
                grant(*s, senders_, woken);
                progress = true;
            }
        }
    }

    void grant(waiter& w, waiter_list& list, waiter_list& woken) noexcept {
        dequeue(w, list);
        w.status = state::granted;
        woken.push_back(w);
    }

    /// Resumes the waiters of `woken`, each on its own loop; a resumed waiter may be gone at
    /// once, so each leaves the list before it is woken.
    static void wake(waiter_list& woken) {
        while (waiter* w = woken.pop_front())
            detail::wake_channel_waiter(*w->loop, w->handle);
    }

    template <class Promise>
    void enqueue(waiter& w, std::coroutine_handle<Promise> h, waiter_list& list) {
        w.handle = h;
        w.loop = &event_loop::current("corio::channel");
        w.status = state::waiting;
        list.push_back(w);
        waiters_.fetch_add(1, std::memory_order_relaxed);
        std::atomic_thread_fence(std::memory_order_seq_cst); // see serve_waiters
    }

    void dequeue(waiter& w, waiter_list& list) noexcept {
        list.erase(w);
        waiters_.fetch_sub(1, std::memory_order_relaxed);
    }

    /// A waiter that stays: it listens for cancellation from now on.
    static void arm(waiter& w) {
        if (cancel_state* chain = w.chain())
            chain->arm(&w); // the chain runs on this thread: its state is ours to touch
    }

    /// A waiter was cancelled (on its own loop): it leaves unless it was decided meanwhile,
    /// in which case its resumption is already on its way and it keeps what it was given.
    void withdraw(waiter& w, waiter_list& list) noexcept {
        {
            std::lock_guard lock(mutex_);
            if (w.status != state::waiting)
                return;
            dequeue(w, list);
            w.status = state::cancelled;
        }
        w.loop->schedule(w.handle);
    }

    static constexpr std::size_t line = 64;
    detail::mpmc_ring<T> items_;
    /// Waiters in both lists; changed under the mutex, read without it (see serve_waiters).
    alignas(line) std::atomic<std::size_t> waiters_{0};
    std::atomic<bool> closed_{false};
    alignas(line) mutable std::mutex mutex_;
    waiter_list senders_;
    waiter_list receivers_;
};

} // namespace corio
