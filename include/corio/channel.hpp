// SPDX-License-Identifier: MIT
#pragma once

#include <corio/bounded_queue.hpp>
#include <corio/detail/cancel_state.hpp>
#include <corio/detail/cancellation_point.hpp>
#include <corio/detail/fixed_ring.hpp>
#include <corio/detail/intrusive_list.hpp>
#include <corio/io/event_loop.hpp>

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

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
/// **Resumption**: a `send` to a channel with a waiting receiver hands the item straight to the
/// longest-waiting receiver; a `receive` from a full channel admits the longest-waiting
/// sender's item. A waiter always resumes on its own loop, exactly once.
/// **Cancellation**: `bounded_queue`'s rules. A cancelled waiter leaves the channel and throws
/// `cancelled_error`: a cancelled `send` has not enqueued its item, a cancelled `receive` has
/// taken none (the item stays for the next receiver). An item already handed to a receiver is
/// returned by its `receive` even if it was cancelled meanwhile: items are never lost.
/// **Errors**: `std::invalid_argument` for a capacity below 1; `queue_closed` from `send`
/// after `close()`, and from `receive` once a closed channel is empty.
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
    [[nodiscard]] std::size_t size() const {
        std::lock_guard lock(mutex_);
        return items_.size();
    }
    [[nodiscard]] bool closed() const {
        std::lock_guard lock(mutex_);
        return closed_;
    }

    /// Sends without waiting; false when full (the item stays with the caller).
    /// **Errors**: `queue_closed` after `close()`.
    [[nodiscard]] bool try_send(T&& value) { return offer(value); }
    [[nodiscard]] bool try_send(const T& value) {
        T copy(value);
        return offer(copy);
    }

    /// Receives without waiting; std::nullopt when empty (also when closed and drained).
    [[nodiscard]] std::optional<T> try_receive() {
        std::optional<T> item;
        (void)take(item);
        return item;
    }

    /// Closes the channel: waiting and later `send`s throw `queue_closed`; `receive` drains
    /// what is left, then throws `queue_closed`. Idempotent.
    void close() {
        std::vector<std::pair<event_loop*, std::coroutine_handle<>>> woken;
        {
            std::lock_guard lock(mutex_);
            closed_ = true;
            for (auto* list : {&senders_, &receivers_})
                while (detail::channel_waiter* w = list->front()) {
                    list->erase(*w);
                    w->status = detail::channel_waiter::state::closed;
                    woken.emplace_back(w->loop, w->handle);
                }
        }
        for (auto& [loop, h] : woken)
            detail::wake_channel_waiter(*loop, h);
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
            if (!item_)
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

    /// Hands `value` to a waiting receiver or buffers it; moves from it only on success.
    bool offer(T& value) {
        waiter* woken = nullptr;
        {
            std::lock_guard lock(mutex_);
            if (closed_)
                throw queue_closed{};
            if (!place(value, woken))
                return false;
        }
        wake(woken);
        return true;
    }

    /// Takes the oldest item into `out` (admitting a waiting sender's); false when empty.
    bool take(std::optional<T>& out) {
        waiter* admitted = nullptr;
        {
            std::lock_guard lock(mutex_);
            if (items_.empty()) {
                if (closed_)
                    throw queue_closed{};
                return false;
            }
            take_locked(out, admitted);
        }
        wake(admitted);
        return true;
    }

    /// Queues a sender, unless room appeared meanwhile (then it sends and does not suspend).
    template <class Promise>
    bool wait_to_send(send_awaiter& s, std::coroutine_handle<Promise> h) {
        waiter* woken = nullptr;
        {
            std::lock_guard lock(mutex_);
            if (closed_) {
                s.status = state::closed;
                return false;
            }
            if (!place(*s.value_, woken)) {
                enqueue(s, h, senders_);
                return true;
            }
        }
        wake(woken);
        return false;
    }

    /// Queues a receiver, unless an item (or the end) appeared meanwhile.
    template <class Promise>
    bool wait_to_receive(receive_awaiter& r, std::coroutine_handle<Promise> h) {
        waiter* admitted = nullptr;
        {
            std::lock_guard lock(mutex_);
            if (items_.empty()) {
                if (closed_) {
                    r.status = state::closed;
                    return false;
                }
                enqueue(r, h, receivers_);
                return true;
            }
            take_locked(r.item_, admitted);
        }
        wake(admitted);
        return false;
    }

    // With the mutex held: hands `value` to the first receiver (returned in `woken`, to be
    // woken once the mutex is released) or buffers it; false when full.
    bool place(T& value, waiter*& woken) {
        if (waiter* r = receivers_.front()) {
            receivers_.erase(*r);
            static_cast<receive_awaiter*>(r)->item_.emplace(std::move(value));
            r->status = state::granted;
            woken = r;
            return true;
        }
        if (items_.full())
            return false;
        items_.push(std::move(value));
        return true;
    }

    // With the mutex held and an item buffered: takes it, and admits the first sender's.
    void take_locked(std::optional<T>& out, waiter*& admitted) {
        out.emplace(items_.pop());
        if (waiter* s = senders_.front()) {
            senders_.erase(*s);
            items_.push(std::move(*static_cast<send_awaiter*>(s)->value_));
            s->status = state::granted;
            admitted = s;
        }
    }

    static void wake(waiter* w) {
        if (w != nullptr)
            detail::wake_channel_waiter(*w->loop, w->handle);
    }

    template <class Promise>
    void enqueue(waiter& w, std::coroutine_handle<Promise> h, waiter_list& list) {
        w.handle = h;
        w.loop = &event_loop::current("corio::channel");
        w.status = state::waiting;
        list.push_back(w);
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
            list.erase(w);
            w.status = state::cancelled;
        }
        w.loop->schedule(w.handle);
    }

    mutable std::mutex mutex_;
    detail::fixed_ring<T> items_;
    waiter_list senders_;
    waiter_list receivers_;
    bool closed_ = false;
};

} // namespace corio
