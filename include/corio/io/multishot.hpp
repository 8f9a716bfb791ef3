// SPDX-License-Identifier: MIT
#pragma once

#include <corio/detail/cancel_state.hpp>
#include <corio/detail/cancellation_point.hpp>
#include <corio/detail/cancelled_error.hpp>
#include <corio/io/event_loop.hpp>
#include <corio/io/operation_kind.hpp>

#include <liburing.h>

#include <cerrno>
#include <coroutine>
#include <cstdint>
#include <deque>
#include <optional>
#include <system_error>
#include <utility>

namespace corio::io {

template <class Target>
class multishot_wait;

/// The completion target of a multishot operation: one submission, many completions, until one
/// arrives without `IORING_CQE_F_MORE`. corio's one mechanism for them (the listener's accept,
/// the provided-buffer receive, `io::multishot`), so that their lifetime rules live in one
/// place:
///
/// - It lives on the heap and its owner never deletes it: `release()` frees it at once when the
///   kernel does not hold it, else cancels the operation and lets the last completion free it
///   (the owner is gone: "orphaned"; `Derived::discard` gives back what still arrives).
/// - One coroutine at a time waits on it (`multishot_wait`); `wake()` resumes it, `detach()`
///   lets it go with the target still alive or about to be freed (it resumes on its own turn
///   and must not touch the target again).
///
/// `Derived` provides `void deliver(int res, std::uint32_t flags, bool more) noexcept` (a
/// completion for a live owner) and `void discard(int res, std::uint32_t flags) noexcept` (one
/// for an orphan: close the descriptor, give back the buffer).
/// **Thread-safety**: the loop's thread.
template <class Derived>
class multishot_target : public completion {
public:
    multishot_target(const multishot_target&) = delete;
    multishot_target& operator=(const multishot_target&) = delete;

    /// Submits the operation with the loop's next batch (`multishot` is set here).
    /// **Errors**: what `event_loop::start_io` throws.
    void arm(op_kind kind, op_args args) {
        args.multishot = true;
        loop_.start_io(kind, args, *this);
        live_ = true;
        stopping_ = false;
    }
    /// Asks the kernel to end the operation; its last completion arrives later. False when the
    /// cancel could not be submitted (a broken ring).
    bool stop() noexcept {
        if (!live_ || stopping_)
            return true;
        try {
            loop_.cancel_io(*this);
        } catch (...) {
            return false;
        }
        stopping_ = true;
        return true;
    }
    /// True from `arm` until the last completion.
    [[nodiscard]] bool live() const noexcept { return live_; }
    /// True between `stop` and the last completion.
    [[nodiscard]] bool stopping() const noexcept { return stopping_; }
    [[nodiscard]] event_loop& loop() const noexcept { return loop_; }

    /// The owner is gone: lets the waiter go, then frees the target now, or (live) at its last
    /// completion after cancelling it. A broken ring that refuses the cancel leaks it.
    void release() noexcept {
        detach();
        if (!live_) {
            delete static_cast<Derived*>(this);
            return;
        }
        orphaned_ = true;
        loop_.adopt_orphan();
        stop();
    }

    /// Resumes the waiting coroutine, if any, now (from a completion: inline, as I/O does).
    void wake() noexcept {
        if (std::coroutine_handle<> h = take_waiter())
            h.resume();
    }
    /// Lets the waiting coroutine go: it is scheduled, and it resumes without touching the
    /// target (which may be freed by then). Also a wait that was cancelled and has not resumed
    /// yet: it stays registered until it resumes, so that it learns here that the target is
    /// gone.
    void detach() noexcept {
        if (multishot_wait<Derived>* w = std::exchange(waiter_, nullptr)) {
            w->target_ = nullptr;
            if (std::coroutine_handle<> h = std::exchange(w->handle_, {}))
                loop_.schedule(h);
        }
    }
    /// True while a coroutine waits (not counting a cancelled wait about to resume).
    [[nodiscard]] bool waiting() const noexcept { return waiter_ != nullptr && waiter_->handle_; }

protected:
    explicit multishot_target(event_loop& loop) noexcept : loop_(loop) { complete = &dispatch; }
    ~multishot_target() = default;

    /// The wait in progress (null when none): for a derived target that hands its data
    /// straight to the waiter.
    [[nodiscard]] multishot_wait<Derived>* waiter() const noexcept { return waiter_; }

private:
    friend class multishot_wait<Derived>;

    std::coroutine_handle<> take_waiter() noexcept {
        if (!waiting())
            return {}; // none, or a cancelled one that unregisters itself when it resumes
        return std::exchange(std::exchange(waiter_, nullptr)->handle_, {});
    }

    static void dispatch(completion* c, int res, std::uint32_t flags) noexcept {
        auto* self = static_cast<Derived*>(c);
        const bool more = (flags & IORING_CQE_F_MORE) != 0;
        if (!more) {
            self->live_ = false;
            self->stopping_ = false;
        }
        if (self->orphaned_) {
            self->discard(res, flags);
            if (!more) {
                self->loop_.orphan_finished();
                delete self;
            }
            return;
        }
        self->deliver(res, flags, more);
    }

    event_loop& loop_;
    multishot_wait<Derived>* waiter_ = nullptr;
    bool live_ = false;
    bool stopping_ = false;
    bool orphaned_ = false;
};

/// Waits until a multishot target has something for its owner (`Target::ready()`), arming it
/// first if it is not live (`Target::before_wait()`).
/// **Cancellation**: cancellable: a cancelled wait throws `cancelled_error` unless the target
/// became ready meanwhile (nothing that arrived is lost: it waits for the next wait).
/// A wait that the target detached (its owner closed it) resumes without an exception; the
/// owner's code then sees why.
template <class Target>
class [[nodiscard]] multishot_wait : detail::cancel_target, detail::cancellation_point {
public:
    explicit multishot_wait(Target& t) noexcept : target_(&t) { on_cancel = &on_cancelled; }
    /// (Moved only before it is awaited, as `timeout` and `gather` do with awaitables.)
    multishot_wait(multishot_wait&&) noexcept = default;
    multishot_wait& operator=(multishot_wait&&) = delete;

    [[nodiscard]] bool await_ready() const noexcept { return target_->ready(); }
    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> h) {
        if (cancel_pending(h))
            return false;
        target_->before_wait();
        handle_ = h;
        target_->waiter_ = this;
        if (cancel_ != nullptr)
            cancel_->arm(this);
        return true;
    }
    void await_resume() {
        if (target_ != nullptr && target_->waiter_ == this)
            target_->waiter_ = nullptr; // (a cancelled wait: still registered, see on_cancelled)
        if (cancel_ != nullptr) {
            cancel_->disarm(this);
            if (cancel_->requested() && (target_ == nullptr || !target_->ready())) {
                cancel_->consume();
                throw cancelled_error{};
            }
        }
    }

    /// The target, or null once it let this wait go.
    [[nodiscard]] Target* target() const noexcept { return target_; }

private:
    friend class multishot_target<Target>;

    // The wait stays registered with its target until it resumes (await_resume unregisters
    // it): if the target is released meanwhile, `detach` clears `target_`, so the wait never
    // looks at a freed target.
    static void on_cancelled(detail::cancel_target* t) noexcept {
        auto* self = static_cast<multishot_wait*>(t);
        if (std::coroutine_handle<> h = std::exchange(self->handle_, {}))
            event_loop::current().schedule(h);
    }

    Target* target_;
    std::coroutine_handle<> handle_;
};

/// A multishot operation for direct use (a multishot poll, ...): one submission, many
/// completions, whose results queue up in arrival order until consumed with `next()`. Live
/// until a completion arrives without `IORING_CQE_F_MORE` (on error, on `stop()`, or when the
/// kernel ends it, for instance on CQ overflow; `start()` re-arms it then).
///
/// **Lifetime**: it may be destroyed at any time: a live operation is cancelled and what it
/// still posts is dropped.
/// **Thread-safety**: the loop's thread.
class multishot {
    struct state;

public:
    multishot(op_kind kind, const op_args& args, const char* what)
        : s_(new state(event_loop::current(what), kind, args, what)) {}
    multishot(multishot&& other) noexcept : s_(std::exchange(other.s_, nullptr)) {}
    multishot& operator=(multishot&& other) noexcept {
        if (this != &other) {
            if (s_ != nullptr)
                s_->release();
            s_ = std::exchange(other.s_, nullptr);
        }
        return *this;
    }
    multishot(const multishot&) = delete;
    multishot& operator=(const multishot&) = delete;
    ~multishot() {
        if (s_ != nullptr)
            s_->release();
    }

    /// Submits the operation (with the loop's next batch). No effect while already live.
    void start() {
        if (!s_->live())
            s_->arm(s_->kind, s_->args);
    }
    /// Asks the kernel to end the operation; its final completion arrives later.
    void stop() noexcept { s_->stop(); }
    /// True from `start()` until the final completion.
    [[nodiscard]] bool live() const noexcept { return s_->live(); }

    /// The next queued result without waiting: a value >= 0, or std::nullopt if none is queued.
    /// **Errors**: a queued negative result throws `std::system_error` (-ECANCELED after
    /// `stop()`, and -EINTR, which ends the operation having done nothing, are not errors and
    /// are skipped: `start()` again).
    [[nodiscard]] std::optional<int> try_next() {
        while (!s_->results.empty()) {
            const int r = s_->results.front();
            s_->results.pop_front();
            if (r >= 0)
                return r;
            if (r != -ECANCELED && r != -EINTR)
                throw std::system_error(-r, std::system_category(), s_->what);
        }
        return std::nullopt;
    }

    class [[nodiscard]] next_awaiter : public multishot_wait<state> {
    public:
        explicit next_awaiter(multishot& op) noexcept : multishot_wait<state>(*op.s_), op_(op) {}
        /// The next result, or std::nullopt once the operation has ended and nothing is queued.
        std::optional<int> await_resume() {
            multishot_wait<state>::await_resume();
            return op_.try_next();
        }

    private:
        multishot& op_;
    };

    /// Waits for the next result (a value >= 0), or std::nullopt once the operation has ended.
    /// **Cancellation**: cancelling the waiting coroutine wakes it with `cancelled_error`; the
    /// operation itself stays live (call `stop()`).
    /// **Errors**: a negative result throws `std::system_error`.
    [[nodiscard]] next_awaiter next() noexcept { return next_awaiter{*this}; }

private:
    struct state : multishot_target<state> {
        state(event_loop& loop, op_kind k, const op_args& a, const char* w) noexcept
            : multishot_target<state>(loop), args(a), what(w), kind(k) {}

        [[nodiscard]] bool ready() const noexcept { return !results.empty() || !live(); }
        void before_wait() noexcept {}
        void deliver(int res, std::uint32_t, bool) noexcept {
            try {
                results.push_back(res);
            } catch (...) {
                // Out of memory: the result is dropped; the waiter still wakes.
            }
            wake();
        }
        void discard(int, std::uint32_t) noexcept {}

        op_args args;
        const char* what;
        std::deque<int> results;
        op_kind kind;
    };

    state* s_;
};

/// A multishot poll of `fd` for `events` (POLLIN, ...): one result (the revents mask) per
/// readiness event, until stopped. Call `start()` on the loop's thread.
[[nodiscard]] inline multishot poll_multishot(int fd, short events) {
    op_args a{};
    a.fd = fd;
    a.flags = events;
    return multishot{op_kind::poll, a, "corio::io::poll_multishot"};
}

} // namespace corio::io
